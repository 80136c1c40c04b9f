"""Linear-time paged reads of a large etcd range (etcd 3.5 counts the rest on every page).

etcd 3.5 answers a ``Range`` with ``limit`` by walking *every* key from the page start
to ``range_end`` to fill in ``count``. Paging 200,000 keys 1,000 at a time therefore
visits ~20 million index entries (measured: the first page costs 20x the last; see
docs/benchmarks/audit.md). This reader avoids that in two passes at one pinned
revision:

1. a keys-only pass in large pages finds every ``page_size``-th key (a boundary);
2. values are read as bounded ranges ``[boundary_i, boundary_i+1)`` as soon as both
   ends are known, so each request walks only its own ``page_size`` keys and memory
   holds one keys-only page plus one value page.

Both passes read the same revision, so they see the same keys. Pass 2 needs a range
with an explicit end, which :meth:`EtcdClient.range_pages` does not offer yet; it uses
the client's request method and falls back to ``range_pages`` when that is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from secretkit._proto.etcd import rpc_pb2
from secretkit.etcd.errors import EtcdResponseTooLargeError
from secretkit.etcd.keys import prefix_range_end

#: keys per page of the keys-only boundary pass (keys are small: ~1 MB per page)
BOUNDARY_PAGE = 20_000

RangeCall = Callable[[rpc_pb2.RangeRequest, str], Any]


def _bounded(
    call: RangeCall,
    low: bytes,
    high: bytes,
    revision: int,
    page_size: int,
    *,
    keys_only: bool = False,
) -> Iterator[Sequence[Any]]:
    """Pages of ``[low, high)``; halves the page when a response is too large."""
    key = low
    limit = page_size
    while True:
        request = rpc_pb2.RangeRequest(
            key=key, range_end=high, limit=limit, revision=revision, keys_only=keys_only
        )
        try:
            response = call(request, "range")
        except EtcdResponseTooLargeError:
            if limit == 1:
                raise
            limit = max(1, limit // 2)
            continue
        if response.kvs:
            yield response.kvs
        if not response.more or not response.kvs:
            return
        key = response.kvs[-1].key + b"\x00"


def linear_pages(
    client: Any, prefix: bytes, *, revision: int, page_size: int
) -> Iterator[Sequence[Any]]:
    """Every key/value under ``prefix`` at ``revision``, in key order, page by page.

    Items have ``key``, ``value``, ``create_revision``, ``mod_revision`` and
    ``version`` (etcd ``mvccpb.KeyValue`` messages on the fast path). The keys-only
    pass is interleaved with the value reads, so values start flowing after the first
    keys-only page instead of after the whole pass.
    """
    call: RangeCall | None = getattr(client, "range_raw", None)
    if call is None:
        yield from client.range_pages(prefix, revision=revision, page_size=page_size)
        return
    end = prefix_range_end(prefix)
    low: bytes | None = None  # start of the value range not read yet
    seen = 0
    keys = _bounded(call, prefix, end, revision, max(BOUNDARY_PAGE, page_size), keys_only=True)
    for page in keys:
        for kv in page:
            if seen % page_size == 0:
                if low is not None:
                    yield from _bounded(call, low, kv.key, revision, page_size)
                low = kv.key
            seen += 1
    if low is not None:
        yield from _bounded(call, low, end, revision, page_size)
