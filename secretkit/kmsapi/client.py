"""gRPC clients for a running KMS plugin (v2, and v1beta1 for tests).

:class:`GrpcKMSService` has the :class:`~secretkit.core.kms_service.KMSService` shape, so the
transformer chain, the audit and the sandbox API stand-in can talk to a real plugin
exactly as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import grpc

from secretkit._proto.kms.v1beta1 import api_pb2 as v1beta1_pb2
from secretkit._proto.kms.v1beta1 import api_pb2_grpc as v1beta1_grpc
from secretkit._proto.kms.v2 import api_pb2 as v2_pb2
from secretkit._proto.kms.v2 import api_pb2_grpc as v2_grpc
from secretkit.core.kms_service import KMSEncryptResult, KMSStatus
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
)
from secretkit.kmsapi.endpoint import grpc_target

T = TypeVar("T")

_MAX_DETAIL = 300  # plugin messages are secret-free by contract; still keep them short

_ERROR_BY_CODE: dict[grpc.StatusCode, type[BackendError]] = {
    grpc.StatusCode.UNAVAILABLE: BackendUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: BackendUnavailable,
    grpc.StatusCode.ABORTED: BackendUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: BackendTimeout,
    grpc.StatusCode.CANCELLED: BackendTimeout,
    grpc.StatusCode.INVALID_ARGUMENT: BackendInvalidRequest,
    grpc.StatusCode.FAILED_PRECONDITION: BackendInvalidRequest,
    grpc.StatusCode.NOT_FOUND: BackendInvalidRequest,
    grpc.StatusCode.OUT_OF_RANGE: BackendInvalidRequest,
    grpc.StatusCode.PERMISSION_DENIED: BackendPermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: BackendPermissionDenied,
}

_HINT_BY_CLASS: dict[type[BackendError], str] = {
    BackendUnavailable: "is the KMS plugin running and listening on this socket?",
    BackendTimeout: "the plugin (or its key service) is slow or hung; check its logs",
    BackendInvalidRequest: "the plugin rejected the request (wrong key_id or damaged data?)",
    BackendPermissionDenied: "the plugin's credentials lack permission on its key",
}


def map_rpc_error(exc: grpc.RpcError, *, method: str, endpoint: str) -> BackendError:
    """Translate a gRPC failure into a secretkit BackendError."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or ""
    cls = _ERROR_BY_CODE.get(code, BackendError)
    what = f"KMS plugin {method} failed: {code.name}"
    if details:
        what += f": {details[:_MAX_DETAIL]}"
    return cls(what, where=endpoint, hint=_HINT_BY_CLASS.get(cls))


#: the plugin is a local unix socket: after it restarts, calls should reach it within
#: seconds, not after gRPC's default reconnect backoff (up to 120 s), during which
#: every call fails at once
_CHANNEL_OPTIONS = [("grpc.max_reconnect_backoff_ms", 2000)]


class _Client:
    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._channel = grpc.insecure_channel(grpc_target(endpoint), options=_CHANNEL_OPTIONS)

    def _call(self, method: str, fn: Callable[..., T], request: Any) -> T:
        try:
            return fn(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise map_rpc_error(exc, method=method, endpoint=self.endpoint) from None

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> _Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class GrpcKMSService(_Client):
    """A KMS v2 plugin reached over its unix socket; implements KMSService."""

    def __init__(self, endpoint: str, *, timeout: float = 3.0) -> None:
        super().__init__(endpoint, timeout)
        self._stub = v2_grpc.KeyManagementServiceStub(self._channel)

    def __enter__(self) -> GrpcKMSService:
        return self

    def status(self) -> KMSStatus:
        """Call Status."""
        resp = self._call("Status", self._stub.Status, v2_pb2.StatusRequest())
        return KMSStatus(version=resp.version, healthz=resp.healthz, key_id=resp.key_id)

    def encrypt(self, plaintext: bytes, uid: str) -> KMSEncryptResult:
        """Call Encrypt."""
        resp = self._call(
            "Encrypt", self._stub.Encrypt, v2_pb2.EncryptRequest(plaintext=plaintext, uid=uid)
        )
        return KMSEncryptResult(
            ciphertext=resp.ciphertext, key_id=resp.key_id, annotations=dict(resp.annotations)
        )

    def decrypt(
        self, ciphertext: bytes, uid: str, key_id: str, annotations: Mapping[str, bytes]
    ) -> bytes:
        """Call Decrypt."""
        req = v2_pb2.DecryptRequest(
            ciphertext=ciphertext, uid=uid, key_id=key_id, annotations=dict(annotations)
        )
        resp = self._call("Decrypt", self._stub.Decrypt, req)
        plaintext: bytes = resp.plaintext
        return plaintext


class V1Beta1Client(_Client):
    """A KMS v1beta1 plugin (deprecated upstream; for tests and kms-v1 data)."""

    API_VERSION = "v1beta1"

    def __init__(self, endpoint: str, *, timeout: float = 3.0) -> None:
        super().__init__(endpoint, timeout)
        self._stub = v1beta1_grpc.KeyManagementServiceStub(self._channel)

    def __enter__(self) -> V1Beta1Client:
        return self

    def version(self) -> tuple[str, str, str]:
        """Call Version: ``(version, runtime_name, runtime_version)``."""
        resp = self._call(
            "Version", self._stub.Version, v1beta1_pb2.VersionRequest(version=self.API_VERSION)
        )
        return resp.version, resp.runtime_name, resp.runtime_version

    def encrypt(self, plain: bytes) -> bytes:
        """Call Encrypt."""
        req = v1beta1_pb2.EncryptRequest(version=self.API_VERSION, plain=plain)
        cipher: bytes = self._call("Encrypt", self._stub.Encrypt, req).cipher
        return cipher

    def decrypt(self, cipher: bytes) -> bytes:
        """Call Decrypt."""
        req = v1beta1_pb2.DecryptRequest(version=self.API_VERSION, cipher=cipher)
        plain: bytes = self._call("Decrypt", self._stub.Decrypt, req).plain
        return plain
