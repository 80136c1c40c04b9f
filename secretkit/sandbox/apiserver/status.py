"""Kubernetes ``Status`` bodies and the error type the request handlers raise."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error the stand-in answers with a ``metav1.Status`` body.

    ``message`` must never contain secret material: it goes to the client verbatim.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """Return the JSON ``Status`` object the real apiserver would send."""
        return status_body(self.code, self.reason, self.message, details=self.details)


def status_body(
    code: int, reason: str, message: str, *, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Build a ``metav1.Status`` (``status`` is ``Success`` for 2xx, else ``Failure``)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if 200 <= code < 300 else "Failure",
        "code": code,
    }
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return body


def _details(kind: str, name: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    """404 like ``secrets "x" not found`` (``leases.coordination.k8s.io "x" ...``)."""
    return ApiError(
        404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
        details=_details(resource, name, group),
    )


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    """409 like ``secrets "x" already exists``."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        details=_details(resource, name, group),
    )


def conflict(resource: str, name: str, group: str = "") -> ApiError:
    """409 Conflict for a stale ``resourceVersion`` precondition (the apiserver's text)."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": the object '
        "has been modified; please apply your changes to the latest version and try again",
        details=_details(resource, name, group),
    )


def invalid(kind: str, name: str, field: str, message: str, group: str = "") -> ApiError:
    """422 Invalid with one field cause (``ControllerRevision.apps "x" is invalid: ...``)."""
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": "FieldValueInvalid", "message": message, "field": field}]
    return ApiError(422, "Invalid", f'{_qualified(kind, group)} "{name}" is invalid: {field}: '
                    f"{message}", details=details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def gone_expired(message: str) -> ApiError:
    """410 Gone with reason Expired: the continue token's revision was compacted."""
    return ApiError(410, "Expired", message)


def internal_error(message: str) -> ApiError:
    """500 InternalError (for storage/KMS failures; message must be secret-free)."""
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        details={"causes": [{"message": message}]},
    )
