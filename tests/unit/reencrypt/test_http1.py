"""The lean HTTP/1.1 client against a real local socket server: bodies by length and
chunked, keep-alive, a server that closes an idle connection, Connection: close."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from secretkit.kube.http1 import Http1Pool


class Server:
    """Answers each request on a connection with the next scripted raw response."""

    def __init__(self, answers: list[bytes], close_after: int | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.answers = answers
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            served = 0
            with conn:
                reader = conn.makefile("rb")
                while self.answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    self.requests.append(head + reader.read(length))
                    conn.sendall(self.answers.pop(0))
                    served += 1
                    if self.close_after is not None and served >= self.close_after:
                        break
                reader.close()
                conn.shutdown(socket.SHUT_RDWR)


Make = Callable[..., tuple[Server, Http1Pool]]


@pytest.fixture
def pool() -> Iterator[Make]:
    made: list[tuple[Server, Http1Pool]] = []

    def make(answers: list[bytes], close_after: int | None = None) -> tuple[Server, Http1Pool]:
        server = Server(answers, close_after)
        made.append((server, Http1Pool(f"http://127.0.0.1:{server.port}", None, None,
                                       timeout=5)))
        return made[-1]

    yield make
    for server, p in made:
        p.close()
        server.sock.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_keep_alive_length_and_chunked_bodies(pool: Make) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n")
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    server, p = pool([OK, chunked, no_content, OK])
    first = p.request("GET", "/a?x=1", {"Accept": "application/json"}, None)
    assert (first.status, first.body, first.headers["content-type"]) == (
        200, b"{}", "application/json")
    assert p.request("GET", "/b", {}, None).body == b"abcdefg"
    assert p.request("DELETE", "/c", {}, None).status == 204
    sent = p.request("PATCH", "/d", {"Content-Type": "x"}, b"{}")
    assert sent.status == 200 and server.connections == 1  # one connection throughout
    assert server.requests[0].startswith(b"GET /a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert server.requests[3].endswith(b"Content-Length: 2\r\n\r\n{}")


def test_an_idle_connection_the_server_closed_is_replaced_once(pool: Make) -> None:
    server, p = pool([OK, OK, OK], close_after=1)
    for _ in range(3):
        assert p.request("GET", "/x", {}, None).status == 200
    assert server.connections == 3


def test_connection_close_and_bodies_ending_with_the_connection(pool: Make) -> None:
    until_close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    server, p = pool([until_close, OK], close_after=1)
    assert p.request("GET", "/x", {}, None).body == b"all of it"
    assert p.request("GET", "/y", {}, None).status == 200
    assert server.connections == 2


def test_nothing_listening_is_an_os_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = Http1Pool(f"http://127.0.0.1:{port}", None, None, timeout=2)
    with pytest.raises(OSError):
        p.request("GET", "/", {}, None)


@pytest.mark.parametrize("framing", [
    b"Content-Length: 12abc\r\n", b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n",
])
def test_malformed_framing_is_an_os_error_not_a_crash(pool: Make, framing: bytes) -> None:
    """A garbled answer (a proxy, a broken server) is retried like a broken connection."""
    body = b"zz\r\nabc\r\n0\r\n\r\n" if b"chunked" in framing else b""
    _server, p = pool([b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n" + body])
    with pytest.raises(OSError):
        p.request("GET", "/x", {}, None)
