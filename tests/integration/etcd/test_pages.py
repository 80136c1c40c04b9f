"""``EtcdClient.scan`` (the linear-time reader) returns exactly what plain paging returns."""

from __future__ import annotations

import pytest

from secretkit._proto.etcd import rpc_pb2
from secretkit.etcd import EtcdClient, EtcdConfig
from secretkit.etcd import pages as reader
from secretkit.etcd.errors import EtcdResponseTooLargeError
from secretkit.etcd.pages import linear_pages
from tests.fixtures.servers import EtcdServer

pytestmark = pytest.mark.etcd


@pytest.mark.parametrize("page_size", [1, 7, 100, 5000])
def test_same_keys_values_and_order_as_range_pages(etcd_client: EtcdClient, page_size: int) -> None:
    for i in range(250):
        etcd_client.put(f"/registry/secrets/ns{i % 3}/s{i:04d}".encode(), b"v%d" % i)
    etcd_client.put(b"/registry/secretsX", b"outside the prefix below")
    etcd_client.put(b"/registry/secrets/\xff\xff", b"high bytes")
    revision = etcd_client.current_revision()
    etcd_client.put(b"/registry/secrets/ns0/late", b"written after the pinned revision")
    expected = [
        (kv.key, kv.value, kv.mod_revision)
        for page in etcd_client.range_pages(b"/registry/secrets/", revision=revision)
        for kv in page
    ]
    pages = list(
        etcd_client.scan(b"/registry/secrets/", revision=revision, page_size=page_size)
    )
    got = [(kv.key, kv.value, kv.mod_revision) for page in pages for kv in page]
    assert got == expected
    assert len(got) == 251
    assert max(len(p) for p in pages) <= page_size


def test_empty_range_yields_nothing(etcd_client: EtcdClient) -> None:
    revision = etcd_client.current_revision()
    assert list(etcd_client.scan(b"/nothing/", revision=revision, page_size=10)) == []


def test_pages_of_large_values_stay_near_the_byte_budget(
    etcd_client: EtcdClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 KB values against a 64 KB budget: ~6 keys per page instead of page_size
    monkeypatch.setattr(reader, "PAGE_BYTES", 64 * 1024)
    for i in range(120):
        etcd_client.put(f"/registry/secrets/ns/big{i:04d}".encode(), bytes([i]) * 10_000)
    revision = etcd_client.current_revision()
    pages = list(
        etcd_client.scan(b"/registry/secrets/", revision=revision, page_size=3000)
    )
    got = [kv.key for page in pages for kv in page]
    assert got == sorted(got) and len(got) == 120
    assert len(pages[0]) <= reader.FIRST_PAGE_KEYS
    assert max(sum(len(kv.value) for kv in page) for page in pages[1:]) <= 64 * 1024
    rest = 120 - len(pages[0])
    assert len(pages) - 1 >= rest * 10_000 // (64 * 1024)


@pytest.mark.parametrize(
    ("response_bytes", "keys", "page_size", "limit"),
    [
        (2_000_000, 1000, 3000, 3000),  # 2 KB values: the page size rules
        (100_000_000, 1000, 3000, 62),  # 100 KB values: the byte budget rules
        (10**12, 1, 3000, 1),  # never below one key
        (0, 0, 3000, 3000),  # nothing measured yet
    ],
)
def test_page_limit(response_bytes: int, keys: int, page_size: int, limit: int) -> None:
    assert reader.page_limit(response_bytes, keys, page_size) == limit


def test_unpinned_scan_keeps_the_first_answers_revision_and_keys_only(
    etcd_client: EtcdClient,
) -> None:
    for i in range(60):
        etcd_client.put(f"/registry/configmaps/ns/c{i:03d}".encode(), b"x" * 100)
    pages = etcd_client.scan(b"/registry/configmaps/", page_size=7, keys_only=True)
    first = next(pages)
    # written after the scan began: not in the snapshot
    etcd_client.put(b"/registry/configmaps/ns/c999", b"late")
    keys = [kv.key for kv in first] + [kv.key for page in pages for kv in page]
    assert keys == [f"/registry/configmaps/ns/c{i:03d}".encode() for i in range(60)]
    assert all(kv.value == b"" for kv in first)


def test_an_empty_prefix_scans_the_whole_keyspace(etcd_client: EtcdClient) -> None:
    # the guessing reader needs an upper bound: the whole keyspace is paged by limit
    for i in range(15):
        etcd_client.put(f"/registry/pods/ns/p{i:02d}".encode(), b"v")
    etcd_client.put(b"\x00first", b"v")
    etcd_client.put(b"\xff\xfflast", b"v")
    got = [kv.key for page in etcd_client.scan(b"", page_size=4) for kv in page]
    assert len(got) == 17 and got == sorted(got)
    assert got[0] == b"\x00first" and got[-1] == b"\xff\xfflast"
    with pytest.raises(ValueError, match="non-empty prefix"):
        next(linear_pages(etcd_client.range_raw, b""))


def _counting(client: EtcdClient, stats: dict[str, int]) -> EtcdClient:
    """Wrap ``client.range_raw`` to sum the keys etcd counted and the refused answers."""
    raw = client.range_raw

    def counted(request: rpc_pb2.RangeRequest, operation: str = "range") -> object:
        try:
            response = raw(request, operation)
        except EtcdResponseTooLargeError:
            stats["refused"] += 1
            raise
        stats["counted"] += int(response.count)
        stats["requests"] += 1
        return response

    client.range_raw = counted  # type: ignore[method-assign]
    return client


def test_names_numbered_in_sequence_are_read_in_about_linear_time(
    etcd_client: EtcdClient,
) -> None:
    # decimal counters leave guessed ranges empty just before every carry; growing
    # the step 2^32-fold after an empty range then made etcd count the whole rest of
    # the prefix on every page (20.5 keys counted per key at 40k, 100 at 200k)
    n = 40_000
    for first in range(0, n, 128):
        ops = [
            rpc_pb2.RequestOp(
                request_put=rpc_pb2.PutRequest(
                    key=f"/registry/secrets/default/obj-{i:07d}".encode(), value=b"v"
                )
            )
            for i in range(first, min(first + 128, n))
        ]
        etcd_client._txn(rpc_pb2.TxnRequest(success=ops), "load")
    stats = {"counted": 0, "requests": 0, "refused": 0}
    _counting(etcd_client, stats)
    got = sum(len(p) for p in etcd_client.scan(b"/registry/secrets/", page_size=1000))
    assert got == n
    assert stats["counted"] / n < 10, stats


def test_a_jump_in_value_size_costs_one_refused_answer(
    etcd_server: EtcdServer, etcd_client: EtcdClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "PAGE_BYTES", 300_000)
    for i in range(60):
        etcd_client.put(f"/registry/secrets/ns/a{i:03d}".encode(), b"s" * 2_000)
    for i in range(60):
        etcd_client.put(f"/registry/secrets/ns/b{i:03d}".encode(), b"L" * 100_000)
    stats = {"counted": 0, "requests": 0, "refused": 0}
    small = EtcdClient(EtcdConfig(endpoints=(etcd_server.endpoint,)), max_message_bytes=1_000_000)
    with _counting(small, stats):
        pages = list(small.scan(b"/registry/secrets/", page_size=3000))
    assert sum(len(p) for p in pages) == 120
    # halving from ~150 keys would take five refusals (each one etcd builds in full)
    assert stats["refused"] <= 2, stats
