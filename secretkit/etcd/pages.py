"""Linear-time paged reads of a large etcd range (etcd 3.5 counts the rest on every page).

How :meth:`secretkit.etcd.EtcdClient.scan` reads, and so every whole-prefix scan of
a live etcd: the audit, the rotation gates, re-encryption, the monitor.

etcd 3.5 answers a ``Range`` with ``limit`` by walking *every* key from the page start
to ``range_end`` to fill in ``count``. Paging 200,000 keys 1,000 at a time therefore
visits ~20 million index entries (measured: the first page costs 20x the last; see
docs/benchmarks/audit.md). A keys-only pass to find page boundaries avoids the walk
but costs nearly a full read, because etcd 3.5 reads every value from bbolt even for
``keys_only``.

This reader needs neither: each request asks for ``[start, end)`` with ``limit``,
where ``end`` is a *guess* that should hold about ``page_size`` keys. Keys are
treated as big-endian numbers of a fixed width, and the guess is ``start + step``;
the ``count`` etcd returns for the request says how many keys the guessed range
held, so ``step`` is rescaled after every page to aim at ``page_size`` keys. The
guess only affects speed, never the result: each range is read to its end (or, when
it holds more than ``limit`` keys, up to the last key returned, and the next request
starts right after it), so consecutive requests cover the prefix without gaps or
overlap, in key order, all at the one pinned revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from secretkit._proto.etcd import rpc_pb2
from secretkit.etcd.errors import EtcdResponseTooLargeError
from secretkit.etcd.interface import KeyValue
from secretkit.etcd.keys import prefix_range_end

#: one Range RPC (``EtcdClient.range_raw``): request and operation name -> response
RangeCall = Callable[[rpc_pb2.RangeRequest, str], rpc_pb2.RangeResponse]

#: key width (bytes) of the numeric view of keys; widened when a longer key shows up
_MIN_WIDTH = 128
#: how much one page may grow the step when a guessed range held few keys
_MAX_GROWTH = 16
#: growth after an empty guess: one byte's worth, so sparse key spaces are crossed fast
_EMPTY_GROWTH = 256


class _Stepper:
    """Guesses range ends that hold about ``target`` keys (see the module docstring)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.width = _MIN_WIDTH
        self.step = 0  # 0: no estimate yet (the first request reads to the real end)

    def _number(self, key: bytes) -> int:
        if len(key) > self.width:
            # rescale the step to the wider view so the estimate carries over
            extra = len(key) + 16 - self.width
            self.step <<= 8 * extra
            self.width += extra
        return int.from_bytes(key.ljust(self.width, b"\x00"), "big")

    def end_after(self, start: bytes, end: bytes) -> bytes:
        """A range end strictly after ``start``, at most ``end``."""
        if self.step <= 0:
            return end
        guess = self._number(start) + self.step
        if guess >= 1 << (8 * self.width):
            return end
        # padding ``start`` with zero bytes keeps it <= its numeric view, so guess > start
        candidate = guess.to_bytes(self.width, "big").rstrip(b"\x00")
        return candidate if candidate < end else end

    def learn(self, start: bytes, stop: bytes, count: int, keys: Sequence[KeyValue]) -> None:
        """Rescale the step after ``[start, stop)`` held ``count`` keys, ``keys`` read.

        A page cut short by ``limit`` measures the local key density directly (keys
        cluster: a namespace's names differ only in their last bytes, so the density
        of a whole guessed range says little about the next page); an empty or
        short range widens the step.
        """
        if len(keys) > 1 and (self.step <= 0 or count > len(keys)):
            span = self._number(keys[-1].key) - self._number(keys[0].key)
            self.step = max(1, span * self.target // (len(keys) - 1))
        elif self.step <= 0:
            return
        elif count == 0:
            self.step *= _EMPTY_GROWTH
        else:
            span = self._number(stop) - self._number(start)
            self.step = max(1, min(span * self.target // count, self.step * _MAX_GROWTH))


def _read(
    call: RangeCall, start: bytes, end: bytes, revision: int, limit: int, keys_only: bool
) -> tuple[rpc_pb2.RangeResponse, int]:
    """One Range of ``[start, end)``; lowers ``limit`` while the answer is too large.

    gRPC says how large the refused answer was, so the retry asks for a page of about
    :data:`PAGE_BYTES` at once (halving instead makes etcd build several oversized
    answers when value sizes jump within a range).
    """
    while True:
        request = rpc_pb2.RangeRequest(
            key=start, range_end=end, limit=limit, revision=revision, keys_only=keys_only
        )
        try:
            return call(request, "range"), limit
        except EtcdResponseTooLargeError as exc:
            if limit == 1:
                raise
            sized = page_limit(exc.size, limit, limit) if exc.size else limit
            limit = max(1, min(sized, limit // 2))


#: bytes one page should hold: values vary from a few hundred bytes to the ~1.5 MiB
#: etcd allows (Helm release Secrets are often hundreds of KB), so the keys per
#: request follow the measured value size and memory stays flat whatever the sizes
PAGE_BYTES = 6 * 1024 * 1024
#: keys in the first request, before any value size is known (etcd allows ~1.5 MiB
#: values, so this keeps even a first page of the largest ones small)
FIRST_PAGE_KEYS = 10


def page_limit(response_bytes: int, keys: int, page_size: int) -> int:
    """Keys per request so that a page holds about :data:`PAGE_BYTES` (at most ``page_size``)."""
    if keys <= 0 or response_bytes <= 0:
        return page_size
    return max(1, min(page_size, PAGE_BYTES * keys // response_bytes))


def linear_pages(
    call: RangeCall,
    prefix: bytes,
    *,
    revision: int | None = None,
    page_size: int = 1000,
    keys_only: bool = False,
) -> Iterator[Sequence[KeyValue]]:
    """Every key/value under ``prefix`` at one revision, in key order, page by page.

    ``call`` sends one Range request (``EtcdClient.range_raw``). The revision is
    ``revision`` or the first answer's, so the scan is a consistent snapshot. Pages
    are the answers' own lists of ``mvccpb.KeyValue`` messages, not copied. No page
    holds more than ``page_size`` items, pages of large values hold fewer (about
    :data:`PAGE_BYTES` each), and pages may hold fewer for no reason visible to the
    caller: only the sequence of keys is defined. ``prefix`` must not be empty (the
    guessing needs an upper bound; ``EtcdClient.scan`` pages the whole keyspace by
    ``limit`` instead).
    """
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    if not prefix:
        raise ValueError("linear_pages needs a non-empty prefix")
    end = prefix_range_end(prefix)
    pinned = revision or 0
    limit = min(page_size, FIRST_PAGE_KEYS)
    stepper = _Stepper(limit)
    start = prefix
    while True:
        stop = stepper.end_after(start, end)
        response, limit = _read(call, start, stop, pinned, limit, keys_only)
        if not pinned:
            pinned = int(response.header.revision)
        kvs: Sequence[KeyValue] = response.kvs
        if kvs:
            # the next guesses aim at a page of the measured size
            limit = stepper.target = page_limit(response.ByteSize(), len(kvs), page_size)
        stepper.learn(start, stop, int(response.count), kvs)
        if kvs:
            yield kvs
        if response.more and kvs:
            start = kvs[-1].key + b"\x00"
        elif stop == end:
            return
        else:
            start = stop
