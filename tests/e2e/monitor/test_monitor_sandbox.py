"""End to end on the sandbox: a plaintext Secret written through the API fires the alert.

The real CLI (``secretkit monitor``) watches the sandbox's etcd; the Secret goes in
through the Kubernetes API stand-in with the official client, exactly as an
operator's tooling would write it; the shipped PrometheusRule's expression is then
evaluated on what /metrics serves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from secretkit.sandbox.servers import free_port
from tests.fixtures.promql import evaluate, samples_from_text
from tests.fixtures.sandbox import SandboxFactory
from tests.integration.monitor.helpers import fetch, wait_for

pytestmark = pytest.mark.e2e

RULES = Path(__file__).resolve().parents[3] / "docs" / "deploy" / "monitor" / "prometheus-rule.yaml"
CANARY = "Q2FuYXJ5LXNlY3JldC12YWx1ZQ=="  # base64 of a value that must never be logged


def _alert(name: str) -> str:
    doc = yaml.safe_load(RULES.read_text())
    return next(
        str(rule["expr"])
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
        if rule["alert"] == name
    )


def test_a_plaintext_secret_written_through_the_api_fires_the_alert(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sandbox = sandbox_factory("none")  # the apiserver writes Secrets unencrypted
    port = free_port()
    log_path = tmp_path / "monitor.log"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "secretkit.cli.main", "monitor",
             "--endpoints", sandbox.etcd_endpoint, "--metrics-addr", f"127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base), timeout=60, what="the monitor's /healthz")
        expr = _alert("SecretkitPlaintextInEtcd")
        before = evaluate(expr, samples_from_text(fetch(base + "/metrics")[1]), time.time())
        assert isinstance(before, list)
        already = sum(s.value for s in before)

        sandbox.core_v1().create_namespaced_secret(
            "default",
            {"metadata": {"name": "db-password"}, "data": {"password": CANARY}},
        )
        written = time.monotonic()

        def fired() -> list[object]:
            result = evaluate(expr, samples_from_text(fetch(base + "/metrics")[1]), time.time())
            assert isinstance(result, list)
            return [s for s in result if s.value == already + 1]

        found = wait_for(fired, timeout=10, what="the alert expression to fire")
        seen_after = time.monotonic() - written
        assert [dict(s.labels) for s in found] == [{"resource": "secrets"}]  # type: ignore[attr-defined]
        assert seen_after < 10
        text = fetch(base + "/metrics")[1]
        assert "db-password" not in text and CANARY not in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=20)
    output = log_path.read_text()
    assert code == 0, output
    assert "secretkit monitor: stopped" in output
    assert CANARY not in output and "db-password" not in output


def _healthy(base: str) -> bool:
    try:
        return fetch(base + "/healthz")[0] == 200
    except OSError:
        return False
