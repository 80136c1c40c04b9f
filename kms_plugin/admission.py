"""Admission control and call accounting for the plugin's gRPC server.

grpcio's synchronous server hands each call to a thread pool, and two things are
invisible there. Calls wait in the pool's queue with nobody counting them, and grpc
core drops calls on its own: past its pending-request limit (1,000 by default) it
answers ``CANCELLED`` with nothing logged or counted (seen with 5,000 concurrent
calls: up to a third cancelled). The server lifts grpc core's limit and uses this
module instead:

- :class:`PluginExecutor` is the pool. It counts every call from the moment grpc
  submits it (queued or running) until its task ends, whatever happened to the call,
  so the count cannot leak, and it records whether the handler answered the caller.
- :class:`Admission` is a server interceptor, run on grpc's polling thread for each
  new call before it is queued. Past ``max_pending`` calls it hands the call to a
  handler that answers ``RESOURCE_EXHAUSTED`` at once, counted in the request metric
  and logged (rate-limited), and it tells the executor to run that refusal on a small
  pool of its own, so a refusal never waits behind the queue it is refusing to join.
- :class:`CallTracker` keeps the counts, and at shutdown tells how many calls that
  were pending at the signal (or arrived during the grace period) were answered,
  and how many were cut off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import grpc

from kms_plugin.logs import RateLimitedLog
from kms_plugin.metrics import PluginMetrics

log = logging.getLogger("kms_plugin.admission")

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: gRPC method path -> the operation label the request metric uses
OPERATIONS = {
    "/v2.KeyManagementService/Status": "status",
    "/v2.KeyManagementService/Encrypt": "encrypt",
    "/v2.KeyManagementService/Decrypt": "decrypt",
    "/v1beta1.KeyManagementService/Version": "v1beta1_version",
    "/v1beta1.KeyManagementService/Encrypt": "v1beta1_encrypt",
    "/v1beta1.KeyManagementService/Decrypt": "v1beta1_decrypt",
}


@dataclass(frozen=True)
class ShutdownReport:
    """What became of the calls a shutdown found pending or saw arrive."""

    #: calls queued or running when the signal came
    in_flight_at_signal: int
    #: of those (and of calls that arrived during the grace period): answered
    handled: int
    #: not answered: still running when the grace period ended, or cancelled while
    #: queued; their callers got CANCELLED or UNAVAILABLE
    abandoned: int


class CallTracker:
    """Counts calls from submission to the end of their pool task. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.submitted = 0
        self.finished = 0
        self._since_signal: list[int] | None = None  # [answered, unanswered]
        self._at_signal = 0

    @property
    def pending(self) -> int:
        """Calls submitted to the pool whose task has not ended (queued or running)."""
        with self._lock:
            return self.submitted - self.finished

    def submitted_one(self) -> None:
        """grpc queued one call."""
        with self._lock:
            self.submitted += 1

    def mark_answered(self) -> None:
        """The handler running on this thread delivered an answer (or an error status)."""
        self._local.answered = True

    def task_started(self) -> None:
        """A pool task begins on this thread."""
        self._local.answered = False

    def task_ended(self) -> None:
        """The pool task on this thread ended; it answered its caller or not."""
        answered = bool(getattr(self._local, "answered", False))
        self._local.answered = False
        with self._lock:
            self.finished += 1
            if self._since_signal is not None:
                self._since_signal[0 if answered else 1] += 1

    def signal(self) -> int:
        """Shutdown begins: start counting outcomes; return the calls pending now."""
        with self._lock:
            if self._since_signal is None:
                self._since_signal = [0, 0]
                self._at_signal = self.submitted - self.finished
            return self._at_signal

    def report(self) -> ShutdownReport:
        """Outcomes since :meth:`signal`; calls still running count as abandoned."""
        with self._lock:
            answered, unanswered = self._since_signal or [0, 0]
            still_running = self.submitted - self.finished
            return ShutdownReport(
                in_flight_at_signal=self._at_signal,
                handled=answered,
                abandoned=unanswered + still_running,
            )


class PluginExecutor(ThreadPoolExecutor):
    """The gRPC server's pool: counts every call task; refusals run on a side pool."""

    def __init__(self, max_workers: int, tracker: CallTracker) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="kms-rpc")
        self._tracker = tracker
        self._refusals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kms-refuse")
        self.refuse_next = threading.local()

    def submit(  # type: ignore[override]
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> Future[_T]:
        """Queue one call's task (grpc calls this from its polling thread)."""
        if getattr(self.refuse_next, "flag", False):
            # set by Admission on this same thread for the call being submitted
            self.refuse_next.flag = False
            return self._refusals.submit(fn, *args, **kwargs)
        tracker = self._tracker
        tracker.submitted_one()

        def task() -> _T:
            tracker.task_started()
            try:
                return fn(*args, **kwargs)
            finally:
                tracker.task_ended()

        return super().submit(task)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop both pools."""
        self._refusals.shutdown(wait=wait, cancel_futures=cancel_futures)
        super().shutdown(wait=wait, cancel_futures=cancel_futures)


class Admission(grpc.ServerInterceptor):  # type: ignore[misc,type-arg]
    """Refuse new calls with RESOURCE_EXHAUSTED while ``max_pending`` are queued or running."""

    def __init__(
        self,
        executor: PluginExecutor,
        tracker: CallTracker,
        max_pending: int,
        metrics: PluginMetrics | None,
    ) -> None:
        self._executor = executor
        self._tracker = tracker
        self._max_pending = max_pending
        self._metrics = metrics
        self._log = RateLimitedLog(log, burst=1, period=10.0)
        self._refused = 0
        self._lock = threading.Lock()

    @property
    def refused(self) -> int:
        """Calls refused for overload since start."""
        with self._lock:
            return self._refused

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Pass the call on, or answer RESOURCE_EXHAUSTED when too many are pending."""
        pending = self._tracker.pending
        if pending < self._max_pending:
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # unknown method: grpc answers UNIMPLEMENTED itself
        method = str(handler_call_details.method)
        operation = OPERATIONS.get(method, "other")
        with self._lock:
            self._refused += 1
            total = self._refused
        if self._metrics is not None:
            self._metrics.observe_request(operation, "resource_exhausted", 0.0)
            self._metrics.overload_refusals.inc()
        self._log.log(
            logging.WARNING, "overload",
            "overloaded: refusing new calls with RESOURCE_EXHAUSTED",
            {"pending": pending, "max_pending": self._max_pending, "operation": operation,
             "refused_total": total},
        )
        message = (
            f"secretkit-kms-plugin is overloaded ({pending} calls pending, limit "
            f"{self._max_pending}); retry later"
        )

        def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)

        self._executor.refuse_next.flag = True
        return grpc.unary_unary_rpc_method_handler(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
