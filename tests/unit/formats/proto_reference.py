"""An independent EncryptedObject codec built with google.protobuf (for cross-checks).

The message is declared from the upstream ``api.proto`` shape at runtime, so the
tests compare our hand-written wire code against the official protobuf runtime.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _build() -> Any:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="secretkit_test_kmsv2_api.proto", package="secretkit.test.v2", syntax="proto3"
    )
    enum = file_proto.enum_type.add(name="EncryptedDEKSourceType")
    enum.value.add(name="AES_GCM_KEY", number=0)
    enum.value.add(name="HKDF_SHA256_XNONCE_AES_GCM_SEED", number=1)
    message = file_proto.message_type.add(name="EncryptedObject")
    entry = message.nested_type.add(name="AnnotationsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    message.field.add(name="encryptedData", number=1, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    message.field.add(name="keyID", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    message.field.add(
        name="encryptedDEKSource", number=3, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL
    )
    message.field.add(
        name="annotations",
        number=4,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_REPEATED,
        type_name=".secretkit.test.v2.EncryptedObject.AnnotationsEntry",
    )
    message.field.add(
        name="encryptedDEKSourceType",
        number=5,
        type=_F.TYPE_ENUM,
        label=_F.LABEL_OPTIONAL,
        type_name=".secretkit.test.v2.EncryptedDEKSourceType",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("secretkit.test.v2.EncryptedObject")
    )


ReferenceEncryptedObject: Any = _build()


def reference_encode(
    *,
    encrypted_data: bytes = b"",
    key_id: str = "",
    encrypted_dek_source: bytes = b"",
    annotations: dict[str, bytes] | None = None,
    source_type: int = 0,
) -> bytes:
    """Serialize with the official protobuf runtime."""
    message = ReferenceEncryptedObject(
        encryptedData=encrypted_data,
        keyID=key_id,
        encryptedDEKSource=encrypted_dek_source,
        encryptedDEKSourceType=source_type,
    )
    for key, value in (annotations or {}).items():
        message.annotations[key] = value
    return bytes(message.SerializeToString())


def reference_decode(data: bytes) -> Any:
    """Parse with the official protobuf runtime."""
    message = ReferenceEncryptedObject()
    message.ParseFromString(data)
    return message
