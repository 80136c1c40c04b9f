"""One loopback rule for every caller: literal addresses and localhost, never names."""

from __future__ import annotations

import pytest

from secretkit.audit.etcd_access import flag_findings
from secretkit.audit.flags import parse_flag_words
from secretkit.loopback import is_loopback_host, is_loopback_url


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.10.20.30", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.1.nip.io", False),  # resolves anywhere
        ("10.0.0.1", False),
        ("etcd.example.com", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, expected: bool) -> None:
    assert is_loopback_host(host) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:2379", True),
        ("http://[::1]:2379", True),
        ("https://localhost:8200", True),
        ("http://127.0.0.1.nip.io:2379", False),
        ("http://[::1:2379", False),  # malformed
        ("http://0.0.0.0:2379", False),
    ],
)
def test_loopback_urls(url: str, expected: bool) -> None:
    assert is_loopback_url(url) is expected


def test_etcd_access_no_longer_trusts_a_name_that_starts_with_127() -> None:
    # the old prefix test called this listener loopback (MEDIUM instead of CRITICAL)
    flags = parse_flag_words(["--listen-client-urls=http://127.0.0.1.nip.io:2379"], "test")
    finding = next(f for f in flag_findings(flags) if f.check == "etcd.flags.listen-client-urls")
    assert finding.severity.name == "CRITICAL"
