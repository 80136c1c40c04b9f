"""A sandbox process that never becomes ready is stopped, not left behind.

``up`` stops what it started when a later step fails, but it only learns of a process
once its start function returns; a plugin that failed its readiness check used to keep
running in its own session with no state file naming it. This starts the real plugin
(``python -m kms_plugin``) against an OpenBao address where nothing listens, so it
serves but never reports healthy.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from secretkit.sandbox.orchestrate import start_plugin
from secretkit.sandbox.servers import ServerStartError, free_port
from secretkit.sandbox.state import SandboxState


def _processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text`` (zombies have none)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_a_plugin_that_never_gets_healthy_is_stopped(tmp_path: Path) -> None:
    token_file = tmp_path / "openbao-token"
    token_file.write_text("not-a-real-token\n")
    state = SandboxState(
        dir=str(tmp_path),
        encryption="kms",
        etcd_endpoint="http://127.0.0.1:1",
        api_url="https://127.0.0.1:1",
        api_port=1,
        kubeconfig=str(tmp_path / "kubeconfig"),
        token_file=str(tmp_path / "apiserver-token"),
        encryption_config=str(tmp_path / "encryption-config.yaml"),
        backends_file=str(tmp_path / "backends.yaml"),
        plugin_socket=str(tmp_path / "kms.sock"),
        # a free port: nothing listens, so the plugin's Status stays unhealthy
        openbao_address=f"http://127.0.0.1:{free_port()}",
        openbao_token_file=str(token_file),
        transit_mount="transit",
        transit_key="sandbox-kek",
    )
    try:
        with pytest.raises(ServerStartError, match="did not become ready"):
            start_plugin(state, ttl=1.0, timeout=4.0)
        assert _processes_mentioning(str(tmp_path)) == []
    finally:
        # if the plugin was left running, do not leave it to outlive the test
        for pid in _processes_mentioning(str(tmp_path)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
