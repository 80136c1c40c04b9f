"""Resume bookkeeping of a run: foreign checkpoints are refused, counters carry over."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from secretkit.errors import UsageError
from secretkit.etcd.memory import MemoryEtcd
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.checkpoint import Checkpoint, CheckpointFile, ResourceProgress
from secretkit.reencrypt.etcd_engine import EtcdRunOptions, EtcdScope
from secretkit.reencrypt.runner import RunControl, run_etcd, scopes_for
from secretkit.reencrypt.summary import Summary


def untouched_store() -> MemoryEtcd:
    """A store with a stale value in the scope: rewriting it would show."""
    store = MemoryEtcd()
    store.put(b"/registry/secrets/ns/x", b"k8s:enc:aescbc:v1:old:" + b"\x00" * 32)
    return store


def assert_untouched(store: MemoryEtcd) -> None:
    assert store.current_revision() == 2  # etcd starts at 1; one write


class Chain:
    refreshed = 0

    def refresh_kms(self) -> None:
        self.refreshed += 1

    def for_etcd_key(self, etcd_key: str, prefix: str = "/registry") -> object:
        raise AssertionError("nothing to transform")


SCOPES = [EtcdScope("secrets", "/registry/secrets/")]


def control(path: Path) -> RunControl:
    return RunControl(resume=path, progress_stream=io.StringIO(), show_progress=False)


def test_a_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ck.json"
    CheckpointFile(path).save(Checkpoint(fingerprint="sha256:other", mode="etcd"))
    store = untouched_store()
    with pytest.raises(UsageError) as info:
        run_etcd(store, Chain(), SCOPES, options=EtcdRunOptions(), control=control(path))
    assert "other parameters" in info.value.what
    assert_untouched(store)


def test_finished_scopes_are_skipped_and_their_counters_kept(tmp_path: Path) -> None:
    path = tmp_path / "ck.json"
    # a first run writes the fingerprint; mark its only scope done with counters
    first = run_etcd_with_done(tmp_path, path)
    assert first.complete
    assert first.totals()["rewritten"] == 7
    assert first.totals()["failed"] == 1
    assert [e.name for e in first.errors] == ["x"]


def run_etcd_with_done(tmp_path: Path, path: Path) -> Summary:
    from secretkit.reencrypt.checkpoint import run_fingerprint

    fp = run_fingerprint(
        "etcd", ["secrets=/registry/secrets/"], {"config": None, "dry_run": False}
    )
    ck = Checkpoint(fingerprint=fp, mode="etcd")
    ck.resources["secrets"] = ResourceProgress(
        state="done", counters={"seen": 8, "rewritten": 7, "failed": 1}
    )
    ck.errors = [{"resource": "secrets", "namespace": "ns", "name": "x", "status": None,
                  "reason": "DecryptError"}]
    CheckpointFile(path).save(ck)
    store = untouched_store()
    # the chain refuses any value: a finished scope is not even read
    summary = run_etcd(store, Chain(), SCOPES, options=EtcdRunOptions(), control=control(path))
    assert_untouched(store)
    return summary


def test_scopes_of_group_resources_cover_both_layouts() -> None:
    res = ApiResource("example.com", "widgets", "v1", "Widget", False)
    scopes = scopes_for([res], "/registry")
    assert [(s.label, s.key_prefix, s.namespaced) for s in scopes] == [
        ("widgets.example.com", "/registry/example.com/widgets/", False),
        ("widgets.example.com@/registry/widgets/", "/registry/widgets/", False),
    ]
