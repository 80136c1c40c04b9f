"""Sandbox fixtures for the reencrypt e2e tests."""

from tests.fixtures.sandbox import sandbox_factory

__all__ = ["sandbox_factory"]
