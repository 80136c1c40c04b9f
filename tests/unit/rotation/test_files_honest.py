"""Config files and the state file stay honest: crashes, symlinks, comments, backups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretkit.errors import SafetyError, UsageError
from secretkit.rotation import files as rotation_files
from secretkit.rotation.engine import StageEngine, StageOptions, StageWorld
from secretkit.rotation.files import redacted_diff
from secretkit.rotation.plans import EnableEncryption, LocalKeyRotation
from secretkit.rotation.state import load_state

SECRET_1 = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
COMMENTED = f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
# managed by the platform team; ticket OPS-123
resources:
  - resources: [secrets]   # only Secrets
    providers:
      - aesgcm:
          keys:
            # the first key, created at cluster install
            - name: key1
              secret: "{SECRET_1}"
      - identity: {{}}
"""


def _engine(tmp_path: Path, plan: Any, *, configs: list[Path] | None = None) -> StageEngine:
    configs = configs or [tmp_path / "enc.yaml"]
    options = StageOptions(configs=configs, state_path=tmp_path / "state.json",
                           assume_restarted=True)
    return StageEngine(plan, options, StageWorld(echo=lambda _m: None))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_a_one_key_change_is_a_one_key_diff(tmp_path: Path) -> None:
    config = _write(tmp_path / "enc.yaml", COMMENTED)
    report = _engine(tmp_path, LocalKeyRotation()).prepare(["secrets"], "key2")
    after = config.read_text()
    # comments, flow lists, quoting and indentation all survive
    for kept in ("# managed by the platform team", "[secrets]   # only Secrets",
                 "# the first key, created at cluster install", f'"{SECRET_1}"'):
        assert kept in after
    changed = [line for line in report.diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 2 and all(line.startswith("+") for line in changed), changed
    assert "name: key2" in changed[0] and "<redacted sha256:" in changed[1]
    assert SECRET_1 not in report.diff


def test_a_secret_pasted_in_a_removed_comment_is_redacted() -> None:
    old = b"resources: # old key was QUJDREVGR0hJSktMTU5PUFFSU1RVVldY\n- x\n"
    new = b"resources:\n- x\n"
    diff = redacted_diff(old, new, "enc.yaml")
    assert "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY" not in diff
    assert "# old key was <redacted>" in diff


def test_a_symlinked_config_is_edited_through_its_target(tmp_path: Path) -> None:
    target = _write(tmp_path / "enc-v3.yaml", COMMENTED)
    link = tmp_path / "enc.yaml"
    link.symlink_to(target.name)
    _engine(tmp_path, LocalKeyRotation(), configs=[link]).prepare(["secrets"], "key2")
    assert link.is_symlink() and os.readlink(link) == "enc-v3.yaml"
    assert "name: key2" in target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_state_is_written_before_any_config_and_a_failed_state_write_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _write(tmp_path / "enc.yaml", COMMENTED)
    real = rotation_files.write_private

    def no_state(path: Path, data: bytes, *, mode: int = 0o600) -> None:
        if path.name == "state.json":
            raise UsageError("cannot create a file (disk full)", where=str(path))
        real(path, data, mode=mode)

    monkeypatch.setattr(rotation_files, "write_private", no_state)
    with pytest.raises(UsageError, match="disk full"):
        _engine(tmp_path, LocalKeyRotation()).prepare(["secrets"], "key2")
    assert config.read_text() == COMMENTED  # the config was not touched
    assert load_state(tmp_path / "state.json") is None


def _crash_on(monkeypatch: pytest.MonkeyPatch, name: str, after: int) -> None:
    """Make the write of a file called ``name`` fail after ``after`` successful ones."""
    real = rotation_files.write_private
    count = [0]

    def crash(path: Path, data: bytes, *, mode: int = 0o600) -> None:
        if path.name == name:
            if count[0] >= after:
                raise OSError("power cut")
            count[0] += 1
        real(path, data, mode=mode)

    monkeypatch.setattr(rotation_files, "write_private", crash)


def test_a_crash_before_any_node_is_written_is_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [_write(tmp_path / f"node{i}.yaml", COMMENTED) for i in (1, 2)]
    _crash_on(monkeypatch, "node1.yaml", 0)
    with pytest.raises(OSError):
        _engine(tmp_path, LocalKeyRotation(), configs=nodes).prepare(["secrets"], "key2")
    state = load_state(tmp_path / "state.json")
    assert state is not None and state.pending is not None and state.pending.stage == "prepare"
    assert all(n.read_text() == COMMENTED for n in nodes)
    monkeypatch.undo()
    # nothing had changed: the intent is dropped and prepare simply runs again
    _engine(tmp_path, LocalKeyRotation(), configs=nodes).prepare(["secrets"], "key2")
    settled = load_state(tmp_path / "state.json")
    assert settled is not None and settled.pending is None and settled.last_stage == "prepare"
    assert all("name: key2" in n.read_text() for n in nodes)


def test_a_crash_after_every_node_was_written_counts_the_stage_as_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [_write(tmp_path / f"node{i}.yaml", COMMENTED) for i in (1, 2)]
    # the state file is written twice per stage: the intent, then the record
    _crash_on(monkeypatch, "state.json", 1)
    with pytest.raises(OSError):
        _engine(tmp_path, LocalKeyRotation(), configs=nodes).prepare(["secrets"], "key2")
    monkeypatch.undo()
    state = load_state(tmp_path / "state.json")
    assert state is not None and state.pending is not None and not state.completed
    assert all("name: key2" in n.read_text() for n in nodes)
    # re-running prepare would add a second new key: it is refused, the stage is settled
    with pytest.raises(SafetyError, match="in progress"):
        _engine(tmp_path, LocalKeyRotation(), configs=nodes).prepare(["secrets"], "key3")
    settled = load_state(tmp_path / "state.json")
    assert settled is not None and settled.last_stage == "prepare" and settled.pending is None
    assert all("key3" not in n.read_text() for n in nodes)
    _engine(tmp_path, LocalKeyRotation(), configs=nodes).promote()


def test_half_written_nodes_are_refused_with_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [_write(tmp_path / f"node{i}.yaml", COMMENTED) for i in (1, 2)]
    _engine(tmp_path, LocalKeyRotation(), configs=nodes).prepare(["secrets"], "key2")
    real = rotation_files.write_private
    count = [0]

    def crash(path: Path, data: bytes, *, mode: int = 0o600) -> None:
        if path.name.startswith("node") and ".bak-" not in path.name:
            if count[0] >= 1:
                raise OSError("power cut")
            count[0] += 1
        real(path, data, mode=mode)

    monkeypatch.setattr(rotation_files, "write_private", crash)
    with pytest.raises(OSError):
        _engine(tmp_path, LocalKeyRotation(), configs=nodes).promote()
    monkeypatch.setattr(rotation_files, "write_private", real)
    # node1 has the promoted file, node2 the prepared one: status-like reads refuse
    state = load_state(tmp_path / "state.json")
    assert state is not None
    with pytest.raises(SafetyError) as refused:
        state.settle_pending({str(n): rotation_files.file_hash(n.read_bytes()) for n in nodes})
    assert "node1.yaml" in refused.value.what and "node2.yaml" in refused.value.what
    assert refused.value.hint is not None and ".bak-promote-" in refused.value.hint
    # the operator copies the written file over the other: the stage counts as done
    nodes[1].write_bytes(nodes[0].read_bytes())
    engine = _engine(tmp_path, LocalKeyRotation(), configs=nodes)
    with pytest.raises(UsageError):  # reencrypt needs the API: but the stage is settled
        engine.reencrypt()
    settled = load_state(tmp_path / "state.json")
    assert settled is not None and settled.last_stage == "promote" and settled.pending is None


def test_enable_kms_asks_the_plugin_before_writing_its_endpoint(tmp_path: Path) -> None:
    config = _write(tmp_path / "enc.yaml", COMMENTED.replace("aesgcm", "secretbox"))
    plain = _write(tmp_path / "plain.yaml", (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n"))
    del config
    cli = [sys.executable, "-m", "secretkit.cli.main", "encryption", "enable", "prepare",
           "--config", str(plain), "--provider", "kms", "--kms-name", "vault",
           "--kms-endpoint", f"unix://{tmp_path}/absent.sock", "--yes"]
    refused = subprocess.run(cli, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert refused.returncode == 3, refused.stderr
    assert "no KMS plugin answers Status" in refused.stderr
    assert "--skip-plugin-check" in refused.stderr
    assert "kms" not in yaml.safe_load(plain.read_text())["resources"][0]["providers"][-1]
    offline = subprocess.run([*cli, "--skip-plugin-check"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    assert offline.returncode == 0, offline.stderr
    assert "vault" in plain.read_text()


def test_prune_says_the_backups_hold_removed_keys_and_clean_backups_removes_them(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "enc.yaml", COMMENTED)
    engine = _engine(tmp_path, EnableEncryption(provider={"secretbox": {"keys": [
        {"name": "k", "secret": SECRET_1}]}}))
    del engine
    for stage in ("prepare", "promote"):
        done = subprocess.run(
            [sys.executable, "-m", "secretkit.cli.main", "rotate", stage, "--config",
             str(tmp_path / "enc.yaml"), "--yes", "-o", "json"]
            + (["--resources", "secrets"] if stage == "prepare" else []),
            capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
    backups = sorted(tmp_path.glob("enc.yaml.bak-*"))
    assert len(backups) == 2
    listed = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "rotate", "clean-backups", "--config",
         str(tmp_path / "enc.yaml"), "--dry-run", "-o", "json"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert json.loads(listed.stdout)["backups"] == [str(b) for b in backups]
    refused = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "rotate", "clean-backups", "--config",
         str(tmp_path / "enc.yaml")], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert refused.returncode == 2 and all(b.exists() for b in backups)
    done = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "rotate", "clean-backups", "--config",
         str(tmp_path / "enc.yaml"), "--yes"], capture_output=True, text=True,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and not any(b.exists() for b in backups)


def test_a_reencrypt_stage_proven_over_an_empty_prefix_is_refused(tmp_path: Path) -> None:
    """The API rewrote objects, but the etcd read holds nothing there (a wrong
    --etcd-prefix): the stage must not be recorded as proven."""
    import contextlib

    from secretkit.etcd import MemoryEtcd
    from secretkit.reencrypt.summary import Summary

    config = _write(tmp_path / "enc.yaml", COMMENTED)
    etcd = MemoryEtcd()
    etcd.put(b"/elsewhere/registry/secrets/ns/a", b"k8s:enc:aesgcm:v1:key1:" + b"x" * 40)

    def reencrypt(_request: Any) -> Summary:
        summary = Summary(mode="api", dry_run=False)
        summary.add("secrets", "seen")
        summary.add("secrets", "rewritten")
        summary.complete = True
        return summary

    world = StageWorld(echo=lambda _m: None, open_etcd=lambda: contextlib.nullcontext(etcd),
                       reencrypt=reencrypt)
    options = StageOptions(configs=[config], state_path=tmp_path / "state.json",
                           assume_restarted=True)
    plan = LocalKeyRotation()
    StageEngine(plan, options, world).prepare(["secrets"], "key2")
    StageEngine(plan, options, world).promote()
    with pytest.raises(SafetyError, match="nothing to prove it from"):
        StageEngine(plan, options, world).reencrypt()
    state = load_state(tmp_path / "state.json")
    assert state is not None and state.next_stage == "reencrypt"


def test_backups_of_a_prune_that_skipped_history_are_not_cleaned(tmp_path: Path) -> None:
    """A prune with --ignore-history leaves the only copy of keys older revisions may
    still need: clean-backups refuses them (exit 3) and deletes nothing."""
    config = _write(tmp_path / "enc.yaml", COMMENTED)
    options = StageOptions(configs=[config], state_path=tmp_path / "state.json",
                           ignore_history=True)
    engine = StageEngine(LocalKeyRotation(), options, StageWorld(echo=lambda _m: None))
    assert engine._backup_label("prune") == "prune-unproven"
    assert engine._backup_label("promote") == "promote"
    unproven = _write(tmp_path / "enc.yaml.bak-prune-unproven-1", COMMENTED)
    ordinary = _write(tmp_path / "enc.yaml.bak-promote-1", COMMENTED)
    run = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "rotate", "clean-backups", "--config",
         str(config), "--yes"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert run.returncode == 3, run.stderr
    assert "--ignore-history" in run.stderr
    assert unproven.exists() and ordinary.exists()
    # the rule lives in the library: any caller asking what it may delete is refused
    from secretkit.errors import SafetyError
    from secretkit.rotation.engine import deletable_backups

    with pytest.raises(SafetyError):
        deletable_backups([config])
    unproven.unlink()
    assert deletable_backups([config]) == [str(ordinary)]
