"""``--kms-socket NAME=ENDPOINT`` goes through the one endpoint parser before anything opens.

A form the plugin and kube-apiserver cannot use is a usage error (exit 2) naming
``--kms-socket``, with the parser's message and hint, instead of a failed dial later.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from secretkit.core.encryption_config.endpoint import parse_endpoint
from secretkit.errors import ConfigError, UsageError
from secretkit.kmsapi.services import parse_kms_sockets


def test_valid_endpoints_are_kept_as_given() -> None:
    values = ["a=unix:///run/a.sock", "b=unix:///@b", "c=unix:/run/c%25.sock"]
    assert parse_kms_sockets(values) == {
        "a": "unix:///run/a.sock",
        "b": "unix:///@b",
        "c": "unix:/run/c%25.sock",
    }


@pytest.mark.parametrize(
    "endpoint",
    [
        "unix:@kms",
        "unix:relative.sock",
        "unix://run/kms.sock",
        "unix:///run/kms.sock?x",
        "tcp://h:1",
    ],
)
def test_bad_endpoints_are_refused_with_the_parsers_wording(endpoint: str) -> None:
    with pytest.raises(ConfigError) as parser:
        parse_endpoint(endpoint)
    with pytest.raises(UsageError) as info:
        parse_kms_sockets([f"kms={endpoint}"])
    assert info.value.what == parser.value.what
    assert info.value.hint == parser.value.hint
    assert info.value.where == "--kms-socket"
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", ["kms", "=unix:///x.sock", "kms="])
def test_malformed_values_name_the_expected_shape(value: str) -> None:
    with pytest.raises(UsageError, match="--kms-socket expects NAME=unix:///path"):
        parse_kms_sockets([value])


def test_the_audit_cli_refuses_unix_at_up_front() -> None:
    # no etcd, no plugin: the flag is refused before either is contacted
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "audit", "--kms-socket", "kms=unix:@p"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unix:@name" in proc.stderr
    assert "where: --kms-socket" in proc.stderr
    assert "write unix:///@p" in proc.stderr
    assert "Traceback" not in proc.stderr
