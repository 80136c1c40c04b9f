"""The audit use case: stream values from etcd (or a snapshot) through the classifier.

Memory stays flat: values are read in pages pinned to one revision, classified one at
a time and dropped; only counters and a bounded list of offending objects remain in
the :class:`AuditReport`. ``history`` also walks each key back through the older
revisions etcd still holds (:class:`secretkit.etcd.history.HistoryWalk`: batched reads
back to the key's creation or the compaction point), after each page's live values.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from secretkit.audit.classify import Classifier
from secretkit.audit.keys import normalize_prefix, range_prefix_for
from secretkit.audit.model import DEFAULT_PAGE_SIZE, AuditReport, SummaryKey
from secretkit.errors import SecretkitError
from secretkit.etcd.history import HistoryWalk
from secretkit.etcd.interface import EtcdReader, KeyValue
from secretkit.etcd.snapshot import EtcdSnapshot

T = TypeVar("T")

#: called with the number of keys read so far
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ScanOptions:
    """How to read: key prefix, page size, and whether to walk older revisions."""

    prefix: str = "/registry"
    page_size: int = DEFAULT_PAGE_SIZE
    history: bool = False


def range_prefixes(classifier: Classifier, prefix: str) -> list[bytes]:
    """Narrow etcd ranges for an explicit resource list, else the whole prefix."""
    base = normalize_prefix(prefix)
    policy = classifier.policy
    if policy.explicit and not policy.all_resources:
        narrow = [range_prefix_for(r, base) for r in policy.resources]
        if all(p is not None for p in narrow):
            return sorted({p.encode() for p in narrow if p is not None})
    return [(base + "/").encode()]


def classify_stream(
    classifier: Classifier,
    items: Iterable[tuple[KeyValue, bool]],
    report: AuditReport,
    progress: Progress | None = None,
) -> None:
    """Classify ``(kv, historical)`` pairs into ``report`` (the shared core of every source).

    Most values share their verdict with every other value of the same header
    (resource, provider, key, kms metadata: see ``formats.header``): those are judged
    once per header and then only counted, after the per-value decryption when
    ``--decrypt-check`` asks for it. An :class:`ObjectRecord` is built only for
    values with findings while the report still lists offending objects, and for
    values that must be judged alone (no header, or a decryption that failed). The
    report is the same as classifying every value on its own.
    """
    seen = 0
    add = report.add
    add_counted = report.add_counted
    verdict_of = classifier.verdict
    scope_of = classifier.scope_of
    classify_scoped = classifier.classify_scoped
    clean: dict[SummaryKey, list[int]] = {}
    offending = report.offending
    limit = report.findings_limit
    clean_historical = 0
    try:
        for kv, historical in items:
            seen += 1
            if progress is not None and seen % 5000 == 0:
                progress(seen)
            key = kv.key
            value = kv.value
            scope = scope_of(key)
            if scope.internal and not historical:
                report.internal_keys += 1
            if not scope.in_scope:
                continue
            verdict = verdict_of(scope, value)
            if verdict is not None and verdict.reader is not None:
                try:
                    verdict.reader.read(value, key)  # the plaintext is dropped at once
                except SecretkitError:
                    verdict = None  # a later provider may read it: the chain decides
            if verdict is not None:
                findings = verdict.findings
                if not findings:
                    if historical:
                        clean_historical += 1
                        continue
                    counts = clean.get(verdict.row)
                    if counts is None:
                        clean[verdict.row] = [1, len(value)]
                    else:
                        counts[0] += 1
                        counts[1] += len(value)
                    continue
                if len(offending) >= limit:
                    add_counted(verdict.row, len(value), findings, historical)
                    continue
            record = classify_scoped(
                scope, key, value, kv.mod_revision, historical, names=len(offending) < limit
            )
            if record is not None:
                add(record)
    finally:
        for row, (objects, size) in clean.items():
            report.add_clean(row, objects, size)
        report.historical_values += clean_historical
    if progress is not None:
        progress(seen)


_DONE = object()

#: GIL switch interval while the prefetch thread runs (seconds; Python's default: 0.005)
SWITCH_INTERVAL = 0.0002


def prefetch(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Fetch the next pages in a thread while the caller classifies the current one.

    The gRPC call waits on etcd without holding the GIL, so reading page n+1 overlaps
    the (CPU-bound) classification of page n. Errors are re-raised in the caller.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        # never block for good: the consumer may have stopped with the queue full
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not hand_over(page):
                    return
            hand_over(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            hand_over(exc)

    worker = threading.Thread(target=produce, name="audit-prefetch", daemon=True)
    # the reader thread wants the GIL back each time a Range answer arrives; at the
    # default 5 ms switch interval the classifying thread holds it that long per page
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)
        sys.setswitchinterval(interval)


def _etcd_items(
    client: EtcdReader,
    classifier: Classifier,
    options: ScanOptions,
    revision: int,
    history: HistoryWalk | None,
) -> Iterator[tuple[KeyValue, bool]]:
    for prefix in range_prefixes(classifier, options.prefix):
        pages = client.scan(prefix, revision=revision, page_size=options.page_size)
        for page in prefetch(iter(pages)):
            for kv in page:
                yield kv, False
            if history is not None:
                # the page's older values, fetched in batches (history calls etcd from
                # this thread while the prefetch thread reads the next page)
                scoped = [kv for kv in page if classifier.scope_of(kv.key).in_scope]
                for _, older in history.older(scoped):
                    yield older, True


def scan_etcd(
    client: EtcdReader,
    classifier: Classifier,
    report: AuditReport,
    options: ScanOptions,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit an etcd (live, or a snapshot's newest revision) at one pinned revision."""
    revision = client.current_revision()
    report.revision = revision
    report.history = options.history
    history = HistoryWalk(client) if options.history else None
    classify_stream(
        classifier, _etcd_items(client, classifier, options, revision, history), report, progress
    )
    _note_internal(report)
    if history is not None and history.compacted:
        report.notes.append(
            f"history of {history.compacted} keys ends at etcd's compaction point; "
            "older values are gone from etcd (but may remain in backups and snapshots)"
        )
    if options.history:
        report.notes.append(
            "history covers keys that exist now; values of deleted keys are only seen "
            "in a --snapshot audit"
        )
    return report


def scan_snapshot(
    path: Path,
    classifier: Classifier,
    report: AuditReport,
    options: ScanOptions,
    progress: Progress | None = None,
) -> AuditReport:
    """Audit an etcd snapshot file; ``history`` adds every older value it still holds."""
    report.history = options.history
    base = normalize_prefix(options.prefix)
    with EtcdSnapshot(path) as snapshot:
        revision, entries = snapshot.entries((base + "/").encode(), history=options.history)
        report.revision = revision
        classify_stream(classifier, ((e.kv, not e.live) for e in entries), report, progress)
    _note_internal(report)
    return report


def _note_internal(report: AuditReport) -> None:
    if report.internal_keys:
        report.notes.append(
            f"{report.internal_keys} apiserver-internal key(s) (masterleases, "
            "peerserverleases, ranges) are stored in plaintext by design: they belong to "
            "no API resource, no EncryptionConfiguration can cover them, and they hold "
            "lease and allocation data, not Secrets; they are never findings"
        )
