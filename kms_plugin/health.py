"""HTTP endpoints for kubelet probes and Prometheus: /healthz, /livez, /metrics.

* ``/healthz`` is deep: the cached Status probe (an encrypt+decrypt round trip).
* ``/livez`` only asks whether this process still serves its socket; it ignores the
  backend, so a throttled or unreachable KMS never gets the plugin restarted.
* ``/metrics`` renders the plugin's own registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kms_plugin.config import HealthAddress
from kms_plugin.metrics import PluginMetrics
from kms_plugin.service import PluginService
from secretkit.background_http import Answer, BackgroundHTTPServer

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
        def healthz() -> Answer:
            probe = service.probe()
            return Answer(200, "ok\n") if probe.healthy else Answer(
                503, f"unhealthy: {probe.detail}\n")

        def livez() -> Answer:
            return Answer(200, "ok\n") if alive() else Answer(503, "not serving\n")

        def render_metrics() -> Answer:
            return Answer(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)

        super().__init__(
            address.host,
            address.port,
            {"/healthz": healthz, "/livez": livez, "/metrics": render_metrics},
            name="health-http",
            server_version="secretkit-kms-plugin",
            log=log,
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.bound[1]
