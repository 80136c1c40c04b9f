"""gRPC servicers: protobuf <-> :class:`~kms_plugin.service.PluginService`, errors <-> codes.

| error                                   | gRPC status        |
|-----------------------------------------|--------------------|
| InvalidRequest (contract, bad header)   | INVALID_ARGUMENT   |
| BackendInvalidRequest, DecryptError,    | INVALID_ARGUMENT   |
| FormatError (incl. unknown key_id)      |                    |
| BackendUnavailable                      | UNAVAILABLE        |
| BackendTimeout                          | DEADLINE_EXCEEDED  |
| BackendPermissionDenied                 | PERMISSION_DENIED  |
| anything else                           | INTERNAL (generic) |

Messages returned to the caller are the errors' own ``what`` texts, which by project
rule never hold secret material; unexpected exceptions get a generic text and are
logged by class name only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from kms_plugin.admission import CallTracker
from kms_plugin.errors import InvalidRequest
from kms_plugin.logs import RateLimitedLog
from kms_plugin.metrics import PluginMetrics
from kms_plugin.service import RUNTIME_NAME, V1BETA1_VERSION, PluginService
from secretkit import __version__
from secretkit._proto.kms.v1beta1 import api_pb2 as v1beta1_pb2
from secretkit._proto.kms.v2 import api_pb2 as v2_pb2
from secretkit.backends.interface import describe_unexpected
from secretkit.errors import (
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    DecryptError,
    FormatError,
    SecretkitError,
)

log = logging.getLogger("kms_plugin.servicer")

_R = TypeVar("_R")


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Map an exception to the gRPC status code and the message the caller sees."""
    if isinstance(exc, InvalidRequest):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, BackendInvalidRequest | DecryptError | FormatError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, BackendUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, BackendTimeout):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, BackendPermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED, str(exc)
    return grpc.StatusCode.INTERNAL, "internal error in secretkit-kms-plugin (see its log)"


class Malformed:
    """Stands in for a request body that is not a valid message of the method's type.

    grpcio's own deserializer failure answers INTERNAL ("Exception deserializing
    request!") and logs a traceback per call; :func:`lenient` hands the handler this
    marker instead, and the handler answers INVALID_ARGUMENT with a rate-limited log.
    """

    __slots__ = ("message_type",)

    def __init__(self, message_type: str) -> None:
        self.message_type = message_type


def lenient(message: type[Message]) -> Callable[[bytes], Message | Malformed]:
    """A request deserializer for ``message`` that never raises."""
    name = message.DESCRIPTOR.full_name

    def parse(data: bytes) -> Message | Malformed:
        try:
            return message.FromString(data)
        except (DecodeError, RuntimeWarning, ValueError):
            return Malformed(name)

    return parse


