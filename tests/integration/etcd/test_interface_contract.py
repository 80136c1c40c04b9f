"""Every implementation of the etcd interface answers like a real etcd.

One script of writes and reads runs against a real etcd (``EtcdClient``) and against
``MemoryEtcd``; their transcripts (revisions relative to the start) must be equal.
A snapshot of the real etcd, read through ``EtcdSnapshot``, must then answer every
read of the script's final state exactly as the live etcd does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from secretkit.errors import EtcdError
from secretkit.etcd import (
    EtcdClient,
    EtcdCompactedError,
    EtcdReader,
    EtcdSnapshot,
    EtcdStore,
    KeyValue,
    MemoryEtcd,
    WatchableReader,
)
from secretkit.etcd.errors import WatchCompactedError
from secretkit.etcd.keys import prefix_range_end
from secretkit.etcd.model import WatchRange

pytestmark = pytest.mark.etcd

P = b"/contract/"
KEYS = [P + k for k in (b"a", b"b", b"c", b"d", b"zz")]


class Compactable(EtcdStore, WatchableReader, Protocol):
    """Both implementations also compact (not part of the interface: an admin act)."""

    def compact(self, revision: int, *, physical: bool = True) -> None: ...


Record = tuple[bytes, bytes, int, int, int] | None


def _record(kv: KeyValue | None, base: int) -> Record:
    """The key/value with revisions relative to ``base`` (0 stays 0: "none")."""
    if kv is None:
        return None
    create, mod = kv.create_revision, kv.mod_revision
    return (kv.key, kv.value, create and create - base, mod and mod - base, kv.version)


def _outcome(call: Callable[[], object]) -> object:
    """The call's answer, or the class of EtcdError it raised."""
    try:
        return call()
    except EtcdError as exc:
        return type(exc).__name__


def _reads(store: EtcdReader, base: int, revisions: list[int]) -> list[object]:
    """Every read of the interface at each revision (0: now), with relative answers."""
    out: list[object] = []
    for rev in revisions:
        at = rev + base if rev else None

        def get(key: bytes, at: int | None = at) -> Record:
            return _record(store.get(key, revision=at), base)

        def scan(keys_only: bool, at: int | None = at) -> list[Record]:
            pages = store.scan(P, revision=at, page_size=2, keys_only=keys_only)
            return [_record(kv, base) for page in pages for kv in page]

        out.append(("get", rev, [_outcome(lambda k=k: get(k)) for k in KEYS]))
        for keys_only in (False, True):
            out.append(("scan", rev, keys_only, _outcome(lambda k=keys_only: scan(k))))
    return out


def script(store: Compactable) -> tuple[list[object], int, int]:
    """Writes and reads through the interface; (transcript, base revision, mid revision)."""
    base = store.current_revision()
    out: list[object] = []

    def note(what: str, value: object) -> None:
        out.append((what, value))

    rel = lambda rev: rev - base if rev else rev  # noqa: E731
    note("put a", rel(store.put(P + b"a", b"1")))
    note("put b", rel(store.put(P + b"b", b"1")))
    note("put a again", rel(store.put(P + b"a", b"2")))
    note("create c", rel(store.put_if(P + b"c", b"1", mod_revision=0)))
    note("create c again", store.put_if(P + b"c", b"x", mod_revision=0))
    a = store.get(P + b"a")
    assert a is not None
    note("cas lost", store.compare_and_swap(P + b"a", b"x", mod_revision=a.mod_revision - 1))
    note("cas", store.compare_and_swap(P + b"a", b"3", mod_revision=a.mod_revision))
    mid = store.current_revision()
    b, c = store.get(P + b"b"), store.get(P + b"c")
    assert b is not None and c is not None
    note("many lost", store.compare_and_swap_many(
        [(P + b"b", b"2", b.mod_revision), (P + b"c", b"2", c.mod_revision + 5)]
    ))
    note("revision after a lost batch", rel(store.current_revision()))
    note("many", store.compare_and_swap_many(
        [(P + b"b", b"2", b.mod_revision), (P + b"c", b"2", c.mod_revision), (P + b"d", b"1", 0)]
    ))
    note("many nothing", store.compare_and_swap_many([]))
    note("guarded delete lost", store.delete(P + b"b", mod_revision=b.mod_revision))
    note("delete", store.delete(P + b"b"))
    note("delete missing", store.delete(P + b"b"))
    note("revision after deleting nothing", rel(store.current_revision()))
    note("recreate b", rel(store.put(P + b"b", b"3")))
    note("outside the prefix", rel(store.put(b"/contract0", b"x")))
    end = store.current_revision()
    note("reads", _reads(store, base, [*range(mid - base, end - base + 1), 0]))
    note("get_many", _outcome(lambda: [
        _record(kv, base)
        for kv in store.get_many([(P + b"a", mid), (P + b"b", end), (P + b"zz", end)])
    ]))
    note("future", _outcome(lambda: store.get(P + b"a", revision=end + 10)))
    note("watch", replay(store, mid + 1, end, base))
    store.compact(mid + 1)
    note("compact again", _outcome(lambda: store.compact(mid + 1)))
    note("below compaction", _reads(store, base, [mid - base]))
    note("at compaction", _reads(store, base, [mid + 1 - base]))
    note("get_many below", _outcome(lambda: store.get_many([(P + b"a", end), (P + b"a", mid)])))
    note("watch below", replay(store, mid, end, base))
    return out, base, mid


