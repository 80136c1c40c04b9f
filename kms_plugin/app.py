"""Wire a validated :class:`~kms_plugin.config.PluginConfig` into a running daemon."""

from __future__ import annotations

import logging
import os
import threading

from kms_plugin.config import PluginConfig
from kms_plugin.logs import configure_logging
from kms_plugin.metrics import PluginMetrics
from kms_plugin.sd_notify import notify
from kms_plugin.server import PluginServer
from kms_plugin.service import PluginService, StatusPolicy
from secretkit.backends import build_backend
from secretkit.backends.interface import KeyBackend
from secretkit.errors import ConfigError, UsageError

log = logging.getLogger("kms_plugin")


def build_backend_for(config: PluginConfig) -> KeyBackend:
    """Build the configured backend; definition errors become usage errors (exit 2)."""
    try:
        return build_backend(config.backend, where="backend", base_dir=config.base_dir)
    except ConfigError as exc:
        raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None


def run(config: PluginConfig) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully and return."""
    configure_logging(config.log_format, config.log_level)
    backend = build_backend_for(config)
    try:
        metrics = PluginMetrics()
        service = PluginService(
            backend,
            policy=StatusPolicy(
                ttl_seconds=config.status_ttl,
                failure_ttl_seconds=min(5.0, config.status_ttl),
                grace_seconds=config.status_grace,
            ),
            metrics=metrics,
        )
        server = PluginServer(config, service, metrics)
        # a signal during start-up must still end in a clean stop, not a default kill
        server.install_signal_handlers()
        server.start()
        # the socket accepts connections now: a Type=notify unit becomes active here,
        # so kube-apiserver ordered After= it finds the socket
        notify("READY=1", f"STATUS=serving {config.listen.endpoint}", f"MAINPID={os.getpid()}")
        # warm the Status cache (and log the key_id) without delaying the socket:
        # the apiserver may start before the backend is reachable
        threading.Thread(target=service.probe, name="first-probe", daemon=True).start()
        server.serve_until_signal(on_signal=lambda: notify("STOPPING=1"))
    finally:
        backend.close()
