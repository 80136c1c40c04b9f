"""The monitor's engine: one full scan, then a watch from that revision, for ever.

* **Full scan**: the audit's reader (the etcd interface's ``scan`` at one pinned
  revision, pages prefetched) and the audit's verdicts count every in-scope value
  into a new :class:`~secretkit.monitor.coverage.Coverage`, which replaces the one
  served only when complete.
* **Watch**: from the scan's revision + 1, with ``prev_kv``, one watch per scanned
  range on one stream; each change moves one object from its old count to its new
  one, so the cost after start-up follows the changes, not the size of etcd.
* **Broken stream** (member restart, lost leader, network): the client moves to the
  next endpoint and each watch resumes after the last revision it counted; etcd
  replays every change since, so nothing is missed or counted twice. Only when that
  revision was compacted (or etcd canceled the watch) does a full scan run again;
  ``secretkit_monitor_full_scans_total{reason}`` says why.
* A changed config or key_id (checked on a schedule) also means a full scan: the
  verdicts themselves changed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from secretkit.audit.scan import prefetch
from secretkit.errors import EtcdError, SecretkitError
from secretkit.etcd.errors import EtcdCompactedError, EtcdUnavailableError
from secretkit.etcd.interface import Watch, WatchableReader
from secretkit.etcd.keys import prefix_range_end
from secretkit.etcd.model import WatchRange
from secretkit.monitor.coverage import Coverage, CoverageJudge
from secretkit.monitor.inputs import VerdictInputs, watch_prefixes
from secretkit.monitor.labels import RowTable
from secretkit.monitor.metrics import MonitorMetrics, WatchProgress
from secretkit.monitor.options import MonitorOptions

log = logging.getLogger(__name__)

#: retry delays after an error (seconds): doubled from the first up to the last
BACKOFF = (0.2, 5.0)
#: least time between two full scans asked for because counts drifted ("inexact")
INEXACT_RESCAN_INTERVAL = 600.0


class Stopped(Exception):
    """The monitor was asked to stop (internal control flow)."""


class Follower:
    """Keeps :attr:`MonitorMetrics.coverage` equal to what etcd holds (see the module doc).

    :meth:`run` blocks until :meth:`stop`; :meth:`tick` and :meth:`request_scan`
    are called from the scheduler thread.
    """

    def __init__(
        self,
        client: WatchableReader,
        inputs: VerdictInputs,
        metrics: MonitorMetrics,
        options: MonitorOptions,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._inputs = inputs
        self._metrics = metrics
        self._options = options
        self._clock = clock
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: Watch | None = None
        self._scan_reason: str | None = "start"
        self._prefixes: list[bytes] = []
        #: per watch: every change up to here is counted (the resume point)
        self._counted: list[int] = []
        #: per watch: best guess of how far the watch has seen (for the lag only)
        self._seen: list[int] = []
        self._etcd_revision = 0
        self._puts = 0
        self._deletes = 0
        self._cpu_ns = 0
        self._last_inexact_scan = float("-inf")
        #: False right after a full scan: the next watch starts, it does not resume
        self._resuming = False
        #: the scan lock: a full scan and a history check never overlap
        self.scan_lock = threading.Lock()
        self.started_at = monotonic()
        metrics.progress = self.progress

    # -- control (any thread) ---------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask :meth:`run` to return soon (ends the watch and any scan)."""
        self._stop.set()
        self._close_stream()

    def request_scan(self, reason: str) -> None:
        """Ask for a full scan (``reason`` as in ``full_scans_total``) as soon as possible."""
        with self._lock:
            if self._scan_reason is None:
                self._scan_reason = reason
        self._close_stream()

    def _close_stream(self) -> None:
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def tick(self) -> None:
        """Read etcd's revision, update the lag, ask the watch for a progress notice."""
        try:
            revision = self._client.current_revision()
        except EtcdError as exc:
            self._metrics.error(_error_kind(exc))
            return
        with self._lock:
            self._etcd_revision = max(self._etcd_revision, revision)
            stream = self._stream
        if stream is not None:
            stream.request_progress()

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Scan, then follow; recover from every etcd error; return after :meth:`stop`."""
        delay = BACKOFF[0]
        metrics = self._metrics
        while not self._stop.is_set():
            try:
                with self._lock:
                    reason = self._scan_reason
                if reason is not None:
                    metrics.set_following(False)
                    self._full_scan(reason)
                    delay = BACKOFF[0]
                if self._follow():
                    delay = BACKOFF[0]
                continue
            except Stopped:
                break
            except EtcdCompactedError as exc:
                metrics.error("etcd_compacted")
                log.warning("etcd compacted the revision the monitor needed: %s", exc.what)
                self.request_scan("compacted")
                continue
            except EtcdError as exc:
                kind = _error_kind(exc)
                metrics.error(kind)
                if "canceled the watch" in exc.what:
                    self.request_scan("watch_canceled")
                log.warning("etcd: %s (%s); retrying in %.1fs", exc.what, exc.where, delay)
            except SecretkitError as exc:
                metrics.error("kms" if "kms" in exc.what.lower() else "config")
                log.warning("%s; retrying in %.1fs", exc.what, delay)
            metrics.set_following(False)
            self._stop.wait(delay * random.uniform(0.8, 1.2))
            delay = min(BACKOFF[1], delay * 2)
        metrics.set_following(False)

    def _full_scan(self, reason: str) -> None:
        with self.scan_lock:
            started = self._monotonic()
            classifier = self._inputs.classifier()
            old = self._metrics.coverage
            coverage = Coverage(
                CoverageJudge(classifier, RowTable(self._options.max_rows)),
                clock=self._clock,
                stale_since=old.stale_dates() if old is not None else None,
            )
            prefixes = watch_prefixes(classifier, self._options.prefix)
            revision = self._client.current_revision()
            log.info("full scan (%s) at revision %d", reason, revision)
            for prefix in prefixes:
                pages = self._client.scan(
                    prefix, revision=revision, page_size=self._options.page_size
                )
                for page in prefetch(iter(pages)):
                    if self._stop.is_set():
                        raise Stopped
                    coverage.count(page)
            duration = self._monotonic() - started
            with self._lock:
                self._prefixes = prefixes
                self._counted = [revision] * len(prefixes)
                self._seen = [revision] * len(prefixes)
                self._etcd_revision = max(self._etcd_revision, revision)
                if self._scan_reason == reason:
                    self._scan_reason = None
                self._resuming = False
            self._metrics.key_ids = dict(classifier.kms_key_ids)
            self._metrics.serve(coverage, revision=revision, duration=duration)
            self._metrics.full_scans.labels(reason).inc()
            log.info("full scan done in %.1fs: %s", duration, _totals(coverage))
            if not any(coverage.totals().values()):
                # a wrong --etcd-prefix or the wrong etcd: no alert can fire on nothing
                log.warning(
                    "the full scan counted 0 objects under %s: check --etcd-prefix (the "
                    "apiserver's own flag), --resources and --endpoints",
                    self._options.prefix,
                )

    def _follow(self) -> bool:
        """Watch until the stream ends; True when the watch was established."""
        coverage = self._metrics.coverage
        assert coverage is not None
        with self._lock:
            ranges = [
                WatchRange(p, prefix_range_end(p), counted + 1)
                for p, counted in zip(self._prefixes, self._counted, strict=True)
            ]
        stream = self._client.watch(ranges, prev_kv=True)
        with self._lock:
            if self._stop.is_set() or self._scan_reason is not None:
                return False
            self._stream = stream
        created = 0
        established = False
        apply = coverage.apply
        lock = self._lock
        clock_ns = time.thread_time_ns
        try:
            for batch in stream:
                began = clock_ns()
                index = batch.watch
                revision = batch.revision
                events = batch.events
                if events:
                    assert index is not None
                    puts, deletes = apply(events)
                    last = events[-1].kv.mod_revision
                    with lock:
                        self._counted[index] = self._seen[index] = last
                        if revision > self._etcd_revision:
                            self._etcd_revision = revision
                        self._puts += puts
                        self._deletes += deletes
                    if coverage.inexact:
                        self._inexact()
                elif index is not None and batch.ordered:
                    # an ordered progress notice: everything up to it was delivered
                    with lock:
                        self._counted[index] = max(self._counted[index], revision)
                        self._seen[index] = max(self._seen[index], revision)
                        self._etcd_revision = max(self._etcd_revision, revision)
                else:
                    if index is not None:  # a watch's "created" notice
                        created += 1
                        if created == len(ranges):
                            established = True
                            self._established()
                    with lock:
                        if index is None:  # an answer to a progress request: lag only
                            self._seen = [max(s, revision) for s in self._seen]
                        self._etcd_revision = max(self._etcd_revision, revision)
                self._cpu_ns += clock_ns() - began
        finally:
            with lock:
                if self._stream is stream:
                    self._stream = None
            stream.close()
        if self._stop.is_set():
            raise Stopped
        return established

    def _established(self) -> None:
        self._metrics.set_following(True)
        if self._resuming:
            self._metrics.watch_resumes.inc()
            log.info("watch resumed on %s", self._client.endpoint)
        self._resuming = True  # the next stream is a resumption

    def progress(self) -> WatchProgress:
        """The engine's counters for the metrics (called at scrape time)."""
        with self._lock:
            counted = min(self._counted) if self._counted else 0
            seen = min(self._seen) if self._seen else 0
            return WatchProgress(
                counted=counted,
                etcd_revision=self._etcd_revision,
                lag=max(0, self._etcd_revision - seen) if self._seen else 0,
                puts=self._puts,
                deletes=self._deletes,
                cpu_seconds=self._cpu_ns / 1e9,
            )

    def _inexact(self) -> None:
        now = self._monotonic()
        if now - self._last_inexact_scan >= INEXACT_RESCAN_INTERVAL:
            self._last_inexact_scan = now
            log.warning("counts may have drifted (see docs/monitor.md); scanning again")
            self.request_scan("inexact")


def _error_kind(exc: EtcdError) -> str:
    if isinstance(exc, EtcdCompactedError):
        return "etcd_compacted"
    if isinstance(exc, EtcdUnavailableError):
        return "etcd_unavailable"
    return "etcd"


def _totals(coverage: Coverage) -> str:
    totals = coverage.totals()
    return ", ".join(f"{count} {verdict.label}" for verdict, count in totals.items())
