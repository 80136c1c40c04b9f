"""EtcdClient.watch against a real etcd: events, prev_kv, fragments, compaction, close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from secretkit.etcd import EtcdClient, EtcdCompactedError, prefix_range_end
from secretkit.etcd.watch import WatchBatch, WatchCompactedError, WatchRange, WatchStream

pytestmark = pytest.mark.etcd


def _range(prefix: bytes, start: int) -> WatchRange:
    return WatchRange(prefix, prefix_range_end(prefix), start)


def _collect(
    stream: WatchStream, until: int, timeout: float = 10.0, watches: int = 1
) -> list[WatchBatch]:
    """Batches until each watch saw an event at revision >= ``until`` (bounded)."""
    found: list[WatchBatch] = []
    done = threading.Event()
    reached: set[int | None] = set()

    def read() -> None:
        for batch in stream:
            found.append(batch)
            if batch.events and batch.events[-1].kv.mod_revision >= until:
                reached.add(batch.watch)
            if len(reached) == watches:
                done.set()
                return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    done.wait(timeout)
    stream.close()
    thread.join(5)
    assert done.is_set(), f"no event at revision {until} within {timeout}s"
    return found


def _events(batches: list[WatchBatch]) -> Iterator[Any]:
    for batch in batches:
        yield from batch.events


def test_events_in_revision_order_with_previous_values(etcd_client: EtcdClient) -> None:
    start = etcd_client.put(b"/w/a", b"1")
    etcd_client.put(b"/w/a", b"2")
    etcd_client.put(b"/w/b", b"3")
    etcd_client.put(b"/other", b"not watched")
    last = etcd_client.delete(b"/w/a") and etcd_client.current_revision()
    with etcd_client.watch([_range(b"/w/", start)], prev_kv=True) as stream:
        events = list(_events(_collect(stream, last)))
    assert [(e.type, e.kv.key, e.kv.value) for e in events] == [
        (0, b"/w/a", b"1"),
        (0, b"/w/a", b"2"),
        (0, b"/w/b", b"3"),
        (1, b"/w/a", b""),
    ]
    assert not events[0].HasField("prev_kv")  # created: nothing before it
    assert events[1].prev_kv.value == b"1"
    assert events[3].prev_kv.value == b"2"  # a delete says what it deleted
    revisions = [e.kv.mod_revision for e in events]
    assert revisions == sorted(revisions) and revisions[-1] == last


def test_several_ranges_on_one_stream_keep_their_index(etcd_client: EtcdClient) -> None:
    start = etcd_client.current_revision() + 1
    etcd_client.put(b"/x/1", b"x")
    etcd_client.put(b"/y/1", b"y")
    etcd_client.put(b"/z/1", b"z")
    last = etcd_client.put(b"/x/2", b"x")
    etcd_client.put(b"/z/2", b"z")
    ranges = [_range(b"/x/", start), _range(b"/z/", start)]
    with etcd_client.watch(ranges) as stream:
        # each watch delivers in revision order; the two interleave as they please
        batches = _collect(stream, last, watches=2)
    seen = {(b.watch, e.kv.key) for b in batches for e in b.events}
    assert seen == {(0, b"/x/1"), (0, b"/x/2"), (1, b"/z/1"), (1, b"/z/2")}


def test_large_backlogs_arrive_whole_through_fragments(etcd_client: EtcdClient) -> None:
    # each response may hold at most etcd's request limit (1.5 MiB): a backlog of
    # 1 MiB values with their previous values is split into fragments and merged
    start = etcd_client.put(b"/big/0", b"a" * (1 << 20))
    for i in range(1, 5):
        last = etcd_client.put(b"/big/0", bytes([97 + i]) * (1 << 20))
    with etcd_client.watch([_range(b"/big/", start)], prev_kv=True) as stream:
        events = list(_events(_collect(stream, last)))
    assert [e.kv.value[:1] for e in events] == [b"a", b"b", b"c", b"d", b"e"]
    assert all(len(e.kv.value) == 1 << 20 for e in events)
    assert [e.prev_kv.value[:1] for e in events[1:]] == [b"a", b"b", b"c", b"d"]


def test_a_compacted_start_revision_is_reported(etcd_client: EtcdClient) -> None:
    first = etcd_client.put(b"/c/k", b"1")
    etcd_client.put(b"/c/k", b"2")
    compacted = etcd_client.put(b"/c/k", b"3")
    etcd_client.compact(compacted)
    stream = etcd_client.watch([_range(b"/c/", first)])
    with pytest.raises(WatchCompactedError) as raised:
        list(stream)
    assert isinstance(raised.value, EtcdCompactedError)
    assert raised.value.compact_revision == compacted


def test_progress_requests_are_answered_and_close_ends_iteration(
    etcd_client: EtcdClient,
) -> None:
    revision = etcd_client.put(b"/p/k", b"v")
    stream = etcd_client.watch([_range(b"/p/", revision + 1)])
    notices: list[WatchBatch] = []

    def read() -> None:
        for batch in stream:
            notices.append(batch)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not any(n.watch is None for n in notices) and time.monotonic() < deadline:
        stream.request_progress()
        time.sleep(0.1)
    stream.close()
    thread.join(5)
    assert not thread.is_alive(), "close() did not end the iteration"
    answers = [n for n in notices if n.watch is None]
    assert answers and answers[0].revision >= revision
    assert not answers[0].ordered and not answers[0].events


def test_current_revision_is_the_store_revision(etcd_client: EtcdClient) -> None:
    revision = etcd_client.put(b"/r/k", b"v")
    assert etcd_client.current_revision() == revision
    etcd_client.delete(b"/r/k")
    assert etcd_client.current_revision() == revision + 1
