"""The audit on the sandbox: plaintext before encryption, KMS v2 after, stale after rotation.

Everything is real: the API stand-in writes through the transformer chain into etcd,
the KMS plugin wraps seeds with OpenBao transit, and the audit reads etcd over the
sandbox's etcd connection and asks the running plugin for its key_id over gRPC.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from secretkit.kmsapi import GrpcKMSService
from secretkit.sandbox.configs import KMS_PROVIDER_NAME
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e


def _audit(sb: Sandbox, *args: str) -> tuple[int, dict[str, Any]]:
    cfg = sb.etcd_config
    argv = [
        sys.executable,
        "-m",
        "secretkit.cli.main",
        "audit",
        "-o",
        "json",
        "--endpoints",
        ",".join(cfg.endpoints),
    ]
    for flag, value in (("--cacert", cfg.cacert), ("--cert", cfg.cert), ("--key", cfg.key)):
        if value is not None:
            argv += [flag, str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    proc = subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _create(sb: Sandbox, name: str) -> None:
    sb.core_v1().create_namespaced_secret(
        "audit",
        {
            "metadata": {"name": name},
            "data": {"v": base64.b64encode(b"s3cr3t-" + name.encode()).decode()},
        },
    )


def _plugin_key_id(sb: Sandbox) -> str:
    with GrpcKMSService(sb.plugin_endpoint) as plugin:
        return plugin.status().key_id


def test_audit_through_enable_and_rotate(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("none", kms_poll=0.5, plugin_status_ttl=0.5)
    for i in range(3):
        _create(sb, f"old-{i}")
    code, doc = _audit(sb)
    assert code == 1
    assert doc["totals"]["findings"]["plaintext"] == 3

    sb.restart_apiserver(sb.write_config("kms"))
    for i in range(2):
        _create(sb, f"new-{i}")
    config = str(sb.dir / "next-config.yaml")
    kms = ["--config", config, "--kms-socket", f"{KMS_PROVIDER_NAME}={sb.plugin_endpoint}"]
    code, doc = _audit(sb, *kms, "--decrypt-check", "--resources", "secrets")
    assert code == 1
    key_id = _plugin_key_id(sb)
    assert doc["kms_current_key_ids"] == {KMS_PROVIDER_NAME: key_id}
    rows = {(r["provider"], r["key"]): r for r in doc["summary"]}
    kms_row = rows[("kms-v2", f"{KMS_PROVIDER_NAME}/{key_id}")]
    assert (kms_row["objects"], kms_row["stale"], kms_row["undecryptable"]) == (2, 0, 0)
    plain_row = rows[("identity", "-")]
    assert (plain_row["objects"], plain_row["plaintext"], plain_row["stale"]) == (3, 3, 3)

    sb.rotate_transit_key()
    deadline = time.monotonic() + 30
    while _plugin_key_id(sb) == key_id:
        assert time.monotonic() < deadline, "the plugin never reported the new key_id"
        time.sleep(0.3)
    code, doc = _audit(sb, *kms, "--decrypt-check", "--resources", "secrets", "--fail-on", "stale")
    assert code == 1
    kms_row = next(r for r in doc["summary"] if r["provider"] == "kms-v2")
    assert (kms_row["objects"], kms_row["stale"], kms_row["undecryptable"]) == (2, 2, 0)
    assert "s3cr3t" not in json.dumps(doc)
