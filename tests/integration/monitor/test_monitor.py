"""secretkit monitor against a real etcd: verdicts, changes, deletes, rescans, bounds."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.transformers import build_transformers
from secretkit.etcd import EtcdClient, ForwardingEtcd
from secretkit.etcd.interface import Watch
from secretkit.etcd.model import WatchRange
from secretkit.monitor.labels import OTHER
from tests.integration.monitor.helpers import (
    PLAINTEXT_SECRET,
    fast_options,
    fetch,
    objects,
    running_monitor,
    scrape,
    scrape_text,
    value,
    wait_for,
)

pytestmark = pytest.mark.etcd

KEY1 = base64.b64encode(b"\x01" * 32).decode()
KEY2 = base64.b64encode(b"\x02" * 32).decode()


def _config(path: Path, keys: list[tuple[str, str]], resources: list[str]) -> Path:
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": resources,
                "providers": [
                    {"aesgcm": {"keys": [{"name": n, "secret": s} for n, s in keys]}},
                    {"identity": {}},
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def _encrypt(config_path: Path, key: str, plaintext: bytes = PLAINTEXT_SECRET) -> bytes:
    config = load_encryption_config(config_path.read_bytes())
    transformers = build_transformers(config, lambda provider: None)  # type: ignore[arg-type,return-value]
    return transformers.for_etcd_key(key).write(plaintext, key)


def test_counts_follow_puts_updates_and_deletes(etcd_client: EtcdClient) -> None:
    etcd_client.put(b"/registry/secrets/default/a", PLAINTEXT_SECRET)
    etcd_client.put(b"/registry/configmaps/default/cm", PLAINTEXT_SECRET)  # not protected
    with running_monitor(fast_options(), etcd_client) as monitor:
        address = monitor.address
        samples = scrape(address)
        assert objects(samples, "plaintext") == 1
        assert objects(samples, "plaintext", resource="configmaps") == 0
        assert value(samples, "secretkit_monitor_full_scans_total", reason="start") == 1
        etcd_client.put(b"/registry/secrets/ns2/b", PLAINTEXT_SECRET)
        wait_for(lambda: objects(scrape(address), "plaintext") == 2, what="a new Secret")
        etcd_client.put(b"/registry/secrets/ns2/b", PLAINTEXT_SECRET)  # an update
        etcd_client.delete(b"/registry/secrets/default/a")
        last = etcd_client.put(b"/registry/secrets/ns2/c", b"k8s:enc:bogus:v1:x")
        samples = wait_for(
            lambda: (s := scrape(address))
            and value(s, "secretkit_monitor_watch_revision") >= last
            and s,
            what="the changes",
        )
        assert objects(samples, "plaintext") == 1  # a deleted key leaves the counts
        assert objects(samples, "unknown", provider="unknown") == 1
        assert value(samples, "secretkit_monitor_watch_events_total", type="put") == 3
        assert value(samples, "secretkit_monitor_watch_events_total", type="delete") == 1
        assert value(samples, "secretkit_monitor_watch_lag_revisions") >= 0
        assert value(samples, "secretkit_monitor_following") == 1


def test_stale_values_and_a_changed_config_rescan(etcd_client: EtcdClient, tmp_path: Path) -> None:
    old = _config(tmp_path / "old.yaml", [("key1", KEY1)], ["secrets"])
    new = _config(tmp_path / "enc.yaml", [("key2", KEY2), ("key1", KEY1)], ["secrets"])
    key = "/registry/secrets/default/old"
    etcd_client.put(key.encode(), _encrypt(old, key))
    etcd_client.put(b"/registry/secrets/default/plain", PLAINTEXT_SECRET)
    options = fast_options(config=new)
    with running_monitor(options, etcd_client) as monitor:
        address = monitor.address
        samples = scrape(address)
        assert objects(samples, "stale", provider="aesgcm", key="key1") == 1
        # identity is provider #1, so a plaintext Secret is also stale: counted once, as plaintext
        assert objects(samples, "plaintext", provider="identity") == 1
        assert objects(samples, "stale", provider="identity") == 0
        age = value(samples, "secretkit_monitor_stale_oldest_age_seconds",
                    resource="secrets", provider="aesgcm", key="key1")
        assert age >= 0
        assert ("secretkit_monitor_stale_oldest_age_seconds", frozenset(
            {("resource", "secrets"), ("provider", "aesgcm"), ("key", "key1")})) in samples
        # rewritten with the write key: leaves the stale count, the age series goes
        etcd_client.put(key.encode(), _encrypt(new, key))
        wait_for(lambda: objects(scrape(address), "ok", key="key2") == 1, what="the rewrite")
        samples = scrape(address)
        assert objects(samples, "stale", key="key1") == 0
        assert not any(n == "secretkit_monitor_stale_oldest_age_seconds" for n, _ in samples)
        # the operator drops key2 from the config: its values cannot be read any more
        _config(new, [("key1", KEY1)], ["secrets"])
        wait_for(
            lambda: value(scrape(address), "secretkit_monitor_full_scans_total",
                          reason="config_changed") == 1,
            what="a full scan after the config changed",
        )
        wait_for(lambda: objects(scrape(address), "undecryptable", key="key2") == 1,
                 what="the new verdict")


def test_internal_keys_are_never_plaintext_findings(
    etcd_client: EtcdClient, tmp_path: Path
) -> None:
    config = _config(tmp_path / "enc.yaml", [("key1", KEY1)], ["*.*"])
    for key in (b"/registry/masterleases/10.0.0.1", b"/registry/peerserverleases/a",
                b"/registry/ranges/serviceips"):
        etcd_client.put(key, PLAINTEXT_SECRET)
    etcd_client.put(b"/registry/configmaps/default/cm", PLAINTEXT_SECRET)
    with running_monitor(fast_options(config=config), etcd_client) as monitor:
        address = monitor.address
        samples = scrape(address)
        assert value(samples, "secretkit_monitor_internal_keys") == 3
        assert objects(samples, "plaintext", resource="configmaps") == 1
        total = sum(v for (n, labels), v in samples.items()
                    if n == "secretkit_monitor_objects" and ("verdict", "plaintext") in labels)
        assert total == 1
        etcd_client.put(b"/registry/ranges/servicenodeports", PLAINTEXT_SECRET)
        etcd_client.delete(b"/registry/masterleases/10.0.0.1")
        wait_for(lambda: value(scrape(address), "secretkit_monitor_internal_keys") == 3
                 and value(scrape(address), "secretkit_monitor_watch_events_total",
                           type="delete") == 1, what="internal changes")


def test_rows_are_bounded_and_labels_hold_no_names(etcd_client: EtcdClient) -> None:
    for resource in ("secrets", "configmaps", "widgets", "gadgets"):
        etcd_client.put(f"/registry/{resource}/default/CANARY-name".encode(),
                        PLAINTEXT_SECRET + b"CANARY-value")
    etcd_client.put(b"/registry/CANARY-direct", PLAINTEXT_SECRET)
    etcd_client.put(b"/registry/secrets/default/x", b"k8s:enc:aesgcm:v1:CANARY key:junk")
    options = fast_options(all_resources=True, max_rows=2)
    with running_monitor(options, etcd_client) as monitor:
        text = scrape_text(monitor.address)
        assert "CANARY" not in text
        samples = scrape(monitor.address)
        assert value(samples, "secretkit_monitor_label_rows") == 2
        assert value(samples, "secretkit_monitor_label_rows_limit") == 2
        assert value(samples, "secretkit_monitor_overflow_objects") >= 2
        rows = {dict(labels)["resource"] for n, labels in samples
                if n == "secretkit_monitor_objects"}
        assert OTHER in rows and len(rows) == 3
        total = sum(v for (n, _), v in samples.items() if n == "secretkit_monitor_objects")
        assert total == 6  # every object counted once, bounded rows or not


def test_health_endpoints(etcd_client: EtcdClient) -> None:
    with running_monitor(fast_options(), etcd_client) as monitor:
        base = f"http://{monitor.address.host}:{monitor.address.port}"
        assert fetch(base + "/healthz") == (200, "ok\n")
        assert fetch(base + "/livez") == (200, "ok\n")
        assert fetch(base + "/nope")[0] == 404


class _GatedClient(ForwardingEtcd):
    """A real EtcdClient whose next watch waits until the test opens the gate."""

    def __init__(self, client: EtcdClient) -> None:
        super().__init__(client)
        self.gate = threading.Event()
        self.gate.set()
        self.streams: list[Watch] = []

    def watch(
        self, ranges: Sequence[WatchRange], *, prev_kv: bool = False, progress_notify: bool = True
    ) -> Watch:
        self.gate.wait(30)
        stream = super().watch(ranges, prev_kv=prev_kv, progress_notify=progress_notify)
        self.streams.append(stream)
        return stream


def test_a_compacted_resume_point_means_a_full_scan(etcd_client: EtcdClient) -> None:
    gated = _GatedClient(etcd_client)
    etcd_client.put(b"/registry/secrets/default/a", PLAINTEXT_SECRET)
    with running_monitor(fast_options(), gated) as monitor:
        address = monitor.address
        gated.gate.clear()
        gated.streams[-1].close()  # the stream ends; the next watch waits at the gate
        etcd_client.put(b"/registry/secrets/default/b", PLAINTEXT_SECRET)
        revision = etcd_client.put(b"/unwatched", b"x")
        etcd_client.compact(revision)
        gated.gate.set()
        wait_for(lambda: value(scrape(address), "secretkit_monitor_full_scans_total",
                               reason="compacted") == 1, what="a full scan after compaction")
        samples = scrape(address)
        assert objects(samples, "plaintext") == 2
        assert value(samples, "secretkit_monitor_errors_total", kind="etcd_compacted") == 1


def test_history_and_snapshot_checks(etcd_client: EtcdClient, tmp_path: Path) -> None:
    etcd_client.put(b"/registry/secrets/default/a", PLAINTEXT_SECRET)
    etcd_client.put(b"/registry/secrets/default/a", b"k8s:enc:aesgcm:v1:key1:" + b"x" * 40)
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    etcd_client.snapshot(snapshots / "etcd-1.db")
    options = fast_options(history_every=3600.0, snapshot_dir=snapshots)
    with running_monitor(options, etcd_client) as monitor:
        samples = wait_for(
            lambda: (s := scrape(monitor.address))
            and value(s, "secretkit_monitor_snapshot_last_run_timestamp_seconds") > 0
            and s,
            what="the scheduled checks",
        )
        assert value(samples, "secretkit_monitor_history_values", verdict="plaintext") == 1
        # the snapshot holds the live value and the older plaintext one
        assert value(samples, "secretkit_monitor_snapshot_values", verdict="plaintext") == 1
        assert value(samples, "secretkit_monitor_snapshot_age_seconds") >= 0
        assert value(samples, "secretkit_monitor_history_last_run_timestamp_seconds") > 0


@pytest.fixture
def _no_leftover_threads() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    after = {t.name for t in threading.enumerate() if t.is_alive()}
    assert not {n for n in after - before if n.startswith("monitor-")}


@pytest.mark.usefixtures("_no_leftover_threads")
def test_stop_ends_every_thread(etcd_client: EtcdClient) -> None:
    with running_monitor(fast_options(history_every=3600.0), etcd_client):
        pass


def test_unreachable_etcd_is_not_ready_but_alive_and_counted(tmp_path: Path) -> None:
    from secretkit.etcd import EtcdConfig
    from secretkit.monitor.run import Monitor
    from secretkit.sandbox.servers import free_port

    client = EtcdClient(EtcdConfig(endpoints=(f"http://127.0.0.1:{free_port()}",), timeout=1))
    monitor = Monitor(fast_options(), client)
    thread = threading.Thread(target=monitor.run, daemon=True)
    thread.start()
    try:
        base = f"http://{monitor.address.host}:{monitor.address.port}"
        wait_for(lambda: value(scrape(monitor.address), "secretkit_monitor_errors_total",
                               kind="etcd_unavailable") >= 2, what="retries")
        assert fetch(base + "/healthz") == (503, "not ready: the start-up scan is not done\n")
        assert fetch(base + "/livez") == (200, "ok\n")
        assert value(scrape(monitor.address), "secretkit_monitor_following") == 0
    finally:
        monitor.stop()
        thread.join(15)
        client.close()
    assert not thread.is_alive()
