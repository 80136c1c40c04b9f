"""Errors map to the gRPC status codes docs/kms-plugin.md promises."""

from __future__ import annotations

import grpc
import pytest

from kms_plugin.errors import ContractViolation, InvalidRequest
from kms_plugin.servicer import status_for
from kms_plugin.v1beta1_envelope import EnvelopeError
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    DecryptError,
)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidRequest("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (EnvelopeError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (BackendInvalidRequest("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (DecryptError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (BackendUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (BackendTimeout("x"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (BackendPermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (BackendError("x"), grpc.StatusCode.INTERNAL),
        (ContractViolation("x"), grpc.StatusCode.INTERNAL),
        (KeyError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_codes(exc: BaseException, code: grpc.StatusCode) -> None:
    assert status_for(exc)[0] is code


def test_internal_errors_get_a_generic_message() -> None:
    code, message = status_for(RuntimeError("plaintext=hunter2"))
    assert code is grpc.StatusCode.INTERNAL
    assert "hunter2" not in message
