"""Values the stand-in writes are what kube-apiserver would write (decoded independently)."""

from __future__ import annotations

import base64

import pytest

from secretkit._proto.k8s import core_v1_pb2
from secretkit.config_files import load_encryption_config_file
from secretkit.core.formats import classify_value, decode_unknown
from secretkit.core.formats.model import ValueProvider
from secretkit.core.transformers import build_transformers
from secretkit.kmsapi import GrpcKMSService
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e


def _secret(name: str, **data: bytes) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": {"team": "storage"}},
            "type": "Opaque",
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def test_secret_is_stored_kms_v2_encrypted_and_decodes(sandbox: Sandbox) -> None:
    core = sandbox.core_v1()
    created = core.create_namespaced_secret("default", _secret("db", password=b"hunter2"))
    key = "/registry/secrets/default/db"
    with sandbox.etcd_client() as etcd:
        kv = etcd.get(key.encode())
    assert kv is not None
    assert kv.mod_revision == int(created.metadata.resource_version)

    stored = classify_value(kv.value)
    assert stored.provider is ValueProvider.KMS_V2
    assert stored.name == "sandbox-kms"
    assert b"hunter2" not in kv.value
    assert stored.kms_v2 is not None and stored.kms_v2.key_id.startswith("vault:")

    # decrypt with a transformer chain of our own, talking to the plugin directly
    config = load_encryption_config_file(sandbox.config_path)
    chain = build_transformers(config, lambda p: GrpcKMSService(p.endpoint))
    result = chain.for_resource("secrets").read(kv.value, key)
    assert not result.stale
    unknown = decode_unknown(result.plaintext)
    assert (unknown.api_version, unknown.kind) == ("v1", "Secret")

    # the raw object parses with the generated k8s protobuf classes (not our codec)
    secret = core_v1_pb2.Secret()
    secret.ParseFromString(unknown.raw)
    assert secret.metadata.name == "db"
    assert secret.metadata.namespace == "default"
    assert secret.metadata.uid == created.metadata.uid
    assert secret.metadata.resourceVersion == ""  # never stored, it is the mod_revision
    assert dict(secret.data) == {"password": b"hunter2"}
    assert secret.type == "Opaque"
    assert dict(secret.metadata.labels) == {"team": "storage"}


def test_configmap_with_identity_is_plain_protobuf(
    sandbox: Sandbox, sandbox_factory: SandboxFactory
) -> None:
    sb = sandbox_factory("none")  # runs side by side with the module's kms sandbox
    assert sb.api_url != sandbox.api_url and sb.etcd_endpoint != sandbox.etcd_endpoint
    assert sb.plugin_socket != sandbox.plugin_socket
    core = sb.core_v1()
    assert not [s for s in core.list_namespaced_secret("default").items
                if s.metadata.name == "db"]  # the other sandbox's Secret is not here
    core.create_namespaced_config_map("ops", {
        "metadata": {"name": "settings"},
        "data": {"mode": "fast"},
        "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()},
    })
    with sb.etcd_client() as etcd:
        kv = etcd.get(b"/registry/configmaps/ops/settings")
    assert kv is not None
    assert kv.value.startswith(b"k8s\x00")
    stored = classify_value(kv.value)
    assert stored.provider is ValueProvider.IDENTITY
    assert (stored.api_version, stored.kind) == ("v1", "ConfigMap")
    cm = core_v1_pb2.ConfigMap()
    cm.ParseFromString(decode_unknown(kv.value).raw)
    assert dict(cm.data) == {"mode": "fast"}
    assert dict(cm.binaryData) == {"blob": b"\x00\x01"}
    got = core.read_namespaced_config_map("settings", "ops")
    assert got.data == {"mode": "fast"}
    assert got.binary_data == {"blob": base64.b64encode(b"\x00\x01").decode()}


def test_secret_written_by_generated_protobuf_reads_back(sandbox: Sandbox) -> None:
    """An object encoded by the generated k8s classes (as another writer would) is served."""
    from secretkit.core.formats import encode_unknown

    secret = core_v1_pb2.Secret()
    secret.metadata.name = "foreign"
    secret.metadata.namespace = "default"
    secret.metadata.uid = "0b6c3bd4-0000-4000-8000-000000000001"
    secret.metadata.creationTimestamp.seconds = 1_700_000_000
    secret.data["token"] = b"abc"
    secret.type = "kubernetes.io/opaque-test"
    key = "/registry/secrets/default/foreign"
    plaintext = encode_unknown("v1", "Secret", secret.SerializeToString())
    config = load_encryption_config_file(sandbox.config_path)
    chain = build_transformers(config, lambda p: GrpcKMSService(p.endpoint))
    chain.refresh_kms()
    with sandbox.etcd_client() as etcd:
        assert etcd.compare_and_swap(key.encode(), chain.for_resource("secrets").write(
            plaintext, key), mod_revision=0)
    got = sandbox.core_v1().read_namespaced_secret("foreign", "default")
    assert got.data == {"token": base64.b64encode(b"abc").decode()}
    assert got.type == "kubernetes.io/opaque-test"
    assert got.metadata.uid == "0b6c3bd4-0000-4000-8000-000000000001"
    assert got.metadata.creation_timestamp.year == 2023


KMS_V1_CONFIG = b"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - kms: {apiVersion: v2, name: sandbox-kms, endpoint: "{kms_endpoint}"}
  - kms: {name: legacy-v1, endpoint: "{kms_endpoint}", cachesize: 10}
  - identity: {}
"""


def test_kms_v1_values_are_read_and_rewritten(sandbox_factory: SandboxFactory) -> None:
    """A kms v1 value (written here through the plugin's v1beta1 API) reads as stale."""
    import os

    from secretkit.core.formats import aesgcm_encrypt, encode_unknown, prefix_for
    from secretkit.kmsapi import V1Beta1Client

    sb = sandbox_factory(config=KMS_V1_CONFIG)
    secret = core_v1_pb2.Secret()
    secret.metadata.name = "old"
    secret.metadata.namespace = "default"
    secret.data["k"] = b"from-v1"
    secret.type = "Opaque"
    key = "/registry/secrets/default/old"
    dek = os.urandom(32)
    with V1Beta1Client(sb.plugin_endpoint) as v1:
        wrapped = v1.encrypt(dek)
    value = (prefix_for("kms-v1", "legacy-v1") + len(wrapped).to_bytes(2, "big") + wrapped
             + aesgcm_encrypt(dek, encode_unknown("v1", "Secret", secret.SerializeToString()),
                              key.encode()))
    with sb.etcd_client() as etcd:
        assert etcd.compare_and_swap(key.encode(), value, mod_revision=0)
    core = sb.core_v1()
    got = core.read_namespaced_secret("old", "default")
    assert got.data == {"k": base64.b64encode(b"from-v1").decode()}
    core.replace_namespaced_secret("old", "default", got)  # stale: rewritten with kms v2
    with sb.etcd_client() as etcd:
        kv = etcd.get(key.encode())
    assert kv is not None and classify_value(kv.value).provider is ValueProvider.KMS_V2
