"""Re-encrypt through the API across a full provider life: identity -> aesgcm key1 ->
aesgcm key2 -> aescbc -> kms v2 -> kms v2 after a transit rotation -> identity.

Every step is proved by reading etcd and classifying every value, and by decrypting
every value and comparing it with the plaintext stored before the first step.
"""

from __future__ import annotations

import pytest

from secretkit.core.formats.model import ValueProvider
from secretkit.sandbox.seed import seed
from tests.e2e.reencrypt.helpers import (
    AESCBC_K3,
    AESGCM_K1,
    AESGCM_K2K1,
    IDENTITY,
    KMS,
    assert_all,
    config_yaml,
    kms_key_ids,
    plaintexts,
    run_cli,
    stored_values,
    wait_for_plugin_key_id_change,
)
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e

SECRETS, CONFIGMAPS = 120, 30
TOTAL = SECRETS + CONFIGMAPS


def test_every_provider_step_rewrites_every_object(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("none")
    seed(sb.api_url, sb.token, secrets=SECRETS, configmaps=CONFIGMAPS, ca_file=str(sb.ca_file))
    before = stored_values(sb)
    assert len(before) == TOTAL
    assert_all(before, ValueProvider.IDENTITY)
    original = plaintexts(sb, before, sb.config_path)

    def step(providers: tuple[str, ...], name: str, *extra: str) -> dict[str, bytes]:
        path = sb.write_config(config_yaml(*providers), name=name)
        sb.restart_apiserver(path)
        res = run_cli(sb, "--resources", "secrets,configmaps", "-o", "json", *extra)
        assert res.rc == 0, res.stderr
        summary = res.summary()
        assert summary["complete"] and summary["ok"]
        assert summary["totals"]["failed"] == 0
        values = stored_values(sb)
        assert plaintexts(sb, values, sb.config_path) == original
        return values

    # identity -> aesgcm key1: every object is stale, every object is rewritten
    values = step((AESGCM_K1, IDENTITY), "c1.yaml")
    assert_all(values, ValueProvider.AESGCM, key="key1")

    # aesgcm key1 -> key2 (key1 stays readable)
    values = step((AESGCM_K2K1, IDENTITY), "c2.yaml")
    assert_all(values, ValueProvider.AESGCM, key="key2")

    # aesgcm -> aescbc
    values = step((AESCBC_K3, AESGCM_K2K1, IDENTITY), "c3.yaml")
    assert_all(values, ValueProvider.AESCBC, key="key3")

    # aescbc -> kms v2
    values = step((KMS, AESCBC_K3, IDENTITY), "c4.yaml")
    assert_all(values, ValueProvider.KMS_V2)
    (old_key_id,) = kms_key_ids(values)

    # a run with nothing stale rewrites nothing
    res = run_cli(sb, "--resources", "secrets,configmaps", "-o", "json")
    assert res.rc == 0, res.stderr
    assert res.summary()["totals"]["unchanged"] == TOTAL
    assert res.summary()["totals"]["rewritten"] == 0

    # transit rotation: the plugin's key_id changes; --only-stale finds every value
    # stale from etcd alone, and --verify proves nothing stale is left
    sb.rotate_transit_key()
    wait_for_plugin_key_id_change(sb, old_key_id)
    etcd_flags = ("--only-stale", "--verify", "--config", str(sb.config_path),
                  "--backends", str(sb.backends_file), "--endpoints", sb.etcd_endpoint)
    res = run_cli(sb, "--resources", "secrets,configmaps", "-o", "json", *etcd_flags)
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert summary["totals"]["rewritten"] == TOTAL
    assert summary["verify"]["verdict"] == "ok"
    assert summary["verify"]["checked"] == TOTAL
    values = stored_values(sb)
    (new_key_id,) = kms_key_ids(values)
    assert new_key_id != old_key_id
    assert_all(values, ValueProvider.KMS_V2, key_id=new_key_id)
    assert plaintexts(sb, values, sb.config_path) == original

    # --only-stale again: nothing is stale, nothing is touched
    res = run_cli(sb, "--resources", "secrets,configmaps", "-o", "json", *etcd_flags)
    assert res.rc == 0, res.stderr
    assert res.summary()["totals"]["skipped_fresh"] == TOTAL
    assert res.summary()["totals"]["rewritten"] == 0

    # back to identity (decrypting everything)
    values = step((IDENTITY, KMS, AESCBC_K3), "c5.yaml")
    assert_all(values, ValueProvider.IDENTITY)
