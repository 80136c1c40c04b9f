"""A lean HTTP/1.1 keep-alive client for many small requests to one API server.

urllib3 (under the official client) spends ~0.4 ms of CPU per request on URL parsing,
pool bookkeeping and ``email``-based header parsing; re-encryption sends one small
request per object, so that cost bounded it. Here each thread keeps one persistent
TLS connection and writes and reads HTTP/1.1 directly: ~0.08 ms per request.

It does only what the Kubernetes API needs: ``Content-Length`` or chunked bodies,
keep-alive, one reconnect when a kept-alive connection turns out closed. TLS comes
from the kubeconfig (CA, client certificate, server name, insecure); with a proxy
configured the caller keeps using urllib3.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

#: at most this much of a response is read (the apiserver's largest answers are lists
#: of at most a page; a bad server must not make us read forever)
MAX_RESPONSE = 512 * 1024 * 1024
_MAX_LINE = 64 * 1024


class ConnectionClosed(OSError):
    """The server closed a kept-alive connection before answering."""


@dataclass(frozen=True)
class HttpAnswer:
    """Status, headers (lower-case names) and body of one answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def tls_context(configuration: Any) -> tuple[ssl.SSLContext | None, str | None]:
    """The TLS context and server name a ``kubernetes.client.Configuration`` describes."""
    return client_tls_context(
        str(configuration.host),
        ca_file=configuration.ssl_ca_cert or None,
        insecure=not getattr(configuration, "verify_ssl", True),
        check_hostname=getattr(configuration, "assert_hostname", None) is not False,
        cert_file=configuration.cert_file or None,
        key_file=configuration.key_file or None,
        server_name=getattr(configuration, "tls_server_name", None),
    )


def client_tls_context(
    url: str, *, ca_file: str | None = None, ca_data: bytes | None = None,
    insecure: bool = False, check_hostname: bool = True, cert_file: str | None = None,
    key_file: str | None = None, server_name: str | None = None,
) -> tuple[ssl.SSLContext | None, str | None]:
    """The one TLS set-up of the API client: context and server name for ``url``
    ((None, None) for plain http). Raises OSError/ValueError for unreadable files."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None, None
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(
            cafile=ca_file, cadata=ca_data.decode("ascii") if ca_data else None)
        context.check_hostname = check_hostname
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["http/1.1"])
    return context, server_name or parts.hostname


class _Connection:
    def __init__(self, host: str, port: int, context: ssl.SSLContext | None,
                 server_name: str | None, timeout: float) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock: socket.socket = (
                context.wrap_socket(sock, server_hostname=server_name) if context else sock)
        except BaseException:
            sock.close()
            raise
        self.reader: BinaryIO = self.sock.makefile("rb")
        self.used = False

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class Http1Pool:
    """One keep-alive connection per thread to the API server at ``base_url``."""

    def __init__(self, base_url: str, context: ssl.SSLContext | None,
                 server_name: str | None, *, timeout: float) -> None:
        url = urlsplit(base_url)
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._host_header = url.netloc.rsplit("@", 1)[-1]
        self._prefix = url.path.rstrip("/")
        self._context = context
        self._server_name = server_name
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[_Connection] = []
        self._lock = threading.Lock()

    def request(self, method: str, target: str, headers: dict[str, str],
                body: bytes | None) -> HttpAnswer:
        """Send one request, reconnecting once when a reused connection was closed."""
        head = [f"{method} {self._prefix}{target} HTTP/1.1", f"Host: {self._host_header}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                # a line break would start a header of its own (a token file's content)
                raise ValueError(f"the {name} header holds a line break")
            head.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")
        for attempt in (1, 2):
            conn = self._connection()
            reused = conn.used
            try:
                conn.sock.sendall(data)
                answer = self._read(conn, method)
            except (ConnectionClosed, ConnectionError, ssl.SSLEOFError) as exc:
                self._drop(conn)
                if reused and attempt == 1:
                    continue  # the server closed an idle connection: once more, fresh
                raise OSError(f"connection to the API server lost: {type(exc).__name__}"
                              ) from None
            except BaseException:
                self._drop(conn)
                raise
            conn.used = True
            if answer.headers.get("connection", "").lower() == "close":
                self._drop(conn)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self._host, self._port, self._context, self._server_name,
                               self._timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self, conn: _Connection) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)
        conn.close()

    @staticmethod
    def _read(conn: _Connection, method: str) -> HttpAnswer:
        reader = conn.reader
        line = reader.readline(_MAX_LINE)
        if not line:
            raise ConnectionClosed("no answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise OSError("the API server's answer is not HTTP/1.1")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            raw = reader.readline(_MAX_LINE)
            if raw in (b"\r\n", b"\n"):
                break
            if not raw:
                raise ConnectionClosed("headers cut off")
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return HttpAnswer(status, headers, b"")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return HttpAnswer(status, headers, _read_chunked(reader))
        length = headers.get("content-length")
        if length is not None:
            size = _number(length, 10)
            if size > MAX_RESPONSE:
                raise OSError("the API server's answer is too large")
            body = reader.read(size)
            if len(body) != size:
                raise ConnectionClosed("body cut off")
            return HttpAnswer(status, headers, body)
        headers["connection"] = "close"  # the body ends with the connection
        return HttpAnswer(status, headers, reader.read(MAX_RESPONSE))


def _number(text: str, base: int) -> int:
    """A length from the answer's framing; a malformed one is a broken connection
    (``OSError``: retried like one), never a ValueError escaping as a crash."""
    try:
        value = int(text, base)
    except ValueError:
        raise OSError("malformed length in the API server's answer") from None
    if value < 0:
        raise OSError("negative length in the API server's answer")
    return value


def _read_chunked(reader: BinaryIO) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = reader.readline(_MAX_LINE)
        if not line:
            raise ConnectionClosed("chunked body cut off")
        size = _number(line.split(b";", 1)[0].strip().decode("latin-1") or "0", 16)
        if size == 0:
            while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > MAX_RESPONSE:
            raise OSError("the API server's answer is too large")
        chunk = reader.read(size)
        if len(chunk) != size:
            raise ConnectionClosed("chunked body cut off")
        chunks.append(chunk)
        reader.readline(_MAX_LINE)  # the CRLF after each chunk
