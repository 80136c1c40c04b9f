"""Strict readers for backend definitions: every error names the field path."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from secretkit.errors import ConfigError

#: the longest duration in seconds: Go's int64 nanoseconds, also threading.TIMEOUT_MAX
MAX_SECONDS = float((1 << 63) // 1_000_000_000)
#: counts (attempts, batch sizes, in-flight requests) beyond this are typos
MAX_INTEGER = 1_000_000


class Definition:
    """A mapping from a config file, read field by field with path-naming errors.

    ``base_dir`` resolves relative file paths (the backends file's directory).
    """

    def __init__(self, data: Any, where: str, base_dir: Path | None = None) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"expected a mapping, got {type(data).__name__}", where=where
            )
        for key in data:
            if not isinstance(key, str):
                raise ConfigError(f"field names must be strings, got {key!r}", where=where)
        self.data: Mapping[str, Any] = data
        self.where = where
        self.base_dir = base_dir

    def path_of(self, name: str) -> str:
        """The dotted path of field ``name``."""
        return f"{self.where}.{name}"

    def allow(self, names: Iterable[str]) -> None:
        """Reject every field not in ``names`` (typos must not be silently ignored)."""
        allowed = set(names)
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown field {unknown[0]!r}",
                where=self.path_of(unknown[0]),
                hint=f"allowed fields here: {', '.join(sorted(allowed))}",
            )

    def has(self, name: str) -> bool:
        """True when ``name`` is present and not null."""
        return self.data.get(name) is not None

    def str_(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        """A non-empty string field."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise ConfigError(f"missing required field {name!r}", where=self.path_of(name))
            return default
        if not isinstance(value, str) or not value:
            raise ConfigError("expected a non-empty string", where=self.path_of(name))
        return value

    def req_str(self, name: str) -> str:
        """A required non-empty string field."""
        value = self.str_(name)
        if value is None:
            raise ConfigError(f"missing required field {name!r}", where=self.path_of(name))
        return value

    def req_file(self, name: str) -> Path:
        """A required file path field."""
        path = self.file(name)
        if path is None:
            raise ConfigError(f"missing required field {name!r}", where=self.path_of(name))
        return path

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float = MAX_SECONDS
    ) -> float:
        """A finite number field greater than ``minimum`` and at most ``maximum``.

        ``.nan`` and ``.inf`` are refused (every comparison with NaN is false, so a
        plain range check would let it through); the default ``maximum`` is Go's
        duration range, the longest wait any Python or Go timer accepts.
        """
        value = self.data.get(name)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not minimum < value <= maximum
        ):
            low = ">= 0" if -1e-6 < minimum < 0 else f"> {minimum:g}"
            raise ConfigError(
                f"expected a finite number {low} and <= {maximum:g}", where=self.path_of(name)
            )
        return float(value)

    def integer(
        self, name: str, default: int, *, minimum: int = 1, maximum: int = MAX_INTEGER
    ) -> int:
        """An integer field from ``minimum`` to ``maximum``."""
        value = self.data.get(name)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not minimum <= value <= maximum
        ):
            raise ConfigError(
                f"expected an integer from {minimum} to {maximum}", where=self.path_of(name)
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """A true/false field."""
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError("expected true or false", where=self.path_of(name))
        return value

    def file(self, name: str, *, required: bool = False) -> Path | None:
        """A file path field, resolved against ``base_dir`` when relative."""
        value = self.str_(name, required=required)
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def sub(self, name: str, *, required: bool = False) -> Definition | None:
        """A nested mapping field."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise ConfigError(f"missing required field {name!r}", where=self.path_of(name))
            return None
        return Definition(value, self.path_of(name), self.base_dir)

    def str_map(self, name: str) -> dict[str, str]:
        """A mapping of strings to strings (e.g. an encryption context)."""
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError("expected a mapping of strings to strings", where=self.path_of(name))
        return dict(value)

    def seq(self, name: str, *, required: bool = False) -> list[Definition]:
        """A non-empty list of mappings."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise ConfigError(f"missing required field {name!r}", where=self.path_of(name))
            return []
        if not isinstance(value, list) or not value:
            raise ConfigError("expected a non-empty list", where=self.path_of(name))
        return [
            Definition(item, f"{self.path_of(name)}[{i}]", self.base_dir)
            for i, item in enumerate(value)
        ]
