"""Updates that start from the value the stand-in last saw (upstream's
``cachedExistingObject``) against a real etcd, with writers behind its back: the guess
saves a read when it is right, and is never what decides when it is wrong."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from secretkit.etcd import EtcdClient
from secretkit.sandbox import configs
from secretkit.sandbox.apiserver import codec
from secretkit.sandbox.apiserver.encryption import EncryptionState
from secretkit.sandbox.apiserver.kinds import SECRETS
from secretkit.sandbox.apiserver.seen import SeenValues
from secretkit.sandbox.apiserver.status import ApiError
from secretkit.sandbox.apiserver.store import ObjectStore

pytestmark = pytest.mark.etcd


class _CountingEtcd:
    """The real client, counting single-key reads (what a right guess saves)."""

    def __init__(self, inner: EtcdClient) -> None:
        self._inner = inner
        self.gets = 0

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.gets += 1
        return self._inner.get(*args, **kwargs)

    def get_many(self, keys: Any) -> Any:
        self.gets += len(keys)
        return self._inner.get_many(keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _state(tmp_path: Path, mode: str) -> EncryptionState:
    config = tmp_path / f"{mode}.yaml"
    if mode == "identity":
        config.write_bytes(configs.encryption_config("none"))
    else:  # the sandbox's configs keep identity last: plaintext stays readable
        config.write_bytes(configs.encryption_config(mode, key=b"k" * 32))
    return EncryptionState(config)


def _secret(name: str, value: str = "djE=") -> dict[str, Any]:
    return {"kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "ns"}, "data": {"k": value},
            "type": "Opaque"}


def _behind_the_back(etcd: EtcdClient, store: ObjectStore, name: str, obj: dict[str, Any]
                     ) -> int:
    """Another apiserver's write: the same encoding, not seen by ``store``."""
    key = store.key(SECRETS, "ns", name)
    plaintext = codec.encode_stored(SECRETS, obj)
    value = store._encryption.transformer("secrets", "").write(plaintext, key)
    return etcd.put(key.encode(), value)


@pytest.fixture
def counted(etcd_client: EtcdClient) -> _CountingEtcd:
    return _CountingEtcd(etcd_client)


def test_a_stale_object_just_listed_is_rewritten_without_a_read(
        counted: _CountingEtcd, tmp_path: Path) -> None:
    store = ObjectStore(counted, _state(tmp_path, "identity"))  # type: ignore[arg-type]
    store.create(SECRETS, _secret("a"))
    # a new write provider, identity still readable: "a" is stale
    store._encryption = _state(tmp_path, "aesgcm")
    assert [s.stale for s in store.list(SECRETS, "ns").items] == [True]
    before = counted.gets
    written = store.update(SECRETS, "ns", "a", None)
    assert counted.gets == before  # the listed value was the current one
    assert not store.get(SECRETS, "ns", "a").stale and written.revision > 0


def test_a_write_behind_the_back_is_never_lost(etcd_client: EtcdClient, tmp_path: Path
                                               ) -> None:
    store = ObjectStore(etcd_client, _state(tmp_path, "aesgcm"))
    store.create(SECRETS, _secret("b"))
    store.list(SECRETS, "ns")  # the store now holds b's first value
    _behind_the_back(etcd_client, store, "b", {**_secret("b", "djI="),
                                               "metadata": {"name": "b", "namespace": "ns",
                                                            "labels": {"x": "y"}}})

    def add_label(obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)  # an update builds a new object (the patch path does)
        obj["metadata"].setdefault("labels", {})["ours"] = "1"
        return obj

    store.update(SECRETS, "ns", "b", add_label)
    now = store.get(SECRETS, "ns", "b").object()
    # both writes are in: the guess lost its compare-and-swap and was read again
    assert now["data"] == {"k": "djI="} and now["metadata"]["labels"] == {"x": "y", "ours": "1"}


def test_a_no_op_is_never_answered_from_the_guess(etcd_client: EtcdClient, tmp_path: Path
                                                  ) -> None:
    store = ObjectStore(etcd_client, _state(tmp_path, "aesgcm"))
    store.create(SECRETS, _secret("c"))
    store.list(SECRETS, "ns")
    rev = _behind_the_back(etcd_client, store, "c", _secret("c", "djM="))
    answer = store.update(SECRETS, "ns", "c", None)  # an empty patch
    assert answer.revision == rev and answer.object()["data"] == {"k": "djM="}


