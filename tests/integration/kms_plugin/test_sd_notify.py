"""Type=notify: READY=1 only once the socket answers, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import socket
from pathlib import Path

from secretkit._proto.kms.v2 import api_pb2, api_pb2_grpc
from tests.integration.kms_plugin.harness import start_plugin, write_kek


def _receive(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)


def test_ready_after_the_socket_serves_and_stopping_on_sigterm(tmp_path: Path) -> None:
    import grpc

    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    kek = write_kek(tmp_path / "kek.bin")
    plugin = start_plugin(
        tmp_path, ["--backend", "local", "--local-kek-file", str(kek)],
        env={"NOTIFY_SOCKET": str(notify_path)}, health=False,
    )
    try:
        ready = _receive(listener)
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(plugin.pid)
        assert ready["STATUS"].startswith("serving unix://")
        # what systemd's After= ordering relies on: the socket is there and answers
        assert plugin.socket is not None and plugin.socket.exists()
        with grpc.insecure_channel(f"unix:{plugin.socket}") as channel:
            stub = api_pb2_grpc.KeyManagementServiceStub(channel)
            assert stub.Status(api_pb2.StatusRequest(), timeout=10).version == "v2"
        plugin.signal()
        assert _receive(listener) == {"STOPPING": "1"}
        assert plugin.proc.wait(20) == 0
    finally:
        plugin.stop()
        listener.close()


def test_no_notify_socket_no_message(tmp_path: Path) -> None:
    """Outside systemd nothing is sent and nothing is logged about it."""
    kek = write_kek(tmp_path / "kek.bin")
    plugin = start_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek)],
                          health=False)
    assert plugin.stop() == 0
    assert "cannot notify systemd" not in plugin.log_text()
