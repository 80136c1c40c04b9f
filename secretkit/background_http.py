"""A small threaded HTTP server in a daemon thread (the plugin's and the monitor's endpoints).

Both serve probes and ``/metrics`` on a loopback address chosen by the operator; the
handler class is theirs, the serving is this.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class BackgroundHTTPServer:
    """Serves ``handler`` on ``host:port`` (IPv4 or IPv6) from a daemon thread."""

    def __init__(
        self, host: str, port: int, handler: type[BaseHTTPRequestHandler], *, name: str
    ) -> None:
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._httpd = server_class((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=name, daemon=True)

    @property
    def bound(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 was asked for)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
