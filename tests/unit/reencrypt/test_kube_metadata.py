"""Metadata-only list and object answers, read from protobuf built by the generated
``k8s.io/apimachinery`` classes (an independent encoder) and from JSON."""

from __future__ import annotations

import json

import pytest

from secretkit._proto.k8s import meta_v1_pb2
from secretkit.core.formats import encode_unknown
from secretkit.core.formats.protowire import encode_len_field
from secretkit.errors import KubeError
from secretkit.kube.metadata import ObjectRef, parse_list, parse_object

PROTOBUF = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def _meta(name: str, namespace: str, rv: str) -> bytes:
    meta = meta_v1_pb2.ObjectMeta(name=name, namespace=namespace, resourceVersion=rv,
                                  uid="u", labels={"a": "b"})
    return meta.SerializeToString()


def test_protobuf_partial_object_metadata_list() -> None:
    list_meta = meta_v1_pb2.ListMeta(resourceVersion="77", remainingItemCount=5)
    setattr(list_meta, "continue", "tok")  # a Python keyword as a field name
    raw = encode_len_field(1, list_meta.SerializeToString()) + b"".join(
        encode_len_field(2, encode_len_field(1, _meta(n, "ns", rv)))
        for n, rv in (("a", "10"), ("b", "11")))
    page = parse_list(encode_unknown("meta.k8s.io/v1", "PartialObjectMetadataList", raw),
                      PROTOBUF)
    assert page.items == [ObjectRef("ns", "a", "10"), ObjectRef("ns", "b", "11")]
    assert page.continue_token == "tok" and page.remaining == 5


def test_protobuf_object_and_cluster_scoped_names() -> None:
    raw = encode_len_field(1, _meta("node-1", "", "5"))
    body = encode_unknown("meta.k8s.io/v1", "PartialObjectMetadata", raw)
    assert parse_object(body, "application/vnd.kubernetes.protobuf") == ObjectRef(
        None, "node-1", "5")


def test_json_lists_metadata_only_or_full() -> None:
    doc = {"kind": "PartialObjectMetadataList", "metadata": {"continue": "t"},
           "items": [{"metadata": {"name": "a", "namespace": "n", "resourceVersion": "3"}}]}
    page = parse_list(json.dumps(doc).encode(), "application/json")
    assert page.items == [ObjectRef("n", "a", "3")] and page.continue_token == "t"
    full = {"kind": "SecretList", "metadata": {}, "items": [
        {"metadata": {"name": "a", "resourceVersion": "4"}, "data": {"k": "dg=="}}]}
    assert parse_list(json.dumps(full).encode(), "application/json").items == [
        ObjectRef(None, "a", "4")]


@pytest.mark.parametrize("body,ctype", [(b"k8s\x00\xff", "application/vnd.kubernetes.protobuf"),
                                        (b"not json", "application/json"),
                                        (b"[]", "application/json")])
def test_malformed_answers_are_a_kube_error(body: bytes, ctype: str) -> None:
    with pytest.raises(KubeError):
        parse_list(body, ctype)