class _Base:
    def __init__(
        self,
        service: PluginService,
        metrics: PluginMetrics | None,
        tracker: CallTracker | None = None,
    ) -> None:
        self._service = service
        self._metrics = metrics
        self._tracker = tracker or CallTracker()
        # one client sending garbage or stale key_ids must not flood the log: a few
        # lines per (operation, code) every 10 s, then a count of what was dropped
        self._refusal_log = RateLimitedLog(log, burst=5, period=10.0)

    def _handle(
        self, operation: str, context: grpc.ServicerContext, request: object,
        fn: Callable[[], _R],
    ) -> _R:
        if self._metrics is not None:
            self._metrics.in_flight.inc()
        try:
            return self._handle_tracked(operation, context, request, fn)
        finally:
            # the caller gets our answer (or error status) only while the call is
            # active: after the grace period grpc has already cancelled it
            if context.is_active():
                self._tracker.mark_answered()
            if self._metrics is not None:
                self._metrics.in_flight.dec()

    def _handle_tracked(
        self, operation: str, context: grpc.ServicerContext, request: object,
        fn: Callable[[], _R],
    ) -> _R:
        start = time.perf_counter()
        if isinstance(request, Malformed):
            self._record(operation, grpc.StatusCode.INVALID_ARGUMENT, start)
            if self._metrics is not None:
                self._metrics.malformed.labels(operation).inc()
            self._refusal_log.log(
                logging.INFO, (operation, "malformed"), "request refused",
                {"operation": operation, "code": "INVALID_ARGUMENT",
                 "reason": f"request is not a valid {request.message_type} message"},
            )
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request is not a valid {request.message_type} message",
            )
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            # queued behind other work until the caller gave up: don't spend a KMS call
            self._record(operation, grpc.StatusCode.DEADLINE_EXCEEDED, start)
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline expired before handling")
        try:
            result = fn()
        except Exception as exc:  # the process never crashes on input
            code, message = status_for(exc)
            self._record(operation, code, start)
            if code is grpc.StatusCode.INTERNAL:
                # our own `what` texts and type/origin only: SDK messages may echo input
                # (backends already name the unexpected SDK error's type and origin)
                what = exc.what if isinstance(exc, SecretkitError) else describe_unexpected(exc)
                self._refusal_log.log(
                    logging.ERROR, (operation, code.name), "request failed unexpectedly",
                    {"operation": operation, "error_type": type(exc).__name__, "what": what},
                )
            else:
                self._refusal_log.log(
                    logging.INFO, (operation, code.name), "request refused",
                    {"operation": operation, "code": code.name, "reason": message[:300]},
                )
            context.abort(code, message)
        self._record(operation, grpc.StatusCode.OK, start)
        return result

    def _record(self, operation: str, code: grpc.StatusCode, start: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_request(
                operation, code.name.lower(), time.perf_counter() - start
            )


class V2Servicer(_Base):
    """``v2.KeyManagementService``: Status, Encrypt, Decrypt."""

    def Status(
        self, request: v2_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> v2_pb2.StatusResponse:
        """Report version v2, healthz and the current key_id from the cached probe."""

        def run() -> v2_pb2.StatusResponse:
            st = self._service.status()
            return v2_pb2.StatusResponse(version=st.version, healthz=st.healthz, key_id=st.key_id)

        return self._handle("status", context, request, run)

    def Encrypt(
        self, request: v2_pb2.EncryptRequest, context: grpc.ServicerContext
    ) -> v2_pb2.EncryptResponse:
        """Wrap a DEK seed with the current key."""

        def run() -> v2_pb2.EncryptResponse:
            res = self._service.encrypt(request.plaintext, request.uid)
            return v2_pb2.EncryptResponse(
                ciphertext=res.ciphertext, key_id=res.key_id, annotations=dict(res.annotations)
            )

        return self._handle("encrypt", context, request, run)

    def Decrypt(
        self, request: v2_pb2.DecryptRequest, context: grpc.ServicerContext
    ) -> v2_pb2.DecryptResponse:
        """Unwrap a DEK seed written under ``key_id``."""

        def run() -> v2_pb2.DecryptResponse:
            plaintext = self._service.decrypt(
                request.ciphertext, request.key_id, dict(request.annotations), request.uid
            )
            return v2_pb2.DecryptResponse(plaintext=plaintext)

        return self._handle("decrypt", context, request, run)


def _check_v1beta1_version(version: str) -> None:
    # the apiserver always sends "v1beta1"; an empty value comes from hand-made clients
    if version not in ("", V1BETA1_VERSION):
        raise InvalidRequest(
            f"unsupported KMS API version {version[:32]!r}", hint="this service speaks v1beta1"
        )


class V1beta1Servicer(_Base):
    """``v1beta1.KeyManagementService`` (deprecated KMS v1): Version, Encrypt, Decrypt."""

    def Version(
        self, request: v1beta1_pb2.VersionRequest, context: grpc.ServicerContext
    ) -> v1beta1_pb2.VersionResponse:
        """Report version v1beta1 and this runtime's name and version."""

        def run() -> v1beta1_pb2.VersionResponse:
            _check_v1beta1_version(request.version)
            return v1beta1_pb2.VersionResponse(
                version=V1BETA1_VERSION, runtime_name=RUNTIME_NAME, runtime_version=__version__
            )

        return self._handle("v1beta1_version", context, request, run)

    def Encrypt(
        self, request: v1beta1_pb2.EncryptRequest, context: grpc.ServicerContext
    ) -> v1beta1_pb2.EncryptResponse:
        """Wrap a DEK with the current key into a self-describing ciphertext."""

        def run() -> v1beta1_pb2.EncryptResponse:
            _check_v1beta1_version(request.version)
            return v1beta1_pb2.EncryptResponse(cipher=self._service.v1beta1_encrypt(request.plain))

        return self._handle("v1beta1_encrypt", context, request, run)

    def Decrypt(
        self, request: v1beta1_pb2.DecryptRequest, context: grpc.ServicerContext
    ) -> v1beta1_pb2.DecryptResponse:
        """Unwrap a ciphertext made by Encrypt, under whichever key wrote it."""

        def run() -> v1beta1_pb2.DecryptResponse:
            _check_v1beta1_version(request.version)
            return v1beta1_pb2.DecryptResponse(plain=self._service.v1beta1_decrypt(request.cipher))

        return self._handle("v1beta1_decrypt", context, request, run)


def _handlers(
    servicer: object, methods: dict[str, tuple[type[Message], type[Message]]]
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    return {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=lenient(request),
            response_serializer=response.SerializeToString,
        )
        for name, (request, response) in methods.items()
    }


def v2_handler(servicer: V2Servicer) -> grpc.GenericRpcHandler[Any, Any]:
    """``v2.KeyManagementService`` with request parsing that never answers INTERNAL."""
    return grpc.method_handlers_generic_handler("v2.KeyManagementService", _handlers(servicer, {
        "Status": (v2_pb2.StatusRequest, v2_pb2.StatusResponse),
        "Encrypt": (v2_pb2.EncryptRequest, v2_pb2.EncryptResponse),
        "Decrypt": (v2_pb2.DecryptRequest, v2_pb2.DecryptResponse),
    }))


def v1beta1_handler(servicer: V1beta1Servicer) -> grpc.GenericRpcHandler[Any, Any]:
    """``v1beta1.KeyManagementService``, likewise."""
    return grpc.method_handlers_generic_handler(
        "v1beta1.KeyManagementService", _handlers(servicer, {
            "Version": (v1beta1_pb2.VersionRequest, v1beta1_pb2.VersionResponse),
            "Encrypt": (v1beta1_pb2.EncryptRequest, v1beta1_pb2.EncryptResponse),
            "Decrypt": (v1beta1_pb2.DecryptRequest, v1beta1_pb2.DecryptResponse),
        }),
    )
