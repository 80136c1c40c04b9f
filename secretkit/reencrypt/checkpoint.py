"""The ``--resume`` checkpoint: a small JSON file rewritten atomically after every page.

Per resource it records the state (``pending``, ``running``, ``done``), the list
continue token of the next page and the last object key whose page finished, plus
the counters so far. A run killed at any point (even SIGKILL) resumes from the
last finished page: at most one page of objects is rewritten twice, and rewriting a
fresh object again is a no-op for the apiserver.

The file holds no secrets (continue tokens are opaque list positions).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secretkit.errors import UsageError
from secretkit.fileio import write_private

if TYPE_CHECKING:
    from secretkit.reencrypt.summary import Summary

KIND = "secretkit-reencrypt-checkpoint"
#: 2: --only-stale counts fresh objects as the run passes them (version 1 counted
#: them all up front, so resuming one now would count some twice)
VERSION = 2


@dataclass
class ResourceProgress:
    """Where one resource stands."""

    state: str = "pending"
    continue_token: str | None = None
    last_key: str | None = None
    counters: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "state": self.state,
            "continue": self.continue_token,
            "last_key": self.last_key,
            "counters": dict(self.counters),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResourceProgress:
        """Inverse of :meth:`to_json`."""
        state = str(data.get("state", "pending"))
        if state not in {"pending", "running", "done"}:
            raise ValueError(f"unknown state {state!r}")
        return cls(
            state=state,
            continue_token=data.get("continue"),
            last_key=data.get("last_key"),
            counters={str(k): int(v) for k, v in (data.get("counters") or {}).items()},
        )


@dataclass
class Checkpoint:
    """The whole resumable state of a run."""

    fingerprint: str
    mode: str
    resources: dict[str, ResourceProgress] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def progress(self, resource: str) -> ResourceProgress:
        """The entry of ``resource`` (created as pending)."""
        return self.resources.setdefault(resource, ResourceProgress())

    def to_json(self) -> dict[str, Any]:
        """JSON form of the file."""
        return {
            "kind": KIND,
            "version": VERSION,
            "mode": self.mode,
            "fingerprint": self.fingerprint,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "resources": {k: v.to_json() for k, v in self.resources.items()},
            "errors": list(self.errors),
        }

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> Checkpoint:
        """Parse and validate a checkpoint; UsageError when it is not one."""
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise UsageError("not a secretkit reencrypt checkpoint", where=where)
        if data.get("version") != VERSION:
            raise UsageError(
                f"unsupported checkpoint version {data.get('version')!r}",
                where=where,
                hint="finish the run with the secretkit version that started it",
            )
        try:
            resources = {
                str(k): ResourceProgress.from_json(v)
                for k, v in (data.get("resources") or {}).items()
            }
            return cls(
                fingerprint=str(data["fingerprint"]),
                mode=str(data["mode"]),
                resources=resources,
                errors=list(data.get("errors") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                "corrupt checkpoint file", where=where, hint=f"{type(exc).__name__}: {exc}"
            ) from None


def run_fingerprint(mode: str, resources: list[str], extra: dict[str, Any] | None = None) -> str:
    """Identify a run's parameters so a checkpoint is never resumed by a different run."""
    payload = json.dumps(
        {"mode": mode, "resources": sorted(resources), "extra": extra or {}}, sort_keys=True
    )
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:32]


class CheckpointFile:
    """Load/save a checkpoint at ``path`` (atomic replace, mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Checkpoint | None:
        """The saved checkpoint, or None when the file does not exist yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(
                "cannot read checkpoint", where=str(self.path), hint=exc.strerror
            ) from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise UsageError(
                "checkpoint is not valid JSON",
                where=str(self.path),
                hint="delete it to start over (finished objects are rewritten again)",
            ) from None
        return Checkpoint.from_json(data, where=str(self.path))

    def save(self, checkpoint: Checkpoint) -> None:
        """Write atomically, 0600 (:func:`secretkit.fileio.write_private`)."""
        data = json.dumps(checkpoint.to_json(), indent=1, sort_keys=True).encode()
        write_private(self.path, data)


class ProgressSaver:
    """Records a resource's progress and the run's errors in the checkpoint and saves
    it (when the run has a file), for either engine; safe from worker threads."""

    def __init__(self, checkpoint: Checkpoint, file: CheckpointFile | None) -> None:
        self._checkpoint = checkpoint
        self._file = file
        self._lock = threading.Lock()

    def save(self, resource: str, progress: ResourceProgress, summary: Summary) -> None:
        """Copy ``resource``'s counters into ``progress``, then write the checkpoint."""
        progress.counters = summary.resource_counters(resource)
        with self._lock:
            self._checkpoint.errors = [e.to_json() for e in summary.errors]
            if self._file is not None:
                self._file.save(self._checkpoint)
