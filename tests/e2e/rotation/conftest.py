"""Sandbox fixtures for the rotation runbook tests."""

from tests.fixtures.sandbox import sandbox, sandbox_factory

__all__ = ["sandbox", "sandbox_factory"]
