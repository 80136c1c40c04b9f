"""/metrics with a client certificate, and which failures stop the wait at once.

A small HTTPS server on 127.0.0.1 that requires a client certificate from the test CA
(the sandbox's stand-in only knows bearer tokens) stands in for an apiserver's
/metrics: real TLS handshakes, real certificate checks.
"""

from __future__ import annotations

import base64
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from secretkit.errors import DependencyError, SafetyError, UsageError
from secretkit.rotation.verify import (
    MetricsEndpoint,
    metrics_credentials_from_kubeconfig,
    wait_for_hash,
)
from secretkit.sandbox.servers import TestPKI, free_port, generate_test_pki

HASH = "sha256:" + "ab" * 32
PAGE = (
    "apiserver_encryption_config_controller_last_config_info"
    f'{{apiserver_id_hash="sha256:00",hash="{HASH}"}} 1\n'
).encode()


class _Handler(BaseHTTPRequestHandler):
    starting = 0  # /starting answers 503 this many times first

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._answer(200, PAGE)
        elif self.path == "/forbidden":
            self._answer(403, b"forbidden")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "https://127.0.0.1:1/metrics")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/starting":
            if _Handler.starting > 0:
                _Handler.starting -= 1
                self._answer(503, b"not ready")
            else:
                self._answer(200, PAGE)
        else:
            self._answer(404, b"not found")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return generate_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: TestPKI) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca_cert)
    context.verify_mode = ssl.CERT_REQUIRED  # like an apiserver with --client-ca-file
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def _cert(pki: TestPKI, url: str) -> MetricsEndpoint:
    return MetricsEndpoint(
        url, cafile=str(pki.ca_cert), certfile=str(pki.client_cert), keyfile=str(pki.client_key)
    )


def test_a_client_certificate_is_presented(pki: TestPKI, server: str) -> None:
    url = server + "/metrics"
    assert wait_for_hash([_cert(pki, url)], HASH, timeout=5) == {url: HASH}


def test_a_kubeconfig_with_embedded_certificate_data(
    pki: TestPKI, server: str, tmp_path: Path
) -> None:
    def data(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}', "
        f"certificate-authority-data: '{data(pki.ca_cert)}'}}}}]\n"
        f"users: [{{name: u, user: {{client-certificate-data: '{data(pki.client_cert)}', "
        f"client-key-data: '{data(pki.client_key)}'}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    creds = metrics_credentials_from_kubeconfig(str(kubeconfig))
    assert creds.token is None and creds.certfile and creds.keyfile and creds.cafile
    url = server + "/metrics"
    assert wait_for_hash([MetricsEndpoint.with_credentials(url, creds)], HASH, timeout=5)


@pytest.mark.parametrize(
    ("path", "client_cert", "flag"),
    [
        ("/metrics", False, "--metrics-cert"),  # the server requires one
        ("/forbidden", True, "--metrics-kubeconfig"),
        ("/redirect", True, "redirect"),
        ("/nope", True, "--apiserver-metrics"),
    ],
)
def test_permanent_failures_stop_the_wait_at_once(
    pki: TestPKI, server: str, path: str, client_cert: bool, flag: str
) -> None:
    url = server + path
    endpoint = _cert(pki, url) if client_cert else MetricsEndpoint(url, cafile=str(pki.ca_cert))
    started = time.monotonic()
    with pytest.raises(DependencyError) as caught:
        wait_for_hash([endpoint], HASH, timeout=60, interval=0.2)
    assert time.monotonic() - started < 5
    assert flag in caught.value.diagnostics() and caught.value.where == url


def test_a_server_that_is_starting_or_down_is_waited_for(pki: TestPKI, server: str) -> None:
    _Handler.starting = 3
    url = server + "/starting"
    assert wait_for_hash([_cert(pki, url)], HASH, timeout=10, interval=0.1) == {url: HASH}
    assert _Handler.starting == 0
    down = f"https://127.0.0.1:{free_port()}/metrics"
    started = time.monotonic()
    with pytest.raises(SafetyError, match="did not load the new config in time"):
        wait_for_hash([_cert(pki, down)], HASH, timeout=1.0, interval=0.2)
    assert time.monotonic() - started >= 1.0  # connection refused: waited out


def test_bad_credential_files_are_usage_errors(pki: TestPKI, server: str) -> None:
    url = server + "/metrics"
    for endpoint in (
        MetricsEndpoint(url, cafile=str(pki.client_key)),  # not a CA
        MetricsEndpoint(url, cafile=str(pki.ca_cert), certfile=str(pki.ca_cert),
                        keyfile=str(pki.client_key)),  # key does not match
    ):
        with pytest.raises(UsageError):
            wait_for_hash([endpoint], HASH, timeout=60)
    with pytest.raises(UsageError, match="not an http"):
        wait_for_hash([MetricsEndpoint("ftp://127.0.0.1/metrics")], HASH, timeout=60)
