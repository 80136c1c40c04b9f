"""`-o json` of the commands that need a cluster, validated against their schema files.

Real commands on a sandbox (one per encryption mode): ``reencrypt`` (plain, dry run,
``--verify`` with every verdict), the four stages of a local-key rotation with its
status and clean-backups, and ``kms status|rotate|retire``. Every outcome, refusals
included, must be exactly one JSON document on stdout that validates against the
schema it names (tests/schemas.py). The stages without a cluster are covered in
tests/unit/cli/test_contract_procedures.py.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretkit.sandbox import configs
from tests.e2e.reencrypt.helpers import kms_key_ids, stored_values
from tests.e2e.rotation.helpers import Run, create_secrets, metrics_flags, secretkit
from tests.fixtures.sandbox import Sandbox, SandboxFactory
from tests.schemas import one_document, validate_document

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def aesgcm(sandbox_factory: SandboxFactory) -> Sandbox:
    """One local-key sandbox for the reencrypt and stage documents (config auto-reload)."""
    return sandbox_factory("aesgcm", reload_interval=0.5)


@pytest.fixture(scope="module")
def kms(sandbox_factory: SandboxFactory) -> Sandbox:
    """One KMS v2 (OpenBao) sandbox for the kms documents."""
    return sandbox_factory("kms")


def _doc(run: Run, schema: str, rc: int = 0) -> dict[str, Any]:
    assert run.rc == rc, run.output
    doc = one_document(run.stdout)
    assert validate_document(doc) == schema
    assert "Traceback" not in run.stderr
    return doc


def _refused(run: Run) -> dict[str, Any]:
    error: dict[str, Any] = _doc(run, "secretkit.error/v1", 3)["error"]
    assert error["reason"] == "refused"
    assert "error: " in run.stderr  # the human message still goes to stderr (after progress)
    return error


def _configmaps(sb: Sandbox, count: int, prefix: str) -> None:
    from kubernetes import client

    core = sb.core_v1()
    for i in range(count):
        core.create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"{prefix}{i}"),
                               data={"v": f"value-{i}"}),
        )  # fmt: skip


def _compact(sb: Sandbox) -> None:
    with sb.etcd_client() as etcd:
        etcd.compact(etcd.current_revision())


def _judging_config(sb: Sandbox, tmp_path: Path, *, keep_current: bool) -> Path:
    """The sandbox's config with a new aesgcm key first: what the apiserver writes is
    then stale under it (``keep_current``), or unreadable (the current keys dropped)."""
    doc = yaml.safe_load(sb.config_path.read_text())
    new = {"name": "judge", "secret": base64.b64encode(os.urandom(32)).decode()}
    for rule in doc["resources"]:
        keys = rule["providers"][0]["aesgcm"]["keys"]
        rule["providers"][0]["aesgcm"]["keys"] = [new, *keys] if keep_current else [new]
        if not keep_current:
            rule["providers"] = rule["providers"][:1]  # no identity fallback either
    path = tmp_path / ("stale.yaml" if keep_current else "unreadable.yaml")
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def test_reencrypt_documents(aesgcm: Sandbox, tmp_path: Path) -> None:
    sb = aesgcm
    create_secrets(sb, 4, prefix="re")
    base = ("reencrypt", "--kubeconfig", str(sb.kubeconfig), "--resources",
            "secrets,configmaps", "--no-progress", "-o", "json")  # fmt: skip
    run = _doc(secretkit(*base), "secretkit.reencrypt.summary/v1")
    assert run["ok"] and run["would_rewrite"] == [] and "verify" not in run
    assert run["totals"]["seen"] >= 4 and set(run["resources"]) == {"secrets", "configmaps"}

    dry = _doc(secretkit(*base, "--dry-run"), "secretkit.reencrypt.summary/v1")
    assert dry["dry_run"] and "secrets default/re0" in dry["would_rewrite"]

    etcd = ("--endpoints", sb.etcd_endpoint)
    ok = _doc(secretkit(*base, "--verify", "--config", str(sb.config_path), *etcd),
              "secretkit.reencrypt.summary/v1")  # fmt: skip
    assert ok["verify"]["verdict"] == "ok" and ok["verify"]["checked"] >= 4

    # findings (1) and data at risk (4) print the summary, and no error document after it
    stale_config = _judging_config(sb, tmp_path, keep_current=True)
    stale = _doc(secretkit(*base, "--verify", "--config", str(stale_config), *etcd),
                 "secretkit.reencrypt.summary/v1", rc=1)  # fmt: skip
    assert stale["verify"]["verdict"] == "stale" and stale["verify"]["stale"] >= 4
    lost_config = _judging_config(sb, tmp_path, keep_current=False)
    lost = _doc(secretkit(*base, "--verify", "--config", str(lost_config), *etcd),
                "secretkit.reencrypt.summary/v1", rc=4)  # fmt: skip
    assert lost["verify"]["verdict"] == "undecryptable"
    assert "/registry/secrets/default/re0" in lost["verify"]["undecryptable_keys"]


def test_stage_documents_of_a_whole_rotation(aesgcm: Sandbox) -> None:
    sb = aesgcm
    create_secrets(sb, 3, prefix="st")
    _configmaps(sb, 3, prefix="st")
    cfg = ("--config", str(sb.config_path), *metrics_flags(sb))
    etcd = ("--endpoints", sb.etcd_endpoint)
    kube = ("--kubeconfig", str(sb.kubeconfig), "--no-progress")
    stage = "secretkit.stage/v1"

    prepared = _doc(secretkit("rotate", "prepare", *cfg, "--resources", "secrets,configmaps",
                              "--key-name", "key2", "-o", "json"), stage)  # fmt: skip
    assert prepared["next_stage"] == "promote" and prepared["changed_files"]
    _doc(secretkit("rotate", "promote", *cfg, "-o", "json"), stage)

    dry = _doc(secretkit("rotate", "reencrypt", *cfg, *etcd, *kube, "--dry-run", "-o", "json"),
               stage)  # fmt: skip
    assert dry["reencrypt"]["dry_run"] and dry["reencrypt"]["would_rewrite"]
    assert dry["proof"] is None and dry["next_stage"] == "reencrypt"
    done = _doc(secretkit("rotate", "reencrypt", *cfg, *etcd, *kube, "-o", "json"), stage)
    assert done["reencrypt"]["schema"] == "secretkit.reencrypt.summary/v1"
    assert done["proof"]["covered"] >= 6 and done["proof"]["stale"] == 0
    assert done["next_stage"] == "prune"

    # the older revisions still hold values only key1 reads: refused, one error document
    error = _refused(secretkit("rotate", "prune", *cfg, *etcd, "-o", "json"))
    assert "refusing to prune" in error["what"] and "older revision" in error["what"]
    _compact(sb)
    dry = _doc(secretkit("rotate", "prune", *cfg, *etcd, "--dry-run", "-o", "json"), stage)
    assert dry["gate"]["blockers"] == 0 and dry["changed_files"] == []
    pruned = _doc(secretkit("rotate", "prune", *cfg, *etcd, "-o", "json"), stage)
    assert pruned["gate"]["covered"] >= 6 and pruned["gate"]["history_checked"]
    assert pruned["next_stage"] is None and "key1" not in sb.config_path.read_text()

    status = _doc(secretkit("rotate", "status", "--config", str(sb.config_path), "-o", "json"),
                  "secretkit.stage.status/v1")  # fmt: skip
    assert status["in_progress"] is False and status["last_stage"] == "prune"
    # a finished procedure refuses another stage
    _refused(secretkit("rotate", "promote", *cfg, "-o", "json"))
    cleaned = _doc(secretkit("rotate", "clean-backups", "--config", str(sb.config_path), "--yes",
                             "-o", "json"), "secretkit.stage.clean-backups/v1")  # fmt: skip
    assert len(cleaned["deleted"]) == 3  # prepare, promote, prune


def test_kms_documents(kms: Sandbox, tmp_path: Path) -> None:
    sb = kms
    create_secrets(sb, 4, prefix="k")
    etcd = ("--endpoints", sb.etcd_endpoint)
    common = ("--backends", str(sb.backends_file), "--provider", configs.KMS_PROVIDER_NAME,
              "--kms-socket", sb.plugin_endpoint, "--config", str(sb.config_path), *etcd)
    status = _doc(secretkit("kms", "status", *common[:6], *etcd, "-o", "json"),
                  "secretkit.kms.status/v1")  # fmt: skip
    old = status["plugin"]["key_id"]
    assert status["healthy"] and status["backend"]["key_id"] == old
    assert status["objects_by_key_id"] == {old: 4}

    # a scheduled run whose policy says "not yet": only the schedule, exit 0
    skipped = _doc(secretkit("kms", "rotate", *common, "--if-older-than", "720h", "-o", "json"),
                   "secretkit.kms.rotate/v1")  # fmt: skip
    assert skipped["schedule"]["outcome"] == "skipped" and "old_key_id" not in skipped
    assert skipped["schedule"]["key_id"] == old

    # a scheduled run that rotates: the report and its schedule (the unscheduled report
    # is validated by test_kms_and_enable.py through the helpers' Run.json)
    rotated = _doc(secretkit("kms", "rotate", *common, "--kubeconfig", str(sb.kubeconfig),
                             "--plugin-timeout", "30", "--refresh-wait", "3", "--no-progress",
                             "--metrics-textfile", str(tmp_path / "kms.prom"), "-o", "json"),
                   "secretkit.kms.rotate/v1")  # fmt: skip
    new = rotated["new_key_id"]
    assert rotated["schedule"]["outcome"] == "rotated" and rotated["schedule"]["key_id"] == new
    assert rotated["old_key_id"] == old and new != old
    assert rotated["gate"] is None and rotated["retired_old"] is False
    assert rotated["counts_after"] == {new: 4} and rotated["resources"]

    # etcd's history still holds values under the old key version: refused
    error = _refused(secretkit("kms", "retire", *common, "-o", "json"))
    assert "refusing to retire" in error["what"]
    _compact(sb)
    retired = _doc(secretkit("kms", "retire", *common, "-o", "json"), "secretkit.kms.retire/v1")
    assert retired["retired_old"] and retired["new_key_id"] == new
    assert retired["gate"]["blockers"] == 0 and retired["gate"]["scanned"] >= 4
    assert kms_key_ids(stored_values(sb)) == {new}
    assert sb.openbao_token not in str(rotated) + str(retired) + str(status)
