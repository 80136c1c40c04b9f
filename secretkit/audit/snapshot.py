"""Read the key/value history stored in an etcd snapshot (no live cluster needed).

etcd keeps every revision not yet compacted in the bbolt bucket ``key``: the bucket
key is the revision (``main u64 BE ‖ '_' ‖ sub u64 BE``, plus ``'t'`` for a deletion
tombstone) and the value is an ``mvccpb.KeyValue`` protobuf. The live value of an
etcd key is its newest revision unless that revision is a tombstone.

Two passes keep memory flat: the first remembers only the newest revision per etcd
key (key bytes + two ints), the second streams values again and yields those that
are live (and, for ``--history``, the older ones too).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from secretkit.audit.bbolt import BboltReader
from secretkit.errors import FormatError

_KEY_BUCKET = b"key"


@dataclass(frozen=True)
class SnapshotKeyValue:
    """One ``mvccpb.KeyValue`` from a snapshot (same fields as the etcd adapter's)."""

    key: bytes
    value: bytes = field(repr=False)
    create_revision: int
    mod_revision: int
    version: int


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise FormatError("truncated varint in mvccpb.KeyValue")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode_key_value(data: bytes) -> SnapshotKeyValue:
    """Decode an ``mvccpb.KeyValue`` (fields 1-6); unknown fields are skipped."""
    key = b""
    value = b""
    numbers = [0, 0, 0]  # create_revision, mod_revision, version
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            number, pos = _varint(data, pos)
            if 2 <= field <= 4:
                numbers[field - 2] = number
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise FormatError("truncated field in mvccpb.KeyValue")
            chunk = data[pos : pos + length]
            pos += length
            if field == 1:
                key = chunk
            elif field == 5:
                value = chunk
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise FormatError(f"unsupported wire type {wire} in mvccpb.KeyValue")
    return SnapshotKeyValue(key, value, numbers[0], numbers[1], numbers[2])


def _revision(bucket_key: bytes) -> tuple[int, int, bool]:
    """(main, sub, tombstone) of one ``key`` bucket key."""
    if len(bucket_key) < 17 or bucket_key[8:9] != b"_":
        raise FormatError("unexpected revision key in the etcd 'key' bucket")
    main = int.from_bytes(bucket_key[0:8], "big")
    sub = int.from_bytes(bucket_key[9:17], "big")
    return main, sub, bucket_key[17:18] == b"t"


@dataclass(frozen=True)
class SnapshotEntry:
    """A value read from a snapshot; ``live`` is False for superseded history."""

    kv: SnapshotKeyValue
    live: bool


class EtcdSnapshot:
    """An etcd snapshot (or ``member/snap/db``) opened read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader = BboltReader(path)

    def __enter__(self) -> EtcdSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the memory map."""
        self._reader.close()

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
