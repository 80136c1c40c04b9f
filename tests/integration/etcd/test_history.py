"""Batched history reads give exactly what walking one get at a time gives."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.layout import Layout
from secretkit.core.readability import Judge
from secretkit.errors import EtcdError
from secretkit.etcd import EtcdClient, EtcdCompactedError, ForwardingEtcd, KeyValue
from secretkit.etcd.history import HistoryWalk
from secretkit.etcd.interface import Watch
from secretkit.etcd.model import WatchRange
from secretkit.etcd.retained import RetainedValues
from tests.fixtures.servers import EtcdServer

pytestmark = pytest.mark.etcd


def _one_get_at_a_time(
    client: EtcdClient, kvs: list[KeyValue]
) -> tuple[set[tuple[bytes, int]], int]:
    """The reference walk: get(key, mod_revision - 1) until creation or compaction."""
    found = set()
    compacted = 0
    for kv in kvs:
        revision = kv.mod_revision - 1
        while kv.version > 1 and revision >= kv.create_revision:
            try:
                older = client.get(kv.key, revision=revision)
            except EtcdCompactedError:
                compacted += 1
                break
            if older is None:
                break
            found.add((older.key, older.mod_revision))
            if older.version <= 1:
                break
            revision = older.mod_revision - 1
    return found, compacted


def _seed(client: EtcdClient) -> int:
    """Keys with 1-4 versions, one deleted and recreated; returns a mid revision."""
    mid = 0
    for round_ in range(4):
        for i in range(150):
            if i % 4 >= round_:
                client.put(f"/registry/secrets/ns/s{i:03d}".encode(), b"v%d" % round_)
        if round_ == 1:
            mid = client.current_revision()
    client.delete(b"/registry/secrets/ns/s003")
    client.put(b"/registry/secrets/ns/s003", b"recreated")
    return mid


class _Counting(ForwardingEtcd):
    """The real client, counting Txns and single gets."""

    def __init__(self, client: EtcdClient) -> None:
        super().__init__(client)
        self.txns = 0
        self.refused = 0
        self.gets = 0

    def get_many(self, requests: Sequence[tuple[bytes, int]]) -> Sequence[KeyValue | None]:
        self.txns += 1
        try:
            return super().get_many(requests)
        except EtcdCompactedError:
            self.refused += 1
            raise

    def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
        self.gets += 1
        return super().get(key, revision=revision)


def _live(client: EtcdClient) -> list[KeyValue]:
    return [kv for page in client.scan(b"/registry/secrets/") for kv in page]


@pytest.mark.parametrize("compact", [False, True])
def test_same_older_values_as_one_get_at_a_time(etcd_client: EtcdClient, compact: bool) -> None:
    mid = _seed(etcd_client)
    if compact:
        etcd_client.compact(mid)
    kvs = _live(etcd_client)
    expected, expected_compacted = _one_get_at_a_time(etcd_client, kvs)
    client = _Counting(etcd_client)
    walk = HistoryWalk(client, batch=16)
    got = [(kv.key, older.key, older.mod_revision) for kv, older in walk.older(kvs)]
    assert all(live == key for live, key, _ in got)
    assert {(key, rev) for _, key, rev in got} == expected
    assert len(got) == len(expected) > 100
    assert walk.compacted == expected_compacted
    assert (walk.compacted > 0) is compact
    if not compact:
        assert client.gets == 0 and client.txns <= len(expected) // 16 + 4


def test_errors_other_than_compaction_propagate(etcd_client: EtcdClient) -> None:
    # the prune gate relies on this: an unreachable etcd must not read as "no history"
    _seed(etcd_client)
    kvs = _live(etcd_client)

    class Broken(ForwardingEtcd):
        def get_many(self, requests: Sequence[tuple[bytes, int]]) -> Sequence[KeyValue | None]:
            raise EtcdError("etcd went away", where="test")

        def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
            raise AssertionError("not reached")

    with pytest.raises(EtcdError, match="went away"):
        list(HistoryWalk(Broken(etcd_client)).older(kvs))


#: secrets are written by aesgcm key2 only: plaintext would be unreadable
_KEY2_ONLY = b"""
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: key2
              secret: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
