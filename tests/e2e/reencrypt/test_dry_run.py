"""--dry-run lists candidates and writes nothing; with --only-stale the candidates are
exactly the objects whose value in etcd is stale."""

from __future__ import annotations

import base64

import pytest

from secretkit.sandbox.seed import seed
from tests.e2e.reencrypt.helpers import run_cli, stored_values, switch_to_aesgcm
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e

PATH = "/api/v1/namespaces/default/secrets/"


def test_dry_run_and_only_stale_candidates(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("aescbc")
    seed(sb.api_url, sb.token, secrets=20, configmaps=0, ca_file=str(sb.ca_file))
    switch_to_aesgcm(sb, "dry.yaml")
    new = sb.config_path  # the stand-in's config file now holds the new config
    before = stored_values(sb)
    names = sorted(k.rsplit("/", 1)[1] for k in before)

    res = run_cli(sb, "--dry-run", "-o", "json")
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert summary["would_rewrite"] == [f"secrets default/{n}" for n in names]
    assert stored_values(sb) == before

    # five objects get written (with the new key) by somebody else
    for name in names[:5]:
        code, obj = sb.request("GET", PATH + name)
        assert code == 200
        obj["data"]["extra"] = base64.b64encode(b"x").decode()
        assert sb.request("PUT", PATH + name, obj)[0] == 200

    stale_flags = ("--only-stale", "--config", str(new), "--endpoints", sb.etcd_endpoint)
    res = run_cli(sb, "--dry-run", *stale_flags, "-o", "json")
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert summary["would_rewrite"] == [f"secrets default/{n}" for n in names[5:]]
    assert summary["totals"]["skipped_fresh"] == 5

    text = run_cli(sb, "--dry-run", *stale_flags)
    assert text.rc == 0, text.stderr
    assert f"would rewrite: secrets default/{names[5]}" in text.stdout
    assert "would rewrite: secrets default/" + names[0] not in text.stdout
