"""Read command-line flags from a static-pod manifest or a flag string (pure parsing)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from secretkit.errors import UsageError
from secretkit.fileio import read_yaml_file


@dataclass(frozen=True)
class Flags:
    """Parsed ``--name=value`` / ``--name value`` / ``--name`` flags of one binary."""

    values: dict[str, str]
    source: str

    def get(self, name: str) -> str | None:
        """The flag's value (``"true"`` for a bare boolean flag), or None."""
        return self.values.get(name)

    def has(self, name: str) -> bool:
        """True when the flag is present."""
        return name in self.values

    def is_true(self, name: str) -> bool:
        """True for a present boolean flag not explicitly set to false."""
        value = self.values.get(name)
        return value is not None and value.lower() in ("", "true", "1")

    def list(self, name: str) -> list[str]:
        """A comma-separated flag as a list (empty when absent)."""
        value = self.values.get(name)
        return [v.strip() for v in value.split(",") if v.strip()] if value else []


def parse_flag_words(words: list[str], source: str) -> Flags:
    """Parse argv-style words; the program name and positional words are ignored."""
    values: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            continue
        name = word.lstrip("-")
        if "=" in name:
            name, _, value = name.partition("=")
            values[name] = value
        elif i < len(words) and not words[i].startswith("-"):
            values[name] = words[i]
            i += 1
        else:
            values[name] = "true"
    return Flags(values, source)


def parse_flag_string(text: str, source: str = "--etcd-flags") -> Flags:
    """Parse a shell-quoted flag string such as ``"--client-cert-auth=true --auto-tls"``."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"cannot parse flags: {exc}", where=source) from exc
    return parse_flag_words(words, source)


def load_manifest_flags(path: Path, container: str) -> Flags:
    """Flags of the container named ``container`` (or running it) in a static-pod manifest."""
    # manifests carry flag values (passwords, token files): the reader never quotes them
    document: Any = read_yaml_file(path, what="manifest", error=UsageError)
    containers = (
        (document or {}).get("spec", {}).get("containers") if isinstance(document, dict) else None
    )
    if not isinstance(containers, list) or not containers:
        raise UsageError(
            "manifest has no spec.containers",
            where=str(path),
            hint="pass a static pod manifest such as /etc/kubernetes/manifests/etcd.yaml",
        )
    chosen: dict[str, Any] | None = None
    for item in containers:
        if not isinstance(item, dict):
            continue
        words = [str(w) for w in (item.get("command") or []) + (item.get("args") or [])]
        if item.get("name") == container or any(w.endswith(container) for w in words[:1]):
            chosen = item
            break
    if chosen is None:
        raise UsageError(f"no container named {container!r} in the manifest", where=str(path))
    words = [str(w) for w in (chosen.get("command") or []) + (chosen.get("args") or [])]
    return parse_flag_words(words, str(path))
