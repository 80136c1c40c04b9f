"""An etcd snapshot file (or ``member/snap/db``) read as an etcd: no live cluster needed.

etcd keeps every revision not yet compacted in the bbolt bucket ``key``: the bucket
key is the revision (``main u64 BE ‖ '_' ‖ sub u64 BE``, plus ``'t'`` for a deletion
tombstone) and the value is an ``mvccpb.KeyValue`` protobuf. The live value of an
etcd key is its newest revision unless that revision is a tombstone. The bucket
``meta`` says up to which revision etcd compacted (``finishedCompactRev``, and
``scheduledCompactRev`` for one that was still running).

Two ways to read it:

* :meth:`EtcdSnapshot.entries`, for the audit and the monitor: every value under a
  prefix in revision order, live ones and (``history``) every older one etcd still
  held, deleted keys' included. Two passes keep memory flat: the first remembers
  only the newest revision per etcd key (key bytes + two ints), the second streams
  values again and yields the wanted ones.
* :class:`~secretkit.etcd.interface.EtcdReader` (``current_revision``, ``get``,
  ``get_many``, ``scan``), like a live etcd frozen at the snapshot's revision:
  anything that reads an etcd can read a snapshot. The first such call indexes
  every retained revision per key (memory grows with the revisions held, about 50
  bytes each); values are then looked up in the bbolt tree one by one.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from secretkit.core.formats.protowire import (
    WIRE_FIXED32,
    WIRE_FIXED64,
    WIRE_LEN,
    WIRE_VARINT,
    iter_fields,
    read_varint,
)
from secretkit.errors import FormatError
from secretkit.etcd.bbolt import BboltReader
from secretkit.etcd.errors import compacted_error, future_revision_error
from secretkit.etcd.interface import MAX_TXN_OPS
from secretkit.etcd.keys import ALL_KEYS, prefix_range_end
from secretkit.etcd.model import KeyValueRecord

_MESSAGE = "mvccpb.KeyValue"
_KEY_BUCKET = b"key"
_META_BUCKET = b"meta"
_COMPACT_KEYS = (b"finishedCompactRev", b"scheduledCompactRev")

#: one retained revision of a key in the index: ``main << 32 | sub << 1 | tombstone``
#: (``sub`` numbers the writes of one transaction: far below 2**31)
_SUB_BITS = 32


def decode_key_value(data: bytes) -> KeyValueRecord:
    """Decode an ``mvccpb.KeyValue`` (fields 1-5 read; lease and unknown fields skipped).

    Called for every revision of a snapshot (twice per :meth:`EtcdSnapshot.entries`),
    so the loop is written out here (like :func:`~secretkit.core.formats.protowire.iter_fields`,
    whose generator costs a third more per record) around protowire's varint reader.
    """
    key = value = b""
    numbers = [0, 0, 0]  # create_revision, mod_revision, version
    pos = 0
    end = len(data)
    while pos < end:
        tag = data[pos]
        if tag < 0x80:  # one-byte tags: every field of this message
            pos += 1
        else:
            tag, pos = read_varint(data, pos, where=_MESSAGE)
        number, wire = tag >> 3, tag & 7
        if wire == WIRE_VARINT:
            field, pos = read_varint(data, pos, where=_MESSAGE)
            if 2 <= number <= 4:
                numbers[number - 2] = field
        elif wire == WIRE_LEN:
            length, pos = read_varint(data, pos, where=_MESSAGE)
            if length > end - pos:
                raise FormatError(f"truncated field {number}", where=_MESSAGE)
            if number == 1:
                key = data[pos : pos + length]
            elif number == 5:
                value = data[pos : pos + length]
            pos += length
        elif wire == WIRE_FIXED64:
            pos += 8
        elif wire == WIRE_FIXED32:
            pos += 4
        else:
            raise FormatError(f"unsupported wire type {wire}", where=_MESSAGE)
    if pos > end:
        raise FormatError("truncated fixed-size field", where=_MESSAGE)
    return KeyValueRecord(key, value, numbers[0], numbers[1], numbers[2])


def _key_of(data: bytes) -> bytes:
    """The key of an ``mvccpb.KeyValue`` without copying its value."""
    for number, _, field in iter_fields(data, where=_MESSAGE):
        if number == 1 and isinstance(field, memoryview):
            return bytes(field)
    return b""


def _revision(bucket_key: bytes) -> tuple[int, int, bool]:
    """(main, sub, tombstone) of one ``key`` bucket key."""
    if len(bucket_key) < 17 or bucket_key[8:9] != b"_":
        raise FormatError("unexpected revision key in the etcd 'key' bucket")
    main = int.from_bytes(bucket_key[0:8], "big")
    sub = int.from_bytes(bucket_key[9:17], "big")
    return main, sub, bucket_key[17:18] == b"t"


def _bucket_key(main: int, sub: int, tombstone: bool) -> bytes:
    return main.to_bytes(8, "big") + b"_" + sub.to_bytes(8, "big") + (b"t" if tombstone else b"")


@dataclass(frozen=True)
class SnapshotEntry:
    """A value read from a snapshot; ``live`` is False for superseded history."""

    kv: KeyValueRecord
    live: bool


class EtcdSnapshot:
    """An etcd snapshot opened read-only; an :class:`~secretkit.etcd.interface.EtcdReader`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader = BboltReader(path)
        #: per key, its retained revisions in order (built on the first reader call)
        self._index: dict[bytes, list[int]] | None = None
        self._keys: list[bytes] = []
        self._revision = 0
        self._compacted = 0

    def __enter__(self) -> EtcdSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the memory map."""
        self._reader.close()

    # -- the whole history, in revision order -------------------------------------------

    def _newest(self, prefix: bytes) -> tuple[dict[bytes, tuple[int, int, bool]], int]:
        newest: dict[bytes, tuple[int, int, bool]] = {}
        revision = 0
        for bucket_key, raw in self._reader.bucket(_KEY_BUCKET):
            main, sub, tombstone = _revision(bucket_key)
            revision = max(revision, main)
            kv = decode_key_value(raw)
            if kv.key.startswith(prefix):
                # bucket keys come in revision order, so the last one seen wins
                newest[kv.key] = (main, sub, tombstone)
        return newest, revision

    def entries(
        self, prefix: bytes, *, history: bool = False
    ) -> tuple[int, Iterator[SnapshotEntry]]:
        """(newest revision, iterator of live values under ``prefix``, plus history).

        History values are those superseded by a newer revision of the same key, and
        values of keys deleted since; tombstones themselves are never yielded.
        """
        newest, revision = self._newest(prefix)

        def generate() -> Iterator[SnapshotEntry]:
            for bucket_key, raw in self._reader.bucket(_KEY_BUCKET):
                main, sub, tombstone = _revision(bucket_key)
                if tombstone:
                    continue
                kv = decode_key_value(raw)
                latest = newest.get(kv.key)
                if latest is None:
                    continue
                live = latest[0] == main and latest[1] == sub and not latest[2]
                if live or history:
                    yield SnapshotEntry(kv, live)

        return revision, generate()

    # -- the etcd reader ------------------------------------------------------------------

    def _built(self) -> dict[bytes, list[int]]:
        """The per-key revision index (one pass over the ``key`` bucket, first call only)."""
        if self._index is not None:
            return self._index
        index: dict[bytes, list[int]] = {}
        revision = 0
        for bucket_key, raw in self._reader.bucket(_KEY_BUCKET):
            main, sub, tombstone = _revision(bucket_key)
            revision = max(revision, main)
            # bucket keys come in revision order, so each list stays sorted
            index.setdefault(_key_of(raw), []).append(main << _SUB_BITS | sub << 1 | tombstone)
        compacted = self._compaction_point()
        self._keys = sorted(index)
        # etcd starts at revision 1; a compaction of the newest revision removes its
        # tombstones, so the compaction point also bounds the revision from below
        self._revision = max(revision, compacted, 1)
        self._compacted = compacted
        self._index = index
        return index

    def _compaction_point(self) -> int:
        point = 0
        if not self._reader.has_bucket(_META_BUCKET):
            return 0
        for name in _COMPACT_KEYS:
            raw = self._reader.get(_META_BUCKET, name)
            if raw:
                # a compaction still scheduled may have removed some of its revisions
                point = max(point, _revision(raw)[0])
        return point

    def _pinned(self, revision: int | None) -> int:
        self._built()
        if not revision:
            return self._revision
        if revision < self._compacted:
            raise compacted_error(revision, where=str(self.path))
        if revision > self._revision:
            raise future_revision_error(revision, where=str(self.path))
        return revision

    def _at(self, key: bytes, revision: int, keys_only: bool = False) -> KeyValueRecord | None:
        revisions = self._built().get(key)
        if not revisions:
            return None
        # the last retained revision whose main revision is <= ``revision``
        found = bisect.bisect_left(revisions, (revision + 1) << _SUB_BITS) - 1
        if found < 0:
            return None
        packed = revisions[found]
        if packed & 1:
            return None  # deleted at that revision
        main, sub = packed >> _SUB_BITS, (packed >> 1) & ((1 << (_SUB_BITS - 1)) - 1)
        raw = self._reader.get(_KEY_BUCKET, _bucket_key(main, sub, False))
        if raw is None:
            raise FormatError(
                f"revision {main} of an indexed key is missing from the 'key' bucket",
                where=str(self.path),
            )
        kv = decode_key_value(raw)
        if keys_only:
            return KeyValueRecord(kv.key, b"", kv.create_revision, kv.mod_revision, kv.version)
        return kv

    def current_revision(self) -> int:
        """The revision the snapshot was taken at."""
        self._built()
        return self._revision

    def get(self, key: bytes, *, revision: int | None = None) -> KeyValueRecord | None:
        """The key as of ``revision`` (default: the snapshot's), None when absent then."""
        return self._at(key, self._pinned(revision))

    def get_many(self, requests: Sequence[tuple[bytes, int]]) -> list[KeyValueRecord | None]:
        """Each ``(key, revision)``'s value; all refused when any revision is compacted."""
        if len(requests) > MAX_TXN_OPS:
            raise ValueError(f"get_many takes at most {MAX_TXN_OPS} requests")
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
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        return self._scan(prefix, revision, page_size, keys_only)

    def _scan(
        self, prefix: bytes, revision: int | None, page_size: int, keys_only: bool
    ) -> Iterator[list[KeyValueRecord]]:
        pinned = self._pinned(revision)
        end = prefix_range_end(prefix)
        index = bisect.bisect_left(self._keys, prefix if prefix else ALL_KEYS)
        page: list[KeyValueRecord] = []
        for key in self._keys[index:]:
            if end != ALL_KEYS and key >= end:
                break
            kv = self._at(key, pinned, keys_only)
            if kv is None:
                continue
            page.append(kv)
            if len(page) == page_size:
                yield page
                page = []
        if page:
            yield page
