"""Sandbox fixtures for these tests (until tests/conftest.py lists tests.fixtures.sandbox)."""

from tests.fixtures.sandbox import sandbox, sandbox_factory

__all__ = ["sandbox", "sandbox_factory"]
