"""The audit's scan over an in-memory etcd: live values, their history, narrow ranges."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from secretkit.audit.model import AuditReport, FindingKind
from secretkit.audit.scan import ScanOptions, scan_etcd
from secretkit.etcd import ForwardingEtcd, KeyValue, MemoryEtcd
from tests.unit.audit.helpers import classifier, config, stored, vector

PLAINTEXT = stored(vector("identity-02"))
ENCRYPTED = stored(vector("aesgcm-11"))
SECRET = vector("identity-02")["etcd_key"].encode()


def _audit(
    store: MemoryEtcd | ForwardingEtcd, *, history: bool, resources: tuple[str, ...] | None = None
) -> AuditReport:
    report = AuditReport(source="memory", prefix="/registry")
    judge = classifier(config(), resources=resources)
    return scan_etcd(store, judge, report, ScanOptions(history=history))


def test_history_finds_the_plaintext_an_overwrite_left_behind() -> None:
    store = MemoryEtcd()
    store.put(SECRET, PLAINTEXT)
    store.put(SECRET, ENCRYPTED)
    live_only = _audit(store, history=False)
    assert live_only.total_objects == 1 and not live_only.finding_counts[FindingKind.PLAINTEXT]
    assert live_only.revision == store.current_revision()
    with_history = _audit(store, history=True)
    assert with_history.historical_values == 1
    assert with_history.historical_finding_counts[FindingKind.PLAINTEXT] == 1
    assert [r.key for r in with_history.offending if r.historical] == [SECRET.decode()]


def test_history_cut_by_compaction_is_noted() -> None:
    store = MemoryEtcd()
    store.put(SECRET, PLAINTEXT)
    store.put(SECRET, ENCRYPTED)
    store.compact(store.current_revision())
    report = _audit(store, history=True)
    assert report.historical_values == 0
    assert any("compaction point" in note for note in report.notes)


def test_one_pinned_revision_for_the_whole_scan() -> None:
    store = MemoryEtcd()
    store.put(SECRET, ENCRYPTED)
    store.put(b"/registry/secrets/zz/later", ENCRYPTED)

    class WriterDuringScan(ForwardingEtcd):
        """Writes plaintext into the range once the scan has pinned its revision."""

        def scan(
            self, prefix: bytes, *, revision: int | None = None, page_size: int = 1000,
            keys_only: bool = False,
        ) -> Iterator[Sequence[KeyValue]]:
            pages = super().scan(prefix, revision=revision, page_size=page_size)
            self.inner.put(b"/registry/secrets/zz/later", PLAINTEXT)
            return pages

    report = _audit(WriterDuringScan(store), history=False)
    assert report.total_objects == 2 and not report.finding_counts[FindingKind.PLAINTEXT]


def test_explicit_resources_read_only_their_ranges() -> None:
    store = MemoryEtcd()
    store.put(SECRET, PLAINTEXT)
    store.put(b"/registry/configmaps/default/cm", PLAINTEXT)
    asked: list[bytes] = []

    class Recording(ForwardingEtcd):
        def scan(
            self, prefix: bytes, *, revision: int | None = None, page_size: int = 1000,
            keys_only: bool = False,
        ) -> Iterator[Sequence[KeyValue]]:
            asked.append(prefix)
            return super().scan(prefix, revision=revision, page_size=page_size)

    report = _audit(Recording(store), history=False, resources=("secrets",))
    assert asked == [b"/registry/secrets/"]
    assert report.total_objects == 1
