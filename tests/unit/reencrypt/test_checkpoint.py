"""Checkpoint file: round trip, atomic 0600 writes, refusal of foreign or corrupt files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from secretkit.errors import UsageError
from secretkit.reencrypt.checkpoint import (
    Checkpoint,
    CheckpointFile,
    ResourceProgress,
    run_fingerprint,
)


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "ck.json"
    ck = Checkpoint(fingerprint="sha256:abc", mode="api")
    ck.resources["secrets"] = ResourceProgress(
        state="running", continue_token="tok", last_key="ns/a", counters={"seen": 3}
    )
    ck.resources["configmaps"] = ResourceProgress(state="done", counters={"seen": 7})
    ck.errors = [{"resource": "secrets", "namespace": "ns", "name": "b", "status": 422,
                  "reason": "Invalid"}]
    CheckpointFile(path).save(ck)
    loaded = CheckpointFile(path).load()
    assert loaded is not None
    assert loaded.fingerprint == "sha256:abc"
    assert loaded.resources["secrets"].continue_token == "tok"
    assert loaded.resources["secrets"].last_key == "ns/a"
    assert loaded.resources["configmaps"].state == "done"
    assert loaded.resources["configmaps"].counters == {"seen": 7}
    assert loaded.errors == ck.errors


def test_written_0600_without_leftover_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "ck.json"
    for i in range(3):
        ck = Checkpoint(fingerprint=f"f{i}", mode="api")
        CheckpointFile(path).save(ck)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["ck.json"]
    assert json.loads(path.read_text())["fingerprint"] == "f2"


def test_missing_file_loads_as_none(tmp_path: Path) -> None:
    assert CheckpointFile(tmp_path / "nope.json").load() is None


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"kind": "other"}', b'{"kind": "secretkit-reencrypt-checkpoint", '
     b'"version": 99}', b'{"kind": "secretkit-reencrypt-checkpoint", "version": 2}',
     b'{"kind": "secretkit-reencrypt-checkpoint", "version": 2, "fingerprint": "x", '
     b'"mode": "api", "resources": {"secrets": {"state": "weird"}}}',
     # written before --only-stale counted fresh objects as it passes them
     b'{"kind": "secretkit-reencrypt-checkpoint", "version": 1, "fingerprint": "x", '
     b'"mode": "api", "resources": {}}'],
)
def test_foreign_or_corrupt_files_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ck.json"
    path.write_bytes(content)
    with pytest.raises(UsageError):
        CheckpointFile(path).load()


def test_fingerprint_depends_on_mode_and_resources_not_their_order() -> None:
    a = run_fingerprint("api", ["secrets", "configmaps"])
    assert a == run_fingerprint("api", ["configmaps", "secrets"])
    assert a != run_fingerprint("etcd", ["secrets", "configmaps"])
    assert a != run_fingerprint("api", ["secrets"])
