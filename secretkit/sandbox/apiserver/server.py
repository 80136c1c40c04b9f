"""The HTTP/1.1 server of the API stand-in and the :class:`ApiServer` that wires it up."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import select
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from secretkit.errors import SecretkitError, UsageError
from secretkit.etcd import EtcdClient, EtcdConfig
from secretkit.loopback import is_loopback_host
from secretkit.sandbox.apiserver.app import ApiApp, Response
from secretkit.sandbox.apiserver.encryption import (
    EncryptionOptions,
    EncryptionState,
    KMSFactory,
    default_kms_factory,
)
from secretkit.sandbox.apiserver.health import HealthChecks
from secretkit.sandbox.apiserver.internal import INTERVAL, InternalKeys
from secretkit.sandbox.apiserver.status import ApiError
from secretkit.sandbox.apiserver.store import ObjectStore

log = logging.getLogger(__name__)

#: request bodies larger than this are refused (the apiserver's limit is 3 MiB)
MAX_BODY = 3 * 1024 * 1024
#: request header limits (Go's net/http default is 1 MiB in total)
MAX_HEADER_LINE = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
MAX_HEADERS = 200


def read_token_file(path: Path) -> frozenset[str]:
    """Read bearer tokens: one per line, or ``--token-auth-file`` CSV (token first)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the token file: {exc.strerror}", where=str(path)) from exc
    tokens = frozenset(
        line.split(",", 1)[0].strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    if not tokens:
        raise UsageError("the token file holds no token", where=str(path),
                         hint="write one token per line")
    return tokens


def parse_bind(bind: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` and refuse anything but a loopback address."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--bind must be HOST:PORT, got {bind!r}")
    if not (is_loopback_host(host)):
        raise UsageError("the sandbox API stand-in only binds loopback addresses",
                         where=bind, hint="use 127.0.0.1:PORT")
    return host, int(port)


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def _http_date() -> str:
    """The ``Date`` header, recomputed at most once a second."""
    now = int(time.time())
    cached = _DATE_CACHE
    if cached[0] != now:
        cached[:] = [now, formatdate(now, usegmt=True)]
    return str(cached[1])


_DATE_CACHE: list[object] = [0, ""]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body are separate writes: without TCP_NODELAY, Nagle + delayed ACK
    # add ~40 ms to every keep-alive request
    disable_nagle_algorithm = True
    server: _Server

    def parse_request(self) -> bool:
        """Parse the request line and headers (HTTP/1.x only).

        A lean replacement for the standard library's parser, which reads headers
        through ``email.parser``: that cost about a third of the stand-in's CPU time
        for a no-op PATCH. Headers end up lower-cased in a plain dict.
        """
        self.command = None  # type: ignore[assignment]
        self.request_version = "HTTP/1.0"
        self.close_connection = True
        line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")  # type: ignore[attr-defined]
        self.requestline = line
        words = line.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(400, "Bad request syntax")
            return False
        self.command, self.path, self.request_version = words
        headers: dict[str, str] = {}
        total = 0
        readline = self.rfile.readline
        while True:
            raw = readline(MAX_HEADER_LINE + 1)
            total += len(raw)
            if len(raw) > MAX_HEADER_LINE or total > MAX_HEADER_BYTES or (
                    len(headers) > MAX_HEADERS):
                self.send_error(431, "Request header fields too large")
                return False
            if raw == b"\r\n" or raw == b"\n" or not raw:
                break
            name, sep, value = raw.partition(b":")
            key = name.strip().lower().decode("latin-1")
            if not sep or not key:
                self.send_error(400, "Bad header line")
                return False
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.headers = headers  # type: ignore[assignment]
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive")
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        headers: dict[str, str] = self.headers  # type: ignore[assignment]
        declared = headers.get("content-length") or "0"
        if not declared.isascii() or not declared.isdigit():
            # a negative or garbled length would read to EOF or fail mid-request
            self._send(Response(400, b'{"kind":"Status","apiVersion":"v1","status":"Failure",'
                                b'"message":"invalid Content-Length","reason":"BadRequest",'
                                b'"code":400}'))
            self.close_connection = True
            return
        length = int(declared)
        if length > MAX_BODY:
            self._send(Response(413, b'{"kind":"Status","apiVersion":"v1","status":"Failure",'
                                b'"reason":"RequestEntityTooLarge","code":413}'))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        self._send(self.server.app.handle(self.command, url.path, query, headers, body))

    def _send(self, response: Response) -> None:
        if response.stream is not None:
            self._send_stream(response)
            return
        self.log_request(response.code)
        lines = [
            f"HTTP/1.1 {response.code} {_REASONS.get(response.code, '')}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            f"Date: {_http_date()}",
        ]
        if "Cache-Control" not in response.headers:
            lines.append("Cache-Control: no-cache, private")
        lines.extend(f"{name}: {value}" for name, value in response.headers.items()
                     if name != "Content-Type")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # one write: one TLS record and one syscall for the whole answer
        self.wfile.write(head if self.command == "HEAD" else head + response.body)

    def _send_stream(self, response: Response) -> None:
        assert response.stream is not None
        self.send_response(response.code)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        try:
            for chunk in response.stream:
                if not chunk:
                    if self._client_gone():
                        return
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (ConnectionError, OSError):
            # the client went away (kubectl get -w interrupted): end this watch
            self.close_connection = True
        except ApiError as err:
            # a failure after the headers went out: say so in an ERROR event, then end
            event = json.dumps({"type": "ERROR", "object": err.body()}).encode() + b"\n"
            with contextlib.suppress(OSError):
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
            self.close_connection = True

    def _client_gone(self) -> bool:
        # during a watch the client sends nothing: a readable socket means EOF/close
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        if readable:
            self.close_connection = True
            return True
        return False

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # request lines carry names only (never bodies); keep them at debug level
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s - %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # the stdlib default backlog of 5 resets connections when many clients connect at
    # once (reencrypt --concurrency 32, kubectl in parallel)
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ApiApp) -> None:
        self.app = app
        super().__init__(address, _Handler)


@dataclass
class ApiServerConfig:
    """Everything ``secretkit sandbox apiserver`` takes on the command line."""

    etcd: EtcdConfig
    encryption_config: Path
    tokens: frozenset[str]
    bind: tuple[str, int] = ("127.0.0.1", 0)
    etcd_prefix: str = "/registry"
    options: EncryptionOptions = field(default_factory=EncryptionOptions)
    kms_factory: KMSFactory = default_kms_factory
    #: serve HTTPS with this certificate/key (PEM); plain HTTP when unset. kubectl
    #: sends bearer tokens over HTTPS only, so the sandbox always sets them.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: write the apiserver's own keys (master/peer leases, identity Lease) every this
    #: many seconds, as kube-apiserver does every 10 s; None: never
    internal_keys_interval: float | None = INTERVAL


def new_apiserver_id() -> str:
    """An identity like kube-apiserver's: ``apiserver-`` + 26 base32 characters."""
    return "apiserver-" + base64.b32encode(secrets.token_bytes(16)).decode().rstrip(
        "=").lower()


class ApiServer:
    """A running API stand-in: etcd client, encryption state and the HTTP server.

    Use as a context manager or call :meth:`start` / :meth:`close`; :attr:`url` is
    the base URL once started.
    """

    def __init__(self, config: ApiServerConfig) -> None:
        host, port = config.bind
        if not (is_loopback_host(host)):
            raise UsageError("the sandbox API stand-in only binds loopback addresses",
                             where=f"{host}:{port}")
        self.config = config
        self.apiserver_id = new_apiserver_id()
        self.encryption = EncryptionState(
            config.encryption_config, options=config.options, kms_factory=config.kms_factory,
            apiserver_id=self.apiserver_id,
        )
        self.etcd = EtcdClient(config.etcd)
        self.store = ObjectStore(self.etcd, self.encryption, config.etcd_prefix)
        health = HealthChecks(self.encryption, self._etcd_health)
        self.app = ApiApp(self.store, self.encryption, config.tokens,
                          apiserver_id=self.apiserver_id, server_address=f"{host}:{port}",
                          health=health)
        try:
            self._httpd = _Server((host, port), self.app)
        except OSError as exc:
            self.etcd.close()
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or type(exc).__name__}",
                where="--bind",
                hint="another process holds the port: choose another one (0: any free port)",
            ) from None
        scheme = "http"
        if config.tls_cert is not None and config.tls_key is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(config.tls_cert, config.tls_key)
            # handshake in the handler thread, so a slow client cannot stall accept()
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
            scheme = "https"
        bound_host, bound_port = str(self._httpd.server_address[0]), self._httpd.server_port
        self.app.server_address = f"{bound_host}:{bound_port}"
        self.url = f"{scheme}://{bound_host}:{bound_port}"
        self._thread: threading.Thread | None = None
        self.internal_keys: InternalKeys | None = None
        if config.internal_keys_interval is not None:
            self.internal_keys = InternalKeys(
                self.etcd, self.store, apiserver_id=self.apiserver_id, address=bound_host,
                port=bound_port, prefix=config.etcd_prefix,
                interval=config.internal_keys_interval)

    def _etcd_health(self) -> str | None:
        try:
            self.etcd.current_revision()
        except SecretkitError as exc:
            return f"etcd: {exc.what}"
        return None

    def _start_background(self) -> None:
        self.encryption.start()
        if self.internal_keys is not None:
            self.internal_keys.start()

    def start(self) -> ApiServer:
        """Serve in a background thread (and start KMS polling, config reload, leases)."""
        self._start_background()
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sandbox-http",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`shutdown` (or a signal)."""
        self._start_background()
        self._httpd.serve_forever()

    def shutdown(self) -> None:
        """Stop serving (safe from another thread)."""
        self._httpd.shutdown()

    def close(self) -> None:
        """Stop everything and release the port, the etcd client and KMS clients."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()
        if self.internal_keys is not None:
            self.internal_keys.stop()
        self.encryption.stop()
        self.etcd.close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
