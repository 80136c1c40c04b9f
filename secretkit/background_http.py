"""A small threaded HTTP server in a daemon thread (the plugin's and the monitor's endpoints).

Both serve probes and ``/metrics`` on a loopback address chosen by the operator. Each
gives a table of routes (path → a function answering ``(status, body, content type)``);
the request handling, the 404 that lists the routes and the quiet logging are here.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

TEXT = "text/plain; charset=utf-8"


class Answer(NamedTuple):
    """What one route answers."""

    status: int
    body: str | bytes
    content_type: str = TEXT


#: a route: called for each GET of its path (query string ignored)
Route = Callable[[], Answer]


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(routes: Mapping[str, Route], server_version: str,
             log: logging.Logger) -> type[BaseHTTPRequestHandler]:
    listed = ", ".join(routes)

    class Handler(BaseHTTPRequestHandler):
        sys_version = ""

        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            answer = route() if route is not None else Answer(404, f"not found: try {listed}\n")
            data = answer.body.encode() if isinstance(answer.body, str) else answer.body
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            # probes arrive every few seconds: not worth a line at the default level
            log.debug("http request", extra={"path": self.path[:100]})

    Handler.server_version = server_version
    return Handler


class BackgroundHTTPServer:
    """Serves ``routes`` on ``host:port`` (IPv4 or IPv6) from a daemon thread."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route], *, name: str,
                 server_version: str, log: logging.Logger) -> None:
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._httpd = server_class((host, port), _handler(routes, server_version, log))
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
