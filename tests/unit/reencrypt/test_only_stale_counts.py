"""``--only-stale`` through the API counts honestly: "rewritten" means the stored value's
resourceVersion changed (an API server that skipped a no-op is ``unchanged``), the
progress total is the number of stale objects (0 -> 100 %), and a resumed run counts
no object twice. The API server is a fake over an in-memory etcd that behaves like
kube-apiserver on an empty merge patch: it rewrites a value only when its own config
finds it stale, and answers with the object's resourceVersion (its mod_revision).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.transformers import TransformerSet
from secretkit.errors import KubeError
from secretkit.etcd import MemoryEtcd
from secretkit.kube.client import RawResponse
from secretkit.reencrypt import runner
from secretkit.reencrypt.api_engine import ApiRunOptions
from secretkit.reencrypt.progress import Progress
from secretkit.reencrypt.runner import RunControl, run_api
from secretkit.reencrypt.summary import Summary
from tests.unit.reencrypt.test_etcd_engine import (
    AESCBC_KEY1,
    AESGCM_KEY2,
    NEW,
    OLD,
    SECRETS,
    chain,
    config,
)

#: an API server that has the new key as a read key only (promote not done yet)
PREPARED = config(AESCBC_KEY1, AESGCM_KEY2, "identity: {}")
FRESH = ["f-0", "f-1", "f-2"]
STALE = ["s-0", "s-1"]


def seeded() -> MemoryEtcd:
    store = MemoryEtcd()
    for names, raw in ((FRESH, NEW), (STALE, OLD)):
        writer = chain(raw)
        for name in names:
            key = f"/registry/secrets/ns/{name}"
            store.put(key.encode(), writer.for_etcd_key(key).write(b"k8s\x00" + key.encode(), key))
    return store


class FakeApiServer:
    """PATCH {} on secrets, as kube-apiserver does it, over ``store`` with ``config``."""

    host = "https://api.test"

    def __init__(self, store: MemoryEtcd, raw_config: bytes, forbidden: Sequence[str] = ()):
        self.store = store
        self.chain: TransformerSet = chain(raw_config)
        self.forbidden = set(forbidden)
        self.patched: list[str] = []

    def send(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
             body: bytes | None = None, content_type: str | None = None,
             accept: str = "application/json") -> RawResponse:
        assert method == "PATCH" and body == b"{}", (method, path)
        prefix = "/api/v1/namespaces/"
        assert path.startswith(prefix)
        namespace, _, name = path[len(prefix):].partition("/secrets/")
        if name in self.forbidden:
            return RawResponse(403, b'{"kind": "Status", "reason": "Forbidden"}',
                               "application/json", None)
        self.patched.append(name)
        key = f"/registry/secrets/{namespace}/{name}"
        kv = self.store.get(key.encode())
        if kv is None:
            return RawResponse(404, b'{"kind": "Status", "reason": "NotFound"}',
                               "application/json", None)
        transformer = self.chain.for_etcd_key(key)
        read = transformer.read(kv.value, key)
        revision = kv.mod_revision
        if read.stale:
            self.store.put(key.encode(), transformer.write(read.plaintext, key))
            revision = self.store.current_revision()
        meta = {"name": name, "namespace": namespace, "resourceVersion": str(revision)}
        return RawResponse(200, json.dumps({"metadata": meta}).encode(),
                           "application/json", None)


class RecordingProgress(Progress):
    """Remembers every total it is given with the count done at that moment."""

    last: RecordingProgress | None = None

    def __init__(self, stream: Any, done: Any, **kwargs: Any) -> None:
        super().__init__(stream, done, **kwargs)
        self.totals: list[tuple[int | None, int]] = []
        self.final: int | None = None
        RecordingProgress.last = self

    def set_total(self, total: int | None) -> None:
        self.totals.append((total, self._done()))
        super().set_total(total)

    def stop(self) -> None:
        self.final = self._done()
        super().stop()


@pytest.fixture
def progress(monkeypatch: pytest.MonkeyPatch) -> type[RecordingProgress]:
    monkeypatch.setattr(runner, "Progress", RecordingProgress)
    return RecordingProgress


def only_stale(transport: FakeApiServer, resume: Path | None = None) -> Summary:
    return run_api(
        transport,
        SECRETS,
        options=ApiRunOptions(page_size=1, concurrency=1),
        qps=0,
        burst=1,
        control=RunControl(resume=resume, progress_stream=io.StringIO(), show_progress=False),
        stale_source=(transport.store, load_encryption_config(NEW), {}),
    )


def test_a_patch_the_api_server_skipped_is_unchanged_not_rewritten() -> None:
    store = seeded()
    # the API server still writes with key1: the "stale" values are fresh to it
    api = FakeApiServer(store, PREPARED)
    before = store.current_revision()
    totals = only_stale(api).totals()
    assert store.current_revision() == before  # nothing was written ...
    assert sorted(api.patched) == STALE
    # ... and the summary says so
    assert (totals["rewritten"], totals["unchanged"]) == (0, 2)
    assert (totals["seen"], totals["skipped_fresh"]) == (5, 3)


def test_a_patch_that_rewrote_the_value_is_rewritten() -> None:
    store = seeded()
    totals = only_stale(FakeApiServer(store, NEW)).totals()
    assert (totals["rewritten"], totals["unchanged"], totals["skipped_fresh"]) == (2, 0, 3)


def test_the_progress_runs_from_0_to_the_number_of_stale_objects(
    progress: type[RecordingProgress],
) -> None:
    only_stale(FakeApiServer(seeded(), NEW))
    bar = progress.last
    assert bar is not None
    # the total is the stale objects, known before the first one is sent
    assert bar.totals[0] == (2, 0)
    assert {total for total, _ in bar.totals} == {2}
    assert bar.final == 2


def test_a_resumed_run_counts_no_object_twice(
    tmp_path: Path, progress: type[RecordingProgress]
) -> None:
    store = seeded()
    resume = tmp_path / "ck.json"
    # the first run stops at the second stale object (RBAC), after the first one
    with pytest.raises(KubeError):
        only_stale(FakeApiServer(store, NEW, forbidden=["s-1"]), resume)
    api = FakeApiServer(store, NEW)
    summary = only_stale(api, resume)
    assert api.patched == ["s-1"]
    totals = summary.totals()
    assert (totals["seen"], totals["skipped_fresh"]) == (5, 3)
    assert (totals["rewritten"], totals["unchanged"], totals["failed"]) == (2, 0, 0)
    # the resumed bar continues where the first run stopped: 1 of 2 done, then 2 of 2
    bar = progress.last
    assert bar is not None and bar.totals[0] == (2, 1) and bar.final == 2



class Killed(BaseException):
    """The process dies (SIGKILL, OOM): nothing after it runs, no checkpoint is saved."""


class DiesAfterPatching(FakeApiServer):
    """Patches (and so rewrites) the named object, then the process dies."""

    def __init__(self, store: MemoryEtcd, raw_config: bytes, name: str) -> None:
        super().__init__(store, raw_config)
        self.name = name

    def send(self, method: str, path: str, **kwargs: Any) -> RawResponse:
        resp = super().send(method, path, **kwargs)
        if path.endswith("/" + self.name):
            raise Killed()
        return resp


def seeded_as(layout: str) -> tuple[MemoryEtcd, list[str]]:
    """One object per letter in list order, ``F`` fresh, ``S`` stale; the stale names."""
    store = MemoryEtcd()
    stale: list[str] = []
    for i, kind in enumerate(layout):
        name = f"o-{i}"
        key = f"/registry/secrets/ns/{name}"
        writer = chain(NEW if kind == "F" else OLD)
        store.put(key.encode(), writer.for_etcd_key(key).write(b"k8s\x00" + key.encode(), key))
        if kind == "S":
            stale.append(name)
    return store, stale


@pytest.mark.parametrize("layout", ["FFFSSS", "SFSFSF", "FSSSFF"])
@pytest.mark.parametrize("dies_at", [0, 1, 2])
def test_a_kill_mid_batch_then_resume_counts_every_object_once(
    tmp_path: Path, layout: str, dies_at: int
) -> None:
    store, stale = seeded_as(layout)
    resume = tmp_path / "ck.json"
    # the object in flight at the kill is rewritten, but its batch is never saved
    with pytest.raises(Killed):
        only_stale(DiesAfterPatching(store, NEW, stale[dies_at]), resume)
    api = FakeApiServer(store, NEW)
    totals = only_stale(api, resume).totals()
    assert api.patched == stale[dies_at + 1 :]
    # every object is counted exactly once: the one rewritten in flight scans fresh
    # now and counts as skipped_fresh (its write is not lost, only its counter)
    assert totals["seen"] == len(layout)
    assert totals["rewritten"] == len(stale) - 1
    assert totals["skipped_fresh"] == layout.count("F") + 1
    assert totals["unchanged"] == totals["failed"] == 0
