"""Label bounds, verdict order, and the coverage table's arithmetic (no servers)."""

from __future__ import annotations

import pytest

from secretkit._proto.etcd import kv_pb2
from secretkit.audit.model import FindingKind, SummaryKey
from secretkit.errors import UsageError
from secretkit.monitor.labels import OTHER, RowTable, Verdict, has_object_path, primary_verdict
from secretkit.monitor.options import MonitorOptions, parse_listen_address
from tests.unit.monitor.helpers import CURRENT, PLAINTEXT, STALE, UNKNOWN, make_coverage, record

ROOT = b"/registry/"


@pytest.mark.parametrize(
    ("findings", "verdict"),
    [
        ((), Verdict.OK),
        ((FindingKind.STALE,), Verdict.STALE),
        ((FindingKind.STALE, FindingKind.PLAINTEXT), Verdict.PLAINTEXT),
        ((FindingKind.PLAINTEXT, FindingKind.UNDECRYPTABLE), Verdict.UNDECRYPTABLE),
        ((FindingKind.PLAINTEXT, FindingKind.UNKNOWN), Verdict.PLAINTEXT),
        ((FindingKind.UNKNOWN, FindingKind.STALE), Verdict.UNKNOWN),
    ],
)
def test_one_verdict_per_object(findings: tuple[FindingKind, ...], verdict: Verdict) -> None:
    assert primary_verdict(findings) is verdict


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"/registry/secrets/ns/name", True),
        (b"/registry/namespaces/default", True),
        (b"/registry/example.com/widgets/ns/w", True),
        (b"/registry/services/specs/ns/svc", True),
        (b"/registry/mysecretname", False),  # the last segment could be a name
        (b"/registry/example.com/maybe-a-name", False),
        (b"/registry/secrets/", False),
        (b"/other/secrets/ns/x", False),
    ],
)
def test_object_paths(key: bytes, expected: bool) -> None:
    assert has_object_path(key, ROOT) is expected


def test_rows_are_bounded_and_checked() -> None:
    table = RowTable(max_rows=2)
    first = table.index(SummaryKey("secrets", "aesgcm", "key1"), True)
    assert first == 1
    assert table.index(SummaryKey("secrets", "aesgcm", "key1"), True) == first
    assert table.index(SummaryKey("Bad Resource!", "made-up", "has space"), True) == 2
    assert table.labels[2] == (OTHER, OTHER, OTHER)
    assert table.index(SummaryKey("configmaps", "identity", "-"), True) == 0  # full
    assert table.overflowed == 1
    assert table.index(SummaryKey("secrets", "aesgcm", "key1"), False) == 0  # no object path
    long_key = "k" * 300
    assert RowTable().labels[0] == (OTHER, OTHER, OTHER)
    other = RowTable()
    other.index(SummaryKey("secrets", "kms-v2", long_key), True)
    assert other.labels[1][2] == OTHER


def _event(kind: int, key: bytes, value: bytes, prev: bytes | None) -> kv_pb2.Event:
    event = kv_pb2.Event(type=kind, kv=kv_pb2.KeyValue(key=key, value=value, mod_revision=9))
    if prev is not None:
        event.prev_kv.CopyFrom(kv_pb2.KeyValue(key=key, value=prev, mod_revision=8))
    return event


def test_changes_move_objects_between_counts_and_stale_dates_carry_over() -> None:
    clock = [100.0]
    coverage = make_coverage()
    coverage._clock = lambda: clock[0]  # type: ignore[method-assign]
    coverage.count(
        [record(b"/registry/secrets/ns/a", STALE), record(b"/registry/secrets/ns/b", PLAINTEXT)]
    )
    assert coverage.totals()[Verdict.STALE] == 1
    row = next(r for r in coverage.snapshot() if r.counts[Verdict.STALE])
    assert row.stale_since == 100.0 and (row.provider, row.key) == ("aesgcm", "key1")
    clock[0] = 200.0
    puts, deletes = coverage.apply([
        _event(0, b"/registry/secrets/ns/a", CURRENT, STALE),     # rewritten: no longer stale
        _event(1, b"/registry/secrets/ns/b", b"", PLAINTEXT),     # deleted
        _event(0, b"/registry/secrets/ns/c", UNKNOWN, None),      # created
        _event(0, b"/registry/configmaps/ns/d", PLAINTEXT, None),  # out of scope
    ])
    assert (puts, deletes) == (3, 1)
    totals = coverage.totals()
    assert totals == {Verdict.OK: 1, Verdict.PLAINTEXT: 0, Verdict.STALE: 0,
                      Verdict.UNDECRYPTABLE: 0, Verdict.UNKNOWN: 1}
    assert all(r.stale_since is None for r in coverage.snapshot())
    assert not coverage.inexact
    # a new table keeps the date its predecessor first saw stale values
    old = make_coverage()
    old._clock = lambda: 50.0  # type: ignore[method-assign]
    old.count([record(b"/registry/secrets/ns/a", STALE)])
    fresh = make_coverage()
    fresh._carried = old.stale_dates()
    fresh.count([record(b"/registry/secrets/ns/a", STALE)])
    assert [r.stale_since for r in fresh.snapshot() if r.stale_since] == [50.0]


def test_a_count_never_goes_negative() -> None:
    coverage = make_coverage()
    coverage.apply([_event(1, b"/registry/secrets/ns/x", b"", PLAINTEXT)])
    assert coverage.totals()[Verdict.PLAINTEXT] == 0
    assert coverage.inexact  # asks for a full scan instead


def test_listen_addresses_stay_on_loopback_unless_allowed() -> None:
    assert str(parse_listen_address("127.0.0.1:8788", allow_remote=False, where="x")) == (
        "127.0.0.1:8788")
    assert parse_listen_address("[::1]:0", allow_remote=False, where="x").host == "::1"
    with pytest.raises(UsageError, match="non-loopback"):
        parse_listen_address("10.0.0.5:8788", allow_remote=False, where="--metrics-addr")
    assert parse_listen_address("10.0.0.5:8788", allow_remote=True, where="x").port == 8788
    for bad in ("nohost", "example.com:80", "127.0.0.1:99999", "127.0.0.1:http"):
        with pytest.raises(UsageError):
            parse_listen_address(bad, allow_remote=True, where="x")


def test_option_combinations_are_checked() -> None:
    from pathlib import Path

    for options in (
        MonitorOptions(decrypt_check=True),
        MonitorOptions(kms_sockets={"a": "unix:///x"}),
        MonitorOptions(snapshot_dir=Path("/tmp")),
        MonitorOptions(max_rows=0),
        MonitorOptions(resources=()),
    ):
        with pytest.raises(UsageError):
            options.check()
