"""The rotation state file: where a staged rotation stands and what comes next.

It sits next to the first config file (``secretkit-rotation.json``) unless ``--state``
names another path, is written atomically, and holds no key material: only key
names, config hashes and timestamps.

State and config files cannot disagree after a crash: a stage that writes configs
first records its intent (:class:`PendingStage`: the stage and every file's hash
before and after), then writes the files, then records the stage as completed. A
stage interrupted in between is finished or rolled back from the files themselves
(:meth:`RotationState.settle_pending`), or, when the nodes' files disagree, refused
with what to do.
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
class PendingStage:
    """A stage that started writing config files and has not been recorded yet."""

    stage: str
    at: float
    before: dict[str, str]
    after: str


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
    pending: PendingStage | None = None
    #: indexes of the config rules the procedure edits (see rotation.scope)
    rule_indexes: list[int] = field(default_factory=list)

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
        self.pending = None

    def settle_pending(self, current: dict[str, str]) -> str | None:
        """Finish or roll back an interrupted write from the files' ``current`` hashes.

        Every file has the new content: the stage is recorded as done. Every file still
        has its old content: the intent is dropped. Returns what happened (None when
        nothing was pending); raises when the files disagree (some written, some not).
        """
        pending = self.pending
        if pending is None:
            return None
        if all(h == pending.after for h in current.values()):
            self.record(pending.stage, dict(current))
            return f"`{pending.stage}` had written every config file before it was " \
                "interrupted: recorded as done"
        if all(current.get(name) == h for name, h in pending.before.items()):
            self.pending = None
            return f"`{pending.stage}` was interrupted before writing any config file: " \
                "nothing had changed"
        written = sorted(n for n, h in current.items() if h == pending.after)
        old = sorted(n for n, h in current.items() if h == pending.before.get(n))
        other = sorted(set(current) - set(written) - set(old))
        raise SafetyError(
            f"`{pending.stage}` was interrupted while writing the nodes' config files: "
            f"new content in {', '.join(written) or 'none'}; old content in "
            f"{', '.join(old) or 'none'}"
            + (f"; changed by someone else: {', '.join(other)}" if other else ""),
            hint=f"make every file identical: copy a new one over the others to finish "
            f"`{pending.stage}`, or restore the written ones from their "
            f".bak-{pending.stage}-* copies to undo it; then run the stage again",
        )

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
    try:
        completed = [StageRecord(**r) for r in raw.pop("completed", [])]
        pending_raw = raw.pop("pending", None)
        pending = PendingStage(**pending_raw) if pending_raw else None
        raw.pop("next_stage", None)
        raw.pop("last_stage", None)
        return RotationState(completed=completed, pending=pending, **raw)
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"rotation state {path} is not a state file secretkit wrote ({type(exc).__name__})",
            hint="restore it from a backup, or remove it to start over",
        ) from None


def save_state(path: Path, state: RotationState) -> None:
    """Write the state file atomically (0600)."""
    atomic_write(Path(path), json.dumps(state.to_json(), indent=2, sort_keys=True).encode())
