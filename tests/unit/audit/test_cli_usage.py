"""Malformed flags are usage errors (exit 2) with a clear message, before any I/O."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--decrypt-check"], "--decrypt-check needs --config"),
        (["--fail-on", "plaintext,bogus"], "unknown --fail-on value 'bogus'"),
        (["--kms-socket", "kms-prod"], "--kms-socket expects NAME=unix:///path"),
        (["--page-size", "0"], "'--page-size': 0 is not in the range 1<=x<=1000000"),
        (["--kms-socket", "a=unix:///x.sock"], "--backends/--kms-socket need --config"),
        (["etcd-access"], "nothing to check"),
        (["config"], "nothing to check"),
        (["--output", "yaml"], "Invalid value for '-o' / '--output'"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_teaches() -> None:
    out = _run("--help").stdout
    for word in (
        "--decrypt-check",
        "--history",
        "--snapshot",
        "etcd-access",
        "config",
        "Exit codes",
    ):
        assert word in out
