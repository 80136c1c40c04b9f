"""Errors of the plugin's own making (the backends raise :mod:`secretkit.errors`)."""

from __future__ import annotations

from secretkit.errors import SecretkitError


class InvalidRequest(SecretkitError):
    """The caller sent a request that breaks the KMS contract (gRPC INVALID_ARGUMENT)."""


class ContractViolation(SecretkitError):
    """The backend returned something the KMS contract forbids (gRPC INTERNAL)."""
