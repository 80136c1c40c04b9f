"""``--via etcd``, the stale scan and ``--verify`` over an in-memory etcd (no server).

The same engine against a real etcd (crash and resume included):
tests/integration/reencrypt/test_etcd_engine.py.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.transformers import TransformerSet, build_transformers
from secretkit.etcd import ForwardingEtcd, MemoryEtcd
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.etcd_engine import EtcdRunOptions, EtcdScope
from secretkit.reencrypt.runner import RunControl, run_etcd
from secretkit.reencrypt.stale_scan import scan_stale
from secretkit.reencrypt.summary import Summary
from secretkit.reencrypt.verify import verify_no_stale

KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()
AESCBC_KEY1 = f'aescbc: {{keys: [{{name: key1, secret: "{KEY1}"}}]}}'
AESGCM_KEY2 = f'aesgcm: {{keys: [{{name: key2, secret: "{KEY2}"}}]}}'
SECRETS = [ApiResource("", "secrets", "v1", "Secret", True)]
SCOPE = [EtcdScope("secrets", "/registry/secrets/")]


def config(*providers: str) -> bytes:
    head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
    rule = "resources:\n  - resources: [secrets]\n    providers:\n"
    return (head + rule + "".join(f"      - {p}\n" for p in providers)).encode()


OLD = config(AESCBC_KEY1, "identity: {}")
NEW = config(AESGCM_KEY2, AESCBC_KEY1, "identity: {}")


def chain(raw: bytes) -> TransformerSet:
    return build_transformers(load_encryption_config(raw), _no_kms)


def _no_kms(provider: Any) -> Any:
    raise AssertionError("no kms provider in these configs")


def key(i: int) -> str:
    return f"/registry/secrets/ns{i % 3}/s-{i:04d}"


def seed(store: MemoryEtcd, n: int) -> dict[str, bytes]:
    old, plain = chain(OLD), {}
    for i in range(n):
        plain[key(i)] = b"k8s\x00secret %d" % i
        store.put(key(i).encode(), old.for_etcd_key(key(i)).write(plain[key(i)], key(i)))
    return plain


def run(store: Any, *, dry_run: bool = False) -> Summary:
    return run_etcd(
        store,
        chain(NEW),
        SCOPE,
        options=EtcdRunOptions(page_size=20, concurrency=3, dry_run=dry_run, batch_size=8),
        control=RunControl(progress_stream=io.StringIO(), show_progress=False),
    )


def verify(store: MemoryEtcd) -> dict[str, Any]:
    return verify_no_stale(store, SECRETS, load_encryption_config(NEW))


def test_converts_every_stale_value_in_batches_then_is_idempotent() -> None:
    store = MemoryEtcd()
    plain = seed(store, 50)
    assert verify(store)["stale"] == 50
    assert run(store, dry_run=True).totals()["rewritten"] == 50
    assert verify(store)["stale"] == 50  # a dry run writes nothing
    before = store.current_revision()
    assert run(store).totals()["rewritten"] == 50
    # batched: far fewer revisions than keys (one per transaction)
    assert store.current_revision() - before <= 50 // 8 + 3
    new = chain(NEW)
    for k, want in plain.items():
        kv = store.get(k.encode())
        assert kv is not None and kv.value.startswith(b"k8s:enc:aesgcm:v1:key2:")
        assert new.for_etcd_key(k).read(kv.value, k).plaintext == want
    assert verify(store)["verdict"] == "ok"
    again = run(store).totals()
    assert (again["rewritten"], again["unchanged"]) == (0, 50)


def test_a_concurrent_writer_wins_key_by_key() -> None:
    store = MemoryEtcd()
    seed(store, 30)
    fresh_by_other = chain(NEW).for_etcd_key(key(4)).write(b"k8s\x00newer", key(4))

    class OtherWriter(ForwardingEtcd):
        """An apiserver writes key 4 and deletes key 5 right before their batch."""

        def compare_and_swap_many(self, items: Sequence[tuple[bytes, bytes, int]]) -> bool:
            keys = {k for k, _, _ in items}
            if key(4).encode() in keys:
                self.inner.put(key(4).encode(), fresh_by_other)
            if key(5).encode() in keys:
                self.inner.delete(key(5).encode())
            return super().compare_and_swap_many(items)

    totals = run(OtherWriter(store)).totals()
    assert totals["conflicts_retried"] == 2
    assert (totals["gone"], totals["unchanged"], totals["rewritten"]) == (1, 1, 28)
    kv = store.get(key(4).encode())
    assert kv is not None and kv.value == fresh_by_other  # never overwritten
    assert store.get(key(5).encode()) is None  # never re-created
    assert verify(store)["verdict"] == "ok"


def test_the_stale_scan_names_exactly_the_stale_objects() -> None:
    store = MemoryEtcd()
    seed(store, 6)
    new = chain(NEW)
    for i in (0, 3):  # rewritten by the new config already
        store.put(key(i).encode(), new.for_etcd_key(key(i)).write(b"k8s\x00x", key(i)))
    store.put(b"/registry/secrets/ns0", b"not an object key")
    scan = scan_stale(store, SECRETS, load_encryption_config(NEW))
    assert {name: [(r.namespace, r.name) for r in refs] for name, refs in scan.stale.items()} == {
        "secrets": sorted(
            [(f"ns{i % 3}", f"s-{i:04d}") for i in (1, 2, 4, 5)], key=lambda o: f"{o[0]}/{o[1]}"
        )
    }
    # each with the resourceVersion the API server reports for it: the key's mod_revision
    for ref in scan.stale["secrets"]:
        kv = store.get(f"/registry/secrets/{ref.namespace}/{ref.name}".encode())
        assert kv is not None and ref.resource_version == str(kv.mod_revision)
    # the fresh ones by list order, for the engine to count as it passes them
    assert scan.fresh == {"secrets": ["ns0/s-0000", "ns0/s-0003"]}
    # not an object the API could address: reported, not sent and not counted fresh
    assert scan.unparsed == ["/registry/secrets/ns0"]
