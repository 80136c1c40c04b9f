"""Runs that meet the real world: concurrent writers, deletions, SIGKILL + --resume."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from secretkit.core.formats.model import ValueProvider
from secretkit.sandbox.seed import seed
from tests.e2e.reencrypt.helpers import (
    assert_all,
    cli_argv,
    cli_env,
    mod_revisions,
    plaintexts,
    run_cli,
    stored_values,
    switch_to_aesgcm,
)
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e

SECRETS_PATH = "/api/v1/namespaces/default/secrets"


def update_secret(sb: Sandbox, name: str, password: bytes) -> None:
    """Read-modify-write like any controller, retrying on conflicts."""
    for _ in range(20):
        code, obj = sb.request("GET", f"{SECRETS_PATH}/{name}")
        assert code == 200, obj
        obj["data"]["password"] = base64.b64encode(password).decode()
        code, body = sb.request("PUT", f"{SECRETS_PATH}/{name}", obj)
        if code == 200:
            return
        assert code == 409, body
    raise AssertionError("could not update " + name)


def api_password(sb: Sandbox, name: str) -> tuple[int, bytes | None]:
    code, obj = sb.request("GET", f"{SECRETS_PATH}/{name}")
    if code != 200:
        return code, None
    return code, base64.b64decode(obj["data"]["password"])


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_concurrent_writers_win_and_deleted_objects_stay_deleted(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory("aescbc")
    n = 400
    seed(sb.api_url, sb.token, secrets=n, configmaps=0, ca_file=str(sb.ca_file))
    switch_to_aesgcm(sb, "live.yaml")
    names = [f"seed-secret-{i:05d}" for i in range(n)]
    updated = names[::7]  # spread over every page
    deleted = [name for name in names[3::11] if name not in updated]
    ck = tmp_path / "ck.json"

    proc = subprocess.Popen(
        cli_argv(sb, "--resume", str(ck), "--page-size", "20", "--concurrency", "2",
                 "--qps", "80", "--burst", "1", "-o", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )
    try:
        # start changing things once the run is under way
        wait_for(ck.exists, 60, "the first checkpoint")

        def writer() -> None:
            for i, name in enumerate(updated):
                update_secret(sb, name, f"newer-{i}".encode())

        def deleter() -> None:
            for name in deleted:
                code, _ = sb.request("DELETE", f"{SECRETS_PATH}/{name}")
                assert code in (200, 404)

        threads = [threading.Thread(target=writer), threading.Thread(target=deleter)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["ok"]
    assert summary["totals"]["failed"] == 0

    # the writers' newer data survived; nothing reverted
    for i, name in enumerate(updated):
        assert api_password(sb, name) == (200, f"newer-{i}".encode()), name
    # deleted objects were not recreated
    for name in deleted:
        assert api_password(sb, name)[0] == 404, name
    values = stored_values(sb)
    assert len(values) == n - len(deleted)
    assert_all(values, ValueProvider.AESGCM, key="key1")


def test_sigkill_then_resume_rewrites_everything_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory("aescbc")
    n = 1200
    seed(sb.api_url, sb.token, secrets=n, configmaps=0, ca_file=str(sb.ca_file))
    before = stored_values(sb)
    original = plaintexts(sb, before, sb.config_path)
    switch_to_aesgcm(sb, "kill.yaml")
    ck = tmp_path / "ck.json"
    args = ("--resume", str(ck), "--page-size", "100", "--concurrency", "2", "-o", "json")

    proc = subprocess.Popen(
        cli_argv(sb, *args, "--qps", "150", "--burst", "1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )

    def progressed() -> bool:
        try:
            data = json.loads(ck.read_text())
        except (OSError, ValueError):
            return False
        return int(data["resources"]["secrets"]["counters"].get("seen", 0)) >= 300

    try:
        wait_for(progressed, 120, "the checkpoint to show progress")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = json.loads(ck.read_text())["resources"]["secrets"]
    assert at_kill["state"] == "running"
    done_upto = "/registry/secrets/" + at_kill["last_key"]
    revs_at_kill = mod_revisions(sb)
    mid = stored_values(sb)
    assert any(v.startswith(b"k8s:enc:aescbc:") for v in mid.values())

    res = run_cli(sb, *args, "--qps", "0")
    assert res.rc == 0, res.stderr
    summary = res.summary()
    assert summary["complete"] and summary["ok"]
    after = stored_values(sb)
    assert_all(after, ValueProvider.AESGCM, key="key1")
    assert plaintexts(sb, after, sb.config_path) == original
    # pages finished before the kill were not rewritten again
    revs = mod_revisions(sb)
    finished = [k for k in revs if k <= done_upto]
    assert len(finished) >= 300
    assert all(revs[k] == revs_at_kill[k] for k in finished)
    assert json.loads(ck.read_text())["resources"]["secrets"]["state"] == "done"
