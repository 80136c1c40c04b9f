"""A kms v2 value under a KEK the backend no longer has: undecryptable AND stale."""

from __future__ import annotations

import os

from secretkit.audit.classify import Classifier, ScopePolicy
from secretkit.audit.model import FindingKind
from secretkit.backends.interface import BackendKMSService
from secretkit.backends.local import LocalBackend, LocalKey
from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import encode_unknown
from secretkit.core.transformers import build_transformers

CONFIG = b"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - kms: {apiVersion: v2, name: kek, endpoint: "unix:///run/kms.sock"}
"""


def test_a_value_under_a_lost_kek_names_its_old_key_id_as_the_clue() -> None:
    config = load_encryption_config(CONFIG)
    lost = BackendKMSService(LocalBackend([LocalKey(os.urandom(32), "local:lost")]))
    wrong = BackendKMSService(LocalBackend([LocalKey(os.urandom(32), "local:new")]))
    key = "/registry/secrets/default/db"
    value = build_transformers(config, lambda _p: lost).for_etcd_key(key).write(
        encode_unknown("v1", "Secret", b"payload"), key
    )
    classifier = Classifier(
        policy=ScopePolicy(config=config),
        kms_key_ids={"kek": "local:new"},
        transformers=build_transformers(config, lambda _p: wrong),
    )
    record = classifier.classify(key.encode(), value, 7)
    assert set(record.findings) == {FindingKind.UNDECRYPTABLE, FindingKind.STALE}
    assert any("'local:lost' is not the plugin's current 'local:new'" in r for r in record.reasons)
    assert any(r.startswith("decrypt failed") for r in record.reasons)
