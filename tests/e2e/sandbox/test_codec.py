"""Pure parts of the API stand-in (no servers): object codec, tokens, selectors, patches.

The codec is checked against the generated ``k8s.io/api`` protobuf classes, an
independent implementation of the same wire format.
"""

from __future__ import annotations

import base64
import json

import pytest

from secretkit._proto.k8s import core_v1_pb2
from secretkit.sandbox.apiserver import codec
from secretkit.sandbox.apiserver.kinds import CONFIGMAPS, SECRETS
from secretkit.sandbox.apiserver.pagination import decode_continue, encode_continue
from secretkit.sandbox.apiserver.patch import json_patch, merge_patch
from secretkit.sandbox.apiserver.resources import prepare_object
from secretkit.sandbox.apiserver.selectors import field_selector, label_selector
from secretkit.sandbox.apiserver.status import ApiError

SECRET = {
    "kind": "Secret", "apiVersion": "v1",
    "metadata": {"name": "db", "namespace": "prod", "uid": "u-1",
                 "creationTimestamp": "2024-05-06T07:08:09Z",
                 "labels": {"b": "2", "a": "1"}, "annotations": {"note": "x"},
                 "finalizers": ["keep"],
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p",
                                      "uid": "u-2", "controller": True}]},
    "data": {"z": base64.b64encode(b"\x00\xff").decode(), "a": ""},
    "type": "Opaque",
    "immutable": True,
}


def test_secret_encoding_parses_with_generated_classes() -> None:
    raw = codec.encode_object(SECRETS, SECRET)
    msg = core_v1_pb2.Secret()
    msg.ParseFromString(raw)
    assert msg.metadata.name == "db" and msg.metadata.namespace == "prod"
    assert msg.metadata.creationTimestamp.seconds == 1714979289
    assert dict(msg.metadata.labels) == {"a": "1", "b": "2"}
    assert list(msg.metadata.finalizers) == ["keep"]
    assert msg.metadata.ownerReferences[0].kind == "Pod"
    assert msg.metadata.ownerReferences[0].controller is True
    assert dict(msg.data) == {"z": b"\x00\xff", "a": b""}
    assert msg.immutable is True
    # gogo writes non-pointer fields even when empty: resourceVersion (6) is present
    assert msg.metadata.HasField("resourceVersion") and msg.metadata.resourceVersion == ""


def test_secret_round_trip_and_generated_encoding_decodes() -> None:
    assert codec.decode_object(SECRETS, codec.encode_object(SECRETS, SECRET)) == SECRET
    msg = core_v1_pb2.Secret()
    msg.metadata.name = "x"
    msg.metadata.namespace = "ns"
    msg.data["k"] = b"v"
    msg.stringData["s"] = "t"
    msg.type = "kubernetes.io/tls"
    obj = codec.decode_object(SECRETS, msg.SerializeToString())
    assert obj["data"] == {"k": "dg=="}
    assert obj["stringData"] == {"s": "t"}
    assert obj["type"] == "kubernetes.io/tls"
    assert "creationTimestamp" not in obj["metadata"]


def test_configmap_codec() -> None:
    cm = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "namespace": "n"},
          "data": {"k": "välue"}, "binaryData": {"b": base64.b64encode(b"\x01").decode()}}
    msg = core_v1_pb2.ConfigMap()
    msg.ParseFromString(codec.encode_object(CONFIGMAPS, cm))
    assert dict(msg.data) == {"k": "välue"} and dict(msg.binaryData) == {"b": b"\x01"}
    assert not msg.HasField("immutable")
    assert codec.decode_object(CONFIGMAPS, msg.SerializeToString()) == cm


def test_prepare_object_merges_string_data_and_validates() -> None:
    obj = prepare_object(SECRETS, "ns", {"metadata": {"name": "s", "resourceVersion": "9"},
                                         "stringData": {"a": "b"}})
    assert obj["data"] == {"a": "Yg=="} and obj["type"] == "Opaque"
    assert "stringData" not in obj and "resourceVersion" not in obj["metadata"]
    with pytest.raises(ApiError) as err:
        prepare_object(SECRETS, "ns", {"metadata": {"name": "Bad_Name"}})
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        prepare_object(SECRETS, "ns", {"metadata": {"name": "s"}, "data": {"a": "%%"}})
    assert err.value.code == 400
    with pytest.raises(ApiError):
        prepare_object(SECRETS, "ns", {"metadata": {"name": "s", "namespace": "other"}})


def test_continue_token_format() -> None:
    token = encode_continue(42, "ns/name")
    doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert doc == {"v": "meta.k8s.io/v1", "rv": 42, "start": "ns/name\x00"}
    decoded = decode_continue(token)
    assert (decoded.revision, decoded.start) == (42, "ns/name\x00")
    for bad in ("%%%", base64.urlsafe_b64encode(b'{"v":"x","rv":1,"start":""}').decode(),
                base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":1,"start":"/a"}').decode()):
        with pytest.raises(ApiError) as err:
            decode_continue(bad)
        assert err.value.code == 400


def test_selectors() -> None:
    obj = {"metadata": {"name": "n", "namespace": "ns", "labels": {"app": "db", "tier": "1"}}}
    for text, expected in [("app=db", True), ("app!=db", False), ("app", True), ("!app", False),
                           ("app in (web,db)", True), ("app notin (db)", False),
                           ("app=db,tier=2", False), ("missing!=x", True)]:
        predicate = label_selector(text)
        assert predicate is not None and predicate(obj) is expected, text
    predicate = field_selector("metadata.name=n,metadata.namespace!=other")
    assert predicate is not None and predicate(obj)
    with pytest.raises(ApiError):
        field_selector("spec.nodeName=x")


def test_patches() -> None:
    doc = {"data": {"a": "1", "b": "2"}, "metadata": {"name": "x"}}
    assert merge_patch(doc, {"data": {"a": None, "c": "3"}}) == {
        "data": {"b": "2", "c": "3"}, "metadata": {"name": "x"}}
    assert merge_patch(doc, {"$setElementOrder/x": [], "data": {"a": "9"}}, strategic=True)[
        "data"] == {"a": "9", "b": "2"}
    assert json_patch(doc, [{"op": "replace", "path": "/data/a", "value": "7"},
                            {"op": "remove", "path": "/data/b"}])["data"] == {"a": "7"}
    with pytest.raises(ApiError):
        json_patch(doc, [{"op": "test", "path": "/data/a", "value": "nope"}])
