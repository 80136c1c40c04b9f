"""A small, read-only reader for bbolt databases (etcd's backend file and snapshots).

Only what the snapshot reader needs: pick the newest valid meta page, find a
top-level bucket, iterate its key/value pairs in key order and look one key up. The
file is memory-mapped, so reading a multi-gigabyte snapshot keeps memory flat.
Layout (go.etcd.io/bbolt, format version 2):

- page header: ``id u64, flags u16, count u16, overflow u32`` (16 bytes, little endian)
- meta page (page 0 and 1): ``magic u32, version u32, page_size u32, flags u32,
  root{pgid u64, sequence u64}, freelist u64, pgid u64, txid u64, checksum u64``;
  checksum = FNV-1a 64 of the 56 bytes before it
- branch element: ``pos u32, ksize u32, pgid u64``; leaf element: ``flags u32, pos u32,
  ksize u32, vsize u32``; ``pos`` is relative to the element itself
- a bucket is a leaf value with flag 0x01: ``root u64, sequence u64`` and, when root
  is 0, an inline page right after that header
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from secretkit.errors import FormatError, UsageError

_MAGIC = 0xED0CDAED
_VERSION = 2
_PAGE_HEADER = struct.Struct("<QHHI")
_META = struct.Struct("<IIIIQQQQQQ")
_BRANCH_ELEMENT = struct.Struct("<IIQ")
_LEAF_ELEMENT = struct.Struct("<IIII")
_BUCKET_HEADER = struct.Struct("<QQ")
_BRANCH_PAGE = 0x01
_LEAF_PAGE = 0x02
_META_PAGE = 0x04
_BUCKET_LEAF = 0x01
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MAX_DEPTH = 64


def _fnv1a64(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


class BboltReader:
    """Read-only access to one bbolt file; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = path.open("rb")
        except OSError as exc:
            raise UsageError(
                f"cannot open snapshot file: {exc.strerror}",
                where=str(path),
                hint="pass a file written by `etcdctl snapshot save` or etcd's member/snap/db",
            ) from exc
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError) as exc:
            self._file.close()
            raise FormatError(
                "snapshot file is empty or cannot be mapped", where=str(path)
            ) from exc
        self.page_size, self.root_pgid, self.txid = self._read_meta()
        self._buckets: dict[bytes, tuple[int, memoryview | None]] = {}

    def __enter__(self) -> BboltReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unmap and close the file."""
        self._map.close()
        self._file.close()

    def _read_meta(self) -> tuple[int, int, int]:
        best: tuple[int, int, int] | None = None
        # page 1 sits at the real page size, which page 0 tells; fall back to 4096
        offsets = [0]
        if len(self._map) >= _PAGE_HEADER.size + _META.size:
            page_size0 = struct.unpack_from("<I", self._map, _PAGE_HEADER.size + 8)[0]
            offsets.append(page_size0 if 512 <= page_size0 <= 1 << 20 else 4096)
        for offset in offsets:
            end = offset + _PAGE_HEADER.size + _META.size
            if end > len(self._map):
                continue
            _, flags, _, _ = _PAGE_HEADER.unpack_from(self._map, offset)
            fields = _META.unpack_from(self._map, offset + _PAGE_HEADER.size)
            magic, version, page_size, _, root, _, _, _, txid, checksum = fields
            start = offset + _PAGE_HEADER.size
            if (
                flags & _META_PAGE
                and magic == _MAGIC
                and version == _VERSION
                and _fnv1a64(self._map[start : start + 56]) == checksum
                and (best is None or txid > best[2])
            ):
                best = (page_size, root, txid)
        if best is None:
            raise FormatError(
                "not a bbolt database (no valid meta page)",
                where=str(self.path),
                hint="pass an etcd snapshot (`etcdctl snapshot save`) or member/snap/db",
            )
        return best

    def _page(self, pgid: int) -> tuple[int, int, int]:
        """(offset, flags, count) of page ``pgid``."""
        offset = pgid * self.page_size
        if offset + _PAGE_HEADER.size > len(self._map):
            raise FormatError(f"page {pgid} lies beyond the end of the file", where=str(self.path))
        _, flags, count, _ = _PAGE_HEADER.unpack_from(self._map, offset)
        return offset, flags, count

    def _bucket(self, name: bytes) -> tuple[int, memoryview | None]:
        """(root page, inline page) of the top-level bucket ``name``."""
        found = self._buckets.get(name)
        if found is not None:
            return found
        for key, value, flags in self._iter_tree(self.root_pgid, 0):
            if key == name and flags & _BUCKET_LEAF:
                root, _ = _BUCKET_HEADER.unpack_from(value, 0)
                inline = memoryview(bytes(value[_BUCKET_HEADER.size :])) if root == 0 else None
                self._buckets[name] = found = (root, inline)
                return found
        raise FormatError(
            f"bucket {name.decode(errors='replace')!r} not found",
            where=str(self.path),
            hint="is this an etcd v3 database?",
        )

    def has_bucket(self, name: bytes) -> bool:
        """True when the top-level bucket ``name`` exists."""
        try:
            self._bucket(name)
        except FormatError:
            return False
        return True

    def bucket(self, name: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Iterate ``(key, value)`` of the top-level bucket ``name`` in key order."""
        root, inline = self._bucket(name)
        if inline is not None:
            yield from self._iter_values(self._iter_inline(inline))
        else:
            yield from self._iter_values(self._iter_tree(root, 0))

    def get(self, name: bytes, key: bytes) -> bytes | None:
        """The value of ``key`` in the top-level bucket ``name`` (None: no such key).

        A B+tree descent: binary search of each branch page for the last child whose
        first key is <= ``key``, then of the leaf, so a lookup reads a few pages.
        """
        root, inline = self._bucket(name)
        if inline is not None:
            _, flags, count, _ = _PAGE_HEADER.unpack_from(inline, 0)
            return self._leaf_lookup(inline, 0, count, key)
        pgid = root
        for _ in range(_MAX_DEPTH):
            offset, flags, count = self._page(pgid)
            if flags & _LEAF_PAGE:
                return self._leaf_lookup(self._map, offset, count, key)
            if not flags & _BRANCH_PAGE:
                raise FormatError(
                    f"unexpected page type {flags:#x} at page {pgid}", where=str(self.path)
                )
            base = offset + _PAGE_HEADER.size
            low, high = 0, count  # find the last element whose key is <= key
            while high - low > 1:
                middle = (low + high) // 2
                element = base + middle * _BRANCH_ELEMENT.size
                pos, ksize, _ = _BRANCH_ELEMENT.unpack_from(self._map, element)
                if self._map[element + pos : element + pos + ksize] <= key:
                    low = middle
                else:
                    high = middle
            pgid = _BRANCH_ELEMENT.unpack_from(self._map, base + low * _BRANCH_ELEMENT.size)[2]
        raise FormatError("bbolt tree too deep (corrupt file?)", where=str(self.path))

    def _leaf_lookup(
        self, buf: mmap.mmap | memoryview, offset: int, count: int, key: bytes
    ) -> bytes | None:
        base = offset + _PAGE_HEADER.size
        low, high = 0, count
        while low < high:  # the first element whose key is >= key
            middle = (low + high) // 2
            element = base + middle * _LEAF_ELEMENT.size
            _, pos, ksize, _ = _LEAF_ELEMENT.unpack_from(buf, element)
            if bytes(buf[element + pos : element + pos + ksize]) < key:
                low = middle + 1
            else:
                high = middle
        if low == count:
            return None
        element = base + low * _LEAF_ELEMENT.size
        flags, pos, ksize, vsize = _LEAF_ELEMENT.unpack_from(buf, element)
        start = element + pos
        if bytes(buf[start : start + ksize]) != key or flags & _BUCKET_LEAF:
            return None
        value = bytes(buf[start + ksize : start + ksize + vsize])
        if len(value) != vsize:
            raise FormatError("leaf element runs past the end of the file", where=str(self.path))
        return value

    @staticmethod
    def _iter_values(
        items: Iterator[tuple[bytes, bytes, int]],
    ) -> Iterator[tuple[bytes, bytes]]:
        for key, value, flags in items:
            if not flags & _BUCKET_LEAF:  # nested buckets do not occur in etcd's "key"
                yield key, value

    def _iter_inline(self, page: memoryview) -> Iterator[tuple[bytes, bytes, int]]:
        _, flags, count, _ = _PAGE_HEADER.unpack_from(page, 0)
        if not flags & _LEAF_PAGE:
            raise FormatError("inline bucket page is not a leaf", where=str(self.path))
        yield from self._leaf_elements(page, 0, count)

    def _iter_tree(self, pgid: int, depth: int) -> Iterator[tuple[bytes, bytes, int]]:
        if depth > _MAX_DEPTH:
            raise FormatError("bbolt tree too deep (corrupt file?)", where=str(self.path))
        offset, flags, count = self._page(pgid)
        if flags & _LEAF_PAGE:
            yield from self._leaf_elements(self._map, offset, count)
        elif flags & _BRANCH_PAGE:
            base = offset + _PAGE_HEADER.size
            children = [
                _BRANCH_ELEMENT.unpack_from(self._map, base + i * _BRANCH_ELEMENT.size)[2]
                for i in range(count)
            ]
            for child in children:
                yield from self._iter_tree(child, depth + 1)
        else:
            raise FormatError(
                f"unexpected page type {flags:#x} at page {pgid}", where=str(self.path)
            )

    def _leaf_elements(
        self, buf: mmap.mmap | memoryview, offset: int, count: int
    ) -> Iterator[tuple[bytes, bytes, int]]:
        base = offset + _PAGE_HEADER.size
        unpack = _LEAF_ELEMENT.unpack_from
        size = _LEAF_ELEMENT.size
        for i in range(count):
            element = base + i * size
            flags, pos, ksize, vsize = unpack(buf, element)
            start = element + pos
            key = bytes(buf[start : start + ksize])
            value = bytes(buf[start + ksize : start + ksize + vsize])
            if len(key) != ksize or len(value) != vsize:
                raise FormatError(
                    "leaf element runs past the end of the file", where=str(self.path)
                )
            yield key, value, flags
