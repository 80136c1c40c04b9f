"""The older values etcd still holds for many keys, read in batches.

After a re-encryption every key has at least one older revision, often with the
plaintext or the old key in it, until etcd compacts. Reading them one ``get`` at a
time costs a round trip per value (~0.5 ms: 10 s for 20,000 keys); here each round
asks for up to :data:`BATCH` of them in one read-only Txn of range requests
(``EtcdReader.get_many``).

The walk per key is the same as one ``get(key, revision=mod_revision - 1)`` after
another: from the live value back to the key's creation (its ``version`` counts the
writes since then), stopping at etcd's compaction point. Only that stop is quiet:
any other error propagates, so a caller that must not miss an older value (the
prune gate) fails closed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from secretkit.etcd.errors import EtcdCompactedError, EtcdResponseTooLargeError
from secretkit.etcd.interface import EtcdReader, KeyValue

#: a key with the revision to read it at
_Ask = tuple[KeyValue, int]

#: older values asked for per Txn (etcd's default --max-txn-ops is 128)
BATCH = 64


class HistoryWalk:
    """Walks keys back through their older revisions; counts keys cut off by compaction."""

    def __init__(self, client: EtcdReader, *, batch: int = BATCH) -> None:
        self._client = client
        self._batch = batch
        # compaction only moves forward: revisions up to here are known to be gone
        # (etcd refuses a whole Txn for one compacted revision, so they stay out of it)
        self._compacted_upto = 0
        #: keys whose history ends at etcd's compaction point
        self.compacted = 0

    def older(self, kvs: Sequence[KeyValue]) -> Iterator[tuple[KeyValue, KeyValue]]:
        """``(live kv, older value)`` for every older value etcd holds of ``kvs``.

        Round by round: first the previous value of every key (in the
        order given), then the one before, and so on.
        """
        frontier = [(kv, kv.mod_revision - 1) for kv in kvs if _has_older(kv)]
        while frontier:
            following: list[_Ask] = []
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

    def _fetch(self, chunk: Sequence[_Ask]) -> list[KeyValue | None]:
        """Each entry's value at its revision (None: absent or compacted away)."""
        try:
            return self._fetch_once(chunk)
        except EtcdCompactedError:
            # etcd refused the Txn for some compacted revision: find the compaction
            # point once, then ask only for what is above it
            self._learn_compaction(max(rev for _, rev in chunk), chunk[0][0].key)
            try:
                return self._fetch_once(chunk)
            except EtcdCompactedError:  # etcd compacted again meanwhile
                return self._one_by_one(chunk)

    def _fetch_once(self, chunk: Sequence[_Ask]) -> list[KeyValue | None]:
        """Like :meth:`_fetch`; raises :class:`EtcdCompactedError` when etcd refuses."""
        values: list[KeyValue | None] = [None] * len(chunk)
        wanted = [i for i, (_, rev) in enumerate(chunk) if rev > self._compacted_upto]
        if wanted:
            found = self._many([chunk[i] for i in wanted])
            for index, value in zip(wanted, found, strict=True):
                values[index] = value
        self.compacted += len(chunk) - len(wanted)
        return values

    def _many(self, chunk: Sequence[_Ask]) -> list[KeyValue | None]:
        try:
            return list(self._client.get_many([(kv.key, rev) for kv, rev in chunk]))
        except EtcdResponseTooLargeError:
            if len(chunk) == 1:
                return self._one_by_one(chunk)
            # older values can be far larger than the live ones the pages were sized by
            half = len(chunk) // 2
            return self._many(chunk[:half]) + self._many(chunk[half:])

    def _one_by_one(self, chunk: Sequence[_Ask]) -> list[KeyValue | None]:
        values: list[KeyValue | None] = []
        for kv, revision in chunk:
            try:
                values.append(self._client.get(kv.key, revision=revision))
            except EtcdCompactedError:
                self.compacted += 1
                self._compacted_upto = max(self._compacted_upto, revision)
                values.append(None)
        return values

    def _learn_compaction(self, upto: int, key: bytes) -> None:
        """Raise the known compaction point to the highest refused revision <= ``upto``.

        etcd refuses a read below its compaction revision for any key, so a binary
        search with one small read per step finds it (about 20 reads, once per scan
        unless etcd compacts again meanwhile).
        """
        low = self._compacted_upto  # refused (or 0, never asked)
        if self._refused(upto, key):
            self._compacted_upto = upto
            return
        high = upto  # not refused
        while high - low > 1:
            middle = (low + high) // 2
            if self._refused(middle, key):
                low = middle
            else:
                high = middle
        self._compacted_upto = low

    def _refused(self, revision: int, key: bytes) -> bool:
        try:
            self._client.get(key, revision=revision)
        except EtcdCompactedError:
            return True
        return False


def _has_older(kv: KeyValue) -> bool:
    # version 1 is the first write since the key's creation: nothing older to read
    return bool(kv.version > 1 and kv.mod_revision - 1 >= kv.create_revision)
