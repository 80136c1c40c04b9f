"""The committed generated protobuf modules are exactly what scripts/gen-protos produces.

Also pins the wire facts other modules rely on (package names -> gRPC method paths,
upstream field numbers), so an edit to a .proto that drifts from upstream fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "secretkit" / "_proto"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _protos() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def test_there_are_protos() -> None:
    names = {p.relative_to(PROTO_ROOT).as_posix() for p in _protos()}
    assert {"etcd/rpc.proto", "etcd/kv.proto", "k8s/core_v1.proto"} <= names


def test_regenerated_files_are_byte_identical(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "gen-protos"), str(tmp_path)],
        cwd=REPO,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    mismatched: list[str] = []
    for proto in _protos():
        rel = proto.relative_to(REPO).with_suffix("")
        for suffix in GENERATED_SUFFIXES:
            name = rel.name + suffix
            committed = REPO / rel.parent / name
            fresh = tmp_path / rel.parent / name
            assert fresh.is_file(), f"gen-protos did not produce {rel.parent / name}"
            if not committed.is_file():
                mismatched.append(f"{rel.parent / name} (not committed)")
            elif committed.read_bytes() != fresh.read_bytes():
                mismatched.append(str(rel.parent / name))
    assert not mismatched, "stale generated files; run scripts/gen-protos: " + ", ".join(mismatched)


def test_etcd_method_paths_match_upstream() -> None:
    from secretkit._proto.etcd import rpc_pb2

    services = rpc_pb2.DESCRIPTOR.services_by_name
    assert services["KV"].full_name == "etcdserverpb.KV"
    assert set(services["KV"].methods_by_name) == {
        "Range",
        "Put",
        "DeleteRange",
        "Txn",
        "Compact",
    }
    assert services["Maintenance"].full_name == "etcdserverpb.Maintenance"
    watch = services["Watch"].methods_by_name["Watch"]
    assert watch.full_name == "etcdserverpb.Watch.Watch"
    assert watch.client_streaming and watch.server_streaming
    assert services["Auth"].methods_by_name["Authenticate"].full_name == (
        "etcdserverpb.Auth.Authenticate"
    )


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ("RangeRequest", {"key": 1, "range_end": 2, "limit": 3, "revision": 4, "keys_only": 8}),
        ("RangeResponse", {"header": 1, "kvs": 2, "more": 3, "count": 4}),
        ("Compare", {"result": 1, "target": 2, "key": 3, "mod_revision": 6, "range_end": 64}),
        ("TxnRequest", {"compare": 1, "success": 2, "failure": 3}),
        ("SnapshotResponse", {"header": 1, "remaining_bytes": 2, "blob": 3}),
        ("StatusResponse", {"version": 2, "dbSize": 3, "leader": 4, "dbSizeInUse": 9}),
        ("WatchRequest", {"create_request": 1, "cancel_request": 2, "progress_request": 3}),
        (
            "WatchCreateRequest",
            {
                "key": 1,
                "range_end": 2,
                "start_revision": 3,
                "progress_notify": 4,
                "filters": 5,
                "prev_kv": 6,
                "watch_id": 7,
                "fragment": 8,
            },
        ),
        (
            "WatchResponse",
            {
                "header": 1,
                "watch_id": 2,
                "created": 3,
                "canceled": 4,
                "compact_revision": 5,
                "cancel_reason": 6,
                "fragment": 7,
                "events": 11,
            },
        ),
    ],
)
def test_etcd_field_numbers(message: str, fields: dict[str, int]) -> None:
    from secretkit._proto.etcd import rpc_pb2

    desc = rpc_pb2.DESCRIPTOR.message_types_by_name[message]
    assert {name: desc.fields_by_name[name].number for name in fields} == fields


def test_k8s_field_numbers() -> None:
    from secretkit._proto.k8s import core_v1_pb2, meta_v1_pb2, runtime_pb2

    meta = meta_v1_pb2.ObjectMeta.DESCRIPTOR
    assert meta.full_name == "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    expected_meta = {
        "name": 1,
        "generateName": 2,
        "namespace": 3,
        "uid": 5,
        "resourceVersion": 6,
        "creationTimestamp": 8,
        "labels": 11,
        "annotations": 12,
        "finalizers": 14,
        "managedFields": 17,
    }
    assert {n: meta.fields_by_name[n].number for n in expected_meta} == expected_meta
    secret = core_v1_pb2.Secret.DESCRIPTOR
    assert secret.full_name == "k8s.io.api.core.v1.Secret"
    assert {f.name: f.number for f in secret.fields} == {
        "metadata": 1,
        "data": 2,
        "type": 3,
        "stringData": 4,
        "immutable": 5,
    }
    cm = core_v1_pb2.ConfigMap.DESCRIPTOR
    assert {f.name: f.number for f in cm.fields} == {
        "metadata": 1,
        "data": 2,
        "binaryData": 3,
        "immutable": 4,
    }
    unknown = runtime_pb2.Unknown.DESCRIPTOR
    assert unknown.full_name == "k8s.io.apimachinery.pkg.runtime.Unknown"
    assert {f.name: f.number for f in unknown.fields} == {
        "typeMeta": 1,
        "raw": 2,
        "contentEncoding": 3,
        "contentType": 4,
    }


def test_secret_wire_bytes_are_upstream_layout() -> None:
    """Hand-assembled bytes in the upstream layout decode into the expected Secret."""
    from secretkit._proto.k8s import core_v1_pb2

    name = b"\x0a\x02db"  # ObjectMeta.name (1) = "db"
    meta = b"\x0a" + bytes([len(name)]) + name  # Secret.metadata (1)
    entry = b"\x0a\x01k\x12\x02\x00\xff"  # map entry key "k" -> value b"\x00\xff"
    data = b"\x12" + bytes([len(entry)]) + entry  # Secret.data (2)
    typ = b"\x1a\x06Opaque"  # Secret.type (3)
    secret = core_v1_pb2.Secret.FromString(meta + data + typ)
    assert secret.metadata.name == "db"
    assert dict(secret.data) == {"k": b"\x00\xff"}
    assert secret.type == "Opaque"
