"""Scheduled checks (``--history-every``): older revisions in etcd, and the newest snapshot.

The live table says what etcd serves now; an old plaintext or old-key value can
still sit in etcd's retained history (until compaction) and in every snapshot taken
before the re-encryption. These checks count such values by the same verdicts,
with the audit's history walker (:class:`~secretkit.etcd.history.HistoryWalk`) and
snapshot reader (:class:`~secretkit.etcd.snapshot.EtcdSnapshot`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from secretkit.audit.keys import normalize_prefix
from secretkit.errors import SecretkitError
from secretkit.etcd.history import HistoryWalk
from secretkit.etcd.interface import EtcdReader
from secretkit.etcd.snapshot import EtcdSnapshot
from secretkit.monitor.coverage import INTERNAL, CoverageJudge
from secretkit.monitor.inputs import VerdictInputs, watch_prefixes
from secretkit.monitor.labels import RowTable, Verdict
from secretkit.monitor.metrics import MonitorMetrics
from secretkit.monitor.options import MonitorOptions

log = logging.getLogger(__name__)

#: file names taken for snapshots in --snapshot-dir (``etcdctl snapshot save x.db``)
SNAPSHOT_SUFFIXES = (".db", ".snapshot")


def check_history(
    client: EtcdReader, inputs: VerdictInputs, options: MonitorOptions, metrics: MonitorMetrics
) -> dict[Verdict, int]:
    """Count the older values etcd still holds of every in-scope key, by verdict."""
    classifier = inputs.classifier()
    judge = CoverageJudge(classifier, RowTable(options.max_rows))
    counts: Counter[Verdict] = Counter()
    walk = HistoryWalk(client)
    revision = client.current_revision()
    for prefix in watch_prefixes(classifier, options.prefix):
        pages = client.scan(prefix, revision=revision, page_size=options.page_size)
        for page in pages:
            scoped = [
                kv for kv in page
                if classifier.scope_of(kv.key).in_scope and not judge.is_internal(kv.key)
            ]
            for _, older in walk.older(scoped):
                found = judge.judge(older.key, older.value, older.mod_revision)
                if found is not None and found[0] != INTERNAL:
                    counts[found[1]] += 1
    metrics.history_counts = dict(counts)
    metrics.history_compacted.set(walk.compacted)
    metrics.history_last_run.set(metrics.clock())
    return dict(counts)


def newest_snapshot(directory: Path) -> Path | None:
    """The most recently modified snapshot file in ``directory`` (None: there is none)."""
    best: tuple[float, Path] | None = None
    for path in directory.iterdir():
        if path.suffix not in SNAPSHOT_SUFFIXES or not path.is_file():
            continue
        mtime = path.stat().st_mtime
        if best is None or mtime > best[0]:
            best = (mtime, path)
    return best[1] if best else None


def check_snapshot(
    directory: Path, inputs: VerdictInputs, options: MonitorOptions, metrics: MonitorMetrics
) -> dict[Verdict, int] | None:
    """Count every value (live and older) of the newest snapshot in ``directory``, by verdict."""
    path = newest_snapshot(directory)
    if path is None:
        log.warning("no snapshot (*.db) in %s", directory)
        metrics.error("snapshot")
        return None
    mtime = path.stat().st_mtime
    classifier = inputs.classifier()
    judge = CoverageJudge(classifier, RowTable(options.max_rows))
    counts: Counter[Verdict] = Counter()
    root = (normalize_prefix(options.prefix) + "/").encode()
    with EtcdSnapshot(path) as snapshot:
        _, entries = snapshot.entries(root, history=True)
        for entry in entries:
            kv = entry.kv
            found = judge.judge(kv.key, kv.value, kv.mod_revision)
            if found is not None and found[0] != INTERNAL:
                counts[found[1]] += 1
    metrics.snapshot_counts = dict(counts)
    metrics.snapshot_mtime = mtime
    metrics.snapshot_last_run.set(metrics.clock())
    return dict(counts)


def run_checks(
    client: EtcdReader,
    inputs: VerdictInputs,
    options: MonitorOptions,
    metrics: MonitorMetrics,
) -> None:
    """One round of the scheduled checks; failures are counted and logged, never raised."""
    started = time.monotonic()
    try:
        counts = check_history(client, inputs, options, metrics)
        log.info("history check: %s", _describe(counts))
    except SecretkitError as exc:
        metrics.error("history")
        log.warning("history check failed: %s", exc.what)
    if options.snapshot_dir is not None:
        try:
            found = check_snapshot(options.snapshot_dir, inputs, options, metrics)
            if found is not None:
                log.info("snapshot check: %s", _describe(found))
        except (SecretkitError, OSError) as exc:
            metrics.error("snapshot")
            log.warning("snapshot check failed: %s", getattr(exc, "what", type(exc).__name__))
    log.debug("scheduled checks took %.1fs", time.monotonic() - started)


def _describe(counts: dict[Verdict, int]) -> str:
    return ", ".join(f"{counts.get(v, 0)} {v.label}" for v in Verdict) or "nothing"
