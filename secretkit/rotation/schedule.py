"""KMS rotation run unattended on a schedule (a CronJob or a systemd timer).

Around one :class:`~secretkit.rotation.kms.KMSRotation`:

1. a Kubernetes Lease (:class:`~secretkit.kube.lease.LeaseLock`) so that two runs,
   from two control-plane nodes or one slow run and the next, never overlap;
2. a refusal to start while a previous rotation's re-encryption is incomplete: etcd
   still holds values of the provider under another key_id than the plugin's current
   one (a rotation on top would leave two generations to clean up and, with
   ``--retire-old``, nothing could ever be retired);
3. the policy: with ``min_age``, nothing happens while the current key version is
   younger (a daily job rotating every 30 days);
4. the run itself, with every safety gate of a manual rotation;
5. the record (:class:`~secretkit.rotation.record.RotationRecord`) and a node-exporter
   textfile with the key's age and the last rotation (:func:`metrics_text`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretkit.errors import SafetyError, SecretkitError
from secretkit.fileio import write_private
from secretkit.kube.lease import LeaseLock
from secretkit.rotation import gates
from secretkit.rotation.kms import KMSRotation, KMSRotationReport
from secretkit.rotation.record import RotationEntry, RotationRecord, utc_text


@dataclass
class ScheduleOutcome:
    """What a scheduled run did (the ``schedule`` part of ``kms rotate -o json``)."""

    outcome: str  # rotated, skipped, refused, failed
    provider: str
    key_id: str | None = None
    key_age_seconds: float | None = None
    reason: str | None = None
    report: KMSRotationReport | None = None
    #: when the current key version was created (= the last rotation), unix seconds
    key_created: float | None = None
    #: when the last successful rotation of the record finished, unix seconds
    last_success: float | None = None


@dataclass
class ScheduledRotation:
    """One unattended run (see the module docstring)."""

    rotation: KMSRotation
    lease: LeaseLock | None = None
    record: RotationRecord | None = None
    #: rotate only when the current key version is at least this old (seconds)
    min_age: float | None = None
    metrics_textfile: Path | None = None
    host: str = field(default_factory=socket.gethostname)
    clock: Callable[[], float] = time.time

    def run(self) -> ScheduleOutcome:
        """Run once; SafetyError when refused (another run, unfinished re-encryption)."""
        rotation = self.rotation
        outcome = ScheduleOutcome("failed", rotation.provider)
        entry = RotationEntry(rotation.provider, utc_text(self.clock()), self.host)
        try:
            if self.lease is not None:
                self.lease.acquire()
            current = rotation.plugin.status().key_id
            outcome.key_id = current
            outcome.key_age_seconds = self._age(current)
            self._refuse_unfinished(current)
            if self.min_age is not None and (
                outcome.key_age_seconds is not None and outcome.key_age_seconds < self.min_age
            ):
                outcome.outcome = "skipped"
                outcome.reason = (
                    f"the current key is {_days(outcome.key_age_seconds)} old; the policy "
                    f"rotates at {_days(self.min_age)}"
                )
                return outcome
            if self.min_age is not None and outcome.key_age_seconds is None:
                raise SafetyError(
                    f"the {rotation.backend.kind} backend cannot tell the key's age, so "
                    "--if-older-than cannot be applied",
                    hint="drop --if-older-than and schedule the job at the rotation period",
                )
            entry.old_key_id = current
            self._save(entry)
            if self.lease is not None:
                rotation.guard = self.lease.check
            report = rotation.run()
            outcome.report = report
            outcome.outcome = "rotated"
            outcome.key_id = report.new_key_id
            outcome.key_age_seconds = self._age(report.new_key_id)
            entry.status = "done"
            entry.new_key_id = report.new_key_id
            entry.rewritten = report.rewritten
            entry.counts_after = dict(report.counts_after)
            entry.retired_old = report.retired_old
            entry.proof = list(report.steps)
            return outcome
        except SafetyError as exc:
            outcome.outcome = "refused"
            outcome.reason = exc.what
            entry.status = "refused"
            entry.reason = exc.what
            raise
        except SecretkitError as exc:
            entry.status = "failed"
            entry.reason = exc.what
            outcome.reason = exc.what
            raise
        finally:
            entry.finished = utc_text(self.clock())
            try:
                if entry.old_key_id is not None or entry.status != "running":
                    self._save(entry)
            finally:
                outcome.key_created = self._created
                outcome.last_success = self._last_success(outcome)
                self._write_metrics(outcome)
                if self.lease is not None:
                    self.lease.release()

    def _age(self, key_id: str) -> float | None:
        created = self.rotation.backend.key_created(key_id)
        self._created = created
        return None if created is None else max(0.0, self.clock() - created)

    _created: float | None = None

    def _refuse_unfinished(self, current: str) -> None:
        rotation = self.rotation
        with rotation.open_etcd() as client:
            counts = gates.count_key_ids(client, rotation.layout.root, rotation.provider)
        older = {k: n for k, n in counts.items() if k != current}
        if older:
            total = sum(older.values())
            raise SafetyError(
                f"a previous rotation's re-encryption is incomplete: {total} value(s) of "
                f"provider {rotation.provider!r} still carry an older key_id "
                f"({', '.join(sorted(older))})",
                hint="finish it first: `secretkit reencrypt --from-config CONFIG` through the "
                "API server (or run `secretkit kms rotate` by hand once the apiservers use "
                "the current key_id), then let the schedule run again",
            )

    def _last_success(self, outcome: ScheduleOutcome) -> float | None:
        if outcome.outcome == "rotated":
            return self.clock()
        if self.record is None:
            return None
        try:
            done = [e for e in self.record.entries() if e.get("status") == "done"]
        except SecretkitError:
            return None
        return _unix(done[-1].get("finished")) if done else None

    def _save(self, entry: RotationEntry) -> None:
        if self.record is not None and entry.status != "skipped":
            self.record.save(entry)

    def _write_metrics(self, outcome: ScheduleOutcome) -> None:
        if self.metrics_textfile is None:
            return
        text = metrics_text(outcome, now=self.clock())
        # node_exporter's textfile collector reads it: 0644, written atomically
        write_private(self.metrics_textfile, text.encode(), mode=0o644)


def _unix(text: Any) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days"


def metrics_text(outcome: ScheduleOutcome, *, now: float) -> str:
    """Prometheus text for node_exporter's textfile collector (labels: provider only)."""
    provider = outcome.provider.replace("\\", "\\\\").replace('"', '\\"')
    label = f'{{provider="{provider}"}}'
    lines: list[str] = []

    def gauge(name: str, help_text: str, value: float, labels: str = label) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name}{labels} {value:g}")

    gauge(
        "secretkit_kms_rotation_last_run_timestamp_seconds",
        "When the scheduled KMS rotation job last ran.",
        now,
    )
    for name in ("rotated", "skipped", "refused", "failed"):
        gauge_labels = f'{{provider="{provider}",outcome="{name}"}}'
        if name == "rotated":
            lines.append(
                "# HELP secretkit_kms_rotation_last_run_outcome 1 for the outcome of the "
                "last scheduled run, 0 for the others."
            )
            lines.append("# TYPE secretkit_kms_rotation_last_run_outcome gauge")
        lines.append(
            f"secretkit_kms_rotation_last_run_outcome{gauge_labels} "
            f"{1 if outcome.outcome == name else 0}"
        )
    if outcome.key_age_seconds is not None:
        gauge(
            "secretkit_kms_key_age_seconds",
            "Age of the key version the plugin writes with (from the backend).",
            outcome.key_age_seconds,
        )
    if outcome.key_created is not None:
        gauge(
            "secretkit_kms_key_created_timestamp_seconds",
            "When the key version the plugin writes with was created (its last rotation).",
            outcome.key_created,
        )
    if outcome.last_success is not None:
        gauge(
            "secretkit_kms_last_rotation_timestamp_seconds",
            "When the last successful rotation (with its re-encryption and proof) finished.",
            outcome.last_success,
        )
    if outcome.outcome == "rotated" and outcome.report is not None:
        gauge(
            "secretkit_kms_last_rotation_rewritten_objects",
            "Objects the last successful rotation rewrote.",
            outcome.report.rewritten,
        )
    return "\n".join(lines) + "\n"


def outcome_json(outcome: ScheduleOutcome) -> dict[str, Any]:
    """The ``schedule`` section of ``kms rotate -o json``."""
    return {
        "outcome": outcome.outcome,
        "provider": outcome.provider,
        "key_id": outcome.key_id,
        "key_age_seconds": outcome.key_age_seconds,
        "reason": outcome.reason,
    }
