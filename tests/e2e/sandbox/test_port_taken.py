"""A port taken by someone else: the stand-in says so plainly, and ``sandbox up`` picks
another one instead of failing (free ports can be taken between pick and bind)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretkit.sandbox import orchestrate
from secretkit.sandbox.servers import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield int(holder.getsockname()[1])
    finally:
        holder.close()


def test_the_stand_in_names_a_taken_port(tmp_path: Path, taken_port: int) -> None:
    (tmp_path / "token").write_text("t\n")
    config = tmp_path / "enc.yaml"
    config.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                      "resources:\n  - resources: [secrets]\n    providers:\n"
                      "      - identity: {}\n")
    run = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "sandbox", "apiserver",
         "--etcd-servers", "http://127.0.0.1:1", "--encryption-provider-config", str(config),
         "--bind", f"127.0.0.1:{taken_port}", "--token-file", str(tmp_path / "token")],
        capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2, run.stderr
    assert f"cannot listen on 127.0.0.1:{taken_port}" in run.stderr
    assert "internal error" not in run.stderr


def test_up_moves_to_another_port_when_its_pick_was_taken(
        tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    picks = iter([taken_port])
    monkeypatch.setattr(orchestrate, "free_port", lambda: next(picks, None) or free_port())
    state = orchestrate.up(tmp_path / "sb")
    try:
        assert state.api_port != taken_port
        assert f"127.0.0.1:{state.api_port}" in (tmp_path / "sb" / "kubeconfig").read_text()
        status = orchestrate.status(state)
        assert status["parts"]["apiserver"]["healthy"], status
    finally:
        orchestrate.down(state, purge=True)
