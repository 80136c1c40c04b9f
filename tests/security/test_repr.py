"""repr()/str() of every object that holds key material, plaintext or a token.

A dataclass's generated repr prints every field; one ``log.debug("%r", obj)`` or an
f-string in an exception would then publish the key. Each object is built with a
canary secret and its repr and str must not contain it in any encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from secretkit.backends.aws import AssumeRole
from secretkit.backends.interface import WrapResult
from secretkit.backends.local import LocalBackend, LocalKey
from secretkit.backends.vault import VaultAuth, VaultConfig
from secretkit.core.encryption_config import (
    EncryptionConfig,
    Key,
    LocalKeyProvider,
    ProviderType,
    ResourceRule,
    load_encryption_config,
)
from secretkit.core.formats import decode_encrypted_object, encode_encrypted_object
from secretkit.core.formats.model import EncryptedObject, ValueProvider
from secretkit.core.kms_service import KMSEncryptResult
from secretkit.core.transformers import ReadResult
from secretkit.etcd import EtcdConfig, KeyValueRecord
from secretkit.rotation.engine import StageOptions
from secretkit.rotation.plans import EnableEncryption
from secretkit.rotation.verify import MetricsEndpoint
from tests.security import canaries as c

CONFIG_YAML = f"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: k1
              secret: {c.KEY_B64}
""".encode()


def _objects() -> dict[str, Any]:
    key = Key("k1", c.KEY)
    rule = ResourceRule(("secrets",), (LocalKeyProvider(ProviderType.AESGCM, (key,)),))
    vault_auth = VaultAuth(method="token", token=c.TOKEN)
    metrics = MetricsEndpoint("https://127.0.0.1:6443/metrics", token=c.TOKEN)
    encrypted = EncryptedObject(
        encrypted_data=c.PLAINTEXT, key_id="kid", encrypted_dek_source=c.KEY
    )
    return {
        "Key": key,
        "LocalKeyProvider": LocalKeyProvider(ProviderType.AESGCM, (key,)),
        "ResourceRule": rule,
        "EncryptionConfig": EncryptionConfig((rule,), raw=CONFIG_YAML),
        "EncryptionConfig(loaded)": load_encryption_config(CONFIG_YAML),
        "EncryptedObject": encrypted,
        "EncryptedObject(decoded)": decode_encrypted_object(encode_encrypted_object(encrypted)),
        "KMSEncryptResult": KMSEncryptResult(ciphertext=c.KEY, key_id="kid"),
        "WrapResult": WrapResult(ciphertext=c.KEY, key_id="kid"),
        "ReadResult": ReadResult(
            plaintext=c.PLAINTEXT, stale=False, provider=ValueProvider.AESGCM,
            provider_name="aesgcm", key_name="k1", key_id=None,
        ),
        "LocalKey": LocalKey(kek=c.KEY),
        "LocalBackend": LocalBackend([LocalKey(kek=c.KEY)]),
        "VaultAuth": vault_auth,
        "VaultAuth(approle)": VaultAuth(method="approle", role_id="r", secret_id=c.TOKEN),
        "VaultConfig": VaultConfig(address="http://127.0.0.1:1", key="k", auth=vault_auth),
        "AssumeRole": AssumeRole(role_arn="arn:aws:iam::1:role/x", external_id=c.TOKEN),
        "EtcdConfig": EtcdConfig(endpoints=("127.0.0.1:2379",), user="root", password=c.TOKEN),
        "KeyValueRecord": KeyValueRecord(b"/registry/secrets/default/x", c.PLAINTEXT, 1, 2, 1),
        "MetricsEndpoint": metrics,
        "EnableEncryption": EnableEncryption(
            provider={"aesgcm": {"keys": [{"name": "k1", "secret": c.KEY_B64}]}}
        ),
        "StageOptions": StageOptions(configs=[Path("/x")], state_path=Path("/s"),
                                     metrics=[metrics]),
    }


@pytest.mark.parametrize("name", sorted(_objects()))
def test_repr_and_str_hold_no_secret(name: str) -> None:
    obj = _objects()[name]
    text = repr(obj) + "\n" + str(obj)
    assert not c.leaks(text, *c.ALL), f"{name} leaks: {text}"


def test_canary_detector_works() -> None:
    """The check above would notice a leak in any encoding it searches."""
    assert c.leaks(repr(c.KEY), c.KEY)
    assert c.leaks(f"secret: {c.KEY_B64}", c.KEY)
    assert c.leaks(c.KEY.hex(), c.KEY)
    assert c.leaks(f"Bearer {c.TOKEN}", c.TOKEN)
    assert c.leaks(f"  ... {c.KEY_B64[7:30]}: x", c.KEY)  # part of a key (a YAML snippet)
    assert not c.leaks("sha256:fedcba9876543210 " + Key("k", c.KEY).fingerprint, *c.ALL)
