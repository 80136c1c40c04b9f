"""The rotation state file: where a staged rotation stands and what comes next.

It sits next to the first config file (``secretkit-rotation.json``) unless ``--state``
names another path, is written atomically, and holds no key material: only key
names, config hashes and timestamps.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from secretkit.errors import SafetyError, UsageError
from secretkit.rotation.files import atomic_write

STAGES = ("prepare", "promote", "reencrypt", "prune")
STATE_FILE_NAME = "secretkit-rotation.json"


@dataclass
class StageRecord:
    """One completed stage."""

    stage: str
    at: float
    hashes: dict[str, str]


@dataclass
class RotationState:
    """A rotation in progress (or finished)."""

    kind: str  # "local-key", "enable", "disable"
    resources: list[str]
    provider_type: str
    new_key_name: str | None = None
    old_key_names: list[str] = field(default_factory=list)
    kms_name: str | None = None
    configs: list[str] = field(default_factory=list)
    completed: list[StageRecord] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    @property
    def last_stage(self) -> str | None:
        """The last completed stage, or None before ``prepare``."""
        return self.completed[-1].stage if self.completed else None

    @property
    def next_stage(self) -> str | None:
        """The stage to run next, or None when the rotation is finished."""
        done = self.last_stage
        if done is None:
            return STAGES[0]
        index = STAGES.index(done)
        return STAGES[index + 1] if index + 1 < len(STAGES) else None

    def require_next(self, stage: str) -> None:
        """Refuse to run ``stage`` out of order, explaining what to run instead.

        ``reencrypt`` may be repeated (it is idempotent): that is how objects written
        during the rotation by a lagging apiserver are caught before ``prune``.
        """
        if stage == self.next_stage or (stage == "reencrypt" == self.last_stage):
            return
        if self.next_stage is None:
            raise SafetyError(
                f"this {self.kind} rotation is already finished",
                hint="start a new one with `prepare` after removing the state file",
            )
        raise SafetyError(
            f"cannot run `{stage}` now: the last completed stage is "
            f"`{self.last_stage or 'none'}`, the next one is `{self.next_stage}`",
            hint="stages run in order: prepare → promote → reencrypt → prune; "
            "the procedure's `status` command shows where it stands",
        )

    def record(self, stage: str, hashes: dict[str, str]) -> None:
        """Mark ``stage`` completed now with the resulting config hashes."""
        self.completed.append(StageRecord(stage=stage, at=time.time(), hashes=hashes))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (also the ``-o json`` shape of ``rotate status``)."""
        data = asdict(self)
        data["next_stage"] = self.next_stage
        data["last_stage"] = self.last_stage
        return data


def default_state_path(configs: list[Path]) -> Path:
    """``secretkit-rotation.json`` beside the first config file."""
    return Path(configs[0]).resolve().parent / STATE_FILE_NAME


def load_state(path: Path) -> RotationState | None:
    """Load the state file, or None when there is none."""
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"cannot read rotation state {path}: {exc}",
            hint="restore it from the .bak file beside it, or remove it to start over",
        ) from exc
    completed = [StageRecord(**r) for r in raw.pop("completed", [])]
    raw.pop("next_stage", None)
    raw.pop("last_stage", None)
    return RotationState(completed=completed, **raw)


def save_state(path: Path, state: RotationState) -> None:
    """Write the state file atomically (0600)."""
    atomic_write(Path(path), json.dumps(state.to_json(), indent=2, sort_keys=True).encode())
