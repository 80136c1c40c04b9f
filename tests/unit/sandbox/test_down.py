"""``secretkit sandbox down`` stops every process even when one cannot be stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.errors import SecretkitError
from secretkit.sandbox import orchestrate
from secretkit.sandbox.state import ProcessInfo, SandboxState


class _Fake:
    def __init__(self, name: str, pid: int, stopped: list[str], fail: bool) -> None:
        self.name, self.pid, self._stopped, self._fail = name, pid, stopped, fail

    def stop(self) -> None:
        if self._fail:
            raise PermissionError(1, "Operation not permitted")
        self._stopped.append(self.name)

    def is_running(self) -> bool:
        return False


def _state(tmp_path: Path) -> SandboxState:
    names = ["etcd", "openbao", "kms-plugin", "apiserver"]
    state = SandboxState(
        dir=str(tmp_path), encryption="none", etcd_endpoint="", api_url="", api_port=0,
        kubeconfig="", token_file="", encryption_config="", backends_file="",
        plugin_socket=str(tmp_path / "kms.sock"), openbao_address="",
        openbao_token_file="", transit_mount="", transit_key="",
        processes={n: ProcessInfo(n, 1000 + i, ["x"], "") for i, n in enumerate(names)})
    state.save()
    return state


def test_one_process_that_cannot_be_stopped_does_not_keep_the_others_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(orchestrate, "_managed", lambda info: _Fake(
        info.name, info.pid, stopped, fail=info.name == "kms-plugin"))
    state = _state(tmp_path)
    with pytest.raises(SecretkitError) as refused:
        orchestrate.down(state)
    assert stopped == ["apiserver", "openbao", "etcd"]  # API first, etcd last
    assert "kms-plugin (pid 1002)" in refused.value.what
    assert state.path.exists()  # kept: `down` can be run again


def test_a_clean_down_removes_the_state_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(orchestrate, "_managed", lambda info: _Fake(
        info.name, info.pid, stopped, fail=False))
    state = _state(tmp_path)
    assert orchestrate.down(state) == ["apiserver", "kms-plugin", "openbao", "etcd"]
    assert not state.path.exists()
