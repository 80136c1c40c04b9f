"""The stand-in's shared etcd transactions against a real etcd: a batch of writes is all
or nothing per compare-and-swap, and a lost one falls back to one write per key so
that exactly the stale writes lose; a lease puts a key on a timer."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.etcd import EtcdClient
from secretkit.sandbox import configs
from secretkit.sandbox.apiserver.encryption import EncryptionState
from secretkit.sandbox.apiserver.store import ObjectStore

pytestmark = pytest.mark.etcd


@pytest.fixture
def store(etcd_client: EtcdClient, tmp_path: Path) -> ObjectStore:
    config = tmp_path / "enc.yaml"
    config.write_bytes(configs.encryption_config("aesgcm"))
    state = EncryptionState(config)
    return ObjectStore(etcd_client, state)


def test_a_batch_writes_every_key_at_one_revision(store: ObjectStore,
                                                  etcd_client: EtcdClient) -> None:
    revs = [etcd_client.put(f"/k/{i}".encode(), b"old") for i in range(3)]
    out = store._put_batch([(f"/k/{i}".encode(), b"new", revs[i]) for i in range(3)])
    assert len(set(out)) == 1 and out[0] > max(revs)
    assert all(etcd_client.get(f"/k/{i}".encode()).value == b"new"  # type: ignore[union-attr]
               for i in range(3))


def test_a_stale_write_in_a_batch_loses_alone(store: ObjectStore,
                                              etcd_client: EtcdClient) -> None:
    revs = [etcd_client.put(f"/s/{i}".encode(), b"old") for i in range(3)]
    etcd_client.put(b"/s/1", b"someone else")  # key 1 moved on: our write is stale
    out = store._put_batch([(f"/s/{i}".encode(), b"ours", revs[i]) for i in range(3)])
    assert out[1] == 0 and out[0] > 0 and out[2] > 0
    values = [etcd_client.get(f"/s/{i}".encode()) for i in range(3)]
    assert [v.value for v in values if v] == [b"ours", b"someone else", b"ours"]


def test_the_same_key_twice_is_written_in_order(store: ObjectStore,
                                                etcd_client: EtcdClient) -> None:
    rev = etcd_client.put(b"/d", b"v0")
    out = store._put_batch([(b"/d", b"v1", rev), (b"/d", b"v2", rev)])
    assert out[0] > 0 and out[1] == 0  # the second saw its precondition broken
    assert etcd_client.get(b"/d").value == b"v1"  # type: ignore[union-attr]


def test_a_leased_key_expires(etcd_client: EtcdClient) -> None:
    import time

    lease = etcd_client.grant_lease(1)
    assert etcd_client.put_if(b"/leased", b"x", mod_revision=0, lease=lease)
    deadline = time.monotonic() + 10
    while etcd_client.get(b"/leased") is not None:
        assert time.monotonic() < deadline, "the key outlived its lease"
        time.sleep(0.2)
