"""Every kind the stand-in stores lives where kube-apiserver v1.36.2 keeps it
(tests/data/real-apiserver/etcd-layout.json), through the one layout table."""

from __future__ import annotations

import json
from typing import Any

from secretkit.sandbox.apiserver.kinds import STORED
from secretkit.sandbox.apiserver.store import ObjectStore
from tests.unit.sandbox.captured import data_root


def test_stored_kinds_use_the_captured_etcd_prefixes() -> None:
    layout = json.loads((data_root() / "etcd-layout.json").read_text())
    real: dict[tuple[str, str, str], dict[str, Any]] = {
        (r["group"], r["version"], r["resource"]): r for r in layout["resources"]}
    # only the key arithmetic: no etcd, no encryption
    store = ObjectStore(_NoEtcd(), None, "/registry")  # type: ignore[arg-type]
    for (group, version, plural), rtype in STORED.items():
        entry = real[(group, version, plural)]
        assert entry["stored"] and entry["kind"] == rtype.kind
        assert entry["namespaced"] == rtype.namespaced
        assert store.resource_prefix(rtype) == entry["etcd_prefix"]
        if rtype.protobuf:  # typed kinds are stored exactly as the real ones
            assert entry["storage"] == [{"encoding": "protobuf",
                                         "apiVersion": rtype.api_version, "kind": rtype.kind}]
        namespace = "ns" if rtype.namespaced else None
        assert store.key(rtype, namespace, "n") == entry["key_format"].replace(
            "<namespace>", "ns").replace("<name>", "n")


def test_every_stored_resource_of_the_capture_is_served() -> None:
    layout = json.loads((data_root() / "etcd-layout.json").read_text())
    stored = {(r["group"], r["version"], r["resource"]) for r in layout["resources"]
              if r["stored"] and r["group"] != "capture.example.com"}  # the captured CRDs
    # namespaces are derived from stored objects, not stored (docs/sandbox.md)
    assert stored - set(STORED) == {("", "v1", "namespaces")}
    assert set(STORED) <= stored


class _NoEtcd:
    def get(self, *_args: object, **_kwargs: object) -> None:
        raise AssertionError("no etcd access expected")

    def get_many(self, *_args: object, **_kwargs: object) -> None:
        raise AssertionError("no etcd access expected")

    def put_if(self, *_args: object, **_kwargs: object) -> None:
        raise AssertionError("no etcd access expected")


def test_storage_version_hashes_follow_the_captured_storage_versions() -> None:
    """Discovery's storageVersionHash is of the version objects are stored as: for
    events.k8s.io events a core v1 Event, for autoscaling/v1 an autoscaling/v2 HPA,
    for CRDs and MutatingAdmissionPolicies a v1beta1 (etcd-layout.json ``storage``)."""
    import base64
    import hashlib

    layout = json.loads((data_root() / "etcd-layout.json").read_text())
    real = {(r["group"], r["version"], r["resource"]): r for r in layout["resources"]}
    moved = 0
    for key, rtype in STORED.items():
        storage = real[key]["storage"][0]
        group, _, version = storage["apiVersion"].rpartition("/")
        digest = hashlib.sha256(f"{group}/{version}/{storage['kind']}".encode()).digest()
        assert rtype.storage_version_hash == base64.b64encode(digest[:8]).decode(), key
        moved += (group, version) != (rtype.group, rtype.version)
    assert moved == 5