def test_a_refusal_of_the_guess_is_decided_on_the_current_object(
        etcd_client: EtcdClient, tmp_path: Path) -> None:
    store = ObjectStore(etcd_client, _state(tmp_path, "aesgcm"))
    store.create(SECRETS, {**_secret("d"), "immutable": True})
    store.list(SECRETS, "ns")
    # someone made it mutable again (a delete and re-create, here as one write)
    _behind_the_back(etcd_client, store, "d", _secret("d"))

    def change_data(obj: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(obj), "data": {"k": "bmV3"}}

    store.update(SECRETS, "ns", "d", change_data)  # refused on the guess, fine on etcd's
    assert store.get(SECRETS, "ns", "d").object()["data"] == {"k": "bmV3"}
    store.update(SECRETS, "ns", "d", lambda o: {**o, "immutable": True})

    def change_again(obj: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(obj), "data": {"k": "YWdhaW4="}}

    with pytest.raises(ApiError) as refused:  # immutable now, in etcd too
        store.update(SECRETS, "ns", "d", change_again)
    assert refused.value.code == 422


def test_a_precondition_is_checked_against_etcd(etcd_client: EtcdClient, tmp_path: Path
                                                ) -> None:
    store = ObjectStore(etcd_client, _state(tmp_path, "aesgcm"))
    store.create(SECRETS, _secret("e"))
    store.list(SECRETS, "ns")
    rev = _behind_the_back(etcd_client, store, "e", _secret("e", "djQ="))
    def label(obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["metadata"]["labels"] = {"n": str(int((obj["metadata"].get("labels") or {})
                                                  .get("n", "0")) + 1)}
        return obj

    # the client read the newer object elsewhere: its resourceVersion is right
    store.update(SECRETS, "ns", "e", label, precondition=str(rev))
    with pytest.raises(ApiError) as stale:  # and now it is not
        store.update(SECRETS, "ns", "e", label, precondition=str(rev))
    assert stale.value.code == 409


def test_a_deleted_key_is_not_found_whatever_was_seen(etcd_client: EtcdClient,
                                                      tmp_path: Path) -> None:
    store = ObjectStore(etcd_client, _state(tmp_path, "aesgcm"))
    store.create(SECRETS, _secret("f"))
    store.list(SECRETS, "ns")
    etcd_client.delete(store.key(SECRETS, "ns", "f").encode())
    for mutate in (None, lambda o: o):
        with pytest.raises(ApiError) as gone:
            store.update(SECRETS, "ns", "f", mutate)
        assert gone.value.code == 404


def test_the_table_is_bounded_and_keeps_the_newest_revision() -> None:
    from secretkit.etcd.model import KeyValueRecord

    seen = SeenValues(max_bytes=100)
    seen.note(KeyValueRecord(b"k1", b"x" * 40, 1, 5, 1))
    seen.note(KeyValueRecord(b"k1", b"y" * 40, 1, 4, 1))  # older: ignored
    assert seen.get(b"k1").value == b"x" * 40  # type: ignore[union-attr]
    seen.note(KeyValueRecord(b"k2", b"z" * 40, 1, 6, 1))
    seen.note(KeyValueRecord(b"k3", b"w" * 40, 1, 7, 1))  # over 100 bytes: k1 goes
    assert seen.get(b"k1") is None and len(seen) == 2
    seen.note(KeyValueRecord(b"big", b"b" * 200, 1, 8, 1))  # larger than the table
    assert seen.get(b"big") is None
    seen.forget(b"k2")
    assert seen.get(b"k2") is None and len(seen) == 1


def test_a_guess_that_no_longer_decrypts_is_read_again(etcd_client: EtcdClient,
                                                       tmp_path: Path) -> None:
    """The value last seen was written with a key the config has dropped since, while
    another writer moved the object on to the current key: the update must work on
    what etcd holds (it was a 500: the guess could not be decrypted)."""
    k1, k2 = base64.b64encode(b"1" * 32).decode(), base64.b64encode(b"2" * 32).decode()

    def state(*keys: tuple[str, str]) -> EncryptionState:
        path = tmp_path / f"{len(keys)}-{keys[0][0]}.yaml"
        entries = ", ".join(f"{{name: {n}, secret: {s}}}" for n, s in keys)
        path.write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                        "resources:\n  - resources: [secrets]\n    providers:\n"
                        f"      - aesgcm: {{keys: [{entries}]}}\n")
        return EncryptionState(path)

    store = ObjectStore(etcd_client, state(("k1", k1)))
    store.create(SECRETS, _secret("g"))
    other = ObjectStore(etcd_client, state(("k2", k2), ("k1", k1)))
    other.update(SECRETS, "ns", "g", lambda o: {**copy.deepcopy(o), "data": {"k": "djU="}})
    store._encryption = state(("k2", k2))  # key1 removed, the config reloaded in place
    answer = store.update(SECRETS, "ns", "g", None)  # an empty patch
    assert answer.object()["data"] == {"k": "djU="}
