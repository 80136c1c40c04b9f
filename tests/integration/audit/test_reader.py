"""The linear-time reader returns exactly what plain paging returns, at one revision."""

from __future__ import annotations

import pytest

from secretkit.audit.reader import linear_pages
from secretkit.etcd import EtcdClient

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
        linear_pages(etcd_client, b"/registry/secrets/", revision=revision, page_size=page_size)
    )
    got = [(kv.key, kv.value, kv.mod_revision) for page in pages for kv in page]
    assert got == expected
    assert len(got) == 251
    assert max(len(p) for p in pages) <= page_size


def test_empty_range_yields_nothing(etcd_client: EtcdClient) -> None:
    revision = etcd_client.current_revision()
    assert list(linear_pages(etcd_client, b"/nothing/", revision=revision, page_size=10)) == []
