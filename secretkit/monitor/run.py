"""Wire one monitor process together: inputs, metrics, HTTP server, engine, schedules.

Threads: the engine (:class:`~secretkit.monitor.follow.Follower`) in the caller's
thread, the HTTP server, a scheduler (lag, config and key_id checks, periodic full
scans) and, with ``--history-every``, the history/snapshot checker. :func:`run_monitor`
returns after :meth:`Monitor.stop` (the CLI calls it on SIGTERM/SIGINT).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from secretkit.etcd.interface import WatchableReader
from secretkit.monitor.checks import run_checks
from secretkit.monitor.follow import Follower
from secretkit.monitor.http import MonitorHTTPServer
from secretkit.monitor.inputs import VerdictInputs
from secretkit.monitor.metrics import MonitorMetrics
from secretkit.monitor.options import ListenAddress, MonitorOptions

log = logging.getLogger(__name__)


class Monitor:
    """A monitor built from options and an etcd client; :meth:`run` blocks until :meth:`stop`."""

    def __init__(
        self,
        options: MonitorOptions,
        client: WatchableReader,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        options.check()
        self.options = options
        self.client = client
        self.metrics = MonitorMetrics(max_rows=options.max_rows, clock=clock)
        self.inputs = VerdictInputs(options, on_error=self.metrics.error)
        self.metrics.key_ids = dict(self.inputs.key_ids)
        self.follower = Follower(client, self.inputs, self.metrics, options, clock=clock)
        self._engine_running = False
        self._stop = threading.Event()
        self.http = MonitorHTTPServer(
            options.metrics_addr, metrics=self.metrics, alive=self._alive
        )

    @property
    def address(self) -> ListenAddress:
        """Where /metrics, /healthz and /livez are served."""
        return self.http.address

    def _alive(self) -> bool:
        return self._engine_running and not self._stop.is_set()

    def stop(self) -> None:
        """Stop the engine and the schedules (safe from a signal handler or any thread)."""
        self._stop.set()
        self.follower.stop()

    def run(self) -> None:
        """Serve until :meth:`stop`; then close the HTTP server and the KMS channels."""
        self.http.start()
        threads = [threading.Thread(target=self._schedule, name="monitor-schedule", daemon=True)]
        if self.options.history_every is not None:
            threads.append(
                threading.Thread(target=self._history, name="monitor-history", daemon=True)
            )
        for thread in threads:
            thread.start()
        self._engine_running = True
        try:
            self.follower.run()
        finally:
            self._engine_running = False
            self._stop.set()
            for thread in threads:
                thread.join(timeout=10)
            self.http.stop()
            self.inputs.close()

    def _schedule(self) -> None:
        options = self.options
        now = time.monotonic()
        next_check = now + options.check_every
        next_rescan = now + options.rescan_every if options.rescan_every else None
        while not self._stop.wait(options.lag_every):
            self.follower.tick()
            now = time.monotonic()
            if now >= next_check:
                next_check = now + options.check_every
                reason = self.inputs.poll()
                self.metrics.key_ids = dict(self.inputs.key_ids)
                if reason is not None:
                    self.follower.request_scan(reason)
            if next_rescan is not None and now >= next_rescan:
                next_rescan = now + (options.rescan_every or 0)
                self.follower.request_scan("scheduled")

    def _history(self) -> None:
        every = self.options.history_every
        assert every is not None
        # the first round once the start-up scan is done, then on the schedule
        while self.metrics.coverage is None:
            if self._stop.wait(1.0):
                return
        while not self._stop.is_set():
            with self.follower.scan_lock:
                if self._stop.is_set():
                    return
                run_checks(self.client, self.inputs, self.options, self.metrics)
            if self._stop.wait(every):
                return
