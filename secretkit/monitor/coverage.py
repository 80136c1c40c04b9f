"""What etcd holds now, as counts: objects by row (resource, provider, key) and verdict.

The verdicts are the audit's own (:class:`~secretkit.audit.classify.Classifier`):
each in-scope value gets the verdict the audit gives it, worked out once per value
header and then only counted, with ``--decrypt-check`` after decrypting the value.

Memory stays flat whatever etcd holds: the table keeps counts per row, not keys.
A change arrives with the value it replaced (the watch asks for ``prev_kv``), so
the old value's verdict is worked out again and taken off its count. That is exact
because a verdict depends only on the value's bytes and the inputs of
:class:`CoverageJudge` (config, current key_ids), which stay fixed until the next full
scan. The one
exception is a value decrypted on its own (``--decrypt-check``, no shared header
verdict): a KMS that fails now and answers later would change its verdict, so the
verdict it was counted under is remembered by key (at most
:data:`MAX_REMEMBERED` of them; beyond that the table asks for a full scan).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from secretkit.audit.classify import Classifier
from secretkit.audit.model import FindingKind, SummaryKey
from secretkit.errors import SecretkitError
from secretkit.etcd.interface import KeyValue, WatchEvent
from secretkit.monitor.labels import VERDICTS, RowTable, Verdict, has_object_path, primary_verdict

#: values whose verdict came from decrypting them alone, remembered by key (see above)
MAX_REMEMBERED: Final = 100_000

#: row number the judge gives apiserver-internal keys (not a row of the table)
INTERNAL: Final = -1

_STALE: Final = int(Verdict.STALE)


class CoverageJudge:
    """The audit's verdict of one stored value, as ``(row, verdict, remembered)``.

    ``remembered`` is True when the verdict came from decrypting the value alone
    (see the module docstring). None: the value is out of the audit's scope.
    """

    def __init__(self, classifier: Classifier, rows: RowTable) -> None:
        self.classifier = classifier
        self.rows = rows
        self._root = (classifier.splitter.base + "/").encode()
        self._decrypting = classifier.transformers is not None
        self._verdicts: dict[tuple[FindingKind, ...], Verdict] = {}

    def is_internal(self, key: bytes) -> bool:
        """True for apiserver-internal keys (``secretkit.core.layout.INTERNAL_KEYS``)."""
        return bool(self.classifier.scope_of(key).internal)

    def judge(
        self, key: bytes, value: bytes, mod_revision: int
    ) -> tuple[int, Verdict, bool] | None:
        """``(row, verdict, remembered)`` of one value, or None when out of scope."""
        classifier = self.classifier
        scope = classifier.scope_of(key)
        if scope.internal:
            # written by kube-apiserver without the transformers, whatever the config
            # (secretkit.core.layout.INTERNAL_KEYS): counted apart, never a finding
            return INTERNAL, Verdict.OK, False
        if not scope.in_scope:
            return None
        verdict = classifier.verdict(scope, value)
        if verdict is not None and verdict.reader is not None:
            try:
                verdict.reader.read(value, key)  # the plaintext is dropped at once
            except SecretkitError:
                verdict = None  # a later provider may read it: the chain decides
        remembered = False
        findings: tuple[FindingKind, ...]
        row: SummaryKey
        if verdict is not None:
            row, findings = verdict.row, verdict.findings
        else:
            record = classifier.classify_scoped(scope, key, value, mod_revision, False, names=False)
            if record is None:  # pragma: no cover - in scope was checked above
                return None
            row = SummaryKey(record.resource, record.provider, record.key_label)
            findings = record.findings
            remembered = self._decrypting
        primary = self._verdicts.get(findings)
        if primary is None:
            primary = self._verdicts[findings] = primary_verdict(findings)
        return self.rows.index(row, has_object_path(key, self._root)), primary, remembered


@dataclass(frozen=True)
class RowCounts:
    """One row's labels and its object count per verdict (a copy, for rendering)."""

    resource: str
    provider: str
    key: str
    counts: tuple[int, ...]
    stale_since: float | None


