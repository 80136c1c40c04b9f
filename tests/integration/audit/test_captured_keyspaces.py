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
