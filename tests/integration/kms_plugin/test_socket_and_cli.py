"""Socket handling, start-up validation and --help of the real plugin process."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from tests.integration.kms_plugin.harness import (
    PluginExited,
    run_plugin_cli,
    running_plugin,
    start_plugin,
    write_kek,
)


def _local(tmp_path: Path) -> list[str]:
    kek = tmp_path / "kek.bin"
    if not kek.exists():
        write_kek(kek)
    return ["--backend", "local", "--local-kek-file", str(kek)]


def test_socket_is_0600_in_a_0700_directory_and_removed_on_exit(tmp_path: Path) -> None:
    sock = tmp_path / "new" / "dir" / "kms.sock"
    with running_plugin(tmp_path, _local(tmp_path), listen=f"unix://{sock}") as p:
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        assert p.status().healthz == "ok"
    assert not sock.exists()


def test_socket_mode_and_group(tmp_path: Path) -> None:
    gid = os.getgid()
    args = [*_local(tmp_path), "--socket-mode", "0660", "--socket-group", str(gid)]
    with running_plugin(tmp_path, args) as p:
        assert p.socket is not None
        st = os.stat(p.socket)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == gid


def test_refuses_a_socket_another_live_process_serves(tmp_path: Path) -> None:
    with running_plugin(tmp_path, _local(tmp_path)) as first:
        with pytest.raises(PluginExited, match="exited with 2") as info:
            start_plugin(tmp_path, _local(tmp_path), listen=first.endpoint,
                         log_name="second.log")
        assert "another process already serves this socket" in str(info.value)
        # the first plugin keeps serving on its untouched socket
        assert first.status().healthz == "ok"
        assert first.decrypt(first.encrypt(b"k" * 32)) == b"k" * 32


def test_replaces_a_stale_socket(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "kms.sock"
    sock.parent.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # bound, never listening: what a crashed plugin leaves behind
    assert sock.exists()
    with running_plugin(tmp_path, _local(tmp_path), listen=f"unix://{sock}") as p:
        assert p.status().healthz == "ok"
        assert "removing stale socket" in p.log_text()


def test_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "important.txt"
    target.write_text("keep me")
    with pytest.raises(PluginExited, match="exited with 2") as info:
        start_plugin(tmp_path, _local(tmp_path), listen=f"unix://{target}")
    assert "is not a socket" in str(info.value)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "tcp://127.0.0.1:9"], "unix sockets"),
        (["--health-addr", "0.0.0.0:8787"], "non-loopback"),
        (["--status-ttl", "-1"], "expected a number"),
        (["--socket-mode", "0644x"], "octal mode"),
        (["--backend", "local", "--local-kek-file", "/nonexistent/kek"], "kek"),
        ([], "no backend configured"),
        (["--backend", "vault", "--vault-key", "k"], "address"),
    ],
)
def test_invalid_configuration_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_plugin_cli(["--listen", f"unix://{tmp_path}/s.sock", *args]
                            if "--listen" not in args else args)
    assert result.returncode == 2, result.stderr
    assert message.lower() in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_config_file_and_env(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    config = tmp_path / "plugin.yaml"
    config.write_text(
        "listen: unix:///nonexistent-dir-overridden/kms.sock\n"
        "status_ttl: 7\n"
        "backend:\n  type: local\n  keys:\n    - kek_file: kek.bin\n"
    )
    env = {"SECRETKIT_PLUGIN_LOG_FORMAT": "text"}
    sock = tmp_path / "run" / "kms.sock"
    # env sets text logs; --listen on the command line wins over the file
    plugin = start_plugin(
        tmp_path, ["--config", str(config), "--log-format", "json"],
        listen=f"unix://{sock}", env=env,
    )
    try:
        assert plugin.status().healthz == "ok"
        assert sock.exists()
        assert kek.exists()
    finally:
        assert plugin.stop() == 0


def test_env_configures_the_backend(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    env = {"SECRETKIT_PLUGIN_BACKEND": "local", "SECRETKIT_PLUGIN_LOCAL_KEK_FILE": str(kek)}
    with running_plugin(tmp_path, [], env=env) as p:
        assert p.status().key_id.startswith("local:")


def test_check_config(tmp_path: Path) -> None:
    result = run_plugin_cli([*_local(tmp_path), "--listen", "unix:///run/x.sock",
                             "--check-config"])
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    assert "backend:      local" in result.stdout


def test_help_teaches() -> None:
    result = run_plugin_cli(["--help"])
    assert result.returncode == 0
    for text in ("--listen", "--status-ttl", "--health-addr", "--grace-period",
                 "--disable-v1beta1", "--local-kek-file", "--vault-token-file",
                 "--aws-endpoint-url", "SECRETKIT_PLUGIN_LISTEN", "Examples:"):
        assert text in result.stdout


def test_unknown_socket_group_exits_2_and_cleans_up(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "kms.sock"
    with pytest.raises(PluginExited, match="exited with 2") as info:
        start_plugin(tmp_path, [*_local(tmp_path), "--socket-group", "no-such-group-4711"],
                     listen=f"unix://{sock}")
    assert "--socket-group" in str(info.value)
    assert not sock.exists()


def test_busy_health_port_exits_2_and_cleans_up(tmp_path: Path) -> None:
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    sock = tmp_path / "run" / "kms.sock"
    try:
        with pytest.raises(PluginExited, match="exited with 2") as info:
            start_plugin(tmp_path, [*_local(tmp_path), "--health-addr", f"127.0.0.1:{port}"],
                         listen=f"unix://{sock}", health=False)
        assert "cannot serve health" in str(info.value)
        assert not sock.exists()
    finally:
        busy.close()
