"""The older values etcd still holds for many keys, read in batches.

After a re-encryption every key has at least one older revision, often with the
plaintext or the old key in it, until etcd compacts. Reading them one ``get`` at a
time costs a round trip per value (~0.5 ms: 10 s for 20,000 keys); here each round
asks for up to :data:`BATCH` of them in one read-only Txn of range requests.

The walk per key is the same as one ``get(key, revision=mod_revision - 1)`` after
another: from the live value back to the key's creation (its ``version`` counts the
writes since then), stopping at etcd's compaction point. Only that stop is quiet:
any other error propagates, so a caller that must not miss an older value (the
prune gate) fails closed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from secretkit.etcd.errors import EtcdCompactedError

#: older values asked for per Txn (etcd's default --max-txn-ops is 128)
BATCH = 64


class HistoryWalk:
    """Walks keys back through their older revisions; counts keys cut off by compaction."""

    def __init__(self, client: Any, *, batch: int = BATCH) -> None:
        self._client = client
        self._batch = batch
        self._get_many = getattr(client, "get_many", None)
        #: keys whose history ends at etcd's compaction point
        self.compacted = 0

    def older(self, kvs: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """``(live kv, older value)`` for every older value etcd holds of ``kvs``.

        Items have ``key``, ``value``, ``mod_revision``, ``create_revision`` and
        ``version``. Round by round: first the previous value of every key (in the
        order given), then the one before, and so on.
        """
        frontier = [(kv, kv.mod_revision - 1) for kv in kvs if _has_older(kv)]
        while frontier:
            following: list[tuple[Any, int]] = []
            for start in range(0, len(frontier), self._batch):
                chunk = frontier[start : start + self._batch]
                for (kv, _), older in zip(chunk, self._fetch(chunk), strict=True):
                    if older is None:
                        continue
                    yield kv, older
                    revision = older.mod_revision - 1
                    if older.version > 1 and revision >= kv.create_revision:
                        following.append((kv, revision))
            frontier = following

    def _fetch(self, chunk: Sequence[tuple[Any, int]]) -> list[Any]:
        """Each entry's value at its revision (None: absent or compacted away)."""
        if self._get_many is not None:
            try:
                found: list[Any] = self._get_many([(kv.key, rev) for kv, rev in chunk])
                return found
            except EtcdCompactedError:
                pass  # etcd refuses the whole Txn: ask key by key to see which ones
        values = []
        for kv, revision in chunk:
            try:
                values.append(self._client.get(kv.key, revision=revision))
            except EtcdCompactedError:
                self.compacted += 1
                values.append(None)
        return values


def _has_older(kv: Any) -> bool:
    # version 1 is the first write since the key's creation: nothing older to read
    return bool(kv.version > 1 and kv.mod_revision - 1 >= kv.create_revision)
