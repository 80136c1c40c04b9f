"""Atomic 0600 writes, redacted diffs, and the stage order of the state file."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from secretkit.errors import SafetyError
from secretkit.rotation.files import atomic_write, backup, redacted_diff
from secretkit.rotation.state import RotationState, load_state, save_state
from secretkit.rotation.verify import parse_config_info_hashes


def test_atomic_write_is_0600_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "enc.yaml"
    target.write_text("old")
    target.chmod(0o644)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["enc.yaml"]  # no temp left behind


def test_backup_keeps_old_content_private(tmp_path: Path) -> None:
    target = tmp_path / "enc.yaml"
    target.write_text("content")
    copy = backup(target, "prepare")
    assert copy.read_text() == "content"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600


def test_redacted_diff_never_shows_secrets() -> None:
    secret = base64.b64encode(b"\x01" * 32).decode()
    new_secret = base64.b64encode(b"\x02" * 32).decode()
    old = f"keys:\n- name: k1\n  secret: {secret}\n".encode()
    new = f"keys:\n- name: k1\n  secret: {secret}\n- name: k2\n  secret: {new_secret}\n".encode()
    diff = redacted_diff(old, new, "enc.yaml")
    assert "+- name: k2" in diff
    assert secret not in diff and new_secret not in diff
    assert "<redacted sha256:" in diff


@pytest.mark.parametrize("tag", ["int", "bool", "float", "timestamp"])
def test_redacted_diff_masks_a_value_that_does_not_fit_its_tag(tag: str) -> None:
    # PyYAML raised ValueError/KeyError here (a traceback quoting the value); in a flow
    # mapping the line regex cannot see the value, so the parse must still find it
    secret = base64.b64encode(b"\x03" * 32).decode().rstrip("=")
    old = f"keys:\n- {{name: k1, secret: !!{tag} {secret}}}\n".encode()
    diff = redacted_diff(old, b"keys: []\n", "enc.yaml")
    assert "-keys:" in diff
    assert secret not in diff
    assert "<redacted sha256:" in diff
    # a document too deep to parse at all still gives a diff
    assert "+[[[" in redacted_diff(b"a: 1\n", b"[" * 5000, "enc.yaml")


def test_stage_order_is_enforced(tmp_path: Path) -> None:
    state = RotationState(kind="local-key", resources=["secrets"], provider_type="aesgcm")
    state.require_next("prepare")
    with pytest.raises(SafetyError, match="next one is `prepare`"):
        state.require_next("prune")
    state.record("prepare", {"a": "sha256:1"})
    state.record("promote", {"a": "sha256:2"})
    path = tmp_path / "state.json"
    save_state(path, state)
    loaded = load_state(path)
    assert loaded is not None
    assert loaded.next_stage == "reencrypt"
    with pytest.raises(SafetyError, match="last completed stage is `promote`"):
        loaded.require_next("prune")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_parse_config_info_metric() -> None:
    text = (
        "# HELP apiserver_encryption_config_controller_last_config_info x\n"
        'apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:aa",'
        'hash="sha256:bb"} 1\n'
        "other_metric 2\n"
    )
    assert parse_config_info_hashes(text) == {"sha256:bb"}


def test_reencrypt_may_be_repeated_before_prune() -> None:
    state = RotationState(kind="local-key", resources=["secrets"], provider_type="aesgcm")
    for stage in ("prepare", "promote", "reencrypt"):
        state.require_next(stage)
        state.record(stage, {})
    state.require_next("reencrypt")  # again: allowed
    state.require_next("prune")
    with pytest.raises(SafetyError):
        state.require_next("promote")


def test_undecryptable_values_keep_exit_4_with_a_data_loss_hint() -> None:
    from secretkit.errors import UndecryptableError
    from secretkit.reencrypt.request import ReencryptRequest, outcome_error
    from secretkit.reencrypt.summary import Summary

    summary = Summary(mode="api", dry_run=False)
    summary.verify = {"undecryptable": 2, "undecryptable_keys": ["/registry/secrets/a/b"],
                      "verdict": "undecryptable", "stale": 0}
    err = outcome_error(summary, ReencryptRequest(config_source="enc.yaml"))
    assert isinstance(err, UndecryptableError) and err.exit_code == 4
    assert not isinstance(err, SafetyError)
    assert err.hint is not None and "backup" in err.hint
    assert "run again" not in err.hint
    assert err.where is not None and "/registry/secrets/a/b" in err.where
    assert outcome_error(Summary(mode="api", dry_run=False), ReencryptRequest()) is None
