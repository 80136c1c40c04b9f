"""SDK errors become secretkit errors with hints, and never carry secrets."""

from __future__ import annotations

import botocore.exceptions as bexc
import hvac.exceptions as hexc
import pytest
import requests

from secretkit.backends import aws, vault
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
)


def _client_error(code: str, status: int = 400, message: str = "m") -> bexc.ClientError:
    return bexc.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "Encrypt",
    )


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("ThrottlingException", 400, BackendUnavailable),
        ("KMSInternalException", 500, BackendUnavailable),
        ("SomethingNew", 503, BackendUnavailable),
        ("DependencyTimeoutException", 503, BackendTimeout),
        ("AccessDeniedException", 400, BackendPermissionDenied),
        ("ExpiredTokenException", 400, BackendPermissionDenied),
        ("InvalidCiphertextException", 400, BackendInvalidRequest),
        ("NotFoundException", 400, BackendInvalidRequest),
        ("DisabledException", 400, BackendInvalidRequest),
        ("IncorrectKeyException", 400, BackendInvalidRequest),
    ],
)
def test_aws_client_errors(code: str, status: int, cls: type[BackendError]) -> None:
    err = aws.map_error(_client_error(code, status), op="Encrypt", where="aws kms us-east-1")
    assert type(err) is cls
    assert code in err.what and err.where == "aws kms us-east-1"


def test_aws_transport_errors() -> None:
    ep = bexc.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert isinstance(aws.map_error(ep, op="Encrypt", where="w"), BackendUnavailable)
    rt = bexc.ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
    assert isinstance(aws.map_error(rt, op="Encrypt", where="w"), BackendTimeout)
    nc = bexc.NoCredentialsError()
    assert isinstance(aws.map_error(nc, op="Encrypt", where="w"), BackendPermissionDenied)


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (hexc.Forbidden("denied", errors=["permission denied"]), BackendPermissionDenied),
        (hexc.InvalidRequest("bad", errors=["invalid ciphertext"]), BackendInvalidRequest),
        (hexc.InvalidPath("nope", errors=["no handler"]), BackendInvalidRequest),
        (hexc.InternalServerError("x", errors=["boom"]), BackendUnavailable),
        (hexc.VaultDown("sealed", errors=["Vault is sealed"]), BackendUnavailable),
        (hexc.RateLimitExceeded("slow down"), BackendUnavailable),
        (requests.ConnectTimeout("t"), BackendTimeout),
        (requests.ConnectionError("refused"), BackendUnavailable),
    ],
)
def test_vault_errors(exc: BaseException, cls: type[BackendError]) -> None:
    err = vault.map_error(exc, op="encrypt", where="http://127.0.0.1:8200", hint_path="transit/x")
    assert type(err) is cls


def test_vault_error_text_never_includes_the_response_body() -> None:
    body = '{"data":{"batch_results":[{"plaintext":"c2VjcmV0LXNlZWQ="}]}}'
    exc = hexc.InvalidRequest(body, errors=None, text=body, json={"data": {}})
    err = vault.map_error(exc, op="decrypt", where="w", hint_path="p")
    assert "c2VjcmV0LXNlZWQ=" not in err.diagnostics()
    assert "c2VjcmV0LXNlZWQ=" not in str(err)


def test_vault_permission_hint_names_the_path() -> None:
    err = vault.map_error(hexc.Forbidden(errors=["denied"]), op="encrypt", where="w",
                          hint_path="transit/encrypt/k8s")
    assert err.hint is not None and "transit/encrypt/k8s" in err.hint
