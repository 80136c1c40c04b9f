"""EtcdClient against a real etcd (the session ``etcd_server``; keyspace wiped per test)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from secretkit.errors import EtcdError
from secretkit.etcd import EtcdClient, EtcdCompactedError, EtcdConfig, KeyValueRecord
from secretkit.sandbox.servers import find_binary

pytestmark = pytest.mark.etcd


def _all_keys(client: EtcdClient, prefix: bytes, **kwargs: object) -> list[bytes]:
    return [kv.key for page in client.range_pages(prefix, **kwargs) for kv in page]  # type: ignore[arg-type]


def test_put_get_and_revisions(etcd_client: EtcdClient) -> None:
    rev1 = etcd_client.put(b"/t/k", b"v1")
    rev2 = etcd_client.put(b"/t/k", b"v2")
    assert rev2 == rev1 + 1
    kv = etcd_client.get(b"/t/k")
    assert kv == KeyValueRecord(b"/t/k", b"v2", create_revision=rev1, mod_revision=rev2, version=2)
    old = etcd_client.get(b"/t/k", revision=rev1)
    assert old is not None and old.value == b"v1" and old.mod_revision == rev1
    assert etcd_client.get(b"/t/missing") is None
    assert etcd_client.current_revision() == rev2


def test_paging_many_keys_in_order(etcd_client: EtcdClient) -> None:
    keys = [f"/registry/secrets/ns{i % 7}/s{i:05d}".encode() for i in range(1234)]
    for key in keys:
        etcd_client.put(key, b"x" * 64)
    # neighbours that must stay outside the prefix
    etcd_client.put(b"/registry/secretz", b"no")
    etcd_client.put(b"/registry/secrets", b"no")  # the prefix without the slash
    pages = list(etcd_client.range_pages(b"/registry/secrets/", page_size=100))
    assert all(1 <= len(p) <= 100 for p in pages)
    assert len(pages) == 13
    got = [kv.key for p in pages for kv in p]
    assert got == sorted(keys)


def test_paging_binary_keys_and_ff_prefix(etcd_client: EtcdClient) -> None:
    prefix = b"/bin/\xff\xff"
    inside = [prefix + bytes([b]) for b in (0x00, 0x01, 0x7F, 0xFE, 0xFF)] + [
        prefix + b"\xff\x00",
        prefix + b"\xff\xff\xff",
        prefix,
    ]
    outside = [b"/bin/\xff\xfe\xff", b"/bin/\xff", b"/bin0", b"/bio"]
    for key in inside + outside:
        etcd_client.put(key, key)
    got = _all_keys(etcd_client, prefix, page_size=2)
    assert got == sorted(inside)
    values = [kv.value for p in etcd_client.range_pages(prefix, page_size=3) for kv in p]
    assert values == sorted(inside)


def test_keys_only_and_start(etcd_client: EtcdClient) -> None:
    for i in range(10):
        etcd_client.put(f"/ko/{i}".encode(), b"secret-value")
    pages = list(etcd_client.range_pages(b"/ko/", keys_only=True, page_size=4))
    assert [kv.key for p in pages for kv in p] == [f"/ko/{i}".encode() for i in range(10)]
    assert all(kv.value == b"" and kv.mod_revision > 0 for p in pages for kv in p)
    assert _all_keys(etcd_client, b"/ko/", start=b"/ko/7") == [b"/ko/7", b"/ko/8", b"/ko/9"]


def test_whole_keyspace_scan(etcd_client: EtcdClient) -> None:
    etcd_client.put(b"\x00first", b"1")
    etcd_client.put(b"/mid", b"2")
    etcd_client.put(b"\xff\xfflast", b"3")
    assert _all_keys(etcd_client, b"", page_size=1) == [b"\x00first", b"/mid", b"\xff\xfflast"]


def test_scan_is_pinned_to_first_page_revision(etcd_client: EtcdClient) -> None:
    for i in range(30):
        etcd_client.put(f"/pin/{i:02d}".encode(), b"old")
    pages = etcd_client.range_pages(b"/pin/", page_size=10)
    first = next(pages)
    assert [kv.key for kv in first][-1] == b"/pin/09"
    # writes after the first page: a new key ahead of the cursor, a change, a delete
    etcd_client.put(b"/pin/15a", b"new")
    etcd_client.put(b"/pin/20", b"changed")
    assert etcd_client.delete(b"/pin/25")
    rest = [kv for page in pages for kv in page]
    assert [kv.key for kv in rest] == [f"/pin/{i:02d}".encode() for i in range(10, 30)]
    assert all(kv.value == b"old" for kv in rest)
    # an explicit revision pins the same way
    now = _all_keys(etcd_client, b"/pin/")
    assert b"/pin/15a" in now and b"/pin/25" not in now


def test_compare_and_swap(etcd_client: EtcdClient) -> None:
    assert etcd_client.compare_and_swap(b"/cas/k", b"v1", mod_revision=0)
    assert not etcd_client.compare_and_swap(b"/cas/k", b"again", mod_revision=0)
    kv = etcd_client.get(b"/cas/k")
    assert kv is not None and kv.value == b"v1"
    assert etcd_client.compare_and_swap(b"/cas/k", b"v2", mod_revision=kv.mod_revision)
    # a stale mod_revision loses and writes nothing
    assert not etcd_client.compare_and_swap(b"/cas/k", b"v3", mod_revision=kv.mod_revision)
    latest = etcd_client.get(b"/cas/k")
    assert latest is not None and latest.value == b"v2"


def test_guarded_delete(etcd_client: EtcdClient) -> None:
    etcd_client.put(b"/del/k", b"v")
    kv = etcd_client.get(b"/del/k")
    assert kv is not None
    assert not etcd_client.delete(b"/del/k", mod_revision=kv.mod_revision + 100)
    assert etcd_client.get(b"/del/k") is not None
    assert etcd_client.delete(b"/del/k", mod_revision=kv.mod_revision)
    assert etcd_client.get(b"/del/k") is None
    assert not etcd_client.delete(b"/del/k")


def test_delete_prefix(etcd_client: EtcdClient) -> None:
    for key in (b"/dp/a", b"/dp/b", b"/dq/c"):
        etcd_client.put(key, b"v")
    assert etcd_client.delete_prefix(b"/dp/") == 2
    assert _all_keys(etcd_client, b"") == [b"/dq/c"]


def test_compacted_revision_is_a_clear_error(etcd_client: EtcdClient) -> None:
    first = etcd_client.put(b"/cmp/k", b"v1")
    etcd_client.put(b"/cmp/k", b"v2")
    latest = etcd_client.put(b"/cmp/other", b"x")
    etcd_client.compact(latest)
    with pytest.raises(EtcdCompactedError) as info:
        etcd_client.get(b"/cmp/k", revision=first)
    assert "compacted" in info.value.what
    assert str(first) in info.value.what
    with pytest.raises(EtcdError, match="compacted"):
        list(etcd_client.range_pages(b"/cmp/", revision=first))
    # the current revision still reads
    kv = etcd_client.get(b"/cmp/k")
    assert kv is not None and kv.value == b"v2"


def test_status(etcd_client: EtcdClient, etcd_server: object) -> None:
    rev = etcd_client.put(b"/st", b"v")
    st = etcd_client.status()
    assert st.version.startswith("3.")
    assert st.revision >= rev
    assert st.leader == st.member_id != 0
    assert st.db_size > 0
    assert st.endpoint == etcd_client.endpoint


def test_snapshot_is_a_valid_etcd_snapshot(etcd_client: EtcdClient, tmp_path: Path) -> None:
    for i in range(20):
        etcd_client.put(f"/snap/{i}".encode(), b"v" * 100)
    dest = tmp_path / "backup.db"
    etcd_client.snapshot(dest)
    assert dest.stat().st_size > 0
    assert dest.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["backup.db"]  # no temp file left
    # the upstream tool accepts it (it checks the appended sha256)
    out = subprocess.run(
        [str(find_binary("etcdutl")), "snapshot", "status", str(dest), "--write-out=json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status = json.loads(out.stdout)
    assert status["totalKey"] >= 20
    assert status["revision"] >= etcd_client.current_revision() - 1


def test_failover_to_next_endpoint(etcd_server: object) -> None:
    from secretkit.sandbox.servers import free_port

    live = etcd_server.endpoint  # type: ignore[attr-defined]
    dead = f"http://127.0.0.1:{free_port()}"
    with EtcdClient(EtcdConfig(endpoints=(dead, live), timeout=3)) as client:
        client.put(b"/failover", b"ok")
        kv = client.get(b"/failover")
        assert kv is not None and kv.value == b"ok"
        assert client.endpoint == live


def test_unreachable_endpoint_fails_fast_and_clearly() -> None:
    import time

    from secretkit.sandbox.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with (
        EtcdClient(EtcdConfig(endpoints=[dead], timeout=3)) as client,
        pytest.raises(EtcdError) as info,
    ):
        client.get(b"/x")
    assert time.monotonic() - started < 3 + 5  # bounded by the timeout, not hanging
    err = info.value
    assert err.where == dead
    assert err.hint is not None and "--endpoints" in err.hint
    assert "is etcd running" in err.hint


def test_fixture_keyspace_is_empty(etcd_client: EtcdClient) -> None:
    # other tests leave keys behind; the fixture must have wiped them
    assert _all_keys(etcd_client, b"") == []


def test_fixture_leaves_no_history(etcd_client: EtcdClient) -> None:
    # writes nothing: the next etcd_client setup must cope with "already compacted"
    rev = etcd_client.current_revision()
    with pytest.raises(EtcdCompactedError):
        etcd_client.get(b"/anything", revision=rev - 1)


def test_fixture_after_a_test_that_wrote_nothing(etcd_client: EtcdClient) -> None:
    assert _all_keys(etcd_client, b"") == []


def test_page_too_large_for_one_message_is_split(
    etcd_client: EtcdClient, etcd_server: object
) -> None:
    value = b"z" * 10_000
    keys = [f"/big/{i:02d}".encode() for i in range(20)]
    for key in keys:
        etcd_client.put(key, value)
    cfg = etcd_server.client_config()  # type: ignore[attr-defined]
    # a 45 KB message cap: at most 4 values of 10 KB fit in one response
    with EtcdClient(cfg, max_message_bytes=45_000) as small:
        pages = list(small.range_pages(b"/big/", page_size=20))
    assert [kv.key for p in pages for kv in p] == keys
    assert all(kv.value == value for p in pages for kv in p)
    assert len(pages) >= 5 and max(len(p) for p in pages) <= 4


def test_reads_fail_over_from_a_silent_endpoint(etcd_server: object) -> None:
    """An endpoint that accepts TCP but never answers: reads move on after the timeout."""
    import socket

    live = etcd_server.endpoint  # type: ignore[attr-defined]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever speaks
        dead = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with EtcdClient(EtcdConfig(endpoints=(dead, live), timeout=1)) as client:
            assert client.current_revision() > 0
            assert client.endpoint == live
        with (
            EtcdClient(EtcdConfig(endpoints=(dead,), timeout=1)) as client,
            pytest.raises(EtcdError) as info,
        ):
            client.get(b"/x")
        assert "did not answer" in info.value.what
