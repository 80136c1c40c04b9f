"""The last value the stand-in saw of each key: its ``cachedExistingObject``.

kube-apiserver's ``GuaranteedUpdate`` (``k8s.io/apiserver/pkg/storage/etcd3``) starts
from the object its watch cache holds instead of reading etcd, and only reads etcd
when that guess fails: the compare-and-swap on the cached ``mod_revision`` is lost,
the update would be a no-op (a no-op is never answered from a cached state), or the
update function refused the cached object. The stand-in has no watch cache; this
table of the values its own lists, reads and writes last saw plays that part, so an
update of an object just listed needs one etcd request, as on a real apiserver.

Bounded by bytes (oldest entries go first), never authoritative: every use is
checked by etcd's compare-and-swap.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from secretkit.etcd import KeyValue

#: the table's default size: about 30,000 Secrets of 2 KiB
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class SeenValues:
    """key -> the last :class:`KeyValue` seen, least recently seen evicted first."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[bytes, KeyValue] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, kv: KeyValue) -> None:
        """Remember ``kv`` unless a newer revision of its key is already known."""
        size = len(kv.key) + len(kv.value)
        if size > self._max_bytes:
            return
        with self._lock:
            old = self._entries.get(kv.key)
            if old is not None:
                if old.mod_revision > kv.mod_revision:
                    return
                self._bytes -= len(old.key) + len(old.value)
                del self._entries[kv.key]
            self._entries[kv.key] = kv
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.key) + len(evicted.value)

    def get(self, key: bytes) -> KeyValue | None:
        """The last value seen of ``key``, if any (maybe outdated)."""
        return self._entries.get(key)

    def forget(self, key: bytes) -> None:
        """Drop what is known of ``key`` (deleted, or known to be outdated)."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.key) + len(old.value)

    def __len__(self) -> int:
        return len(self._entries)