class Coverage:
    """Counts of one full scan, kept current by watched changes. Thread-safe.

    ``clock`` gives wall-clock seconds (injectable for tests); it dates when a row
    first held stale values, for the "oldest stale value" age.
    """

    def __init__(
        self,
        judge: CoverageJudge,
        *,
        clock: Callable[[], float],
        stale_since: dict[tuple[str, str, str], float] | None = None,
    ) -> None:
        self.judge = judge
        self.rows = judge.rows
        self.lock = threading.Lock()
        self._clock = clock
        self._counts: list[list[int]] = [[0] * len(VERDICTS)]
        self._stale_since: dict[int, float] = {}
        self._carried = dict(stale_since or {})
        self._remembered: dict[bytes, tuple[int, Verdict]] = {}
        #: apiserver-internal keys under the prefix (counted, never judged)
        self.internal = 0
        #: True when more than MAX_REMEMBERED verdicts had to be remembered
        self.inexact = False

    # -- counting ---------------------------------------------------------------------

    def count(self, kvs: Iterable[KeyValue]) -> None:
        """Count live values (a page of a full scan)."""
        judge = self.judge.judge
        with self.lock:
            for kv in kvs:
                key = kv.key
                found = judge(key, kv.value, kv.mod_revision)
                if found is not None:
                    self._add(key, *found)

    def apply(self, events: Iterable[WatchEvent]) -> tuple[int, int]:
        """Apply watched ``mvccpb.Event`` messages (with ``prev_kv``); return (puts, deletes)."""
        judge = self.judge.judge
        puts = deletes = 0
        with self.lock:
            for event in events:
                kv = event.kv
                key = kv.key
                if event.HasField("prev_kv"):
                    self._remove(key, event.prev_kv)
                if event.type == 0:  # PUT
                    puts += 1
                    found = judge(key, kv.value, kv.mod_revision)
                    if found is not None:
                        self._add(key, *found)
                else:
                    deletes += 1
        return puts, deletes

    def _add(self, key: bytes, row: int, verdict: Verdict, remembered: bool) -> None:
        if row == INTERNAL:
            self.internal += 1
            return
        if remembered:
            if len(self._remembered) < MAX_REMEMBERED:
                self._remembered[key] = (row, verdict)
            else:
                self.inexact = True
        counts = self._counts
        while row >= len(counts):
            counts.append([0] * len(VERDICTS))
        cells = counts[row]
        cells[verdict] += 1
        if verdict == _STALE and cells[_STALE] == 1:
            labels = self.rows.labels[row]
            # a full scan keeps the date the previous table first saw them
            self._stale_since[row] = self._carried.pop(labels, 0.0) or self._clock()

    def _remove(self, key: bytes, prev: KeyValue) -> None:
        counted = self._remembered.pop(key, None) if self._remembered else None
        if counted is None:
            found = self.judge.judge(key, prev.value, prev.mod_revision)
            if found is None:
                return
            row, verdict, _ = found
        else:
            row, verdict = counted
        if row == INTERNAL:
            self.internal -= 1
            return
        if row >= len(self._counts) or self._counts[row][verdict] <= 0:
            # cannot happen while verdicts are exact; never let a count go negative
            self.inexact = True
            return
        cells = self._counts[row]
        cells[verdict] -= 1
        if verdict == _STALE and cells[_STALE] == 0:
            self._stale_since.pop(row, None)

    # -- reading ----------------------------------------------------------------------

    def snapshot(self) -> list[RowCounts]:
        """Every row with its counts (rows that held objects once stay, at zero)."""
        with self.lock:
            labels = self.rows.labels
            return [
                RowCounts(*labels[i], tuple(cells), self._stale_since.get(i))
                for i, cells in enumerate(self._counts)
                if i < len(labels) and (i > 0 or any(cells))
            ]

    def stale_dates(self) -> dict[tuple[str, str, str], float]:
        """Labels of each row holding stale values -> when it first did (for the next table)."""
        with self.lock:
            return {self.rows.labels[i]: since for i, since in self._stale_since.items()}

    def totals(self) -> dict[Verdict, int]:
        """Objects per verdict over all rows."""
        with self.lock:
            return {v: sum(cells[v] for cells in self._counts) for v in VERDICTS}
