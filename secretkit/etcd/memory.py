"""An etcd keyspace in memory, with etcd's revisions, history and watches (for tests).

:class:`MemoryEtcd` serves every role of :mod:`secretkit.etcd.interface` the way
etcd does (the contract tests run the same checks against it and a real etcd):
one store revision per write or transaction, ``create_revision``/``version`` per
key, reads at any revision down to the compaction point, and watches that replay
from a start revision and then follow new writes. Unit tests use it instead of
ad-hoc fakes; :class:`ForwardingEtcd` wraps it (or a real client) so a test can
interleave something with chosen calls.

Not a database: every version stays in Python objects until
:meth:`MemoryEtcd.compact`, keys are kept sorted (an insert costs O(n)), and one lock
serialises every call. Watches are not bounded: a watcher that never reads keeps
nothing alive but itself, because events are built from the store's change log.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from secretkit._proto.etcd import kv_pb2
from secretkit.errors import EtcdError
from secretkit.etcd.errors import (
    WatchCompactedError,
    compacted_error,
    future_revision_error,
)
from secretkit.etcd.interface import (
    MAX_TXN_OPS,
    EtcdStore,
    KeyValue,
    Watch,
    WatchableReader,
)
from secretkit.etcd.keys import ALL_KEYS, prefix_range_end
from secretkit.etcd.model import KeyValueRecord, WatchBatch, WatchRange


@dataclass(frozen=True, slots=True)
class _Change:
    """One write in the store's log: a put (``record``) or a delete (``record`` None)."""

    revision: int
    key: bytes
    record: KeyValueRecord | None
    previous: KeyValueRecord | None


