"""``secretkit audit`` against a real etcd holding values the real apiserver wrote."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from secretkit.audit.model import FindingKind
from secretkit.audit.run import AuditRequest, run_audit
from secretkit.etcd import EtcdClient
from tests.fixtures.servers import EtcdServer
from tests.integration.audit.conftest import UNIQUE_KEY_VECTORS, load_vectors, run_cli
from tests.unit.audit.helpers import backends_yaml, plaintext, stored, vector

pytestmark = pytest.mark.etcd


def _fill_many(client: EtcdClient, count: int) -> None:
    value = stored(vector("identity-02"))  # a plaintext Secret JSON
    for i in range(count):
        client.put(f"/registry/secrets/bulk/s{i:05d}".encode(), value)
        client.put(f"/registry/configmaps/bulk/c{i:05d}".encode(), value)


def test_cli_counts_classifies_and_fails_on_plaintext(
    etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    load_vectors(etcd_client, UNIQUE_KEY_VECTORS)
    _fill_many(etcd_client, 250)
    etcd_client.put(b"/registry/secrets/junk/garbage", b"k8s:enc:rot13:v1:x:abc")
    etcd_client.put(b"/registry/pods/default/p1", b'{"kind":"Pod"}')
    proc = run_cli(["audit", "-o", "json", "--page-size", "37"], etcd_server)
    assert proc.returncode == 1, proc.stderr
    assert "audit found 250 plaintext" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "secretkit.audit.report/v1"
    assert doc["revision"] == etcd_client.current_revision()
    # default scope: secrets only (6 vectors + 250 bulk + 1 garbage)
    assert doc["totals"]["objects"] == 257
    assert doc["totals"]["findings"]["plaintext"] == 250
    assert doc["totals"]["findings"]["unknown"] == 1
    assert doc["failed"] is True
    providers = {(r["provider"], r["key"]): r["objects"] for r in doc["summary"]}
    assert providers[("aesgcm", "gcm-key-2")] == 1
    assert providers[("identity", "-")] == 250
    kinds = {f["key"]: f["findings"] for f in doc["findings"]}
    assert kinds["/registry/secrets/junk/garbage"] == ["unknown"]
    assert len(doc["findings"]) == 251


def test_all_resources_counts_everything_but_protects_only_secrets(
    etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    load_vectors(etcd_client, UNIQUE_KEY_VECTORS)
    etcd_client.put(b"/registry/pods/default/p1", b'{"kind":"Pod"}')
    etcd_client.put(b"/registry2/secrets/x/y", b'{"kind":"Secret"}')  # outside the prefix
    proc = run_cli(["audit", "--all-resources", "-o", "json"], etcd_server)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["totals"]["objects"] == len(UNIQUE_KEY_VECTORS) + 1
    assert doc["totals"]["findings"]["plaintext"] == 0  # the plaintext configmap is not protected
    resources = {r["resource"] for r in doc["summary"]}
    assert resources == {"secrets", "configmaps", "pods"}


def test_config_stale_and_undecryptable_with_decrypt_check(
    etcd_server: EtcdServer, etcd_client: EtcdClient, config_file: Path, tmp_path: Path
) -> None:
    load_vectors(etcd_client, UNIQUE_KEY_VECTORS)
    backends = backends_yaml(tmp_path)
    base = ["audit", "--config", str(config_file), "--backends", str(backends), "-o", "json"]
    classified = json.loads(run_cli([*base, "--fail-on", "none"], etcd_server).stdout)
    proc = run_cli([*base, "--decrypt-check"], etcd_server)
    assert proc.returncode == 1
    decrypted = json.loads(proc.stdout)
    # the all-providers config encrypts *.*: every vector key is in scope
    assert decrypted["totals"]["objects"] == len(UNIQUE_KEY_VECTORS)
    undecryptable = {f["key"] for f in decrypted["findings"] if "undecryptable" in f["findings"]}
    assert undecryptable == {
        vector("neg-aesgcm-31")["etcd_key"],
        vector("neg-kms-v2-41")["etcd_key"],
    }
    assert classified["totals"]["findings"]["undecryptable"] == 0  # needs decryption to see
    stale_keys = {f["key"] for f in classified["findings"] if "stale" in f["findings"]}
    for vector_id in ("aesgcm-13", "aesgcm-11", "kms-v2-23", "secretbox-19", "aescbc-08"):
        assert vector(vector_id)["etcd_key"] in stale_keys, vector_id
    assert vector("aescbc-05")["etcd_key"] not in stale_keys  # cbc-key-1 writes
    assert decrypted["kms_current_key_ids"]["kms-prod"] == vector("kms-v2-22")["key_id"]
    assert decrypted["decrypt_checked"] is True
    # no plaintext, key or ciphertext in any output
    for vector_id in UNIQUE_KEY_VECTORS:
        v = vector(vector_id)
        secret = plaintext(v)
        if len(secret) >= 8:
            assert secret.decode("latin-1") not in proc.stdout + proc.stderr
        if len(v["stored_b64"]) > 80:  # a ciphertext slice past the readable prefix
            assert v["stored_b64"][48:80] not in proc.stdout
        if v.get("key_b64"):
            assert v["key_b64"] not in proc.stdout + proc.stderr


def test_rotated_kms_key_id_makes_kms_values_stale(
    etcd_server: EtcdServer, etcd_client: EtcdClient, tmp_path: Path
) -> None:
    v = vector("kms-v2-22")
    etcd_client.put(v["etcd_key"].encode(), stored(v))
    config = tmp_path / "kms.yaml"
    config.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
        "resources:\n  - resources: [secrets]\n    providers:\n"
        "      - kms: {apiVersion: v2, name: kms-prod, endpoint: 'unix:///tmp/kms.sock'}\n"
        "      - identity: {}\n"
    )
    request = AuditRequest(config=config, backends=backends_yaml(tmp_path), decrypt_check=True)
    report = run_audit(request, etcd_config=etcd_server.client_config())
    assert report.count(FindingKind.STALE) == 0
    assert report.count(FindingKind.UNDECRYPTABLE) == 0
    rotated = AuditRequest(
        config=config, backends=backends_yaml(tmp_path, rotate="kms-prod"), decrypt_check=True
    )
    report = run_audit(rotated, etcd_config=etcd_server.client_config())
    assert report.kms_key_ids == {"kms-prod": "kms-prod-rotated"}
    assert report.count(FindingKind.STALE) == 1
    assert report.count(FindingKind.UNDECRYPTABLE) == 0  # the old KEK still decrypts


def test_history_finds_plaintext_left_in_older_revisions(
    etcd_server: EtcdServer, etcd_client: EtcdClient, config_file: Path
) -> None:
    key = vector("identity-02")["etcd_key"].encode()
    etcd_client.put(key, stored(vector("identity-02")))  # plaintext first ...
    etcd_client.put(key, stored(vector("aesgcm-15")))  # ... then encrypted twice
    etcd_client.put(key, stored(vector("aesgcm-11")))
    live = run_cli(["audit", "--config", str(config_file), "-o", "json"], etcd_server)
    assert live.returncode == 0, live.stdout
    proc = run_cli(["audit", "--config", str(config_file), "--history", "-o", "json"], etcd_server)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["history"] is True
    assert doc["totals"]["historical_values"] == 2
    assert doc["totals"]["historical_findings"]["plaintext"] == 1
    old = [f for f in doc["findings"] if f["historical"]]
    assert {f["provider"] for f in old} == {"identity", "aesgcm"}
    # after compaction the old values are gone and the audit says so
    etcd_client.compact(etcd_client.current_revision())
    after = json.loads(
        run_cli(
            ["audit", "--config", str(config_file), "--history", "-o", "json"], etcd_server
        ).stdout
    )
    assert after["totals"]["historical_values"] == 0
    assert any("compaction" in note for note in after["notes"])


def test_text_and_junit_outputs(etcd_server: EtcdServer, etcd_client: EtcdClient) -> None:
    load_vectors(etcd_client, ("identity-02", "aesgcm-13"))
    text = run_cli(["audit"], etcd_server)
    assert text.returncode == 1
    assert "PLAINTEXT" in text.stdout and "RESULT: FAIL (plaintext)" in text.stdout
    assert "/registry/secrets/default/db-password" in text.stdout
    junit = run_cli(["audit", "-o", "junit"], etcd_server)
    assert junit.stdout.startswith("<?xml")
    assert 'failures="1"' in junit.stdout


def test_values_are_never_printed(etcd_server: EtcdServer, etcd_client: EtcdClient) -> None:
    marker = b"TOP-SECRET-PASSWORD-VALUE"
    etcd_client.put(b"/registry/secrets/default/leak", b'{"data":{"p":"' + marker + b'"}}')
    for output in ("text", "json", "junit"):
        proc = run_cli(["audit", "--show-all", "-o", output], etcd_server)
        assert marker.decode() not in proc.stdout + proc.stderr
        assert base64.b64encode(marker).decode()[:16] not in proc.stdout


def test_etcdctl_environment_is_honoured(etcd_server: EtcdServer, etcd_client: EtcdClient) -> None:
    import os
    import subprocess
    import sys

    load_vectors(etcd_client, ("aesgcm-13",))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_ENDPOINTS"] = etcd_server.endpoint
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "audit", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"] == etcd_server.endpoint
