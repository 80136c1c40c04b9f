"""HTTP endpoints for kubelet probes and Prometheus: /healthz, /livez, /metrics.

* ``/healthz`` is deep: the cached Status probe (an encrypt+decrypt round trip).
* ``/livez`` only asks whether this process still serves its socket; it ignores the
  backend, so a throttled or unreachable KMS never gets the plugin restarted.
* ``/metrics`` renders the plugin's own registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kms_plugin.config import HealthAddress
from kms_plugin.metrics import PluginMetrics
from kms_plugin.service import PluginService
from secretkit.background_http import BackgroundHTTPServer

log = logging.getLogger("kms_plugin.health")


class HealthServer(BackgroundHTTPServer):
    """``/healthz``, ``/livez`` and ``/metrics`` in a daemon thread."""

    def __init__(
        self,
        address: HealthAddress,
        *,
        service: PluginService,
        metrics: PluginMetrics,
        alive: Callable[[], bool],
    ) -> None:
        super().__init__(
            address.host,
            address.port,
            _make_handler(service, metrics, alive),
            name="health-http",
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.bound[1]


def _make_handler(
    service: PluginService, metrics: PluginMetrics, alive: Callable[[], bool]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "secretkit-kms-plugin"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                probe = service.probe()
                if probe.healthy:
                    self._send(200, "ok\n")
                else:
                    self._send(503, f"unhealthy: {probe.detail}\n")
            elif path == "/livez":
                if alive():
                    self._send(200, "ok\n")
                else:
                    self._send(503, "not serving\n")
            elif path == "/metrics":
                body = generate_latest(metrics.registry)
                self._send(200, body, content_type=CONTENT_TYPE_LATEST)
            else:
                self._send(404, "not found: try /healthz, /livez or /metrics\n")

        def _send(self, code: int, body: str | bytes,
                  content_type: str = "text/plain; charset=utf-8") -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http request", extra={"path": self.path[:100]})

    return Handler
