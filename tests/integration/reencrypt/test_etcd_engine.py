"""``--via etcd`` engine against a real etcd: conversion, idempotence, CAS conflicts,
deletions and resume after a crash."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import classify_value, match_key_name
from secretkit.core.formats.model import ValueProvider
from secretkit.core.formats.prefixes import AESGCM_PREFIX
from secretkit.core.transformers import TransformerSet, build_transformers
from secretkit.errors import EtcdError
from secretkit.etcd import EtcdClient, ForwardingEtcd
from secretkit.reencrypt.checkpoint import CheckpointFile
from secretkit.reencrypt.etcd_engine import EtcdRunOptions, EtcdScope
from secretkit.reencrypt.runner import RunControl, run_etcd

pytestmark = pytest.mark.etcd

KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()

OLD = f"""
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc: {{keys: [{{name: key1, secret: "{KEY1}"}}]}}
      - identity: {{}}
"""
NEW = f"""
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm: {{keys: [{{name: key2, secret: "{KEY2}"}}]}}
      - aescbc: {{keys: [{{name: key1, secret: "{KEY1}"}}]}}
      - identity: {{}}
"""
SCOPE = [EtcdScope("secrets", "/registry/secrets/")]


def chain(text: str) -> TransformerSet:
    return build_transformers(load_encryption_config(text.encode()), _no_kms)


def _no_kms(provider: Any) -> Any:
    raise AssertionError("no kms provider in these configs")


def key(i: int) -> str:
    return f"/registry/secrets/ns{i % 3}/s-{i:04d}"


def seed(client: EtcdClient, n: int) -> dict[str, bytes]:
    old = chain(OLD)
    plain = {}
    for i in range(n):
        k = key(i)
        plain[k] = b"k8s\x00" + f"secret number {i}".encode()
        client.put(k.encode(), old.for_etcd_key(k).write(plain[k], k))
    return plain


def assert_all_aesgcm_key2(client: EtcdClient, plain: dict[str, bytes]) -> None:
    new = chain(NEW)
    seen = 0
    for page in client.range_pages(b"/registry/secrets/"):
        for kv in page:
            k = kv.key.decode()
            stored = classify_value(kv.value)
            assert stored.provider == ValueProvider.AESGCM
            assert match_key_name(kv.value[len(AESGCM_PREFIX) :], ["key2"]) == "key2"
            assert new.for_etcd_key(k).read(kv.value, k).plaintext == plain[k]
            seen += 1
    assert seen == len(plain)


def run(client: Any, *, resume: Path | None = None, dry_run: bool = False) -> Any:
    return run_etcd(
        client,
        chain(NEW),
        SCOPE,
        options=EtcdRunOptions(page_size=50, concurrency=4, dry_run=dry_run),
        control=RunControl(resume=resume, show_progress=False),
    )


def test_converts_every_value_then_is_idempotent(etcd_client: EtcdClient) -> None:
    plain = seed(etcd_client, 230)
    dry = run(etcd_client, dry_run=True)
    assert dry.totals()["rewritten"] == 230
    assert classify_value(etcd_client.get(key(0).encode()).value).provider == "aescbc"  # type: ignore[union-attr]

    first = run(etcd_client)
    assert first.complete
    assert first.totals()["rewritten"] == 230
    assert first.totals()["failed"] == 0
    assert_all_aesgcm_key2(etcd_client, plain)

    second = run(etcd_client)
    assert second.totals()["rewritten"] == 0
    assert second.totals()["unchanged"] == 230


class InterleavedWriter(ForwardingEtcd):
    """Real etcd, with another writer acting right before the swap of chosen keys.

    The action runs before the first swap that holds the key, a batch (which then
    loses: the engine falls back to single swaps) or a single one. ``swaps`` counts
    the keys offered to etcd for writing.
    """

    def __init__(self, client: EtcdClient, before_swap: dict[bytes, Callable[[], Any]]) -> None:
        super().__init__(client)
        self.before_swap = before_swap
        self.swaps = 0

    def before(self, keys: Sequence[bytes]) -> None:
        for k in keys:
            action = self.before_swap.pop(k, None)
            if action is not None:
                action()

    def compare_and_swap(self, k: bytes, value: bytes, *, mod_revision: int) -> bool:
        self.before([k])
        self.swaps += 1
        return super().compare_and_swap(k, value, mod_revision=mod_revision)

    def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
        self.before([k for k, _, _ in items])
        self.swaps += len(items)
        return super().compare_and_swap_many(items)


def test_concurrent_writer_wins_and_deleted_keys_are_gone(etcd_client: EtcdClient) -> None:
    plain = seed(etcd_client, 40)
    new, old = chain(NEW), chain(OLD)
    k_fresh, k_stale, k_gone = key(5), key(6), key(7)
    newer_fresh = b"k8s\x00newer data from the apiserver"
    newer_stale = b"k8s\x00newer data from an old apiserver"

    store = InterleavedWriter(
        etcd_client,
        {
            # another writer stores newer data with the new config: it must survive as is
            k_fresh.encode(): lambda: etcd_client.put(
                k_fresh.encode(), new.for_etcd_key(k_fresh).write(newer_fresh, k_fresh)
            ),
            # another writer stores newer data with the OLD config: re-read and convert it
            k_stale.encode(): lambda: etcd_client.put(
                k_stale.encode(), old.for_etcd_key(k_stale).write(newer_stale, k_stale)
            ),
            k_gone.encode(): lambda: etcd_client.delete(k_gone.encode()),
        },
    )
    summary = run(store)
    t = summary.totals()
    assert t["conflicts_retried"] == 3
    assert t["gone"] == 1
    assert t["rewritten"] == 39 - 1  # k_fresh was already fresh when re-read
    assert t["unchanged"] == 1
    assert etcd_client.get(k_gone.encode()) is None
    for k, want in ((k_fresh, newer_fresh), (k_stale, newer_stale)):
        kv = etcd_client.get(k.encode())
        assert kv is not None
        assert classify_value(kv.value).provider == ValueProvider.AESGCM
        assert new.for_etcd_key(k).read(kv.value, k).plaintext == want
    del plain[k_gone]
    plain[k_fresh], plain[k_stale] = newer_fresh, newer_stale
    assert_all_aesgcm_key2(etcd_client, plain)


class CrashAfter(InterleavedWriter):
    """etcd is lost once ``limit`` keys were offered for writing."""

    def __init__(self, client: EtcdClient, limit: int) -> None:
        super().__init__(client, {})
        self.limit = limit

    def before(self, keys: Sequence[bytes]) -> None:
        if self.swaps >= self.limit:
            raise EtcdError("simulated loss of etcd", where="test")


def test_resume_continues_after_a_crash(etcd_client: EtcdClient, tmp_path: Path) -> None:
    plain = seed(etcd_client, 300)
    ck = tmp_path / "ck.json"
    with pytest.raises(EtcdError):
        run(CrashAfter(etcd_client, 120), resume=ck)
    saved = CheckpointFile(ck).load()
    assert saved is not None
    last = saved.resources["secrets"].last_key
    assert last is not None and saved.resources["secrets"].state == "running"

    store = InterleavedWriter(etcd_client, {})
    summary = run(store, resume=ck)
    assert summary.complete
    # pages finished before the crash are not read again
    assert store.swaps <= 300 - 100
    t = summary.totals()
    # values swapped on the crashed page are fresh now: unchanged, not rewritten twice
    assert t["rewritten"] + t["unchanged"] == 300
    assert t["rewritten"] >= 200
    assert t["failed"] == 0
    assert_all_aesgcm_key2(etcd_client, plain)
    assert CheckpointFile(ck).load().resources["secrets"].state == "done"  # type: ignore[union-attr]


class BatchingInterleavedWriter(InterleavedWriter):
    """Like InterleavedWriter, but batches go through the real transaction path."""

    def __init__(self, client: EtcdClient, k: bytes, before_batch: Any) -> None:
        super().__init__(client, {})
        self.k = k
        self.before_batch = before_batch
        self.batches: list[tuple[bool, bool]] = []  # (held k, succeeded)

    def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
        holds = any(item[0] == self.k for item in items)
        if holds:
            self.before_batch()
        ok = super().compare_and_swap_many(items)
        self.batches.append((holds, ok))
        return ok


def test_a_lost_batch_falls_back_to_single_swaps(etcd_client: EtcdClient) -> None:
    plain = seed(etcd_client, 120)
    new = chain(NEW)
    k = key(0)
    newer = b"k8s\x00written during the batch"
    store = BatchingInterleavedWriter(
        etcd_client,
        k.encode(),
        lambda: etcd_client.put(k.encode(), new.for_etcd_key(k).write(newer, k)),
    )
    summary = run(store)
    t = summary.totals()
    # exactly the batch holding k lost; every other batch committed in one transaction
    assert sorted(store.batches) == [(False, True)] * (len(store.batches) - 1) + [(True, False)]
    assert len(store.batches) > 4
    assert t["conflicts_retried"] == 1
    assert t["unchanged"] == 1  # the concurrent value was already fresh: kept as is
    assert t["rewritten"] == 119
    plain[k] = newer
    assert_all_aesgcm_key2(etcd_client, plain)


def test_batches_are_bounded_by_max_txn_ops(etcd_client: EtcdClient) -> None:
    with pytest.raises(ValueError, match="at most 128"):
        etcd_client.compare_and_swap_many([(b"k%d" % i, b"v", 1) for i in range(129)])
    assert etcd_client.get(b"k0") is None


def test_keys_that_are_not_utf8_are_rewritten_and_resumed(
    etcd_client: EtcdClient, tmp_path: Path
) -> None:
    # the AAD is the stored key's bytes; the checkpoint keeps the key surrogate-escaped
    old, new = chain(OLD), chain(NEW)
    plain = {}
    for i in range(120):
        raw = b"/registry/secrets/ns/s\xe9-%04d" % i
        k = raw.decode("utf-8", "surrogateescape")
        plain[raw] = b"k8s\x00" + f"secret number {i}".encode()
        etcd_client.put(raw, old.for_etcd_key(k).write(plain[raw], k))
    ck = tmp_path / "ck.json"
    with pytest.raises(EtcdError):
        run(CrashAfter(etcd_client, 60), resume=ck)
    summary = run(InterleavedWriter(etcd_client, {}), resume=ck)
    assert summary.complete and summary.totals()["failed"] == 0
    for raw, want in plain.items():
        kv = etcd_client.get(raw)
        assert kv is not None
        k = raw.decode("utf-8", "surrogateescape")
        assert match_key_name(kv.value[len(AESGCM_PREFIX) :], ["key2"]) == "key2"
        assert new.for_etcd_key(k).read(kv.value, k).plaintext == want
