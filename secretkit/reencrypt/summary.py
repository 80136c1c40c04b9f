"""Run counters and per-object errors; the ``-o json`` summary schema lives here.

Error entries name the object (resource, namespace, name) and the HTTP status or
error class, never a message body: API error messages may echo object data.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: counter names, in the order the text summary prints them
COUNTERS = (
    "seen",
    "rewritten",
    "unchanged",
    "skipped_fresh",
    "conflicts_retried",
    "conflicts_skipped",
    "gone",
    "failed",
)

#: at most this many error entries are kept (the counters stay exact)
MAX_ERRORS = 1000


def processed(counters: Mapping[str, int]) -> int:
    """Objects an engine handled: ``seen`` less ``skipped_fresh``.

    ``--only-stale`` counts the values its etcd scan found fresh as seen and
    skipped_fresh; they are never sent, so the progress bar and its total (the
    stale objects) leave them out. Every other mode has no skipped_fresh.
    """
    return counters.get("seen", 0) - counters.get("skipped_fresh", 0)


@dataclass(frozen=True)
class ObjectError:
    """One object that could not be re-encrypted."""

    resource: str
    namespace: str | None
    name: str
    status: int | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in the summary and the checkpoint."""
        return {
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectError:
        """Inverse of :meth:`to_json`."""
        return cls(
            resource=str(data["resource"]),
            namespace=data.get("namespace"),
            name=str(data["name"]),
            status=data.get("status"),
            reason=str(data.get("reason", "")),
        )


@dataclass
class Summary:
    """Thread-safe counters per resource plus the error list."""

    mode: str
    dry_run: bool = False
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[ObjectError] = field(default_factory=list)
    errors_dropped: int = 0
    elapsed_seconds: float = 0.0
    complete: bool = False
    verify: dict[str, Any] | None = None
    #: --dry-run: the objects that would be rewritten (names only, never data)
    would_rewrite: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, resource: str, counter: str, n: int = 1) -> None:
        """Increment ``counter`` of ``resource`` by ``n``."""
        if counter not in COUNTERS:
            raise ValueError(f"unknown counter {counter!r}")
        with self._lock:
            per = self.counters.setdefault(resource, dict.fromkeys(COUNTERS, 0))
            per[counter] += n

    def fail(self, error: ObjectError) -> None:
        """Count one failed object and remember why."""
        self.add(error.resource, "failed")
        with self._lock:
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(error)
            else:
                self.errors_dropped += 1

    def candidate(self, resource: str, name: str) -> None:
        """--dry-run: count ``name`` as would-be rewritten and list it."""
        self.add(resource, "rewritten")
        with self._lock:
            self.would_rewrite.append(f"{resource} {name}")

    def ensure(self, resource: str) -> None:
        """Make ``resource`` appear in the summary even when it has no objects."""
        with self._lock:
            self.counters.setdefault(resource, dict.fromkeys(COUNTERS, 0))

    def resource_counters(self, resource: str) -> dict[str, int]:
        """A copy of one resource's counters."""
        with self._lock:
            return dict(self.counters.get(resource) or dict.fromkeys(COUNTERS, 0))

    def totals(self) -> dict[str, int]:
        """Counters summed over every resource."""
        with self._lock:
            total = dict.fromkeys(COUNTERS, 0)
            for per in self.counters.values():
                for name, value in per.items():
                    total[name] += value
            return total

    def processed(self) -> int:
        """Objects the engine finished (any outcome), for the progress line."""
        return processed(self.totals())

    @property
    def ok(self) -> bool:
        """True when the run finished and no object failed."""
        return self.complete and self.totals()["failed"] == 0

    def to_json(self) -> dict[str, Any]:
        """The ``-o json`` document (docs/schemas/secretkit.reencrypt.summary.v1.json)."""
        totals = self.totals()
        rate = totals["seen"] / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0
        with self._lock:
            resources = {name: dict(per) for name, per in sorted(self.counters.items())}
            errors = [e.to_json() for e in self.errors]
            would_rewrite = sorted(self.would_rewrite)
        data: dict[str, Any] = {
            "schema": "secretkit.reencrypt.summary/v1",
            "mode": self.mode,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "ok": self.ok,
            "totals": totals,
            "resources": resources,
            "errors": errors,
            "errors_dropped": self.errors_dropped,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "objects_per_second": round(rate, 1),
            # always present (docs/reencrypt.md): empty unless --dry-run listed candidates
            "would_rewrite": would_rewrite,
        }
        if self.verify is not None:
            data["verify"] = self.verify
        return data

    def to_text(self) -> str:
        """A short human summary."""
        totals = self.totals()
        verb = "would rewrite" if self.dry_run else "rewritten"
        lines = []
        if self.dry_run:
            with self._lock:
                lines += [f"would rewrite: {name}" for name in sorted(self.would_rewrite)]
        lines += [
            f"reencrypt ({self.mode}{', dry run' if self.dry_run else ''}): "
            f"{'complete' if self.complete else 'INCOMPLETE'} in {self.elapsed_seconds:.1f}s",
        ]
        header = f"  {'resource':<32} {'seen':>8} {verb:>13} {'unchanged':>9} "
        header += f"{'fresh':>7} {'conflicts':>9} {'gone':>6} {'failed':>6}"
        lines.append(header)
        rows = [*sorted(self.counters.items()), ("TOTAL", totals)]
        for name, c in rows:
            conflicts = c["conflicts_retried"] + c["conflicts_skipped"]
            lines.append(
                f"  {name:<32} {c['seen']:>8} {c['rewritten']:>13} {c['unchanged']:>9} "
                f"{c['skipped_fresh']:>7} {conflicts:>9} {c['gone']:>6} {c['failed']:>6}"
            )
        for err in self.errors[:20]:
            where = f"{err.namespace}/{err.name}" if err.namespace else err.name
            status = f" HTTP {err.status}" if err.status else ""
            lines.append(f"  failed: {err.resource} {where}:{status} {err.reason}")
        more = len(self.errors) - 20 + self.errors_dropped
        if more > 0:
            lines.append(f"  ... and {more} more failures (use -o json)")
        if self.verify is not None:
            lines += _verify_text(self.verify)
        return "\n".join(lines)


def _verify_text(verify: dict[str, Any]) -> list[str]:
    """The ``--verify`` verdict with its counts, then the objects it names."""
    lines = [
        f"  verify: {verify.get('verdict', 'n/a')} ({verify.get('checked', 0)} checked, "
        f"{verify.get('stale', 0)} stale, {verify.get('undecryptable', 0)} undecryptable)"
    ]
    keys = verify.get("undecryptable_keys") or []
    if keys:
        # a separate, louder line: these are not fixed by running again
        lines.append(
            "  UNDECRYPTABLE (data-loss risk: no provider in the config can read them; "
            "a rewrite cannot fix them):"
        )
        lines += [f"    {key}" for key in keys[:20]]
        more = len(keys) - 20 + int(verify.get("undecryptable_keys_dropped", 0))
        if more > 0:
            lines.append(f"    ... and {more} more (use -o json)")
    examples = verify.get("stale_examples") or []
    lines += [f"  stale: {name}" for name in examples]
    if int(verify.get("stale", 0)) > len(examples):
        lines.append(f"  ... and {int(verify['stale']) - len(examples)} more stale")
    return lines
