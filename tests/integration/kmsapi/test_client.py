"""GrpcKMSService / V1Beta1Client against a real gRPC server on a unix socket.

The server here is a minimal test servicer over a LocalBackend, so these tests pin
the client's wire behaviour (method paths, fields, error mapping) independently of
the plugin daemon.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from secretkit._proto.kms.v1beta1 import api_pb2 as v1_pb2
from secretkit._proto.kms.v1beta1 import api_pb2_grpc as v1_grpc
from secretkit._proto.kms.v2 import api_pb2 as v2_pb2
from secretkit._proto.kms.v2 import api_pb2_grpc as v2_grpc
from secretkit.backends import LocalBackend, LocalKey
from secretkit.errors import (
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
)
from secretkit.kmsapi import GrpcKMSService, V1Beta1Client, grpc_target
from secretkit.kmsapi.endpoint import UnixEndpoint

KEY_ID = "test-kek-1"


class _V2(v2_grpc.KeyManagementServiceServicer):  # type: ignore[misc]
    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.release = threading.Event()
        self.seen_uids: list[str] = []

    def Status(self, request: Any, context: Any) -> Any:
        return v2_pb2.StatusResponse(version="v2", healthz="ok", key_id=KEY_ID)

    def Encrypt(self, request: Any, context: Any) -> Any:
        self.seen_uids.append(request.uid)
        if request.plaintext == b"slow":
            self.release.wait(5)
        if request.plaintext == b"deny":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "no access to the key")
        res = self.backend.encrypt(request.plaintext)
        return v2_pb2.EncryptResponse(
            ciphertext=res.ciphertext, key_id=res.key_id, annotations={"a.example.com": b"1"}
        )

    def Decrypt(self, request: Any, context: Any) -> Any:
        assert dict(request.annotations) == {"a.example.com": b"1"}
        try:
            plain = self.backend.decrypt(request.ciphertext, key_id=request.key_id)
        except BackendInvalidRequest:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot unwrap under this key_id")
        return v2_pb2.DecryptResponse(plaintext=plain)


class _V1(v1_grpc.KeyManagementServiceServicer):  # type: ignore[misc]
    def Version(self, request: Any, context: Any) -> Any:
        return v1_pb2.VersionResponse(version="v1beta1", runtime_name="test", runtime_version="0.1")

    def Encrypt(self, request: Any, context: Any) -> Any:
        return v1_pb2.EncryptResponse(cipher=request.plain[::-1])

    def Decrypt(self, request: Any, context: Any) -> Any:
        return v1_pb2.DecryptResponse(plain=request.cipher[::-1])


@pytest.fixture
def servicer() -> _V2:
    return _V2(LocalBackend([LocalKey(os.urandom(32), KEY_ID)]))


def _serve(address: str, servicer: _V2) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    v2_grpc.add_KeyManagementServiceServicer_to_server(servicer, server)
    v1_grpc.add_KeyManagementServiceServicer_to_server(_V1(), server)
    server.add_insecure_port(address)
    server.start()
    return server


@pytest.fixture
def socket_endpoint(tmp_path: Path, servicer: _V2) -> Iterator[str]:
    path = tmp_path / "kms.sock"
    server = _serve(f"unix://{path}", servicer)
    try:
        yield f"unix://{path}"
    finally:
        servicer.release.set()
        server.stop(0)


def test_v2_round_trip_over_a_unix_socket(socket_endpoint: str, servicer: _V2) -> None:
    with GrpcKMSService(socket_endpoint) as kms:
        st = kms.status()
        assert (st.version, st.healthz, st.key_id, st.healthy) == ("v2", "ok", KEY_ID, True)
        res = kms.encrypt(b"dek-seed", "uid-123")
        assert res.key_id == KEY_ID and res.annotations == {"a.example.com": b"1"}
        assert kms.decrypt(res.ciphertext, "uid-124", res.key_id, res.annotations) == b"dek-seed"
    assert servicer.seen_uids == ["uid-123"]


def test_abstract_socket(servicer: _V2) -> None:
    name = f"secretkit-test-{uuid.uuid4().hex[:10]}"
    server = _serve(f"unix-abstract:{name}", servicer)
    try:
        with GrpcKMSService(f"unix:///@{name}") as kms:
            assert kms.status().key_id == KEY_ID
    finally:
        server.stop(0)


@pytest.mark.parametrize("name", ["a%41b.sock", "q?x.sock", "h#y.sock", "all %?#.sock"])
def test_socket_paths_with_uri_characters(tmp_path: Path, servicer: _V2, name: str) -> None:
    # the server binds and the client dials through the same parsed endpoint, and
    # both reach the file the path names (gRPC parses targets as URIs)
    endpoint = UnixEndpoint(path=tmp_path / name)
    server = _serve(endpoint.grpc_target, servicer)
    try:
        assert (tmp_path / name).exists()
        with GrpcKMSService(endpoint.endpoint) as kms:
            assert kms.status().key_id == KEY_ID
    finally:
        server.stop(0)


def test_error_codes_map_to_backend_errors(socket_endpoint: str) -> None:
    with GrpcKMSService(socket_endpoint, timeout=0.5) as kms:
        res = kms.encrypt(b"seed", "u")
        with pytest.raises(BackendInvalidRequest, match="INVALID_ARGUMENT") as err:
            kms.decrypt(res.ciphertext, "u", "other-key-id", res.annotations)
        assert err.value.where == socket_endpoint
        with pytest.raises(BackendPermissionDenied, match="PERMISSION_DENIED"):
            kms.encrypt(b"deny", "u")
        with pytest.raises(BackendTimeout, match="DEADLINE_EXCEEDED"):
            kms.encrypt(b"slow", "u")


def test_nothing_listening_is_unavailable(tmp_path: Path) -> None:
    kms = GrpcKMSService(f"unix://{tmp_path}/absent.sock", timeout=1.0)
    with kms, pytest.raises(BackendUnavailable) as err:
        kms.status()
    assert err.value.hint is not None and "plugin running" in err.value.hint


def test_v1beta1_client(socket_endpoint: str) -> None:
    with V1Beta1Client(socket_endpoint) as client:
        assert client.version() == ("v1beta1", "test", "0.1")
        assert client.decrypt(client.encrypt(b"abc")) == b"abc"


@pytest.mark.parametrize(
    ("endpoint", "target"),
    [("unix:///run/kms.sock", "unix:/run/kms.sock"), ("unix:///@kms", "unix-abstract:kms")],
)
def test_grpc_target(endpoint: str, target: str) -> None:
    assert grpc_target(endpoint) == target


@pytest.mark.parametrize(
    "endpoint", ["tcp://127.0.0.1:1", "unix://relative.sock", "unix:@kms", "unix:@", ""]
)
def test_grpc_target_refuses_others(endpoint: str) -> None:
    with pytest.raises(ConfigError):
        grpc_target(endpoint)

