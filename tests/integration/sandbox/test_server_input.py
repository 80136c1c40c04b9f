"""The stand-in's HTTP front door refuses malformed requests the way kube-apiserver
does, without tying up a connection thread: a garbled or negative Content-Length, and a
URL name with an escaped '/' (which would otherwise become an extra etcd key segment)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from secretkit.sandbox.apiserver.server import ApiServer
from tests.fixtures.servers import EtcdServer
from tests.integration.sandbox.inprocess import inprocess_apiserver

pytestmark = pytest.mark.etcd

TOKEN = "t0ken-for-tests"


@pytest.fixture(scope="module")
def server(etcd_server: EtcdServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ApiServer]:
    with inprocess_apiserver(etcd_server, tmp_path_factory.mktemp("server-input"),
                             token=TOKEN) as api:
        yield api


def _raw(api: ApiServer, request: bytes) -> bytes:
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while True:  # the server closes the connection after a refusal
            chunk = conn.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


@pytest.mark.parametrize("length", [b"-1", b"12abc", b"\xd9\xa3"])
def test_a_bad_content_length_is_a_400_and_closes(server: ApiServer, length: bytes) -> None:
    answer = _raw(server, b"PATCH /api/v1/namespaces/ns/secrets/a HTTP/1.1\r\n"
                          b"Host: x\r\nAuthorization: Bearer " + TOKEN.encode() +
                          b"\r\nContent-Length: " + length + b"\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"invalid Content-Length" in answer


@pytest.mark.parametrize("name", ["a%2Fb", "..", "%2e%2e"])
def test_a_name_that_is_not_a_path_segment_is_a_400(server: ApiServer, name: str) -> None:
    answer = _raw(server, f"GET /api/v1/namespaces/ns/secrets/{name} HTTP/1.1\r\n"
                          f"Host: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                          "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"name may not" in answer
