"""``--via etcd`` from the CLI on the sandbox: dry run, local keys -> kms v2 through
--backends, a transit rotation through --kms-socket, then the API server reads it
all; and ``--from-config`` on the API path."""

from __future__ import annotations

import pytest

from secretkit.core.formats.model import ValueProvider
from secretkit.sandbox.seed import seed
from tests.e2e.reencrypt.helpers import (
    IDENTITY,
    KMS,
    assert_all,
    config_yaml,
    kms_key_ids,
    old_providers,
    plaintexts,
    run_cli,
    stored_values,
    wait_for_plugin_key_id_change,
)
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e

ACK = "--i-understand-the-apiserver-is-stopped"


def test_via_etcd_then_the_apiserver_reads_everything(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("aescbc")
    seed(sb.api_url, sb.token, secrets=200, configmaps=20, ca_file=str(sb.ca_file))
    before = stored_values(sb)
    original = plaintexts(sb, before, sb.config_path)
    new = sb.write_config(config_yaml(KMS, *old_providers(sb), IDENTITY), name="kms.yaml")
    common = ("--via", "etcd", "--config", str(new), "--endpoints", sb.etcd_endpoint,
              "--resources", "secrets,configmaps", "-o", "json")

    dry = run_cli(sb, *common, "--dry-run", "--backends", str(sb.backends_file))
    assert dry.rc == 0, dry.stderr
    assert dry.summary()["totals"]["rewritten"] == 220
    assert stored_values(sb) == before

    res = run_cli(sb, *common, ACK, "--backends", str(sb.backends_file), "--verify")
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert summary["totals"]["rewritten"] == 220
    assert summary["verify"]["verdict"] == "ok"
    values = stored_values(sb)
    assert_all(values, ValueProvider.KMS_V2)
    (first_key_id,) = kms_key_ids(values)
    assert plaintexts(sb, values, new) == original

    # a transit rotation, re-encrypted through the running plugin's socket
    sb.rotate_transit_key()
    wait_for_plugin_key_id_change(sb, first_key_id)
    res = run_cli(sb, *common, ACK, "--kms-socket", f"sandbox-kms={sb.plugin_endpoint}")
    assert res.rc == 0, res.stderr
    assert res.summary()["totals"]["rewritten"] == 220
    values = stored_values(sb)
    (second_key_id,) = kms_key_ids(values)
    assert second_key_id != first_key_id

    # the API server, now on the same config, reads every object
    sb.restart_apiserver(new)
    code, body = sb.request("GET", "/api/v1/secrets?limit=500")
    assert code == 200
    assert len(body["items"]) == 200
    code, body = sb.request("GET", "/api/v1/configmaps?limit=500")
    assert code == 200
    assert len(body["items"]) == 20

    # --from-config on the API path covers both resources; nothing is stale now
    res = run_cli(sb, "--from-config", str(new), "-o", "json")
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert set(summary["resources"]) == {"secrets", "configmaps"}
    assert summary["totals"]["unchanged"] == 220