class MemoryEtcd:
    """An in-memory etcd (see the module docstring). Thread-safe.

    Besides the interface: ``range_pages`` (exact pages, like ``EtcdClient``),
    ``delete_prefix``, ``compact`` and ``close`` (a no-op), and use as a context manager.
    """

    def __init__(self, *, endpoint: str = "memory") -> None:
        self._endpoint = endpoint
        self._cond = threading.Condition()
        #: etcd starts at revision 1 with an empty keyspace
        self._revision = 1
        #: reads below this revision are refused (0: never compacted)
        self._compacted = 0
        #: every key that has a version, in key order
        self._keys: list[bytes] = []
        #: per key: the revisions of its versions and the versions (None: deleted)
        self._revisions: dict[bytes, list[int]] = {}
        self._versions: dict[bytes, list[KeyValueRecord | None]] = {}
        #: every change still watchable, in revision order
        self._log: list[_Change] = []
        self._log_revisions: list[int] = []

    # -- life cycle -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """A name for messages (there is no address)."""
        return self._endpoint

    def close(self) -> None:
        """Nothing to release (kept for symmetry with ``EtcdClient``)."""

    def __enter__(self) -> MemoryEtcd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------

    def current_revision(self) -> int:
        """The store's current revision."""
        with self._cond:
            return self._revision

    def _pinned(self, revision: int | None) -> int:
        """``revision`` checked against the store (lock held); None or 0: now."""
        if not revision:
            return self._revision
        if revision < self._compacted:
            raise compacted_error(revision, where=self._endpoint)
        if revision > self._revision:
            raise future_revision_error(revision, where=self._endpoint)
        return revision

    def _at(self, key: bytes, revision: int) -> KeyValueRecord | None:
        """The live version of ``key`` at ``revision`` (lock held)."""
        revisions = self._revisions.get(key)
        if not revisions:
            return None
        index = bisect.bisect_right(revisions, revision) - 1
        return self._versions[key][index] if index >= 0 else None

    def get(self, key: bytes, *, revision: int | None = None) -> KeyValueRecord | None:
        """The key as of ``revision`` (default: now), or None when it did not exist then."""
        with self._cond:
            return self._at(key, self._pinned(revision))

    def get_many(self, requests: Sequence[tuple[bytes, int]]) -> list[KeyValueRecord | None]:
        """Each ``(key, revision)``'s value; all refused when any revision is compacted."""
        if len(requests) > MAX_TXN_OPS:
            raise ValueError(f"get_many takes at most {MAX_TXN_OPS} requests")
        with self._cond:
            pinned = [self._pinned(revision) for _, revision in requests]
            return [self._at(key, rev) for (key, _), rev in zip(requests, pinned, strict=True)]

    def scan(
        self,
        prefix: bytes,
        *,
        revision: int | None = None,
        page_size: int = 1000,
        keys_only: bool = False,
    ) -> Iterator[list[KeyValueRecord]]:
        """Every key under ``prefix`` at one revision, in key order, ``page_size`` per page."""
        return self.range_pages(prefix, revision=revision, page_size=page_size, keys_only=keys_only)

    def range_pages(
        self,
        prefix: bytes,
        *,
        revision: int | None = None,
        page_size: int = 1000,
        keys_only: bool = False,
        start: bytes | None = None,
    ) -> Iterator[list[KeyValueRecord]]:
        """Like ``EtcdClient.range_pages``: exact pages at one revision, from ``start``."""
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        return self._pages(prefix, revision, page_size, keys_only, start)

    def _pages(
        self,
        prefix: bytes,
        revision: int | None,
        page_size: int,
        keys_only: bool,
        start: bytes | None,
    ) -> Iterator[list[KeyValueRecord]]:
        end = prefix_range_end(prefix)
        key = prefix if prefix else ALL_KEYS
        if start is not None and start > key:
            key = start
        pinned: int | None = None
        while True:
            page: list[KeyValueRecord] = []
            with self._cond:
                # pinned when the first page is read, like etcd's first answer
                pinned = self._pinned(pinned if pinned is not None else revision)
                index = bisect.bisect_left(self._keys, key)
                while len(page) < page_size and index < len(self._keys):
                    candidate = self._keys[index]
                    if end != ALL_KEYS and candidate >= end:
                        break
                    index += 1
                    record = self._at(candidate, pinned)
                    if record is not None:
                        page.append(_keys_only(record) if keys_only else record)
                more = len(page) == page_size
            if page:
                yield page
                key = page[-1].key + b"\x00"
            if not more:
                return

    # -- writes -----------------------------------------------------------------------

    def _write(self, key: bytes, value: bytes | None, revision: int) -> None:
        """Record a put (``value``) or a delete (None) of ``key`` at ``revision`` (lock held)."""
        previous = self._at(key, self._revision)
        record: KeyValueRecord | None = None
        if value is not None:
            if previous is None:
                record = KeyValueRecord(key, value, revision, revision, 1)
            else:
                record = KeyValueRecord(
                    key, value, previous.create_revision, revision, previous.version + 1
                )
        revisions = self._revisions.get(key)
        if revisions is None:
            bisect.insort(self._keys, key)
            revisions = self._revisions[key] = []
            self._versions[key] = []
        revisions.append(revision)
        self._versions[key].append(record)
        self._log.append(_Change(revision, key, record, previous))
        self._log_revisions.append(revision)

    def _commit(self) -> int:
        """Make the writes recorded at ``_revision + 1`` current (lock held)."""
        self._revision += 1
        self._cond.notify_all()
        return self._revision

    def _mod_revision(self, key: bytes) -> int:
        live = self._at(key, self._revision)
        return live.mod_revision if live is not None else 0

    def put(self, key: bytes, value: bytes) -> int:
        """Write ``value`` unconditionally; return the new revision."""
        with self._cond:
            self._write(key, bytes(value), self._revision + 1)
            return self._commit()

    def put_if(self, key: bytes, value: bytes, *, mod_revision: int) -> int:
        """Write only if the key's mod_revision is ``mod_revision`` (0: must not exist)."""
        if mod_revision < 0:
            raise ValueError("mod_revision must be >= 0")
        with self._cond:
            if self._mod_revision(key) != mod_revision:
                return 0
            self._write(key, bytes(value), self._revision + 1)
            return self._commit()

    def compare_and_swap(self, key: bytes, value: bytes, *, mod_revision: int) -> bool:
        """:meth:`put_if` as a yes/no."""
        return self.put_if(key, value, mod_revision=mod_revision) > 0

    def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
        """Write every ``(key, value, mod_revision)`` at one revision, or none of them."""
        if not items:
            return True
        if len(items) > MAX_TXN_OPS:
            raise ValueError(f"compare_and_swap_many takes at most {MAX_TXN_OPS} items")
        if any(mod_revision < 0 for _, _, mod_revision in items):
            raise ValueError("mod_revision must be >= 0")
        if len({key for key, _, _ in items}) != len(items):
            # etcd: "duplicate key given in txn request"
            raise EtcdError("a transaction names one key twice", where=self._endpoint)
        with self._cond:
            if any(self._mod_revision(key) != rev for key, _, rev in items):
                return False
            for key, value, _ in items:
                self._write(key, bytes(value), self._revision + 1)
            self._commit()
            return True

    def delete(self, key: bytes, *, mod_revision: int | None = None) -> bool:
        """Delete one key (only at ``mod_revision`` when given); True when deleted."""
        if mod_revision is not None and mod_revision <= 0:
            raise ValueError("mod_revision must be > 0 for a guarded delete")
        with self._cond:
            live = self._mod_revision(key)
            if not live or (mod_revision is not None and live != mod_revision):
                return False
            self._write(key, None, self._revision + 1)
            self._commit()
            return True

    def delete_prefix(self, prefix: bytes) -> int:
        """Delete every key under ``prefix`` (``b""``: all) at one revision; return the count."""
        with self._cond:
            pages = self._pages(prefix, None, MAX_TXN_OPS, True, None)
            doomed = [kv.key for page in pages for kv in page]
            for key in doomed:
                self._write(key, None, self._revision + 1)
            if doomed:
                self._commit()
            return len(doomed)

    def compact(self, revision: int, *, physical: bool = True) -> None:
        """Drop every version older than ``revision`` (etcd's compaction)."""
        del physical  # compaction here is always complete when this returns
        with self._cond:
            if self._compacted and revision <= self._compacted:
                # etcd refuses to compact at or below its compaction point again
                raise compacted_error(revision, where=self._endpoint)
            if revision > self._revision:
                raise future_revision_error(revision, where=self._endpoint)
            self._compacted = revision
            for key in list(self._keys):
                revisions = self._revisions[key]
                versions = self._versions[key]
                # keep the version current at ``revision`` unless it is a deletion
                keep = bisect.bisect_right(revisions, revision) - 1
                if keep >= 0 and versions[keep] is None:
                    keep += 1
                if keep > 0:
                    del revisions[:keep]
                    del versions[:keep]
                if not revisions:
                    del self._revisions[key], self._versions[key]
                    self._keys.remove(key)
            cut = bisect.bisect_left(self._log_revisions, revision)
            del self._log[:cut], self._log_revisions[:cut]

    # -- watches ----------------------------------------------------------------------

    def watch(
        self,
        ranges: Sequence[WatchRange],
        *,
        prev_kv: bool = False,
        progress_notify: bool = True,
    ) -> Watch:
        """One watch per range, replayed from its start revision, then following writes.

        ``progress_notify`` is accepted and ignored: etcd sends those notices every
        few minutes, and nothing here needs them.
        """
        del progress_notify
        if not ranges:
            raise ValueError("a watch needs at least one range")
        return _MemoryWatch(self, tuple(ranges), prev_kv)


