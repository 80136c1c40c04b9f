"""Bring a sandbox up and down: etcd, OpenBao (transit), the KMS plugin, the API stand-in.

Everything binds 127.0.0.1 on free ports and lives in one directory, so several
sandboxes can run side by side. Processes run in their own sessions and outlive
the ``secretkit sandbox up`` command; ``down`` stops them by the PIDs recorded in
the state file.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretkit.backends.vault_admin import create_transit_key, enable_transit
from secretkit.errors import SecretkitError, UsageError
from secretkit.sandbox import configs
from secretkit.sandbox.files import write_private
from secretkit.sandbox.servers import (
    LOCALHOST,
    ManagedProcess,
    ServerStartError,
    child_env,
    free_port,
    generate_test_pki,
    loopback_get,
    spawn,
    start_etcd,
    start_openbao_dev,
    wait_ready,
)
from secretkit.sandbox.state import ProcessInfo, SandboxState

log = logging.getLogger(__name__)

#: unix socket paths are limited to 107 bytes; longer sandbox dirs use a temp dir
_MAX_SOCKET_PATH = 100
TRANSIT_MOUNT = "transit"
TRANSIT_KEY = "sandbox-kek"


@dataclass(frozen=True)
class SandboxOptions:
    """How to start a sandbox. Timing knobs are seconds (defaults are the apiserver's)."""

    encryption: str = "none"
    kms_poll_healthy: float = 60.0
    kms_poll_unhealthy: float = 10.0
    kms_unhealthy_grace: float = 180.0
    #: seconds between config re-reads; None disables automatic reload
    reload_interval: float | None = None
    plugin_status_ttl: float = 30.0
    api_port: int | None = None
    start_timeout: float = 60.0
    #: a custom EncryptionConfiguration (YAML bytes) instead of ``encryption``'s;
    #: ``{kms_endpoint}`` is replaced by the sandbox plugin's ``unix://`` endpoint
    #: (:func:`configs.plugin_endpoint`: already %-escaped, and free of YAML's ``#``)
    encryption_config: bytes | None = None


def _info(proc: ManagedProcess) -> ProcessInfo:
    return ProcessInfo(proc.name, proc.pid, list(proc.argv), str(proc.log_path or ""))


def _managed(info: ProcessInfo) -> ManagedProcess:
    return ManagedProcess(name=info.name, pid=info.pid, argv=info.argv,
                          log_path=Path(info.log) if info.log else None)


def rotate_transit_key(state: SandboxState, *, wait: float = 60.0) -> str:
    """Rotate the sandbox's OpenBao transit key and return the new key_id.

    Rotates through the sandbox's backends file (the same backend definition
    ``secretkit kms rotate`` uses), then waits up to ``wait`` seconds until the plugin's
    Status reports the new key_id: the plugin caches its probe, so callers that go
    on at once could still see the old one.
    """
    from secretkit.backends import load_backends_file
    from secretkit.kmsapi import GrpcKMSService
    from secretkit.rotation.kms import wait_for_plugin_key_id

    backend = load_backends_file(Path(state.backends_file))[configs.KMS_PROVIDER_NAME]
    try:
        new_key_id = backend.rotate()
    finally:
        backend.close()
    plugin = GrpcKMSService(configs.plugin_endpoint(state.plugin_socket))
    try:
        wait_for_plugin_key_id(plugin, new_key_id, timeout=wait, interval=0.2)
    finally:
        plugin.close()
    return new_key_id


def _socket_path(directory: Path) -> tuple[Path, bool]:
    sock = directory / "kms-plugin.sock"
    if len(str(sock)) <= _MAX_SOCKET_PATH:
        return sock, False
    short = Path(tempfile.mkdtemp(prefix="skit-"))
    return short / "kms.sock", True


def _plugin_ready(endpoint: str) -> Callable[[], bool]:
    def probe() -> bool:
        from secretkit.kmsapi import GrpcKMSService

        with GrpcKMSService(endpoint, timeout=2.0) as service:
            return service.status().healthy

    return probe


def plugin_argv(state: SandboxState, ttl: float) -> list[str]:
    """The command line of the sandbox's KMS plugin (OpenBao transit, ``--status-ttl ttl``)."""
    return [
        sys.executable, "-m", "kms_plugin",
        "--listen", configs.plugin_endpoint(state.plugin_socket),
        "--backend", "vault", "--vault-addr", state.openbao_address,
        "--vault-mount", state.transit_mount, "--vault-key", state.transit_key,
        "--vault-token-file", state.openbao_token_file,
        "--status-ttl", str(ttl), "--log-format", "text",
    ]


def start_plugin(state: SandboxState, ttl: float, timeout: float) -> ManagedProcess:
    """Start ``python -m kms_plugin`` on the sandbox socket, backed by OpenBao transit."""
    directory = Path(state.dir)
    sock = Path(state.plugin_socket)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    proc = spawn("kms-plugin", plugin_argv(state, ttl), log_path=directory / "kms-plugin.log",
                 env=child_env())
    wait_ready(proc, _plugin_ready(configs.plugin_endpoint(sock)), timeout=timeout,
               where=str(sock), what="kms plugin")
    return proc


def apiserver_argv(state: SandboxState) -> list[str]:
    """The command line of the API stand-in for this sandbox."""
    opts = state.apiserver_options
    argv = [
        sys.executable, "-m", "secretkit.cli.main", "sandbox", "apiserver",
        "--etcd-servers", state.etcd_endpoint,
        "--encryption-provider-config", state.encryption_config,
        "--bind", f"{LOCALHOST}:{state.api_port}",
        "--token-file", state.token_file,
        "--tls-cert-file", str(Path(state.dir) / "pki" / "server.crt"),
        "--tls-private-key-file", str(Path(state.dir) / "pki" / "server.key"),
        "--kms-poll-interval", str(opts.get("kms_poll_healthy", 60.0)),
        "--kms-unhealthy-poll-interval", str(opts.get("kms_poll_unhealthy", 10.0)),
        "--kms-unhealthy-grace", str(opts.get("kms_unhealthy_grace", 180.0)),
    ]
    if opts.get("reload_interval"):
        argv += ["--encryption-provider-config-automatic-reload",
                 "--reload-interval", str(opts["reload_interval"])]
    return argv


def start_apiserver(state: SandboxState, timeout: float) -> ManagedProcess:
    """Start the API stand-in and wait until ``/healthz`` answers."""
    proc = spawn("apiserver", apiserver_argv(state), log_path=Path(state.dir) / "apiserver.log",
                 env=child_env())

    def probe() -> bool:
        return loopback_get(f"{state.api_url}/healthz", ca_file=state.ca_file)[0] == 200

    wait_ready(proc, probe, timeout=timeout, where=state.api_url, what="API stand-in")
    return proc


#: how often ``up`` tries another port when the one it picked was taken in between
_PORT_ATTEMPTS = 3


def _start_apiserver_on_a_free_port(state: SandboxState, options: SandboxOptions, token: str,
                                    ca_cert: Path) -> ManagedProcess:
    """Start the stand-in; when the free port picked earlier was taken in the meantime
    (another test, another sandbox), pick another and rewrite the kubeconfig."""
    for attempt in range(_PORT_ATTEMPTS):
        try:
            return start_apiserver(state, options.start_timeout)
        except ServerStartError:
            log_text = (Path(state.dir) / "apiserver.log").read_text(errors="replace")
            if (options.api_port or attempt == _PORT_ATTEMPTS - 1
                    or f"cannot listen on {LOCALHOST}:{state.api_port}" not in log_text):
                raise
            state.api_port = free_port()
            state.api_url = f"https://{LOCALHOST}:{state.api_port}"
            write_private(Path(state.kubeconfig), configs.kubeconfig(state.api_url, token,
                                                                     ca_cert))
            state.save()
    raise AssertionError("unreachable")


def sandbox_encryption_config(options: SandboxOptions, socket_path: Path) -> bytes:
    """The EncryptionConfiguration ``up`` writes: ``options``' own or its mode's.

    Either way the kms endpoint names the plugin socket at ``socket_path``.
    """
    kms_endpoint = configs.plugin_endpoint(socket_path)
    if options.encryption_config is not None:
        return options.encryption_config.replace(b"{kms_endpoint}", kms_endpoint.encode())
    return configs.encryption_config(options.encryption, kms_endpoint=kms_endpoint)


def up(directory: Path, options: SandboxOptions | None = None) -> SandboxState:
    """Start a sandbox in ``directory`` and return its saved state.

    On any failure everything started so far is stopped again.
    """
    options = options or SandboxOptions()
    if options.encryption not in configs.ENCRYPTION_MODES:
        raise UsageError(f"unknown encryption mode {options.encryption!r}",
                         hint="choose one of: " + ", ".join(configs.ENCRYPTION_MODES))
    directory = directory.resolve()
    if (directory / "sandbox.json").exists():
        raise UsageError("a sandbox already runs here (or was not cleaned up)",
                         where=str(directory),
                         hint="run `secretkit sandbox down --dir DIR` first")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    started: list[ManagedProcess] = []
    socket_path, temp_socket = _socket_path(directory)
    try:
        etcd, etcd_endpoint = start_etcd(directory / "etcd", log_path=directory / "etcd.log",
                                         unsafe_no_fsync=True, timeout=options.start_timeout)
        started.append(etcd)
        bao, bao_address, bao_token = start_openbao_dev(
            directory / "openbao", log_path=directory / "openbao.log",
            timeout=options.start_timeout)
        started.append(bao)
        bao_token_file = directory / "openbao-token"
        write_private(bao_token_file, bao_token.encode() + b"\n")
        enable_transit(bao_address, bao_token, TRANSIT_MOUNT)
        create_transit_key(bao_address, bao_token, TRANSIT_KEY, mount=TRANSIT_MOUNT)

        api_port = options.api_port or free_port()
        token = secrets.token_urlsafe(32)
        token_file = directory / "apiserver-token"
        write_private(token_file, token.encode() + b"\n")
        api_url = f"https://{LOCALHOST}:{api_port}"
        pki = generate_test_pki(directory / "pki")
        state = SandboxState(
            dir=str(directory),
            encryption=options.encryption,
            etcd_endpoint=etcd_endpoint,
            api_url=api_url,
            api_port=api_port,
            kubeconfig=str(directory / "kubeconfig"),
            token_file=str(token_file),
            encryption_config=str(directory / "encryption-config.yaml"),
            backends_file=str(directory / "backends.yaml"),
            plugin_socket=str(socket_path),
            openbao_address=bao_address,
            openbao_token_file=str(bao_token_file),
            transit_mount=TRANSIT_MOUNT,
            transit_key=TRANSIT_KEY,
            ca_file=str(pki.ca_cert),
            socket_dir_is_temp=temp_socket,
            apiserver_options={
                "kms_poll_healthy": options.kms_poll_healthy,
                "kms_poll_unhealthy": options.kms_poll_unhealthy,
                "kms_unhealthy_grace": options.kms_unhealthy_grace,
                "reload_interval": options.reload_interval,
                "plugin_status_ttl": options.plugin_status_ttl,
            },
        )
        write_private(Path(state.kubeconfig), configs.kubeconfig(api_url, token, pki.ca_cert))
        write_private(Path(state.backends_file), configs.backends_file(
            vault_address=bao_address, token_file=bao_token_file, mount=TRANSIT_MOUNT,
            key=TRANSIT_KEY))
        write_private(Path(state.encryption_config),
                      sandbox_encryption_config(options, socket_path))
        state.processes = {p.name: _info(p) for p in started}
        state.save()

        plugin = start_plugin(state, options.plugin_status_ttl, options.start_timeout)
        started.append(plugin)
        state.processes[plugin.name] = _info(plugin)
        state.save()
        api = _start_apiserver_on_a_free_port(state, options, token, pki.ca_cert)
        started.append(api)
        state.processes[api.name] = _info(api)
        state.save()
    except BaseException:
        for proc in reversed(started):
            proc.stop()
        with contextlib.suppress(OSError):
            (directory / "sandbox.json").unlink()
        if temp_socket:
            shutil.rmtree(socket_path.parent, ignore_errors=True)
        raise
    return state


def restart_apiserver(state: SandboxState, new_config: Path | None = None,
                      timeout: float = 60.0) -> SandboxState:
    """Stop the API stand-in, optionally install ``new_config``, start it again.

    The new config's content is copied over the sandbox's config file (0600), so
    every tool pointed at that path sees the config the stand-in runs with. It is
    validated first: a broken config is refused before anything is stopped.
    """
    from secretkit.core.encryption_config import load_encryption_config

    data = None
    if new_config is not None:
        data = new_config.read_bytes()
        load_encryption_config(data, source=str(new_config))
    info = state.processes.get("apiserver")
    if info is not None:
        _managed(info).stop()
    if data is not None:
        write_private(Path(state.encryption_config), data)
    proc = start_apiserver(state, timeout)
    state.processes["apiserver"] = _info(proc)
    state.save()
    return state


def restart_plugin(state: SandboxState, timeout: float = 60.0) -> SandboxState:
    """Restart the KMS plugin (e.g. after changing its backend)."""
    info = state.processes.get("kms-plugin")
    if info is not None:
        _managed(info).stop()
    proc = start_plugin(state, float(state.apiserver_options.get("plugin_status_ttl", 30.0)),
                        timeout)
    state.processes["kms-plugin"] = _info(proc)
    state.save()
    return state


def down(state: SandboxState, *, purge: bool = False) -> list[str]:
    """Stop every sandbox process by PID (API first, etcd last); returns their names.

    Every process is tried even when one cannot be stopped; then a
    :class:`SecretkitError` names each that is left, and the state stays for a retry.

    With ``purge`` the sandbox directory is removed; otherwise only the state file
    goes, so logs and data stay for inspection.
    """
    order = ["apiserver", "kms-plugin", "openbao", "etcd"]
    names = sorted(state.processes, key=lambda n: order.index(n) if n in order else -1)
    failed: list[str] = []
    for name in names:
        # one process that cannot be stopped must not leave the others running
        try:
            process = _managed(state.processes[name])
            process.stop()
            if process.is_running():
                failed.append(f"{name} (pid {process.pid}): still running after SIGKILL")
        except OSError as exc:
            failed.append(f"{name} (pid {state.processes[name].pid}): {exc.strerror or exc}")
    if failed:
        # keep the state file (and the directory): `down` can be run again
        raise SecretkitError(
            f"could not stop {len(failed)} sandbox process(es): " + "; ".join(failed),
            where=str(state.path),
            hint="stop them by hand (kill PID), then run `secretkit sandbox down` again",
        )
    if state.socket_dir_is_temp:
        shutil.rmtree(Path(state.plugin_socket).parent, ignore_errors=True)
    if purge:
        shutil.rmtree(state.dir, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            state.path.unlink()
    return names


def status(state: SandboxState) -> dict[str, Any]:
    """Health of every part (secret-free): process alive and its own health check."""
    parts: dict[str, Any] = {}
    for name, info in state.processes.items():
        parts[name] = {"pid": info.pid, "running": _managed(info).is_running(), "log": info.log}

    def check(name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        entry = parts.setdefault(name, {"running": False})
        try:
            ok, detail = fn()
        except (OSError, SecretkitError) as exc:
            ok, detail = False, type(exc).__name__
        entry["healthy"] = ok and bool(entry.get("running"))
        entry["detail"] = detail

    def etcd() -> tuple[bool, str]:
        code, body = loopback_get(f"{state.etcd_endpoint}/health")
        return code == 200 and b'"true"' in body, state.etcd_endpoint

    def openbao() -> tuple[bool, str]:
        code, _ = loopback_get(f"{state.openbao_address}/v1/sys/health")
        return code == 200, state.openbao_address

    def plugin() -> tuple[bool, str]:
        from secretkit.kmsapi import GrpcKMSService

        with GrpcKMSService(configs.plugin_endpoint(state.plugin_socket), timeout=2.0) as service:
            st = service.status()
        parts.setdefault("kms-plugin", {})["key_id"] = st.key_id
        return st.healthy, f"key_id={st.key_id}"

    def api() -> tuple[bool, str]:
        token = Path(state.token_file).read_text().strip()
        code, _ = loopback_get(f"{state.api_url}/readyz", token=token, ca_file=state.ca_file)
        _, metrics = loopback_get(f"{state.api_url}/metrics", token=token, ca_file=state.ca_file)
        config_hash = ""
        for line in metrics.decode(errors="replace").splitlines():
            if line.startswith("apiserver_encryption_config_controller_last_config_info"):
                config_hash = line.split(',hash="', 1)[-1].split('"', 1)[0]
        parts.setdefault("apiserver", {}).update(url=state.api_url, config_hash=config_hash)
        return code == 200, f"{state.api_url} config {config_hash}"

    check("etcd", etcd)
    check("openbao", openbao)
    check("kms-plugin", plugin)
    check("apiserver", api)
    return {
        "dir": state.dir,
        "encryption": state.encryption,
        "healthy": all(p.get("healthy") for p in parts.values()),
        "parts": parts,
        "kubeconfig": state.kubeconfig,
        "encryption_config": state.encryption_config,
    }
