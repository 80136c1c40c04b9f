"""`secretkit monitor` refuses bad flags and configs with exit 2 and a clear message."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "monitor",
         "--endpoints", "http://127.0.0.1:9", *args],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--decrypt-check"], "--decrypt-check needs --config"),
        (["--metrics-addr", "0.0.0.0:8788"], "refusing to serve metrics on non-loopback"),
        (["--metrics-addr", "metrics.example.com:1"], "is not an IP address"),
        (["--max-rows", "0"], "--max-rows must be at least 1"),
        (["--history-every", "soon"], "invalid duration"),
        (["--snapshot-dir", "/tmp"], "--snapshot-dir needs --history-every"),
        (["--kms-socket", "kms-prod"], "--kms-socket expects NAME=unix:///path"),
        (["--config", "/nonexistent/enc.yaml"], "cannot read the EncryptionConfiguration"),
        # a typo or an empty list would watch nothing while /healthz says ok
        (["--resources", "secert"], "did you mean 'secrets'?"),
        (["--resources", " , "], "--resources is empty"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_invalid_config_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "enc.yaml"
    config.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                      "resources:\n  - resources: [secrets]\n    providers: [{aesgcm: {}}]\n")
    proc = _run("--config", str(config))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "aesgcm" in proc.stderr


def test_a_busy_metrics_port_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = _run("--metrics-addr", f"127.0.0.1:{busy.getsockname()[1]}")
    assert proc.returncode == 2, proc.stderr
    assert "cannot serve metrics on" in proc.stderr


def test_help_teaches() -> None:
    proc = subprocess.run([sys.executable, "-m", "secretkit.cli.main", "monitor", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for words in ("--history-every", "--max-rows", "docs/monitor.md", "SIGTERM"):
        assert words in proc.stdout