def _keys_only(record: KeyValueRecord) -> KeyValueRecord:
    return KeyValueRecord(
        record.key, b"", record.create_revision, record.mod_revision, record.version
    )


def _in_range(key: bytes, watched: WatchRange) -> bool:
    if watched.range_end == b"":
        return key == watched.key
    if watched.range_end == ALL_KEYS:
        return key >= watched.key
    return watched.key <= key < watched.range_end


def _message(record: KeyValueRecord) -> kv_pb2.KeyValue:
    return kv_pb2.KeyValue(
        key=record.key,
        value=record.value,
        create_revision=record.create_revision,
        mod_revision=record.mod_revision,
        version=record.version,
    )


class _MemoryWatch:
    """A watch on a :class:`MemoryEtcd`: batches of ``mvccpb.Event`` messages."""

    def __init__(self, store: MemoryEtcd, ranges: tuple[WatchRange, ...], prev_kv: bool) -> None:
        self._store = store
        self._ranges = ranges
        self._prev_kv = prev_kv
        self._closed = False
        self._progress_asked = False

    def request_progress(self) -> None:
        """Ask for a notice of the store's revision."""
        with self._store._cond:
            self._progress_asked = True
            self._store._cond.notify_all()

    def close(self) -> None:
        """End the iteration quietly. Idempotent."""
        with self._store._cond:
            self._closed = True
            self._store._cond.notify_all()

    def __iter__(self) -> Iterator[WatchBatch]:
        store = self._store
        with store._cond:
            revision = store._revision
            following = [r.start_revision or revision + 1 for r in self._ranges]
        yield from (WatchBatch(i, revision, (), False) for i in range(len(self._ranges)))
        while True:
            with store._cond:
                while (
                    not self._closed
                    and not self._progress_asked
                    and not any(nxt <= store._revision for nxt in following)
                ):
                    store._cond.wait()
                if self._closed:
                    return
                batches = self._collect(following)
                if self._progress_asked:
                    self._progress_asked = False
                    batches.append(WatchBatch(None, store._revision, (), False))
            yield from batches

    def _collect(self, following: list[int]) -> list[WatchBatch]:
        """Every change not yet delivered, one batch per watch and revision (lock held)."""
        store = self._store
        batches: list[WatchBatch] = []
        for index, watched in enumerate(self._ranges):
            start = following[index]
            if start > store._revision:
                continue
            if start < store._compacted:
                error = WatchCompactedError(
                    f"the watch start revision was compacted (oldest revision left: "
                    f"{store._compacted})",
                    where=store._endpoint,
                    hint="read the range again at a current revision and watch from there",
                )
                error.compact_revision = store._compacted
                raise error
            by_revision: dict[int, list[kv_pb2.Event]] = {}
            first = bisect.bisect_left(store._log_revisions, start)
            for change in store._log[first:]:
                if _in_range(change.key, watched):
                    by_revision.setdefault(change.revision, []).append(self._event(change))
            # the log is in revision order, and so are the dict's keys
            batches += [WatchBatch(index, store._revision, e, False) for e in by_revision.values()]
            following[index] = store._revision + 1
        # each watch's batches stay in revision order; watches are merged by revision
        batches.sort(key=lambda batch: batch.events[0].kv.mod_revision)
        return batches

    def _event(self, change: _Change) -> kv_pb2.Event:
        if change.record is not None:
            event = kv_pb2.Event(type=kv_pb2.Event.PUT, kv=_message(change.record))
        else:
            event = kv_pb2.Event(
                type=kv_pb2.Event.DELETE,
                kv=kv_pb2.KeyValue(key=change.key, mod_revision=change.revision),
            )
        if self._prev_kv and change.previous is not None:
            event.prev_kv.CopyFrom(_message(change.previous))
        return event


