"""``reencrypt -n`` and ``-l``: only the objects asked for are rewritten (etcd as the oracle)."""

from __future__ import annotations

import pytest

from secretkit.core.formats import classify_value, match_key_name
from tests.e2e.reencrypt.helpers import (
    AESGCM_K1,
    AESGCM_K2K1,
    IDENTITY,
    config_yaml,
    run_cli,
    stored_values,
)
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e


def _key_names(sb: Sandbox) -> dict[str, str]:
    out = {}
    with sb.etcd_client() as etcd:
        for page in etcd.range_pages(b"/registry/secrets/"):
            for kv in page:
                stored = classify_value(kv.value)
                name = match_key_name(kv.value[len(stored.prefix):], ["key1", "key2"])
                out[kv.key.decode()] = str(name)
    return out


def _create(sb: Sandbox, namespace: str, name: str, labels: dict[str, str]) -> None:
    from kubernetes import client

    sb.core_v1().create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels),
                        string_data={"v": "x"}),
    )


def test_namespace_and_selector_narrow_the_run(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("aesgcm", config=config_yaml(AESGCM_K1, IDENTITY))
    for ns in ("default", "team-a"):
        _create(sb, ns, "web", {"app": "web"})
        _create(sb, ns, "db", {"app": "db"})
    sb.restart_apiserver(sb.write_config(config_yaml(AESGCM_K2K1, IDENTITY)))
    assert set(_key_names(sb).values()) == {"key1"}  # every value stale now

    res = run_cli(sb, "-n", "team-a")
    assert res.rc == 0, res.stderr
    # the total was known up front (remainingItemCount of a limit=1 list), not "seen so far"
    assert "2/2 100.0%" in res.stderr, res.stderr
    names = _key_names(sb)
    assert {k: v for k, v in names.items() if "/team-a/" in k} == {
        "/registry/secrets/team-a/db": "key2", "/registry/secrets/team-a/web": "key2"}
    assert all(v == "key1" for k, v in names.items() if "/default/" in k)

    res = run_cli(sb, "-l", "app=web", "--no-progress")
    assert res.rc == 0, res.stderr
    names = _key_names(sb)
    assert names["/registry/secrets/default/web"] == "key2"
    assert names["/registry/secrets/default/db"] == "key1"

    # --verify narrowed to the namespace passes; the cluster as a whole is still stale
    config = sb.write_config(config_yaml(AESGCM_K2K1, IDENTITY), name="verify.yaml")
    res = run_cli(sb, "-n", "team-a", "--only-stale", "--verify", "--config", str(config),
                  "--endpoints", sb.etcd_endpoint, "--no-progress")
    assert res.rc == 0, res.stderr
    stale_flags = ("--only-stale", "--config", str(config), "--endpoints", sb.etcd_endpoint,
                   "--no-progress")
    # a dry run writes nothing, so there is nothing to verify: refused up front, with why
    before = stored_values(sb)
    res = run_cli(sb, "--verify", "--dry-run", *stale_flags)
    assert res.rc == 2, res.stderr
    assert "--verify cannot follow --dry-run" in res.stderr, res.stderr
    assert "writes nothing" in res.stderr, res.stderr
    # without --verify the dry run tells what is still stale outside team-a, writes nothing
    res = run_cli(sb, "--dry-run", *stale_flags, "-o", "json")
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert summary["would_rewrite"] == ["secrets default/db"]
    assert summary["totals"]["skipped_fresh"] == 3
    assert "verify" not in summary
    assert stored_values(sb) == before

    # labels cannot be read from etcd: refused with the reason
    res = run_cli(sb, "-l", "app=web", "--only-stale", "--config", str(config),
                  "--endpoints", sb.etcd_endpoint)
    assert res.rc == 2 and "labels cannot be read" in res.stderr
    res = run_cli(sb, "-n", "team-a", "-A")
    assert res.rc == 2