"""


def test_the_prune_gate_sees_older_values_and_fails_closed(etcd_client: EtcdClient) -> None:
    from secretkit.rotation import gates

    for i in range(40):
        key = f"/registry/secrets/ns/s{i:03d}".encode()
        etcd_client.put(key, b"k8s\x00old plaintext")
        etcd_client.put(key, b"k8s:enc:aesgcm:v1:key2:" + b"\x00" * 40)
    # deleted objects' older revisions are held too, and judged
    etcd_client.put(b"/registry/secrets/ns/gone", b"k8s\x00deleted plaintext")
    etcd_client.delete(b"/registry/secrets/ns/gone")
    after = Judge(load_encryption_config(_KEY2_ONLY), layout=Layout("/registry"))

    found = gates.prove_readable(etcd_client, after=after, keep_examples=100)
    assert found.scanned == 40 and found.historic_scanned == 41
    assert found.blocker_count == 41 and all(b.historic for b in found.examples)
    assert any(b.etcd_key.endswith("/gone") for b in found.examples)
    assert gates.prove_readable(etcd_client, after=after, include_history=False).passed

    class FlakyHistory(ForwardingEtcd):
        """Compaction-point reads fail: the gate must raise, not pass."""

        def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
            raise EtcdError("etcd went away", where="test")

    class FlakyReplay(ForwardingEtcd):
        """Live reads work, the history replay fails: the gate must raise, not pass."""

        def watch(
            self, ranges: Sequence[WatchRange], *, prev_kv: bool = False,
            progress_notify: bool = True,
        ) -> Watch:
            raise EtcdError("etcd went away", where="test")

    for flaky in (FlakyHistory(etcd_client), FlakyReplay(etcd_client)):
        with pytest.raises(EtcdError, match="went away"):
            gates.prove_readable(flaky, after=after)


def test_after_compaction_few_transactions_are_refused(etcd_client: EtcdClient) -> None:
    # etcd refuses a whole Txn for one compacted revision; revisions at or below one
    # seen compacted are not asked again (compaction only moves forward)
    for round_ in range(3):
        for i in range(300):
            etcd_client.put(f"/registry/secrets/ns/s{i:03d}".encode(), b"v%d" % round_)
    etcd_client.compact(etcd_client.current_revision())
    for i in range(0, 300, 20):  # a few keys written after the compaction
        etcd_client.put(f"/registry/secrets/ns/s{i:03d}".encode(), b"late")
    kvs = _live(etcd_client)
    expected, expected_compacted = _one_get_at_a_time(etcd_client, kvs)
    client = _Counting(etcd_client)
    walk = HistoryWalk(client, batch=16)
    got = {(older.key, older.mod_revision) for _, older in walk.older(kvs)}
    assert got == expected and walk.compacted == expected_compacted == 300
    assert client.refused <= 3, (client.refused, client.txns)
    assert client.gets < 300


def test_older_values_too_large_for_one_answer_are_split(etcd_server: EtcdServer) -> None:
    with EtcdClient(etcd_server.client_config()) as writer:
        writer.delete_prefix(b"/registry/")
        for i in range(30):
            key = f"/registry/secrets/ns/big{i:02d}".encode()
            writer.put(key, b"B" * 100_000)
            writer.put(key, b"small")
        kvs = [kv for page in writer.scan(b"/registry/secrets/") for kv in page]
        expected, _ = _one_get_at_a_time(writer, kvs)
    with EtcdClient(etcd_server.client_config(), max_message_bytes=1_000_000) as small:
        got = {(older.key, older.mod_revision) for _, older in HistoryWalk(small).older(kvs)}
    assert got == expected and len(got) == 30


@pytest.mark.etcd
def test_retained_values_over_several_replay_segments_and_waves(
    etcd_client: EtcdClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """etcd's history read by many segment watches equals reading every revision."""
    import secretkit.etcd.retained as retained

    monkeypatch.setattr(retained, "SEGMENT", 50)
    monkeypatch.setattr(retained, "WAVE", 3)  # 600 revisions: 12 segments in 4 streams
    prefix = b"/segments-test/"
    first = etcd_client.current_revision()
    for i in range(600):
        key = prefix + f"k{i % 40}".encode()
        if i % 9 == 8:
            etcd_client.delete(key)
        else:
            etcd_client.put(key, f"v{i}".encode())
        if i % 4 == 0:
            etcd_client.put(b"/other-prefix/" + str(i).encode(), b"x")
    held: set[tuple[bytes, int]] = set()
    for revision in range(first, etcd_client.current_revision() + 1):
        for page in etcd_client.scan(prefix, revision=revision):
            held |= {(bytes(kv.key), kv.mod_revision) for kv in page}
    reader = RetainedValues(etcd_client, prefix)
    got = [(bytes(i.kv.key), i.kv.mod_revision) for page in reader.pages() for i in page]
    assert len(got) == len(set(got))
    assert set(got) == held
    assert reader.historic > 400
