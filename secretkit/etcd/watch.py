"""One etcd v3 Watch stream carrying a watch per key range (``EtcdClient.watch``).

etcd sends every change of a watched range from ``start_revision`` on, in revision
order, as long as that revision is not compacted; so a consumer that remembers the
last revision it processed can resume after a broken stream without missing or
repeating a change. This module only speaks the protocol: it opens the stream,
creates the watches, merges fragmented responses and turns failures into
:class:`~secretkit.errors.EtcdError` subclasses (a compacted start revision is
:class:`EtcdCompactedError`; a lost connection is :class:`EtcdUnavailableError`).

Progress notices carry no events, only the store's revision. Those etcd sends on a
watch's own channel (``progress_notify``) follow every event of that watch up to
their revision, so they are *ordered*; the answers to :meth:`WatchStream.request_progress`
are not (etcd 3.5 before 3.5.8 sends them at once, ahead of events still queued for
a watch catching up), so they may only feed a lag estimate, never a resume point.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from secretkit._proto.etcd import rpc_pb2
from secretkit.errors import EtcdError
from secretkit.etcd.errors import (
    EtcdUnavailableError,
    WatchCompactedError,
    rpc_code,
    translate,
)
from secretkit.etcd.interface import WatchEvent
from secretkit.etcd.model import WatchBatch, WatchRange

__all__ = ["BROADCAST_ID", "WatchBatch", "WatchCompactedError", "WatchRange", "WatchStream"]

log = logging.getLogger(__name__)

#: ``WatchResponse.watch_id`` of an answer to a progress request (no watch in particular)
BROADCAST_ID = -1

_END = object()


#: opens the bidirectional call on a request iterator
Opener = Callable[[Iterator[rpc_pb2.WatchRequest]], Any]


class WatchStream:
    """A Watch RPC with one watch per :class:`WatchRange`; iterate it for batches.

    Thread-safe where it matters: :meth:`request_progress` and :meth:`close` may be
    called from any thread while another one iterates. Iteration ends quietly after
    :meth:`close`; any other end raises an :class:`~secretkit.errors.EtcdError`.
    """

    def __init__(
        self,
        opener: Opener,
        ranges: Sequence[WatchRange],
        *,
        endpoint: str,
        prev_kv: bool = False,
        progress_notify: bool = True,
        on_unavailable: Callable[[], None] | None = None,
        on_unauthenticated: Callable[[], None] | None = None,
    ) -> None:
        if not ranges:
            raise ValueError("a watch needs at least one range")
        self._opener = opener
        self.ranges = tuple(ranges)
        self.endpoint = endpoint
        self._prev_kv = prev_kv
        self._progress_notify = progress_notify
        self._on_unavailable = on_unavailable
        self._on_unauthenticated = on_unauthenticated
        self._requests: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self._call: Any = None
        self._closed = False
        self._ids: dict[int, int] = {}  # etcd watch_id -> range index

    # -- control (any thread) ---------------------------------------------------------

    def request_progress(self) -> None:
        """Ask etcd for a progress notice (an unordered one: see the module docstring)."""
        if not self._closed:
            self._requests.put(
                rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest())
            )

    def close(self) -> None:
        """End the stream; the iterating thread stops quietly. Idempotent."""
        with self._lock:
            self._closed = True
            call = self._call
        self._requests.put(_END)
        if call is not None:
            call.cancel()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the stream -------------------------------------------------------------------

    def _request_iterator(self) -> Iterator[rpc_pb2.WatchRequest]:
        for watched in self.ranges:
            yield rpc_pb2.WatchRequest(
                create_request=rpc_pb2.WatchCreateRequest(
                    key=watched.key,
                    range_end=watched.range_end,
                    start_revision=watched.start_revision,
                    progress_notify=self._progress_notify,
                    prev_kv=self._prev_kv,
                    fragment=True,
                )
            )
        while True:
            item = self._requests.get()
            if item is _END:
                return
            assert isinstance(item, rpc_pb2.WatchRequest)
            yield item

    def __iter__(self) -> Iterator[WatchBatch]:
        try:
            yield from self._batches()
        except grpc.RpcError as exc:
            if self._closed:
                return
            code = rpc_code(exc)
            if code == grpc.StatusCode.UNAVAILABLE and self._on_unavailable is not None:
                self._on_unavailable()
            if code == grpc.StatusCode.UNAUTHENTICATED and self._on_unauthenticated is not None:
                self._on_unauthenticated()  # an expired token: the next watch logs in again
            raise translate(
                exc, endpoint=self.endpoint, operation="watch", timeout=0.0
            ) from None

    def _batches(self) -> Iterator[WatchBatch]:
        with self._lock:
            if self._closed:
                return
            self._call = self._opener(self._request_iterator())
        pending: dict[int, list[WatchEvent]] = {}
        created = 0
        for response in self._call:
            watch_id = int(response.watch_id)
            if response.created:
                if created >= len(self.ranges):
                    raise EtcdError("etcd created more watches than asked", where=self.endpoint)
                self._ids[watch_id] = created
                created += 1
            if response.canceled:
                if self._closed:
                    return
                raise self._canceled(response)
            revision = int(response.header.revision)
            if watch_id == BROADCAST_ID and not response.events:
                yield WatchBatch(None, revision, (), False)
                continue
            index = self._ids.get(watch_id)
            if index is None:
                continue  # not ours (cannot happen on a stream of our own)
            if response.fragment:
                pending.setdefault(watch_id, []).extend(response.events)
                continue
            events: Sequence[WatchEvent] = response.events
            earlier = pending.pop(watch_id, None)
            if earlier is not None:
                earlier.extend(events)
                events = earlier
            # a "created" notice comes before the watch has caught up: not ordered
            yield WatchBatch(index, revision, events, not events and not response.created)
        if not self._closed:
            raise EtcdUnavailableError(
                "etcd ended the watch stream",
                where=self.endpoint,
                hint="the member may be shutting down; the watch resumes on the next endpoint",
            )

    def _canceled(self, response: Any) -> EtcdError:
        reason = str(response.cancel_reason or "").strip()
        if response.compact_revision:
            error = WatchCompactedError(
                f"the watch start revision was compacted (oldest revision left: "
                f"{int(response.compact_revision)})",
                where=self.endpoint,
                hint="read the range again at a current revision and watch from there",
            )
            error.compact_revision = int(response.compact_revision)
            return error
        return EtcdError(
            f"etcd canceled the watch: {reason or 'no reason given'}", where=self.endpoint
        )
