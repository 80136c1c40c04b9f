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

#: Secrets under kms-a, ConfigMaps under kms-c
TWO_KMS_RULES = b"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers: [{kms: {apiVersion: v2, name: kms-a, endpoint: "unix:///a.sock"}}]
- resources: [configmaps]
  providers: [{kms: {apiVersion: v2, name: kms-c, endpoint: "unix:///c.sock"}}]
"""


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
    # the capture's own custom resources: judged, and said to be of unknown resources
    custom = [k for k, _ in captured.values(captured.STAR_STAR)
              if k.startswith(b"/registry/capture.example.com/")]
    assert result.unknown_owner == len(custom) == 2
    assert "2 belong to resources the layout table does not know" in result.summary("x")


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


def test_retiring_a_shared_backend_key_judges_every_provider_that_uses_it() -> None:
    """kms-a and kms-c name one backend key. Retiring kms-a's old versions must be
    refused while kms-c's values still carry one of them."""
    import contextlib
    from types import SimpleNamespace
    from typing import Any

    from secretkit.core.formats.kmsv2 import encode_encrypted_object
    from secretkit.core.formats.model import DEKSourceType, EncryptedObject
    from secretkit.core.formats.prefixes import prefix_for
    from secretkit.rotation.kms import KMSRotation

    def value(name: str, key_id: str) -> bytes:
        obj = EncryptedObject(encrypted_data=b"\x01" * 40, key_id=key_id,
                              encrypted_dek_source=b"\x02" * 32,
                              encrypted_dek_source_type=DEKSourceType.HKDF_SHA256_XNONCE_AES_GCM_SEED)
        return prefix_for("kms-v2", name) + encode_encrypted_object(obj)

    config = load_encryption_config(TWO_KMS_RULES)
    etcd = MemoryEtcd()
    etcd.put(b"/registry/secrets/ns/s", value("kms-a", "shared:v2"))
    etcd.put(b"/registry/configmaps/ns/c", value("kms-c", "shared:v1"))  # not re-encrypted
    retired: list[str] = []

    class Backend:
        kind = "vault"
        can_retire = True

        def status(self) -> Any:
            return SimpleNamespace(key_id="shared:v2")

        def owns_key_id(self, key_id: str) -> bool:
            return key_id.startswith("shared:")

        def retire_old_versions(self, keep: str) -> int:
            retired.append(keep)
            return 2

    rotation = KMSRotation(
        provider="kms-a", config=config, backend=Backend(),  # type: ignore[arg-type]
        plugin=Backend(),  # type: ignore[arg-type]
        open_etcd=lambda: contextlib.nullcontext(etcd), reencrypt=lambda _n: 0,
        include_history=False, echo=lambda _m: None,
    )
    with pytest.raises(SafetyError, match="configmaps/ns/c"):
        rotation.retire_only()
    assert retired == []
    # once kms-c's value is under v2 too, the retirement goes ahead, keeping v2
    etcd.put(b"/registry/configmaps/ns/c", value("kms-c", "shared:v2"))
    rotation.retire_only()
    assert retired == ["shared:v2"]


def test_kms_rotate_over_an_empty_prefix_is_not_proven() -> None:
    """A wrong --etcd-prefix (or etcd) leaves the proof nothing to read: refused, where it
    said "nothing to prove" and exited 0 when the re-encryption rewrote nothing."""
    import contextlib
    from types import SimpleNamespace
    from typing import Any

    from secretkit.rotation.kms import KMSRotation

    config = load_encryption_config(TWO_KMS_RULES)
    versions = ["k:v1"]

    class Backend:
        kind = "vault"

        def status(self) -> Any:
            return SimpleNamespace(key_id=versions[-1], healthy=True, healthz="ok")

        def rotate(self) -> str:
            versions.append(f"k:v{len(versions) + 1}")
            return versions[-1]

    etcd = MemoryEtcd()

    def rotation() -> KMSRotation:
        return KMSRotation(
            provider="kms-a", config=config, backend=Backend(),  # type: ignore[arg-type]
            plugin=Backend(),  # type: ignore[arg-type]
            open_etcd=lambda: contextlib.nullcontext(etcd), reencrypt=lambda _n: 0,
            include_history=False, echo=lambda _m: None, plugin_timeout=1, refresh_wait=0)

    with pytest.raises(SafetyError, match="no value at all under /registry/"):
        rotation().run()
    # a cluster with objects, none of them this provider's: honest "nothing to prove"
    etcd.put(b"/registry/configmaps/ns/c", b"k8s\x00plain")
    assert rotation().run().remaining_old == 0