class _Served(EtcdStore, WatchableReader, Protocol):
    """What :class:`ForwardingEtcd` wraps: a store that can also be watched."""


class ForwardingEtcd:
    """Forwards every interface call to ``inner``; subclasses override what they interleave.

    For tests that need another writer to act at a precise moment (right before a
    swap, between pages): override the method, do the interleaved thing, then call
    ``super()``. ``inner`` is an ``EtcdClient`` or a :class:`MemoryEtcd`.
    """

    def __init__(self, inner: _Served) -> None:
        self.inner = inner

    @property
    def endpoint(self) -> str:
        """The inner store's endpoint."""
        return self.inner.endpoint

    def current_revision(self) -> int:
        """Forwarded."""
        return self.inner.current_revision()

    def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
        """Forwarded."""
        return self.inner.get(key, revision=revision)

    def get_many(self, requests: Sequence[tuple[bytes, int]]) -> Sequence[KeyValue | None]:
        """Forwarded."""
        return self.inner.get_many(requests)

    def scan(
        self,
        prefix: bytes,
        *,
        revision: int | None = None,
        page_size: int = 1000,
        keys_only: bool = False,
    ) -> Iterator[Sequence[KeyValue]]:
        """Forwarded."""
        return self.inner.scan(prefix, revision=revision, page_size=page_size, keys_only=keys_only)

    def watch(
        self,
        ranges: Sequence[WatchRange],
        *,
        prev_kv: bool = False,
        progress_notify: bool = True,
    ) -> Watch:
        """Forwarded."""
        return self.inner.watch(ranges, prev_kv=prev_kv, progress_notify=progress_notify)

    def put(self, key: bytes, value: bytes) -> int:
        """Forwarded."""
        return self.inner.put(key, value)

    def put_if(self, key: bytes, value: bytes, *, mod_revision: int) -> int:
        """Forwarded."""
        return self.inner.put_if(key, value, mod_revision=mod_revision)

    def compare_and_swap(self, key: bytes, value: bytes, *, mod_revision: int) -> bool:
        """Forwarded."""
        return self.inner.compare_and_swap(key, value, mod_revision=mod_revision)

    def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
        """Forwarded."""
        return self.inner.compare_and_swap_many(items)

    def delete(self, key: bytes, *, mod_revision: int | None = None) -> bool:
        """Forwarded."""
        return self.inner.delete(key, mod_revision=mod_revision)
