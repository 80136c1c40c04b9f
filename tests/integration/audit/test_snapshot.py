"""``secretkit audit --snapshot``: a bbolt snapshot taken from a real etcd, no live cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretkit.etcd import EtcdClient, EtcdReader
from secretkit.etcd.snapshot import EtcdSnapshot
from tests.fixtures.servers import EtcdServer
from tests.integration.audit.conftest import UNIQUE_KEY_VECTORS, load_vectors, run_cli
from tests.unit.audit.helpers import stored, vector

pytestmark = pytest.mark.etcd


@pytest.fixture
def snapshot(etcd_client: EtcdClient, tmp_path: Path) -> Path:
    load_vectors(etcd_client, UNIQUE_KEY_VECTORS)
    key = vector("identity-02")["etcd_key"].encode()
    etcd_client.put(key, stored(vector("identity-02")))  # plaintext, then overwritten
    etcd_client.put(key, stored(vector("aesgcm-11")))
    etcd_client.put(b"/registry/secrets/default/deleted", stored(vector("identity-02")))
    etcd_client.delete(b"/registry/secrets/default/deleted")
    big = b"k8s\x00" + bytes(range(256)) * 40  # overflow pages (10 KB values)
    for i in range(300):
        etcd_client.put(f"/registry/configmaps/many/c{i:04d}".encode(), big)
    path = tmp_path / "snap.db"
    etcd_client.snapshot(path)
    return path


def test_snapshot_reader_sees_exactly_the_live_keys(
    snapshot: Path, etcd_client: EtcdClient
) -> None:
    live = {kv.key: kv.value for page in etcd_client.range_pages(b"/registry/") for kv in page}
    with EtcdSnapshot(snapshot) as snap:
        revision, entries = snap.entries(b"/registry/")
        seen = {e.kv.key: e.kv.value for e in entries}
    assert revision == etcd_client.current_revision()
    assert seen == live
    assert b"/registry/secrets/default/deleted" not in seen


def test_snapshot_audit_matches_the_live_audit(etcd_server: EtcdServer, snapshot: Path) -> None:
    live = json.loads(run_cli(["audit", "--all-resources", "-o", "json"], etcd_server).stdout)
    offline = run_cli(["audit", "--snapshot", str(snapshot), "--all-resources", "-o", "json"])
    assert offline.returncode == 0, offline.stderr
    doc = json.loads(offline.stdout)
    assert doc["summary"] == live["summary"]
    assert doc["totals"]["objects"] == live["totals"]["objects"] == len(UNIQUE_KEY_VECTORS) + 300
    assert doc["source"] == str(snapshot)


def test_snapshot_history_shows_overwritten_and_deleted_plaintext(snapshot: Path) -> None:
    proc = run_cli(["audit", "--snapshot", str(snapshot), "--history", "-o", "json"])
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    old = {f["key"] for f in doc["findings"] if f["historical"] and "plaintext" in f["findings"]}
    assert old == {"/registry/secrets/default/db-password", "/registry/secrets/default/deleted"}
    assert doc["totals"]["findings"]["plaintext"] == 0  # nothing plaintext is live


def test_not_a_snapshot_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x00" * 8192)
    proc = run_cli(["audit", "--snapshot", str(junk)])
    assert proc.returncode == 2  # bad input file
    assert "not a bbolt database" in proc.stderr
    missing = run_cli(["audit", "--snapshot", str(tmp_path / "nope.db")])
    assert missing.returncode == 2
    assert "cannot open snapshot file" in missing.stderr


def test_the_snapshot_as_an_etcd_reader_audits_like_the_live_etcd(
    snapshot: Path, etcd_client: EtcdClient
) -> None:
    from secretkit.audit.model import AuditReport
    from secretkit.audit.scan import ScanOptions, scan_etcd
    from tests.unit.audit.helpers import classifier, config

    def audit(reader: EtcdReader) -> AuditReport:
        report = AuditReport(source="test", prefix="/registry")
        return scan_etcd(reader, classifier(config()), report, ScanOptions(history=True))

    live = audit(etcd_client)
    with EtcdSnapshot(snapshot) as snap:
        offline = audit(snap)
    assert offline.revision == live.revision
    assert offline.rows == live.rows and offline.total_objects == live.total_objects > 300
    assert offline.finding_counts == live.finding_counts
    # the older plaintext of a live key is found either way (deleted keys' history
    # is only in the whole-file reading: --snapshot --history)
    assert offline.historical_finding_counts == live.historical_finding_counts
    assert offline.historical_values == live.historical_values > 0
