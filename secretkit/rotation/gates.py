"""The safety gate: nothing is removed while any stored value still needs it.

Before a step removes a key, a provider or a KMS key version, :func:`prove_readable`
reads *every* key under the etcd prefix (one pinned revision) and, unless told
otherwise, every older value etcd still holds, those of deleted keys included
(:mod:`secretkit.etcd.retained`), and judges each value with
:mod:`secretkit.core.readability` under the configuration (and the KMS key_ids) that will be
in force after the step. Any value that would then be unreadable blocks the step. The
scan is not limited to a resource list: a rule shared by several resources, a
wildcard, or a key an operator forgot cannot slip past it.

A proof over nothing is not a proof: an etcd with no key under the prefix (a typo in
``--etcd-prefix``, the wrong cluster) is refused, and the result says plainly how many
values the changed rules cover, including when that is zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secretkit.core.formats import classify_value
from secretkit.core.layout import KeyOwner
from secretkit.core.readability import Judge, Verdict
from secretkit.errors import SafetyError
from secretkit.etcd.interface import EtcdReader, KeyValue, WatchableReader
from secretkit.etcd.retained import RetainedValues

#: does a key belong to what the step changes? (for the "covered" count only)
Covers = Callable[[KeyOwner], bool]


@dataclass(frozen=True)
class Blocker:
    """One stored value that would be unreadable after the step."""

    etcd_key: str
    mod_revision: int
    reason: str
    historic: bool = False
    #: already unreadable under the config in force now (not caused by this step)
    already: bool = False

    def line(self) -> str:
        """``key @rev: reason (older revision)`` for messages."""
        extra = " (older revision)" if self.historic else ""
        if self.already:
            extra += " (already unreadable now: lost before this step)"
        return f"{self.etcd_key} @{self.mod_revision}: {self.reason}{extra}"


@dataclass
class GateResult:
    """What a gate scan judged and found."""

    prefix: str
    scanned: int = 0
    historic_scanned: int = 0
    internal: int = 0
    #: current values the step's rules (or KMS provider) govern
    covered: int = 0
    #: current values of resources the layout table does not know (CRDs...): judged
    #: under every rule that could cover them
    unknown_owner: int = 0
    blocker_count: int = 0
    examples: list[Blocker] = field(default_factory=list)
    history: bool = True

    @property
    def passed(self) -> bool:
        """True when no value would be left unreadable."""
        return self.blocker_count == 0

    def add(self, blocker: Blocker, keep: int) -> None:
        """Count ``blocker`` and keep it as an example while under ``keep``."""
        self.blocker_count += 1
        if len(self.examples) < keep:
            self.examples.append(blocker)

    def summary(self, what: str) -> str:
        """One line saying what was proven, with the numbers (never "all" over nothing)."""
        history = (
            f" and {self.historic_scanned:,} older revision(s)"
            if self.history
            else " (older revisions not checked: --ignore-history)"
        )
        covered = (
            f"{self.covered:,} of them belong to {what}"
            if self.covered
            else f"nothing to prove for {what}: etcd holds 0 values of it"
        )
        internal = (
            f"; {self.internal} apiserver-internal key(s) are plaintext by design"
            if self.internal
            else ""
        )
        if self.unknown_owner:
            internal += (
                f"; {self.unknown_owner:,} belong to resources the layout table does not "
                "know (CRDs?), judged under every rule that could cover them"
            )
        verdict = (
            "every one stays readable after the step"
            if self.passed
            else f"{self.blocker_count:,} would be unreadable"
        )
        return (
            f"{self.scanned:,} stored value(s) under {self.prefix}{history} judged: "
            f"{verdict}; {covered}{internal}"
        )

    def to_json(self) -> dict[str, Any]:
        """The gate section of a stage's ``-o json`` report."""
        return {
            "prefix": self.prefix,
            "scanned": self.scanned,
            "historic_scanned": self.historic_scanned,
            "history_checked": self.history,
            "internal": self.internal,
            "covered": self.covered,
            "unknown_owner": self.unknown_owner,
            "blockers": self.blocker_count,
            "examples": [
                {
                    "etcd_key": b.etcd_key,
                    "mod_revision": b.mod_revision,
                    "reason": b.reason,
                    "historic": b.historic,
                    "already_unreadable": b.already,
                }
                for b in self.examples
            ],
        }


def prove_readable(
    client: WatchableReader,
    *,
    after: Judge,
    before: Judge | None = None,
    covers: Covers | None = None,
    include_history: bool = True,
    keep_examples: int = 20,
    page_size: int = 1000,
) -> GateResult:
    """Judge every value under ``after.layout``'s prefix under ``after``.

    ``before`` (the config in force now) tells values lost before this step apart
    from values the step would lose; both block. ``client`` is an etcd
    (``EtcdClient``) or anything else serving the interface. Any etcd error
    propagates: the gate fails closed.
    """
    layout = after.layout
    result = GateResult(prefix=layout.root, history=include_history)

    def judge(kv: KeyValue, historic: bool) -> None:
        value = kv.value
        owner = layout.owner(kv.key)
        verdict = after.judge_owned(owner, value)
        if verdict.verdict is Verdict.INTERNAL:
            if not historic:
                result.internal += 1
            return
        if not historic and covers is not None and covers(owner):
            result.covered += 1
        if not historic and owner.kind == "unknown":
            result.unknown_owner += 1
        if verdict.readable:
            return
        already = before is not None and not before.judge_owned(owner, value).readable
        key = kv.key.decode("utf-8", "replace")
        result.add(Blocker(key, kv.mod_revision, verdict.reason, historic, already), keep_examples)

    if include_history:
        reader = RetainedValues(client, layout.root.encode(), page_size=page_size)
        for retained in reader.pages():
            for item in retained:
                if item.historic:
                    result.historic_scanned += 1
                else:
                    result.scanned += 1
                judge(item.kv, item.historic)
    else:
        for page in client.scan(layout.root.encode(), page_size=page_size):
            for kv in page:
                result.scanned += 1
                judge(kv, False)
    if result.scanned == 0:
        raise SafetyError(
            f"etcd holds no value under {layout.root}: nothing to prove, so nothing is removed",
            where=layout.root,
            hint="check --etcd-prefix (the apiserver's own flag) and --endpoints: a real "
            "cluster always stores objects there",
        )
    return result


def refusal(result: GateResult, step: str, hint: str) -> SafetyError:
    """The error for a gate that did not pass: the numbers and the first blockers."""
    lines = "\n".join("  " + b.line() for b in result.examples)
    more = result.blocker_count - len(result.examples)
    return SafetyError(
        f"refusing to {step}: {result.blocker_count:,} stored value(s) out of "
        f"{result.scanned + result.historic_scanned:,} judged would be unreadable after it:\n"
        + lines
        + (f"\n  ... and {more:,} more" if more > 0 else ""),
        hint=hint,
    )


def count_key_ids(client: EtcdReader, prefix: str, kms_name: str) -> dict[str, int]:
    """How many current kms v2 values of provider ``kms_name`` carry each key_id.

    The whole prefix is read: a kms provider may serve many resources (``*.*``).
    """
    from secretkit.core.formats.model import ValueProvider

    counts: dict[str, int] = {}
    for page in client.scan(prefix.encode()):
        for kv in page:
            stored = classify_value(kv.value)
            if stored.provider is ValueProvider.KMS_V2 and stored.name == kms_name:
                key_id = stored.kms_v2.key_id if stored.kms_v2 else "<undecodable>"
                counts[key_id] = counts.get(key_id, 0) + 1
    return counts
