"""The monitor's Prometheus metrics, on a registry of its own (no global state).

The coverage table is rendered at scrape time from :class:`~secretkit.monitor.coverage.Coverage`
(a watched change only bumps an integer; no metric object is touched on the hot
path). Every label is bounded: resource/provider/key rows by ``--max-rows`` (see
:mod:`secretkit.monitor.labels`), verdicts, scan reasons, event types and error
kinds are fixed sets, and the key_id info metric holds one series per kms provider.
:data:`METRIC_NAMES` lists every family served; the alert rules and the dashboard
are tested against it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from secretkit.monitor.coverage import Coverage
from secretkit.monitor.labels import VERDICTS


@dataclass(frozen=True)
class WatchProgress:
    """The engine's counters, read at scrape time (no metric object on the hot path)."""

    #: every watched change up to this revision is counted
    counted: int
    #: etcd's current revision, as last seen
    etcd_revision: int
    #: etcd revisions the watch is behind (an estimate, see docs/monitor.md)
    lag: int
    puts: int
    deletes: int
    #: CPU seconds of secretkit's own code applying changes (gRPC not included)
    cpu_seconds: float

PREFIX: Final = "secretkit_monitor_"

#: why a full scan ran (the ``reason`` label)
SCAN_REASONS: Final = (
    "start",
    "compacted",
    "watch_canceled",
    "config_changed",
    "key_id_changed",
    "inexact",
    "scheduled",
)

#: what went wrong (the ``kind`` label of the error counter)
ERROR_KINDS: Final = (
    "etcd_unavailable",
    "etcd_compacted",
    "etcd",
    "kms",
    "config",
    "history",
    "snapshot",
    "internal",
)

#: every metric family the exporter serves (without _total/_created suffixes)
METRIC_NAMES: Final = frozenset(
    PREFIX + name
    for name in (
        "objects",
        "stale_oldest_age_seconds",
        "internal_keys",
        "label_rows",
        "label_rows_limit",
        "overflow_objects",
        "following",
        "full_scans",
        "last_full_scan_timestamp_seconds",
        "last_full_scan_age_seconds",
        "last_full_scan_duration_seconds",
        "scan_revision",
        "watch_revision",
        "etcd_revision",
        "watch_lag_revisions",
        "watch_events",
        "watch_cpu_seconds",
        "watch_resumes",
        "errors",
        "kms_key_id_info",
        "history_values",
        "history_compacted_keys",
        "history_last_run_timestamp_seconds",
        "snapshot_values",
        "snapshot_age_seconds",
        "snapshot_last_run_timestamp_seconds",
    )
)


