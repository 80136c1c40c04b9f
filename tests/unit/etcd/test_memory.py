"""The in-memory etcd beyond the shared contract: live watches, exact pages, wrappers.

What it shares with a real etcd (revisions, compare-and-swap, history, compaction,
replayed watches) is proved against one in tests/integration/etcd/test_interface_contract.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from secretkit.errors import EtcdError
from secretkit.etcd import ForwardingEtcd, KeyValueRecord, MemoryEtcd
from secretkit.etcd.errors import WatchCompactedError
from secretkit.etcd.interface import Watch
from secretkit.etcd.keys import prefix_range_end
from secretkit.etcd.model import WatchBatch, WatchRange

P = b"/registry/secrets/"


def _follow(stream: Watch) -> Iterator[WatchBatch]:
    """The stream's batches, with a safety net: a stuck test fails instead of hanging."""
    timer = threading.Timer(10, stream.close)
    timer.start()
    try:
        yield from stream
    finally:
        timer.cancel()


def test_a_watch_replays_then_follows_new_writes_until_closed() -> None:
    store = MemoryEtcd()
    first = store.put(P + b"ns/a", b"1")
    store.put(b"/elsewhere", b"x")
    stream = store.watch([WatchRange(P, prefix_range_end(P), first)], prev_kv=True)
    batches = _follow(stream)
    created = next(batches)
    assert (created.watch, created.events) == (0, ())
    replayed = next(batches)
    assert [(e.type, e.kv.key, e.kv.value) for e in replayed.events] == [(0, P + b"ns/a", b"1")]
    assert not replayed.events[0].HasField("prev_kv")

    def write_later() -> None:
        store.put(P + b"ns/a", b"2")
        store.delete(P + b"ns/a")

    threading.Timer(0.05, write_later).start()
    update = next(batches)
    assert update.events[0].kv.value == b"2" and update.events[0].prev_kv.value == b"1"
    deletion = next(batches)
    assert deletion.events[0].type == 1 and deletion.events[0].prev_kv.value == b"2"
    threading.Timer(0.05, stream.close).start()
    assert list(batches) == []  # close ends the iteration quietly


def test_one_watch_per_range_and_progress_answers() -> None:
    store = MemoryEtcd()
    start = store.current_revision() + 1
    ranges = [
        WatchRange(P + b"a/", prefix_range_end(P + b"a/"), start),
        WatchRange(P + b"b/x", b"", start),  # one key
    ]
    store.put(P + b"b/x", b"1")
    store.put(P + b"a/1", b"1")
    store.put(P + b"b/y", b"not watched")
    stream = store.watch(ranges)
    batches = _follow(stream)
    assert [next(batches).watch for _ in ranges] == [0, 1]
    got = [next(batches) for _ in range(2)]
    # merged by revision: b/x was written first
    assert [(b.watch, b.events[0].kv.key) for b in got] == [(1, P + b"b/x"), (0, P + b"a/1")]
    stream.request_progress()
    notice = next(batches)
    assert (notice.watch, notice.events, notice.revision) == (None, (), store.current_revision())
    stream.close()


def test_a_watch_from_a_compacted_revision_is_refused() -> None:
    store = MemoryEtcd()
    for i in range(5):
        store.put(P + b"k", b"%d" % i)
    store.compact(4)
    batches = _follow(store.watch([WatchRange(P, prefix_range_end(P), 2)]))
    next(batches)  # created, as etcd says before it cancels
    with pytest.raises(WatchCompactedError) as info:
        next(batches)
    assert info.value.compact_revision == 4


def test_exact_pages_resume_keys_only_and_delete_prefix() -> None:
    store = MemoryEtcd()
    for i in range(7):
        store.put(P + b"ns/s%d" % i, b"v%d" % i)
    store.put(b"/registry/secretsX", b"outside")
    pages = list(store.range_pages(P, page_size=3, start=P + b"ns/s2"))
    assert [len(p) for p in pages] == [3, 2]
    assert pages[0][0] == KeyValueRecord(P + b"ns/s2", b"v2", 4, 4, 1)
    assert all(kv.value == b"" for page in store.scan(P, keys_only=True) for kv in page)
    assert [kv.key for page in store.scan(b"") for kv in page][-1] == b"/registry/secretsX"
    before = store.current_revision()
    assert store.delete_prefix(P) == 7
    assert store.current_revision() == before + 1  # one revision for the whole range
    assert list(store.scan(P)) == []
    assert store.get(P + b"ns/s0", revision=before) is not None
    with pytest.raises(ValueError):
        next(store.scan(P, page_size=0))


def test_refusals_look_like_etcds() -> None:
    store = MemoryEtcd()
    store.put(b"k", b"v")
    with pytest.raises(EtcdError, match="does not exist yet"):
        store.get(b"k", revision=99)
    with pytest.raises(ValueError, match="at most 128"):
        store.get_many([(b"k", 1)] * 129)
    with pytest.raises(ValueError, match="at most 128"):
        store.compare_and_swap_many([(b"k%d" % i, b"v", 0) for i in range(129)])
    with pytest.raises(EtcdError, match="twice"):
        store.compare_and_swap_many([(b"k", b"1", 2), (b"k", b"2", 2)])
    with pytest.raises(ValueError):
        store.put_if(b"k", b"v", mod_revision=-1)
    with pytest.raises(ValueError):
        store.delete(b"k", mod_revision=0)
    assert store.current_revision() == 2  # nothing above was written


def test_forwarding_wrapper_forwards_everything_and_interleaves_what_it_overrides() -> None:
    store = MemoryEtcd()

    class WriterBeforeSwap(ForwardingEtcd):
        def compare_and_swap(self, key: bytes, value: bytes, *, mod_revision: int) -> bool:
            self.inner.put(key, b"someone else")
            return super().compare_and_swap(key, value, mod_revision=mod_revision)

    wrapped = WriterBeforeSwap(store)
    revision = wrapped.put(b"k", b"1")
    assert wrapped.get(b"k") == store.get(b"k")
    assert not wrapped.compare_and_swap(b"k", b"2", mod_revision=revision)
    kv = wrapped.get(b"k")
    assert kv is not None and kv.value == b"someone else"
    assert wrapped.put_if(b"k", b"3", mod_revision=kv.mod_revision) > 0
    assert wrapped.compare_and_swap_many([(b"n", b"1", 0)])
    assert wrapped.get_many([(b"n", wrapped.current_revision())])[0] is not None
    assert wrapped.delete(b"n")
    assert [kv.key for page in wrapped.scan(b"") for kv in page] == [b"k"]
    assert wrapped.endpoint == "memory"
