"""Start the real servers secretkit talks to on 127.0.0.1: etcd, OpenBao (dev), moto.

Each binds 127.0.0.1 only, on ports picked by :func:`free_port` unless given (a
start that loses its port to another process is retried with new ones), logs to a
file and is returned as a :class:`ManagedProcess` once its health check passes.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from secretkit.sandbox.servers.binaries import find_binary
from secretkit.sandbox.servers.pki import TestPKI
from secretkit.sandbox.servers.processes import (
    LOCALHOST,
    ManagedProcess,
    child_env,
    free_port,
    loopback_get,
    spawn,
    start_with_retries,
    wait_ready,
)

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
        return b'"health":"true"' in loopback_get(f"{endpoint}/health", context=context)[1]

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
    log = log_path if log_path is not None else data_dir.parent / f"{data_dir.name}.log"
    scheme = "https" if tls else "http"
    endpoint = ""

    def start() -> tuple[ManagedProcess, str]:
        nonlocal endpoint
        cport = client_port if client_port is not None else free_port()
        pport = peer_port if peer_port is not None else free_port()
        endpoint = f"{scheme}://{LOCALHOST}:{cport}"
        argv = _etcd_argv(binary, data_dir, cport, pport, tls, unsafe_no_fsync)
        proc = spawn("etcd", argv, log_path=log, env=child_env())
        wait_ready(proc, _etcd_probe(endpoint, tls), timeout=timeout, where=endpoint)
        return proc, endpoint

    attempts = 1 if client_port is not None and peer_port is not None else 3
    return start_with_retries("etcd", attempts, start, where=lambda: endpoint)


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
    Transit is set up with :mod:`secretkit.backends.vault_admin`.
    """
    binary = find_binary("bao")
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = root_token or f"dev-{secrets.token_hex(16)}"  # "s." is reserved by OpenBao
    log = log_path if log_path is not None else workdir / "openbao.log"
    address = ""

    def start() -> tuple[ManagedProcess, str, str]:
        nonlocal address
        bport = port if port is not None else free_port()
        address = f"http://{LOCALHOST}:{bport}"
        argv = [
            str(binary),
            "server",
            "-dev",
            f"-dev-listen-address={LOCALHOST}:{bport}",
            "-dev-no-store-token",
        ]
        env = child_env(
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
        proc = spawn("openbao", argv, log_path=log, env=env, cwd=workdir)
        health = f"{address}/v1/sys/health"

        def probe() -> bool:
            return b'"initialized":true' in loopback_get(health)[1].replace(b" ", b"")

        wait_ready(proc, probe, timeout=timeout, where=address)
        return proc, address, token

    attempts = 1 if port is not None else 3
    return start_with_retries("openbao", attempts, start, where=lambda: address)


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
    endpoint = ""

    def start() -> tuple[ManagedProcess, str]:
        nonlocal endpoint
        mport = port if port is not None else free_port()
        endpoint = f"http://{LOCALHOST}:{mport}"
        argv = [str(binary), "-H", LOCALHOST, "-p", str(mport)]
        proc = spawn("moto_server", argv, log_path=log_path, env=child_env())
        api = f"{endpoint}/moto-api/"

        def probe() -> bool:
            loopback_get(api)
            return True

        wait_ready(proc, probe, timeout=timeout, where=endpoint)
        return proc, endpoint

    attempts = 1 if port is not None else 3
    return start_with_retries("moto_server", attempts, start, where=lambda: endpoint)
