"""Run ``python -m kms_plugin`` as a real subprocess and talk to it like the apiserver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from secretkit._proto.kms.v1beta1 import api_pb2 as v1beta1_pb2
from secretkit._proto.kms.v1beta1 import api_pb2_grpc as v1beta1_grpc
from secretkit._proto.kms.v2 import api_pb2 as v2_pb2
from secretkit._proto.kms.v2 import api_pb2_grpc as v2_grpc
from secretkit.kmsapi.endpoint import grpc_target, parse_endpoint

REPO = Path(__file__).resolve().parents[3]


class PluginExited(AssertionError):
    """The plugin process ended before it was serving."""


def write_kek(path: Path, data: bytes | None = None) -> Path:
    """Write a 32-byte KEK file with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data if data is not None else os.urandom(32))
    return path


@dataclass
class Plugin:
    """A running plugin subprocess."""

    proc: subprocess.Popen[bytes]
    socket: Path | None
    endpoint: str
    log_path: Path
    health_port: int | None = None
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The plugin's PID."""
        return self.proc.pid

    def channel(self) -> grpc.Channel:
        """A cached gRPC channel to the plugin's socket (what the apiserver holds)."""
        if self._channel is None:
            self._channel = grpc.insecure_channel(grpc_target(self.endpoint))
        return self._channel

    def v2(self) -> v2_grpc.KeyManagementServiceStub:
        """A v2 stub."""
        return v2_grpc.KeyManagementServiceStub(self.channel())

    def v1beta1(self) -> v1beta1_grpc.KeyManagementServiceStub:
        """A v1beta1 stub."""
        return v1beta1_grpc.KeyManagementServiceStub(self.channel())

    def status(self, timeout: float = 10.0) -> v2_pb2.StatusResponse:
        """Call Status."""
        return self.v2().Status(v2_pb2.StatusRequest(), timeout=timeout)

    def encrypt(self, plaintext: bytes, uid: str = "uid") -> v2_pb2.EncryptResponse:
        """Call Encrypt."""
        return self.v2().Encrypt(v2_pb2.EncryptRequest(plaintext=plaintext, uid=uid), timeout=10)

    def decrypt(
        self, enc: v2_pb2.EncryptResponse, uid: str = "uid", *, timeout: float = 10
    ) -> bytes:
        """Call Decrypt exactly as the apiserver does: ciphertext, key_id, annotations."""
        req = v2_pb2.DecryptRequest(
            ciphertext=enc.ciphertext, key_id=enc.key_id,
            annotations=dict(enc.annotations), uid=uid,
        )
        return bytes(self.v2().Decrypt(req, timeout=timeout).plaintext)

    def v1_encrypt(self, plain: bytes) -> bytes:
        """v1beta1 Encrypt."""
        req = v1beta1_pb2.EncryptRequest(version="v1beta1", plain=plain)
        return bytes(self.v1beta1().Encrypt(req, timeout=10).cipher)

    def v1_decrypt(self, cipher: bytes) -> bytes:
        """v1beta1 Decrypt."""
        req = v1beta1_pb2.DecryptRequest(version="v1beta1", cipher=cipher)
        return bytes(self.v1beta1().Decrypt(req, timeout=10).plain)

    def http(self, path: str) -> tuple[int, str]:
        """GET ``path`` on the health server: (status code, body)."""
        assert self.health_port is not None
        url = f"http://127.0.0.1:{self.health_port}{path}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def log_text(self) -> str:
        """Everything the plugin wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def log_entries(self) -> list[dict[str, object]]:
        """The JSON log lines."""
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send a signal to the plugin."""
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code (kills after ``timeout``)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("plugin did not stop within the timeout") from None
        return self.proc.returncode


def plugin_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a plugin subprocess: no proxies, no inherited plugin settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SECRETKIT_PLUGIN_") and "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(REPO)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


def start_plugin(
    workdir: Path,
    args: Sequence[str],
    *,
    listen: str | None = None,
    health: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    log_name: str = "plugin.log",
) -> Plugin:
    """Start the plugin and wait until its socket serves (or raise with its log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    socket_path: Path | None = None
    if listen is None:
        socket_path = workdir / "run" / "kms.sock"
        listen = f"unix://{socket_path}"
    else:
        # the plugin's own parser: None for an abstract socket
        socket_path = parse_endpoint(listen).path
    argv = [sys.executable, "-m", "kms_plugin", "--listen", listen, "--log-level", "debug"]
    if health:
        argv += ["--health-addr", "127.0.0.1:0"]
    argv += list(args)
    log_path = workdir / log_name
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, env=plugin_env(env),
            cwd=workdir, stdin=subprocess.DEVNULL,
        )
    plugin = Plugin(proc=proc, socket=socket_path, endpoint=listen, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in plugin.log_entries():
            if entry.get("msg") == "serving" and entry.get("pid") == proc.pid:
                port = entry.get("health_port")
                plugin.health_port = int(port) if isinstance(port, int) else None
                return plugin
        if proc.poll() is not None:
            raise PluginExited(
                f"plugin exited with {proc.returncode} before serving:\n{plugin.log_text()}"
            )
        time.sleep(0.05)
    proc.kill()
    proc.wait(5)
    raise AssertionError(f"plugin did not serve within {timeout}s:\n{plugin.log_text()}")


@contextmanager
def running_plugin(workdir: Path, args: Sequence[str], **kw: object) -> Iterator[Plugin]:
    """Start a plugin for the block and require a clean exit (code 0) afterwards."""
    plugin = start_plugin(workdir, args, **kw)  # type: ignore[arg-type]
    try:
        yield plugin
    finally:
        code = plugin.stop()
    assert code == 0, plugin.log_text()


def run_plugin_cli(args: Sequence[str], *, timeout: float = 30.0,
                   cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the plugin command to completion (``--help``, ``--check-config``, bad configs)."""
    return subprocess.run(
        [sys.executable, "-m", "kms_plugin", *args], capture_output=True, text=True,
        timeout=timeout, env=plugin_env(), cwd=cwd, check=False,
    )


def wait_for(predicate: object, timeout: float, interval: float = 0.1) -> None:
    """Poll ``predicate()`` until true or fail."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
