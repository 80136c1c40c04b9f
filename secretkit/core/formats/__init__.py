"""Pure storage-format core: what kube-apiserver writes to etcd, byte for byte.

No I/O, no clock; randomness is injectable. Decoders raise only
:class:`~secretkit.errors.FormatError` (layout) or
:class:`~secretkit.errors.DecryptError` (authentication); :func:`classify_value`
never raises.
"""

from secretkit.core.formats.aes import (
    aescbc_decrypt,
    aescbc_encrypt,
    aesgcm_decrypt,
    aesgcm_encrypt,
)
from secretkit.core.formats.classify import classify_value
from secretkit.core.formats.envelope import PROTOBUF_MAGIC, decode_unknown, encode_unknown
from secretkit.core.formats.header import (
    encrypted_data_span,
    header_decides_key,
    repeats_encrypted_data,
    value_header,
)
from secretkit.core.formats.kmsv1 import (
    decode_kmsv1,
    encode_kmsv1,
    kmsv1_decrypt_payload,
    kmsv1_open,
)
from secretkit.core.formats.kmsv2 import (
    decode_encrypted_object,
    encode_encrypted_object,
    kmsv2_decrypt_data,
    kmsv2_encrypt_data,
    kmsv2_open,
    validate_encrypted_object,
)
from secretkit.core.formats.model import (
    DEKSourceType,
    EncryptedObject,
    PlaintextEncoding,
    RuntimeUnknown,
    StoredValue,
    ValueProvider,
)
from secretkit.core.formats.prefixes import (
    AESCBC_PREFIX,
    AESGCM_PREFIX,
    ENCRYPTED_PREFIX,
    KMS_V1_PREFIX,
    KMS_V2_PREFIX,
    SECRETBOX_PREFIX,
    match_key_name,
    matching_key_names,
    prefix_for,
)
from secretkit.core.formats.secretbox import secretbox_decrypt, secretbox_encrypt

__all__ = [
    "AESCBC_PREFIX",
    "AESGCM_PREFIX",
    "ENCRYPTED_PREFIX",
    "KMS_V1_PREFIX",
    "KMS_V2_PREFIX",
    "PROTOBUF_MAGIC",
    "SECRETBOX_PREFIX",
    "DEKSourceType",
    "EncryptedObject",
    "PlaintextEncoding",
    "RuntimeUnknown",
    "StoredValue",
    "ValueProvider",
    "aescbc_decrypt",
    "aescbc_encrypt",
    "aesgcm_decrypt",
    "aesgcm_encrypt",
    "classify_value",
    "decode_encrypted_object",
    "decode_kmsv1",
    "decode_unknown",
    "encode_encrypted_object",
    "encode_kmsv1",
    "encode_unknown",
    "encrypted_data_span",
    "header_decides_key",
    "kmsv1_decrypt_payload",
    "kmsv1_open",
    "kmsv2_decrypt_data",
    "kmsv2_encrypt_data",
    "kmsv2_open",
    "match_key_name",
    "matching_key_names",
    "prefix_for",
    "repeats_encrypted_data",
    "secretbox_decrypt",
    "secretbox_encrypt",
    "validate_encrypted_object",
    "value_header",
]
