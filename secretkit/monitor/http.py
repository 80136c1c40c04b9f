"""HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` and ``/livez``.

* ``/livez``: the engine thread runs (a restart would help only if it does not);
* ``/healthz``: the start-up scan is done and the watch is established, so the
  metrics are current; 503 with the reason otherwise (scanning, etcd unreachable).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from secretkit.background_http import Answer, BackgroundHTTPServer
from secretkit.monitor.metrics import MonitorMetrics
from secretkit.monitor.options import ListenAddress

log = logging.getLogger(__name__)


class MonitorHTTPServer(BackgroundHTTPServer):
    """``/metrics``, ``/healthz`` and ``/livez`` in a daemon thread."""

    def __init__(
        self, address: ListenAddress, *, metrics: MonitorMetrics, alive: Callable[[], bool]
    ) -> None:
        def render_metrics() -> Answer:
            return Answer(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)

        def livez() -> Answer:
            return Answer(200, "ok\n") if alive() else Answer(
                503, "the monitor loop is not running\n")

        def healthz() -> Answer:
            if metrics.is_following:
                return Answer(200, "ok\n")
            if metrics.coverage is None:
                return Answer(503, "not ready: the start-up scan is not done\n")
            return Answer(503, "not ready: the etcd watch is not established\n")

        super().__init__(
            address.host,
            address.port,
            {"/metrics": render_metrics, "/healthz": healthz, "/livez": livez},
            name="monitor-http",
            server_version="secretkit-monitor",
            log=log,
        )

    @property
    def address(self) -> ListenAddress:
        """The bound address (the real port when 0 was asked for)."""
        return ListenAddress(*self.bound)