class _CoverageCollector(Collector):  # type: ignore[misc]
    """Renders the current coverage table and the values derived from the clock."""

    def __init__(self, metrics: MonitorMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        m = self._metrics
        now = m.clock()
        objects = GaugeMetricFamily(
            PREFIX + "objects",
            "Live objects in etcd by resource, provider, key (key name, <kms provider>/"
            "<key_id>, or -) and verdict (ok, plaintext, stale, undecryptable, unknown).",
            labels=["resource", "provider", "key", "verdict"],
        )
        oldest = GaugeMetricFamily(
            PREFIX + "stale_oldest_age_seconds",
            "Seconds since this monitor first saw stale values in the row it still "
            "counts (a lower bound on the oldest stale value's age).",
            labels=["resource", "provider", "key"],
        )
        coverage = m.coverage
        rows = coverage.snapshot() if coverage is not None else []
        for row in rows:
            labels = [row.resource, row.provider, row.key]
            for verdict in VERDICTS:
                objects.add_metric([*labels, verdict.label], row.counts[verdict])
            if row.stale_since is not None:
                oldest.add_metric(labels, max(0.0, now - row.stale_since))
        yield objects
        yield oldest
        if coverage is not None:
            yield _gauge("internal_keys", "apiserver-internal keys under the prefix "
                         "(plaintext by design; never findings).", coverage.internal)
            yield _gauge("label_rows", "Rows (resource x provider x key) in the table.",
                         len(coverage.rows.labels) - 1)
            yield _gauge("overflow_objects", "Objects counted in the <other> row because "
                         "the table was full.", coverage.rows.overflowed)
        yield _gauge("label_rows_limit", "Most rows kept before <other> (--max-rows).",
                     m.max_rows)
        if m.last_scan_at is not None:
            yield _gauge("last_full_scan_age_seconds", "Seconds since the last full scan "
                         "finished.", max(0.0, now - m.last_scan_at))
        if m.snapshot_mtime is not None:
            yield _gauge("snapshot_age_seconds", "Age of the newest snapshot in "
                         "--snapshot-dir (by its modification time).",
                         max(0.0, now - m.snapshot_mtime))
        progress = m.progress() if m.progress is not None else None
        if progress is not None:
            yield _gauge("watch_revision", "etcd revision up to which every watched change "
                         "has been counted.", progress.counted)
            yield _gauge("etcd_revision", "etcd's current revision, as last seen.",
                         progress.etcd_revision)
            yield _gauge("watch_lag_revisions", "etcd's current revision minus the revision "
                         "the watch has caught up with (an estimate).", progress.lag)
            events = CounterMetricFamily(
                PREFIX + "watch_events", "Watched changes applied, by type (put, delete).",
                labels=["type"],
            )
            events.add_metric(["put"], progress.puts)
            events.add_metric(["delete"], progress.deletes)
            yield events
            yield CounterMetricFamily(
                PREFIX + "watch_cpu_seconds",
                "CPU time secretkit's own code spent applying watched changes (verdicts and "
                "counts; gRPC's receive path not included).",
                value=progress.cpu_seconds,
            )
        info = GaugeMetricFamily(
            PREFIX + "kms_key_id_info",
            "The current key_id of each kms v2 provider (Status), value 1.",
            labels=["provider_name", "key_id"],
        )
        for name, key_id in sorted(m.key_ids.items()):
            info.add_metric([name, key_id], 1)
        yield info
        history = GaugeMetricFamily(
            PREFIX + "history_values",
            "Older values etcd still holds (not compacted) by verdict, at the last "
            "--history-every check.",
            labels=["verdict"],
        )
        snapshot = GaugeMetricFamily(
            PREFIX + "snapshot_values",
            "Values in the newest snapshot (live and older revisions) by verdict, at the "
            "last --history-every check.",
            labels=["verdict"],
        )
        for family, counts in ((history, m.history_counts), (snapshot, m.snapshot_counts)):
            if counts is not None:
                for verdict in VERDICTS:
                    family.add_metric([verdict.label], counts.get(verdict, 0))
            yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


class MonitorMetrics:
    """Everything the monitor exports; one instance per process."""

    def __init__(
        self,
        *,
        max_rows: int,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self.clock = clock
        self.max_rows = max_rows
        self._lock = threading.Lock()
        #: the table being served (swapped whole after each full scan)
        self.coverage: Coverage | None = None
        self.last_scan_at: float | None = None
        self.key_ids: dict[str, str] = {}
        self.history_counts: dict[Any, int] | None = None
        self.snapshot_counts: dict[Any, int] | None = None
        self.snapshot_mtime: float | None = None
        #: the engine's counters, read at scrape time
        self.progress: Callable[[], WatchProgress] | None = None
        self._following = False
        r = self.registry
        self.following = Gauge(
            PREFIX + "following",
            "1 while the start-up scan is done and the watch is established, else 0.",
            registry=r,
        )
        self.full_scans = Counter(
            PREFIX + "full_scans",
            "Full scans by reason (start, compacted, watch_canceled, config_changed, "
            "key_id_changed, inexact, scheduled).",
            ["reason"], registry=r,
        )
        self.last_scan = Gauge(
            PREFIX + "last_full_scan_timestamp_seconds",
            "Unix time when the last full scan finished.", registry=r,
        )
        self.last_scan_duration = Gauge(
            PREFIX + "last_full_scan_duration_seconds",
            "How long the last full scan took.", registry=r,
        )
        self.scan_revision = Gauge(
            PREFIX + "scan_revision", "etcd revision the last full scan read at.", registry=r,
        )
        self.watch_resumes = Counter(
            PREFIX + "watch_resumes",
            "Watches re-established from the last revision counted (no full scan needed).",
            registry=r,
        )
        self.errors = Counter(
            PREFIX + "errors",
            "Errors by kind (" + ", ".join(ERROR_KINDS) + ").", ["kind"], registry=r,
        )
        self.history_compacted = Gauge(
            PREFIX + "history_compacted_keys",
            "Keys whose older values end at etcd's compaction point (last history check).",
            registry=r,
        )
        self.history_last_run = Gauge(
            PREFIX + "history_last_run_timestamp_seconds",
            "Unix time when the last history check finished.", registry=r,
        )
        self.snapshot_last_run = Gauge(
            PREFIX + "snapshot_last_run_timestamp_seconds",
            "Unix time when the last snapshot check finished.", registry=r,
        )
        for reason in SCAN_REASONS:
            self.full_scans.labels(reason)
        for kind in ERROR_KINDS:
            self.errors.labels(kind)
        r.register(_CoverageCollector(self))

    def serve(self, coverage: Coverage, *, revision: int, duration: float) -> None:
        """Serve ``coverage`` (a finished full scan at ``revision``) from now on."""
        now = self.clock()
        with self._lock:
            self.coverage = coverage
            self.last_scan_at = now
        self.last_scan.set(now)
        self.last_scan_duration.set(duration)
        self.scan_revision.set(revision)

    @property
    def is_following(self) -> bool:
        """True while the start-up scan is done and the watch is established."""
        return self._following

    def set_following(self, following: bool) -> None:
        """Record whether the watch is established (the ``following`` gauge, /healthz)."""
        self._following = following
        self.following.set(1 if following else 0)

    def error(self, kind: str) -> None:
        """Count one error of ``kind`` (one of :data:`ERROR_KINDS`)."""
        self.errors.labels(kind if kind in ERROR_KINDS else "internal").inc()
