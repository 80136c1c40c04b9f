"""Fixtures of the security suite: the shared sandbox fixtures."""

from tests.fixtures.sandbox import sandbox, sandbox_factory

__all__ = ["sandbox", "sandbox_factory"]
