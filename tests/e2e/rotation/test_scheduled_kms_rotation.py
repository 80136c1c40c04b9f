"""Scheduled KMS rotation on the sandbox: Lease, record, policy, metrics, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from secretkit.sandbox import configs
from tests.e2e.reencrypt.helpers import cli_env, kms_key_ids, stored_values
from tests.e2e.rotation.helpers import Run, create_secrets, read_secrets, secretkit
from tests.fixtures.promql import evaluate, samples_from_text
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = [pytest.mark.e2e, pytest.mark.kubectl]

LEASE = "kube-system/secretkit-kms-rotation"
RECORD = "kube-system/secretkit-kms-rotations"


def _rotate(sb: Sandbox, tmp: Path, *extra: str) -> list[str]:
    return [
        "kms", "rotate", "--backends", str(sb.backends_file),
        "--provider", configs.KMS_PROVIDER_NAME, "--kms-socket", sb.plugin_endpoint,
        "--config", str(sb.config_path), "--endpoints", sb.etcd_endpoint,
        "--kubeconfig", str(sb.kubeconfig), "--plugin-timeout", "30s",
        "--refresh-wait", "3s", "--no-progress",
        "--lease", LEASE, "--record", RECORD,
        "--metrics-textfile", str(tmp / "secretkit-kms.prom"), "-o", "json", *extra,
    ]


def _kubectl(sb: Sandbox, *args: str) -> str:
    import os

    from secretkit.sandbox.servers import find_binary

    env = {**os.environ, "HOME": str(sb.dir)}  # kubectl's discovery cache
    done = subprocess.run(
        [str(find_binary("kubectl")), "--kubeconfig", str(sb.kubeconfig), *args],
        capture_output=True, text=True, check=False, timeout=60, env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_scheduled_rotation_records_and_exports(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory("kms")
    values = create_secrets(sb, 6, prefix="sched")
    before = kms_key_ids(stored_values(sb))

    # a young key and a 30-day policy: nothing happens, and the metrics say so
    run = secretkit(*_rotate(sb, tmp_path, "--if-older-than", "720h"))
    assert run.rc == 0, run.output
    doc: dict[str, Any] = run.json()
    assert doc["schedule"]["outcome"] == "skipped"
    assert kms_key_ids(stored_values(sb)) == before
    metrics = samples_from_text((tmp_path / "secretkit-kms.prom").read_text())
    assert evaluate('secretkit_kms_rotation_last_run_outcome{outcome="skipped"} == 1',
                    metrics, now=0.0)
    assert evaluate("secretkit_kms_key_age_seconds < 3600", metrics, now=0.0)

    # due (no policy): rotated, proven, recorded, exported
    run = secretkit(*_rotate(sb, tmp_path))
    assert run.rc == 0, run.output
    doc = run.json()
    assert doc["schedule"]["outcome"] == "rotated"
    assert kms_key_ids(stored_values(sb)) == {doc["new_key_id"]}
    assert read_secrets(sb, list(values)) == values
    last = _kubectl(sb, "get", "configmap", "-n", "kube-system", "secretkit-kms-rotations",
                    "-o", "jsonpath={.data.last}")
    assert doc["old_key_id"] in last and doc["new_key_id"] in last and "proven by etcd" in last
    history = json.loads(_kubectl(
        sb, "get", "configmap", "-n", "kube-system", "secretkit-kms-rotations",
        "-o", "jsonpath={.data.rotations\\.json}"))
    assert [e["status"] for e in history] == ["done"]
    assert history[0]["rewritten"] >= 6 and history[0]["proof"]
    metrics = samples_from_text((tmp_path / "secretkit-kms.prom").read_text())
    assert evaluate('secretkit_kms_rotation_last_run_outcome{outcome="rotated"} == 1',
                    metrics, now=0.0)
    assert evaluate("secretkit_kms_last_rotation_rewritten_objects >= 6", metrics, now=0.0)
    # the Lease was released: its holder is empty
    lease = json.loads(_kubectl(sb, "get", "lease", "-n", "kube-system",
                                "secretkit-kms-rotation", "-o", "json"))
    assert not lease["spec"].get("holderIdentity")
    # nothing secret in the record or the metrics
    text = last + json.dumps(history) + (tmp_path / "secretkit-kms.prom").read_text()
    assert sb.openbao_token not in text
    assert all(v not in text for v in values.values())


def test_two_runs_never_overlap_and_an_unfinished_rotation_blocks_the_next(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory("kms")
    create_secrets(sb, 4, prefix="lock")
    # two scheduled runs at once (two nodes' timers): exactly one may rotate
    results: list[Run] = []

    def run_one(n: int) -> None:
        results.append(secretkit(*_rotate(sb, tmp_path / f"n{n}")))

    for n in (0, 1):
        (tmp_path / f"n{n}").mkdir()
    threads = [threading.Thread(target=run_one, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.rc for r in results)
    assert codes == [0, 3], [r.output[-800:] for r in results]
    refused = next(r for r in results if r.rc == 3)
    assert "holds the lease kube-system/secretkit-kms-rotation" in refused.stderr
    assert "error" in json.loads(refused.stdout)  # one JSON document, the error

    # a value left under the old key_id (a lagging apiserver, or a run that died
    # mid-way): the next scheduled run refuses to rotate on top of it
    current = next(iter(kms_key_ids(stored_values(sb))))
    _put_value_from_before_the_rotation(sb)
    run = secretkit(*_rotate(sb, tmp_path))
    assert run.rc == 3, run.output
    assert "re-encryption is incomplete" in run.stderr
    assert kms_key_ids(stored_values(sb)) >= {current}


def _put_value_from_before_the_rotation(sb: Sandbox) -> None:
    """Write one Secret back with its value from before the last rotation (old key_id)."""
    key = b"/registry/secrets/default/lock0"
    with sb.etcd_client() as etcd:
        kv = etcd.get(key)
        assert kv is not None
        revision = kv.mod_revision - 1
        while revision > 0:
            old = etcd.get(key, revision=revision)
            assert old is not None
            if kms_key_ids({key.decode(): old.value}) != kms_key_ids({key.decode(): kv.value}):
                assert etcd.compare_and_swap(key, old.value, mod_revision=kv.mod_revision)
                return
            revision = old.mod_revision - 1
    raise AssertionError("no value under an older key_id in the history")


def test_usage_errors_of_the_schedule_flags(sandbox_factory: SandboxFactory) -> None:
    del sandbox_factory
    done = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "kms", "rotate", "--backends", "b",
         "--provider", "p", "--kms-socket", "unix:///run/x.sock", "--config", "c",
         "--lease", "no-slash"],
        capture_output=True, text=True, env=cli_env(), check=False,
    )
    assert done.returncode == 2
    assert "--lease takes NAMESPACE/NAME" in done.stderr  # before any file is read
