"""The prune gate and the key_id count over an in-memory etcd (no server).

The keyspaces are the ones a real kube-apiserver wrote (tests/data/real-apiserver);
the same gate against a real etcd: tests/integration/audit/test_captured_keyspaces.py
and tests/integration/etcd/test_history.py.
"""

from __future__ import annotations

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.readability import Judge
from secretkit.errors import EtcdError, SafetyError
from secretkit.etcd import ForwardingEtcd, KeyValue, MemoryEtcd
from secretkit.rotation.gates import count_key_ids, prove_readable
from tests.data import real_apiserver as captured


def _local_config(n: int) -> Judge:
    path = captured.LOCAL_PROVIDERS / f"config-{n}.yaml"
    return Judge(load_encryption_config(path.read_bytes(), source=str(path)))


def test_dropping_identity_from_the_star_star_config_passes_internal_keys_never_block() -> None:
    store = MemoryEtcd()
    count = captured.load_into(store, captured.STAR_STAR)
    raw = (captured.STAR_STAR / "encryption-config.yaml").read_bytes()
    pruned = load_encryption_config(raw.replace(b"      - identity: {}\n", b""))
    result = prove_readable(store, after=Judge(pruned), before=Judge(load_encryption_config(raw)))
    assert result.passed, [b.line() for b in result.examples]
    assert (result.scanned, result.internal, result.historic_scanned) == (count, 3, 0)


def _without_key_c() -> Judge:
    """The final captured config without its secretbox provider (key-c)."""
    lines = (captured.LOCAL_PROVIDERS / "config-3.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "secretbox:" in line)
    return Judge(load_encryption_config(("\n".join(lines[:start] + lines[start + 4 :])).encode()))


def test_older_revisions_and_deleted_keys_block_removing_their_key() -> None:
    pruned = _without_key_c()
    readable, lost = [], []
    for key, value in captured.values(captured.LOCAL_PROVIDERS):
        (readable if pruned.judge(key, value).readable else lost).append((key, value))
    assert readable and lost
    store = MemoryEtcd()
    for key, value in readable:
        store.put(key, value)
    # a key-c value overwritten by a readable one, and one whose key was deleted
    (key_c, value_c), (_, value_other) = lost[0], readable[0]
    store.put(key_c, value_c)
    store.put(key_c, value_other)
    store.put(key_c + b"-deleted", value_c)
    store.delete(key_c + b"-deleted")

    assert prove_readable(store, after=pruned, include_history=False).passed
    result = prove_readable(store, after=pruned, before=_local_config(3))
    assert not result.passed
    assert sorted((b.etcd_key, b.historic, b.already) for b in result.examples) == [
        (key_c.decode(), True, False),
        (key_c.decode() + "-deleted", True, False),
    ]
    assert result.scanned == len(readable) + 1 and result.historic_scanned == 2


def test_a_proof_over_nothing_is_refused_and_failures_fail_closed() -> None:
    store = MemoryEtcd()
    with pytest.raises(SafetyError, match="nothing to prove"):
        prove_readable(store, after=_local_config(3))
    captured.load_into(store, captured.LOCAL_PROVIDERS)

    class HistoryLost(ForwardingEtcd):
        def get(self, key: bytes, *, revision: int | None = None) -> KeyValue | None:
            raise EtcdError("etcd went away", where="test")

    with pytest.raises(EtcdError, match="went away"):
        prove_readable(HistoryLost(store), after=_local_config(3))


def test_key_ids_are_counted_over_the_whole_prefix() -> None:
    store = MemoryEtcd()
    captured.load_into(store, captured.STAR_STAR)
    expected = captured.expected(captured.STAR_STAR)["counts"][0]
    counts = count_key_ids(store, "/registry", "real-kms")
    assert sum(counts.values()) == expected["count"]
    assert count_key_ids(store, "/registry", "no-such-provider") == {}
