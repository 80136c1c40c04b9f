"""All-or-nothing multi-key compare-and-swap, for ``--via etcd`` throughput.

One etcd transaction per batch (``compare: mod_revision == r`` for every key,
``success: put`` for every key) commits up to etcd's ``--max-txn-ops`` (default
128) writes in one raft round trip, instead of one per key. If any key changed, the
transaction writes nothing and the caller falls back to one swap per key, so the
concurrent writer still wins key by key.

``secretkit.etcd.EtcdClient.compare_and_swap_many`` does the transaction; a store
without it (a test double) reports the batch as not applied, so single-key swaps are
used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: etcd's default --max-txn-ops
MAX_BATCH = 128


def compare_and_swap_many(store: Any, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
    """Write every ``(key, value, mod_revision)`` or none; True when all were written."""
    if not items:
        return True
    if len(items) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} keys per transaction")
    public = getattr(store, "compare_and_swap_many", None)
    if not callable(public):
        return False  # a store without batches: the caller swaps key by key
    return bool(public(items))
