"""The aws key backend (being written; not usable yet)."""

from __future__ import annotations

from secretkit.backends._schema import Definition
from secretkit.backends.interface import KeyBackend
from secretkit.errors import ConfigError


def build_aws_backend(d: Definition) -> KeyBackend:
    """Build the backend from a validated definition."""
    raise ConfigError("the aws backend is not implemented yet", where=d.where)
