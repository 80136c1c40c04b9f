"""``secretkit kms status|rotate --kms-socket ENDPOINT`` is checked before anything runs.

A form the plugin and kube-apiserver cannot use is a usage error (exit 2) naming
``--kms-socket``, with the endpoint parser's message and hint, as ``audit --kms-socket
NAME=ENDPOINT`` reports it; not a ConfigError from the gRPC client later.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from secretkit.core.encryption_config.endpoint import parse_endpoint
from secretkit.errors import ConfigError

#: each command's other required flags; the backends file does not exist, so a
#: command that got past the endpoint check would fail differently (and exit 1)
COMMANDS = {
    "status": ["kms", "status", "--no-etcd"],
    "rotate": ["kms", "rotate", "--backends", "/nonexistent/backends.yaml", "--provider", "p",
               "--config", "/nonexistent/enc.yaml"],
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unix_at_is_a_usage_error_up_front(command: str) -> None:
    proc = _run(*COMMANDS[command], "--kms-socket", "unix:@p")
    assert proc.returncode == 2, proc.stderr
    assert (
        "error: invalid KMS endpoint 'unix:@p': "
        "kube-apiserver reads no socket path from the unix:@name form"
    ) in proc.stderr
    assert "where: --kms-socket" in proc.stderr
    assert "hint: write unix:///@p for the abstract socket 'p'" in proc.stderr
    assert "Traceback" not in proc.stderr
    # nothing after the check ran: the missing backends file was never opened
    assert "backends" not in proc.stderr


@pytest.mark.parametrize(
    "endpoint", ["unix://run/kms.sock", "unix:relative.sock", "tcp://h:1", "/run/kms.sock"]
)
def test_other_bad_forms_carry_the_parsers_wording(endpoint: str) -> None:
    with pytest.raises(ConfigError) as parser:
        parse_endpoint(endpoint)
    proc = _run(*COMMANDS["status"], "--kms-socket", endpoint)
    assert proc.returncode == 2, proc.stderr
    assert f"error: {parser.value.what}" in proc.stderr
    assert f"hint: {parser.value.hint}" in proc.stderr
    assert "where: --kms-socket" in proc.stderr


def test_a_valid_endpoint_gets_past_the_check() -> None:
    # a well-formed endpoint passes; the command then fails on the missing backends file
    # (bad input too, so exit 2, but the error names the file, not the socket)
    proc = _run(*COMMANDS["rotate"], "--kms-socket", "unix:///nonexistent/kms.sock")
    assert proc.returncode == 2, proc.stderr
    assert "--kms-socket" not in proc.stderr
    assert "/nonexistent/" in proc.stderr  # the next missing file is named


def test_name_equals_endpoint_like_audit_is_accepted_and_checked() -> None:
    from secretkit.cli.kms_cmd import _kms_socket
    from secretkit.errors import UsageError

    assert _kms_socket("vault=unix:///run/kms.sock", "vault") == "unix:///run/kms.sock"
    assert _kms_socket("unix:///run/kms.sock", "vault") == "unix:///run/kms.sock"
    with pytest.raises(UsageError, match="names provider 'other'"):
        _kms_socket("other=unix:///run/kms.sock", "vault")
