"""Sandbox fixtures for the audit e2e tests."""

from tests.fixtures.sandbox import sandbox_factory

__all__ = ["sandbox_factory"]
