"""Translate gRPC failures from etcd into :class:`~secretkit.errors.EtcdError` with hints.

Messages carry the endpoint and etcd's own error text (which never contains keys'
values), never request or response payloads.
"""

from __future__ import annotations

import re

import grpc

from secretkit.errors import EtcdError

_TLS_WORDS = ("ssl", "tls", "handshake", "certificate", "x509")
# etcd reports these auth failures as INVALID_ARGUMENT, not UNAUTHENTICATED
_AUTH_MESSAGES = (
    "authentication failed",
    "user name is empty",
    "invalid auth token",
    "user name not found",
)


class EtcdCompactedError(EtcdError):
    """The requested revision is older than etcd's compaction point."""


class WatchCompactedError(EtcdCompactedError):
    """A watch's start revision was compacted; ``compact_revision`` is the oldest one left."""

    compact_revision: int = 0


class EtcdUnavailableError(EtcdError):
    """No endpoint could be reached."""


class EtcdResponseTooLargeError(EtcdError):
    """One response exceeded the client's gRPC message size limit.

    ``size`` is the response's size in bytes when gRPC said it ("N vs. M"), else None.
    """

    size: int | None = None


#: gRPC's "Received message larger than max (N vs. M)"
_SIZES = re.compile(r"\((\d+) vs\. \d+\)")


def _details(exc: grpc.RpcError) -> str:
    details = exc.details() if isinstance(exc, grpc.Call) else None
    return str(details or "").strip()


def rpc_code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    """The status code of a gRPC error (None when it has none)."""
    return exc.code() if isinstance(exc, grpc.Call) else None


def is_tls_failure(exc: grpc.RpcError) -> bool:
    """True when the failure looks like a TLS handshake or certificate problem."""
    text = _details(exc).lower()
    return any(word in text for word in _TLS_WORDS)


def compacted_error(revision: int | None, *, where: str) -> EtcdCompactedError:
    """A read below the compaction point (the same words for every implementation)."""
    rev = f"revision {revision}" if revision else "the requested revision"
    return EtcdCompactedError(
        f"{rev} was compacted: etcd no longer holds that history",
        where=where,
        hint="read at a newer revision (or the current one) and start the scan again",
    )


def future_revision_error(revision: int | None, *, where: str) -> EtcdError:
    """A read above the store's current revision."""
    return EtcdError(
        f"revision {revision} does not exist yet" if revision else "future revision requested",
        where=where,
        hint="use a revision at or below the current one",
    )


def translate(
    exc: grpc.RpcError,
    *,
    endpoint: str,
    operation: str,
    timeout: float,
    revision: int | None = None,
) -> EtcdError:
    """Map one gRPC error to the EtcdError a user can act on."""
    code = rpc_code(exc)
    details = _details(exc)
    lower = details.lower()
    if "required revision has been compacted" in lower:
        return compacted_error(revision, where=endpoint)
    if "required revision is a future revision" in lower:
        return future_revision_error(revision, where=endpoint)
    if code == grpc.StatusCode.UNAVAILABLE:
        if is_tls_failure(exc):
            return EtcdUnavailableError(
                f"TLS handshake with etcd failed during {operation}",
                where=endpoint,
                hint="check --cacert/--cert/--key (etcd may require a client certificate)",
            )
        return EtcdUnavailableError(
            f"etcd is unreachable ({operation}): {details or 'connection failed'}",
            where=endpoint,
            hint=f"is etcd running at {endpoint}? check --endpoints "
            "(and https:// plus --cacert for TLS)",
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return EtcdError(
            f"etcd did not answer {operation} within {timeout:g}s",
            where=endpoint,
            hint="is the endpoint right and etcd healthy? raise --dial-timeout for slow links",
        )
    if code == grpc.StatusCode.UNAUTHENTICATED or any(m in lower for m in _AUTH_MESSAGES):
        return EtcdError(
            f"etcd rejected the credentials ({operation}): {details}",
            where=endpoint,
            hint="check --user/--password, or --cacert/--cert/--key for certificate auth",
        )
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return EtcdError(
            f"etcd denied {operation}: {details}",
            where=endpoint,
            hint="the etcd user (or client certificate CN) needs a role with access to these keys",
        )
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in lower:
        too_large = EtcdResponseTooLargeError(
            f"etcd's answer to {operation} is larger than the message limit: {details}",
            where=endpoint,
            hint="use a smaller page size",
        )
        sizes = _SIZES.search(details)
        too_large.size = int(sizes.group(1)) if sizes else None
        return too_large
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return EtcdError(
            f"etcd response too large or quota exceeded ({operation}): {details}",
            where=endpoint,
            hint="use a smaller page size; if etcd reports NOSPACE, compact and defragment",
        )
    name = code.name if code is not None else "UNKNOWN"
    return EtcdError(f"etcd {operation} failed ({name}): {details}", where=endpoint)
