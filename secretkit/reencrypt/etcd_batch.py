"""All-or-nothing multi-key compare-and-swap, for ``--via etcd`` throughput.

One etcd transaction per batch (``compare: mod_revision == r`` for every key,
``success: put`` for every key) commits up to etcd's ``--max-txn-ops`` (default
128) writes in one raft round trip, instead of one per key. If any key changed, the
transaction writes nothing and the caller falls back to one swap per key, so the
concurrent writer still wins key by key.

``secretkit.etcd.EtcdClient`` has no public multi-key swap yet: a client that offers
``compare_and_swap_many(items) -> bool`` is used as is; otherwise the batch is sent
through the client's transaction helper (same connection, failover, auth and error
translation as its single-key swap), and without either the batch is reported as
not applied so that single-key swaps are used.
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
    if callable(public):
        return bool(public(items))
    txn = getattr(store, "_txn", None)
    guard = getattr(store, "_guard", None)
    if not (callable(txn) and callable(guard)):
        return False
    from secretkit._proto.etcd import rpc_pb2

    request = rpc_pb2.TxnRequest(
        compare=[guard(key, mod_revision) for key, _, mod_revision in items],
        success=[
            rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))
            for key, value, _ in items
        ],
    )
    return bool(txn(request, "compare-and-swap (batch)").succeeded)
