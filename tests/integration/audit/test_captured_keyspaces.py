"""``secretkit audit`` over keyspaces a real kube-apiserver v1.36.2 wrote, in a real etcd.

The expected verdicts were worked out without secretkit (see
tests/data/real-apiserver/README.md); the audit must agree value by value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretkit.etcd import EtcdClient
from tests.data import real_apiserver as captured
from tests.fixtures.servers import EtcdServer
from tests.integration.audit.conftest import run_cli

pytestmark = pytest.mark.etcd


def test_star_star_kms_v2_cluster_is_clean(
    etcd_server: EtcdServer, etcd_client: EtcdClient, tmp_path: Path
) -> None:
    count = captured.load_into(etcd_client, captured.STAR_STAR)
    files = captured.star_star_files(tmp_path)
    proc = run_cli(
        [
            "audit",
            "--config", str(files["encryption-config.yaml"]),
            "--backends", str(files["backends.yaml"]),
            "--decrypt-check",
            "--all-resources",
            "--fail-on", "plaintext,stale,undecryptable,unknown",
            "-o", "json",
        ],
        etcd_server,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["totals"]["objects"] == count
    assert doc["totals"]["internal_keys"] == 3
    assert doc["totals"]["findings"] == {
        "plaintext": 0, "undecryptable": 0, "stale": 0, "unknown": 0
    }
    assert doc["protected_resources"] == ["*.*"]
    assert any("apiserver-internal" in note for note in doc["notes"])
    expected = captured.expected(captured.STAR_STAR)
    kms_rows = [r for r in doc["summary"] if r["provider"] == "kms-v2"]
    assert sum(r["objects"] for r in kms_rows) == expected["counts"][0]["count"]


def test_local_providers_cluster_stale_exactly_as_captured(
    etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    captured.load_into(etcd_client, captured.LOCAL_PROVIDERS)
    expected = captured.expected(captured.LOCAL_PROVIDERS)
    config = captured.LOCAL_PROVIDERS / "config-3.yaml"
    proc = run_cli(
        ["audit", "--config", str(config), "--decrypt-check", "--show-all", "-o", "json"],
        etcd_server,
    )
    assert proc.returncode == 0, proc.stderr  # stale is not in the default --fail-on
    doc = json.loads(proc.stdout)
    assert doc["protected_resources"] == ["secrets", "configmaps"]
    stale = {f["key"] for f in doc["findings"] if "stale" in f["findings"]}
    want = {k for k, v in expected["keys"].items() if v["stale_under_final_config"]}
    assert stale == want and len(want) == 20
    assert doc["totals"]["objects"] == 42
    assert doc["totals"]["findings"]["undecryptable"] == 0


def test_enable_prune_gate_passes_on_the_star_star_keyspace(
    etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    """Dropping identity from a correct `*.*` kms config: internal keys never block."""
    from secretkit.core.encryption_config import load_encryption_config
    from secretkit.core.readability import Judge
    from secretkit.rotation.gates import prove_readable

    count = captured.load_into(etcd_client, captured.STAR_STAR)
    raw = (captured.STAR_STAR / "encryption-config.yaml").read_bytes()
    before = load_encryption_config(raw)
    pruned = load_encryption_config(raw.replace(b"      - identity: {}\n", b""))
    assert len(pruned.rules[0].providers) == 1
    result = prove_readable(
        etcd_client, after=Judge(pruned), before=Judge(before), include_history=True
    )
    assert result.passed, [b.line() for b in result.examples]
    assert result.scanned == count and result.internal == 3


def test_inspect_reads_every_captured_value(tmp_path: Path) -> None:
    """Every value of both keyspaces decrypts through the chain, with the verdict expected."""
    from secretkit.backends import load_backends_file
    from secretkit.backends.interface import BackendKMSService
    from secretkit.cli.inspect_cmd import inspect_value
    from secretkit.config_files import load_encryption_config_file
    from secretkit.core.transformers import build_transformers

    files = captured.star_star_files(tmp_path / "ss")
    backends = load_backends_file(files["backends.yaml"])
    service = BackendKMSService(backends["real-kms"])
    chain = build_transformers(
        load_encryption_config_file(files["encryption-config.yaml"]), lambda _p: service
    )
    internal = {
        e["key"] for e in captured.expected(captured.STAR_STAR)["plaintext_despite_star_star"]
    }
    for key, value in captured.values(captured.STAR_STAR):
        if key.decode() in internal:
            continue  # no API resource: inspect refuses them by name
        report = inspect_value(value, key.decode(), chain)
        assert report["decrypted"] and report["stale"] is False, key
    local = build_transformers(
        load_encryption_config_file(captured.LOCAL_PROVIDERS / "config-3.yaml"),
        lambda _p: service,
    )
    expected = captured.expected(captured.LOCAL_PROVIDERS)["keys"]
    for key, value in captured.values(captured.LOCAL_PROVIDERS):
        report = inspect_value(value, key.decode(), local)
        assert report["decrypted"], key
        assert report["stale"] is expected[key.decode()]["stale_under_final_config"], key
