"""Key-range arithmetic of etcd's v3 API (pure functions)."""

from __future__ import annotations

#: range_end meaning "every key >= key" (and, with key = b"\0", the whole keyspace)
ALL_KEYS = b"\x00"


def prefix_range_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects exactly the keys starting with ``prefix``.

    Like etcd's ``GetPrefixRangeEnd``: drop trailing 0xff bytes and increment the
    last remaining byte; a prefix of only 0xff bytes (or the empty prefix) has no
    upper bound, which etcd spells ``b"\\0"``.
    """
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return ALL_KEYS
    end[-1] += 1
    return bytes(end)


def next_key(key: bytes) -> bytes:
    """The smallest key strictly greater than ``key``."""
    return key + b"\x00"
