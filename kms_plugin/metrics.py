"""Prometheus metrics of the plugin, on a registry of its own (no global state).

Every label is bounded: operations and status classes are fixed sets, backend errors
are reduced to :func:`backend_error_class`, and the key_id info metric only ever holds
the current key_id (key_ids are not secret: etcd stores them in plaintext).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from secretkit.errors import (
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    DecryptError,
    FormatError,
)

#: sub-millisecond to multi-second: local wraps take ~0.1 ms, remote KMS ~1-100 ms
_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)


def backend_error_class(exc: BaseException) -> str:
    """Map an exception to one of a fixed set of error classes (a metric label)."""
    if isinstance(exc, BackendUnavailable):
        return "unavailable"
    if isinstance(exc, BackendTimeout):
        return "timeout"
    if isinstance(exc, BackendPermissionDenied):
        return "permission_denied"
    if isinstance(exc, BackendInvalidRequest | DecryptError | FormatError):
        return "invalid_request"
    return "other"


class PluginMetrics:
    """The plugin's metrics; one instance per process, passed to whoever records."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "secretkit_kms_plugin_requests_total",
            "gRPC requests by operation and status class.",
            ["operation", "status_class"], registry=r,
        )
        self.request_seconds = Histogram(
            "secretkit_kms_plugin_request_duration_seconds",
            "gRPC request latency by operation and status class.",
            ["operation", "status_class"], buckets=_BUCKETS, registry=r,
        )
        self.backend_seconds = Histogram(
            "secretkit_kms_plugin_backend_duration_seconds",
            "Latency of calls to the key backend.",
            ["backend", "operation"], buckets=_BUCKETS, registry=r,
        )
        self.backend_errors = Counter(
            "secretkit_kms_plugin_backend_errors_total",
            "Failed key backend calls by error class.",
            ["backend", "operation", "error_class"], registry=r,
        )
        self.probes = Counter(
            "secretkit_kms_plugin_status_probes_total",
            "Status probes (encrypt+decrypt round trips) by result: ok, masked "
            "(failed but within the grace window) or failed.",
            ["result"], registry=r,
        )
        self.in_flight = Gauge(
            "secretkit_kms_plugin_requests_in_flight",
            "gRPC requests being handled right now.", registry=r,
        )
        self.overload_refusals = Counter(
            "secretkit_kms_plugin_overload_refusals_total",
            "Calls refused with RESOURCE_EXHAUSTED because --max-pending calls were "
            "already queued or running.", registry=r,
        )
        self.pending = Gauge(
            "secretkit_kms_plugin_requests_pending",
            "gRPC calls accepted and not finished: queued for a handler thread or running.",
            registry=r,
        )
        self.malformed = Counter(
            "secretkit_kms_plugin_malformed_requests_total",
            "Requests whose body is not a valid protobuf message of the method's type "
            "(answered INVALID_ARGUMENT).", ["operation"], registry=r,
        )
        self.healthy = Gauge(
            "secretkit_kms_plugin_healthy",
            "1 when the last Status probe reported healthy, else 0.", registry=r,
        )
        self.key_id_info = Gauge(
            "secretkit_kms_plugin_key_id_info",
            "The key_id Status currently reports (value always 1).",
            ["key_id"], registry=r,
        )
        self._key_id_lock = threading.Lock()
        self._key_id: str | None = None
        # labels() takes a lock and builds a key on every call; the hot path reuses
        # the children (label sets are bounded, so these dicts stay small)
        self._request_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._backend_children: dict[tuple[str, str], Any] = {}

    def track_pending(self, count: Callable[[], int]) -> None:
        """Let the pending gauge read ``count()`` at scrape time."""
        self.pending.set_function(count)

    def observe_request(self, operation: str, status_class: str, seconds: float) -> None:
        """Count one gRPC request and its latency."""
        key = (operation, status_class)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.request_seconds.labels(*key))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_backend(
        self, backend: str, operation: str, seconds: float, error_class: str | None
    ) -> None:
        """Record one backend call; ``error_class`` is None on success."""
        key = (backend, operation)
        child = self._backend_children.get(key)
        if child is None:
            child = self.backend_seconds.labels(*key)
            self._backend_children[key] = child
        child.observe(seconds)
        if error_class is not None:
            self.backend_errors.labels(backend, operation, error_class).inc()

    def observe_probe(self, healthy: bool, clean: bool, key_id: str) -> None:
        """Record a Status probe and publish the current key_id."""
        result = "ok" if clean else "masked" if healthy else "failed"
        self.probes.labels(result).inc()
        self.healthy.set(1 if healthy else 0)
        with self._key_id_lock:
            if key_id != self._key_id:
                if self._key_id is not None:
                    self.key_id_info.remove(self._key_id)
                self.key_id_info.labels(key_id).set(1)
                self._key_id = key_id
