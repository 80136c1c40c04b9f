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


def test_listen_addresses_stay_on_loopback_unless_the_operator_opts_in() -> None:


    from secretkit.errors import UsageError
    from secretkit.loopback import parse_host_port

    def parse(value: str, remote: bool = False) -> tuple[str, int]:
        return parse_host_port(value, allow_remote=remote, where="--x", serves="metrics",
                               allow_flag="--x-allow-remote")

    assert parse("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert parse(" [::1]:0 ") == ("::1", 0)
    assert parse("localhost:8080") == ("localhost", 8080)
    assert parse("10.0.0.5:9100", remote=True) == ("10.0.0.5", 9100)
    for bad, words in (("10.0.0.5:9100", "--x-allow-remote"), ("node1:9100", "not an IP"),
                       ("127.0.0.1:70000", "out of range"), ("127.0.0.1:http", "not a number"),
                       ("9100", "HOST:PORT"), ("127.0.0.1.nip.io:80", "not an IP")):
        with pytest.raises(UsageError) as refused:
            parse(bad)
        assert words in f"{refused.value.what} {refused.value.hint}", bad
