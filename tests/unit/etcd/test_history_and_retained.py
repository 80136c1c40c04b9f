"""Older values, read batch-wise (HistoryWalk) or all of them (RetainedValues), in memory.

The same readers against a real etcd: tests/integration/etcd/test_history.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from secretkit.errors import EtcdError
from secretkit.etcd import EtcdCompactedError, ForwardingEtcd, KeyValue, MemoryEtcd
from secretkit.etcd.errors import EtcdResponseTooLargeError
from secretkit.etcd.history import HistoryWalk
from secretkit.etcd.retained import RetainedValues

P = b"/registry/secrets/"


def _seed(store: MemoryEtcd) -> int:
    """Keys with 1-3 versions, one deleted and one deleted then re-created; a mid revision."""
    store.put(P + b"ns/one", b"only")
    store.put(P + b"ns/three", b"v1")
    store.put(P + b"ns/gone", b"doomed")
    mid = store.current_revision()
    store.put(P + b"ns/three", b"v2")
    store.put(P + b"ns/three", b"v3")
    store.delete(P + b"ns/gone")
    store.put(P + b"ns/again", b"first life")
    store.delete(P + b"ns/again")
    store.put(P + b"ns/again", b"second life")
    store.put(b"/elsewhere", b"not under the prefix")
    return mid


def _live(store: MemoryEtcd) -> list[KeyValue]:
    return [kv for page in store.scan(P) for kv in page]


class Counting(ForwardingEtcd):
    """Counts the batched reads and single gets a walk makes."""

    def __init__(self, inner: MemoryEtcd, *, too_large_above: int = 0) -> None:
        super().__init__(inner)
        self.batches: list[int] = []  # sizes of the batches answered
        self.refused = 0
        self.gets = 0
        self.too_large_above = too_large_above

    def get_many(self, requests: Sequence[tuple[bytes, int]]) -> Sequence[KeyValue | None]:
        if self.too_large_above and len(requests) > self.too_large_above:
            self.refused += 1
            raise EtcdResponseTooLargeError("answer too large", where="test")
        self.batches.append(len(requests))
        return super().get_many(requests)

    def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
        self.gets += 1
        return super().get(key, revision=revision)


def test_history_walk_finds_every_older_value_of_live_keys_in_batches() -> None:
    store = MemoryEtcd()
    _seed(store)
    client = Counting(store)
    walk = HistoryWalk(client, batch=2)
    got = [(live.key, older.value) for live, older in walk.older(_live(store))]
    # newest first per key, round by round; the re-created key's first life is not
    # its history (version restarts at 1), the deleted key is not live
    assert got == [(P + b"ns/three", b"v2"), (P + b"ns/three", b"v1")]
    assert client.batches == [1, 1] and client.gets == 0
    assert walk.compacted == 0


def test_history_walk_stops_quietly_at_the_compaction_point() -> None:
    store = MemoryEtcd()
    for version in range(6):
        for name in (b"a", b"b", b"c"):
            store.put(P + name, b"v%d" % version)
    store.compact(store.current_revision() - 4)
    client = Counting(store)
    walk = HistoryWalk(client, batch=8)
    got = {(older.key, older.value) for _, older in walk.older(_live(store))}
    # what is still held: v4 of each key (v3 of "c" too: it was current at the point)
    assert got == {(P + b"a", b"v4"), (P + b"b", b"v4"), (P + b"c", b"v4"), (P + b"c", b"v3")}
    assert walk.compacted == 3


def test_history_walk_splits_batches_whose_answer_is_too_large() -> None:
    store = MemoryEtcd()
    for i in range(6):
        store.put(P + b"k%d" % i, b"old")
        store.put(P + b"k%d" % i, b"new")
    client = Counting(store, too_large_above=2)
    got = [older.value for _, older in HistoryWalk(client, batch=6).older(_live(store))]
    assert got == [b"old"] * 6
    # 6 refused, halves of 3 refused, then 1 + 2 twice
    assert client.refused == 3 and client.batches == [1, 2, 1, 2]


def test_history_walk_errors_other_than_compaction_propagate() -> None:
    store = MemoryEtcd()
    _seed(store)

    class Broken(ForwardingEtcd):
        def get_many(self, requests: Sequence[tuple[bytes, int]]) -> Sequence[KeyValue | None]:
            raise EtcdError("etcd went away", where="test")

    with pytest.raises(EtcdError, match="went away"):
        list(HistoryWalk(Broken(store)).older(_live(store)))


def test_retained_values_include_deleted_keys_and_nothing_compacted() -> None:
    store = MemoryEtcd()
    mid = _seed(store)
    reader = RetainedValues(store, P, page_size=2)
    seen = [(item.kv.key, item.kv.value, item.historic) for page in reader.pages() for item in page]
    live = {(k, v) for k, v, historic in seen if not historic}
    historic = {(k, v) for k, v, h in seen if h}
    assert live == {
        (P + b"ns/one", b"only"), (P + b"ns/three", b"v3"), (P + b"ns/again", b"second life")
    }
    assert historic == {
        (P + b"ns/three", b"v1"), (P + b"ns/three", b"v2"),
        (P + b"ns/gone", b"doomed"), (P + b"ns/again", b"first life"),
    }
    assert (reader.live, reader.historic, reader.compacted_at) == (3, 4, 0)

    store.compact(mid + 1)  # three@v2 is the value current at the compaction point
    reader = RetainedValues(store, P)
    historic = {
        (item.kv.key, item.kv.value) for page in reader.pages() for item in page if item.historic
    }
    assert historic == {
        (P + b"ns/three", b"v2"), (P + b"ns/gone", b"doomed"), (P + b"ns/again", b"first life")
    }
    assert reader.compacted_at == mid + 1


def test_retained_values_fail_closed() -> None:
    store = MemoryEtcd()
    _seed(store)

    class NoHistory(ForwardingEtcd):
        def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
            if revision is not None:
                raise EtcdError("etcd went away", where="test")
            return super().get(key)

    with pytest.raises(EtcdError, match="went away"):
        list(RetainedValues(NoHistory(store), P).pages())

    class CompactedMeanwhile(ForwardingEtcd):
        """etcd compacts between the live read and the read at the compaction point."""

        def scan(self, prefix: bytes, *, revision: int | None = None, page_size: int = 1000,
                 keys_only: bool = False) -> Iterator[Sequence[KeyValue]]:
            if revision is not None and revision < self.inner.current_revision():
                raise EtcdCompactedError("compacted", where="test")
            return super().scan(prefix, revision=revision, page_size=page_size)

    store.compact(3)
    with pytest.raises(EtcdCompactedError):
        list(RetainedValues(CompactedMeanwhile(store), P).pages())


def _held_by_brute_force(store: MemoryEtcd, prefix: bytes) -> set[tuple[bytes, int]]:
    """Every (key, mod_revision) visible under ``prefix`` at some retained revision."""
    held: set[tuple[bytes, int]] = set()
    for revision in range(1, store.current_revision() + 1):
        try:
            pages = list(store.scan(prefix, revision=revision))
        except EtcdCompactedError:
            continue
        held |= {(kv.key, kv.mod_revision) for page in pages for kv in page}
    return held


@pytest.mark.parametrize("compact", [False, True])
def test_retained_values_replay_in_segments_and_waves(
    monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    """Many short watches (one per segment, a few per stream) read exactly every value."""
    import secretkit.etcd.retained as retained

    monkeypatch.setattr(retained, "SEGMENT", 3)
    monkeypatch.setattr(retained, "WAVE", 2)
    store = MemoryEtcd()
    for i in range(40):
        key = P + f"ns/k{i % 7}".encode()
        if i % 5 == 4:
            store.delete(key)
        else:
            store.put(key, f"value {i}".encode())
        if i % 3 == 0:
            store.put(b"/elsewhere/" + str(i).encode(), b"not under the prefix")
    if compact:
        store.compact(17)
    reader = RetainedValues(store, P)
    got = [(item.kv.key, item.kv.mod_revision) for page in reader.pages() for item in page]
    assert len(got) == len(set(got))  # nothing twice, though segments meet
    assert set(got) == _held_by_brute_force(store, P)
    assert reader.historic > 10


def test_a_stalled_segment_is_not_hidden_by_live_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finished segments' watches pass on live writes: they must not feed the stall timer."""
    import threading
    from types import SimpleNamespace

    import secretkit.etcd.retained as retained
    from secretkit.etcd.model import WatchBatch

    monkeypatch.setattr(retained, "SEGMENT", 2)
    store = MemoryEtcd()
    for i in range(6):
        store.put(P + f"k{i}".encode(), b"v")
    live_write = SimpleNamespace(type=0, kv=SimpleNamespace(key=b"/elsewhere", mod_revision=10**6))

    class Stream:
        """Segment 0 never answers; segment 1's watch keeps passing on live writes."""

        def __init__(self) -> None:
            self.stop = threading.Event()

        def __iter__(self):  # type: ignore[no-untyped-def]
            while not self.stop.is_set():
                yield WatchBatch(1, 10**6, (live_write,), False)

        def close(self) -> None:
            self.stop.set()

    class Stalling(ForwardingEtcd):
        def watch(self, ranges, *, prev_kv=False, progress_notify=True):  # type: ignore[no-untyped-def]
            return Stream()

    reader = RetainedValues(Stalling(store), P)
    reader.stall_seconds = 0.3
    with pytest.raises(EtcdError, match="could not be read"):
        list(reader.pages())
