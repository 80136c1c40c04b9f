"""Network hygiene: credentials and DEK seeds never cross a network in clear text.

Building a backend never connects, so those tests touch no network: a Vault or AWS
KMS address that is plain ``http://`` to a non-loopback host logs a warning (the token
and unwrapped DEK seeds would travel unencrypted); loopback and https do not. The
rotation stages' apiserver /metrics poller refuses to send its bearer token over
plain http to a remote host (before connecting) and never replays it to a redirect
target (two throw-away HTTP servers on 127.0.0.1).
"""

from __future__ import annotations

import http.server
import logging
import threading
import urllib.error
from collections.abc import Iterator
from typing import cast

import pytest

from secretkit.backends import build_backend
from secretkit.errors import UsageError
from secretkit.rotation.verify import MetricsEndpoint
from secretkit.sandbox.apiserver.server import parse_bind
from tests.security import canaries as c


def _vault(address: str) -> dict[str, object]:
    return {"type": "vault", "address": address, "key": "k",
            "auth": {"method": "token", "token": c.TOKEN}}


def _aws(endpoint: str) -> dict[str, object]:
    return {"type": "aws", "key": "alias/k", "region": "us-east-1", "endpoint_url": endpoint}


@pytest.mark.parametrize(
    ("definition", "warned"),
    [
        (_vault("http://10.0.0.5:8200"), True),
        (_vault("http://vault.example.internal:8200"), True),
        (_vault("http://127.0.0.1:8200"), False),
        (_vault("http://[::1]:8200"), False),
        (_vault("http://localhost:8200"), False),
        (_vault("https://vault.example.internal:8200"), False),
        (_aws("http://kms.example.internal"), True),
        (_aws("http://127.0.0.1:5000"), False),
        (_aws("https://kms.us-east-1.amazonaws.com"), False),
    ],
)
def test_plain_http_to_a_remote_backend_is_warned_about(
    definition: dict[str, object], warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="secretkit.backends"):
        backend = build_backend(definition, where="backends.yaml:p")
    backend.close()
    warnings = [r.getMessage() for r in caplog.records if "plain http" in r.getMessage()]
    assert bool(warnings) is warned, warnings
    assert not c.leaks("\n".join(r.getMessage() for r in caplog.records), c.TOKEN)


# -- apiserver /metrics polling (rotation stages) ---------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers /metrics, redirects /moved to the other server; records Authorization."""

    seen: list[tuple[int, str | None]] = []
    redirect_to = ""

    def do_GET(self) -> None:
        port = cast(http.server.HTTPServer, self.server).server_port
        self.seen.append((port, self.headers.get("Authorization")))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        body = b'apiserver_encryption_config_controller_last_config_info{hash="sha256:ab"} 1\n'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def two_servers() -> Iterator[tuple[int, int]]:
    servers = [http.server.HTTPServer(("127.0.0.1", 0), _Recorder) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    _Recorder.seen = []
    _Recorder.redirect_to = f"http://127.0.0.1:{servers[1].server_address[1]}/metrics"
    try:
        yield servers[0].server_address[1], servers[1].server_address[1]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_metrics_token_is_never_replayed_to_a_redirect_target(
    two_servers: tuple[int, int],
) -> None:
    first, second = two_servers
    ok = MetricsEndpoint(f"http://127.0.0.1:{first}/metrics", token=c.TOKEN)
    assert 'hash="sha256:ab"' in ok.fetch()
    assert _Recorder.seen == [(first, f"Bearer {c.TOKEN}")]  # loopback http: sent
    moved = MetricsEndpoint(f"http://127.0.0.1:{first}/moved", token=c.TOKEN)
    with pytest.raises(urllib.error.HTTPError):
        moved.fetch()
    assert all(port != second for port, _ in _Recorder.seen)  # never followed


@pytest.mark.parametrize("url", ["http://10.0.0.5:6443/metrics",
                                 "http://apiserver.example.internal/metrics"])
def test_metrics_token_is_refused_over_plain_http_to_a_remote_host(url: str) -> None:
    with pytest.raises(UsageError, match="plain http") as info:
        MetricsEndpoint(url, token=c.TOKEN).fetch(timeout=0.1)
    assert not c.leaks(str(info.value) + info.value.diagnostics(), c.TOKEN)


# -- the sandbox API stand-in binds loopback only -----------------------------------------------


@pytest.mark.parametrize("bind", ["0.0.0.0:6443", "[::]:6443", "10.0.0.5:6443",
                                  "192.168.1.2:6443"])
def test_sandbox_api_bind_refuses_non_loopback(bind: str) -> None:
    with pytest.raises(UsageError, match="loopback"):
        parse_bind(bind)


def test_sandbox_api_bind_refuses_host_names_that_only_look_loopback() -> None:
    with pytest.raises(UsageError):
        parse_bind("127.0.0.1.nip.io:6443")