def replay(store: WatchableReader, start: int, end: int, base: int) -> object:
    """The events a watch of the prefix replays from ``start`` up to ``end``."""
    stream = store.watch([WatchRange(P, prefix_range_end(P), start)], prev_kv=True)
    timer = threading.Timer(10, stream.close)  # a watch that hangs fails, never blocks
    timer.start()
    seen: list[object] = []
    try:
        for batch in stream:
            for event in batch.events:
                prev = _record(event.prev_kv, base) if event.HasField("prev_kv") else None
                seen.append((event.type, _record(event.kv, base), prev))
            if any(event.kv.mod_revision >= end - 1 for event in batch.events):
                break  # the last write under the prefix (``end`` is outside it)
    except WatchCompactedError as exc:
        return ("compacted", exc.compact_revision - base)
    finally:
        timer.cancel()
        stream.close()
    return seen


def test_the_in_memory_store_answers_like_etcd(etcd_client: EtcdClient) -> None:
    real, _, _ = script(etcd_client)
    memory, _, _ = script(MemoryEtcd())
    for step_real, step_memory in zip(real, memory, strict=True):
        assert step_memory == step_real
    # the transcript says something: lost compares, refusals and replays all happened
    steps = dict(real)
    assert steps["create c again"] == 0 and steps["cas lost"] is False and steps["cas"] is True
    assert steps["many lost"] is False and steps["many"] is True
    assert steps["revision after a lost batch"] == 5  # 4 puts and a swap; nothing since
    assert steps["delete missing"] is False and steps["revision after deleting nothing"] == 7
    assert steps["below compaction"][0][2] == ["EtcdCompactedError"] * 5
    assert steps["future"] == "EtcdError"
    assert steps["watch below"] == ("compacted", 6)
    # a transaction of three puts, a delete (with the value it removed), a re-creation
    assert [(kind, kv[0] if kv else None) for kind, kv, _ in steps["watch"]] == [
        (0, P + b"b"), (0, P + b"c"), (0, P + b"d"), (1, P + b"b"), (0, P + b"b")
    ]


def test_a_snapshot_reads_like_the_live_etcd(etcd_client: EtcdClient, tmp_path: Path) -> None:
    _, base, mid = script(etcd_client)
    end = etcd_client.current_revision()
    path = tmp_path / "snap.db"
    etcd_client.snapshot(path)
    revisions = [0, *range(mid - base, end - base + 1)]
    live = _reads(etcd_client, base, revisions)
    with EtcdSnapshot(path) as snapshot:
        assert snapshot.current_revision() == end
        assert _reads(snapshot, base, revisions) == live
        many = [(P + b"a", end), (P + b"b", mid + 1), (P + b"zz", end)]
        assert [_record(kv, base) for kv in snapshot.get_many(many)] == [
            _record(kv, base) for kv in etcd_client.get_many(many)
        ]
        with pytest.raises(EtcdCompactedError):
            snapshot.get_many([(P + b"a", mid)])
        with pytest.raises(EtcdError, match="does not exist yet"):
            snapshot.get(P + b"a", revision=end + 1)
    # the reads above covered something: live keys, an absent one, a refused revision
    current = live[0][2]
    assert all(kv is not None for kv in current[:4]) and current[4] is None
    assert any(step[0] == "get" and "EtcdCompactedError" in step[2] for step in live)
