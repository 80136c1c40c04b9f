"""HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` and ``/livez``.

* ``/livez``: the engine thread runs (a restart would help only if it does not);
* ``/healthz``: the start-up scan is done and the watch is established, so the
  metrics are current; 503 with the reason otherwise (scanning, etcd unreachable).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from secretkit.background_http import BackgroundHTTPServer
from secretkit.monitor.metrics import MonitorMetrics
from secretkit.monitor.options import ListenAddress

log = logging.getLogger(__name__)


class MonitorHTTPServer(BackgroundHTTPServer):
    """``/metrics``, ``/healthz`` and ``/livez`` in a daemon thread."""

    def __init__(
        self, address: ListenAddress, *, metrics: MonitorMetrics, alive: Callable[[], bool]
    ) -> None:
        super().__init__(
            address.host, address.port, _make_handler(metrics, alive), name="monitor-http"
        )

    @property
    def address(self) -> ListenAddress:
        """The bound address (the real port when 0 was asked for)."""
        return ListenAddress(*self.bound)


def _make_handler(
    metrics: MonitorMetrics, alive: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "secretkit-monitor"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/livez":
                if alive():
                    self._send(200, "ok\n")
                else:
                    self._send(503, "the monitor loop is not running\n")
            elif path == "/healthz":
                if metrics.is_following:
                    self._send(200, "ok\n")
                elif metrics.coverage is None:
                    self._send(503, "not ready: the start-up scan is not done\n")
                else:
                    self._send(503, "not ready: the etcd watch is not established\n")
            else:
                self._send(404, "not found: try /metrics, /healthz or /livez\n")

        def _send(
            self, code: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8"
        ) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http %s", self.path[:100])

    return Handler
