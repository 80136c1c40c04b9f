"""The stand-in's codec against values a real kube-apiserver v1.36.2 wrote.

Every captured Secret, ConfigMap, Lease and ControllerRevision decodes to its JSON form
and encodes back to the very same bytes; the apiserver-internal Endpoints values the
stand-in writes for itself are byte for byte the captured ones given the same fields.
"""

from __future__ import annotations

import pytest

from secretkit.core.formats import decode_unknown
from secretkit.sandbox.apiserver import codec
from secretkit.sandbox.apiserver.internal import endpoints_value, master_lease, peer_lease
from secretkit.sandbox.apiserver.kinds import CONFIGMAPS, CONTROLLERREVISIONS, LEASES, SECRETS
from secretkit.sandbox.apiserver.schema import RawJSON
from tests.unit.sandbox.captured import star_star_plaintexts

KINDS = {r.kind: r for r in (SECRETS, CONFIGMAPS, LEASES, CONTROLLERREVISIONS)}


def _captured(kind: str) -> list[tuple[str, bytes]]:
    out = []
    for key, plaintext in star_star_plaintexts().items():
        if plaintext.startswith(b"k8s\x00") and decode_unknown(plaintext).kind == kind:
            out.append((key, plaintext))
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_captured_objects_round_trip_byte_for_byte(kind: str) -> None:
    rtype = KINDS[kind]
    captured = _captured(kind)
    assert captured, f"the capture has no {kind}"
    for key, plaintext in captured:
        obj = codec.decode_stored(rtype, plaintext)
        assert obj["apiVersion"] == rtype.api_version and obj["kind"] == kind
        assert key.endswith(f"/{obj['metadata']['namespace']}/{obj['metadata']['name']}")
        assert codec.encode_stored(rtype, obj) == plaintext, key


def test_captured_fields_decode_to_their_json_form() -> None:
    lease = codec.decode_stored(LEASES, star_star_plaintexts()[
        "/registry/leases/capture/capture-lease"])
    assert lease["spec"] == {"holderIdentity": "capture", "leaseDurationSeconds": 3600}
    assert lease["metadata"]["managedFields"][0]["fieldsV1"] == RawJSON(
        b'{"f:spec":{"f:holderIdentity":{},"f:leaseDurationSeconds":{}}}')
    revision = codec.decode_stored(CONTROLLERREVISIONS, star_star_plaintexts()[
        "/registry/controllerrevisions/capture/capture-cr"])
    assert revision["revision"] == 1
    assert isinstance(revision["data"], RawJSON)
    assert revision["data"].value() == {"spec": {"template": {"metadata": {
        "labels": {"app": "ds"}}}}}
    identity = [k for k in star_star_plaintexts() if k.startswith("/registry/leases/kube-system/")]
    renew = codec.decode_stored(LEASES, star_star_plaintexts()[identity[0]])["spec"]["renewTime"]
    assert renew.endswith("Z") and len(renew.split(".")[1]) == 7  # microseconds + Z


def test_internal_endpoints_match_the_captured_bytes() -> None:
    plaintexts = star_star_plaintexts()
    (master_key,) = [k for k in plaintexts if k.startswith("/registry/masterleases/")]
    (peer_key,) = [k for k in plaintexts if k.startswith("/registry/peerserverleases/")]
    ip = master_key.rsplit("/", 1)[1]
    apiserver_id = peer_key.rsplit("/", 1)[1]
    # the capture's values had been refreshed 33 times; the apiserver served on :26443
    assert endpoints_value(master_lease(ip, 33)) == plaintexts[master_key]
    assert endpoints_value(peer_lease(apiserver_id, ip, 26443, 33)) == plaintexts[peer_key]
    # they are stored in plaintext although the capture's config is *.* -> kms v2
    assert plaintexts[master_key].startswith(b"k8s\x00")


def test_metadata_answers_splice_the_resource_version_into_the_stored_bytes() -> None:
    from secretkit._proto.k8s import meta_v1_pb2
    from secretkit.sandbox.apiserver.schema import field_payload

    checked = 0
    for _key, plaintext in star_star_plaintexts().items():
        if not plaintext.startswith(b"k8s\x00"):
            continue
        spliced = codec.stored_metadata_raw(plaintext, "4242")
        ours = meta_v1_pb2.ObjectMeta.FromString(spliced)
        stored = meta_v1_pb2.ObjectMeta.FromString(
            field_payload(decode_unknown(plaintext).raw, 1) or b"")
        assert ours.resourceVersion == "4242" and stored.resourceVersion == ""
        stored.resourceVersion = "4242"
        assert ours == stored  # nothing else moved
        checked += 1
    assert checked > 200


@pytest.mark.parametrize("name", ["a", "n" * 130, "x." * 100 + "y"])
def test_metadata_splice_of_any_name_length(name: str) -> None:
    # one-byte lengths take the inline walk, longer names the general splice
    from secretkit._proto.k8s import meta_v1_pb2

    obj = {"kind": "Secret", "apiVersion": "v1",
           "metadata": {"name": name, "namespace": "ns", "uid": "u" * 36,
                        "creationTimestamp": "2026-12-05T00:00:00Z", "labels": {"a": "b"}},
           "type": "Opaque"}
    spliced = codec.stored_metadata_raw(codec.encode_stored(SECRETS, obj), "77")
    meta = meta_v1_pb2.ObjectMeta.FromString(spliced)
    assert (meta.name, meta.namespace, meta.resourceVersion) == (name, "ns", "77")
    assert dict(meta.labels) == {"a": "b"} and meta.uid == "u" * 36
