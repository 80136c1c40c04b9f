"""Shared builders for the monitor's unit tests (no servers)."""

from __future__ import annotations

import base64

import yaml

from secretkit.audit.classify import Classifier, ScopePolicy
from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import encode_unknown
from secretkit.etcd.model import KeyValueRecord
from secretkit.monitor.coverage import Coverage, CoverageJudge
from secretkit.monitor.labels import RowTable

PLAINTEXT = encode_unknown("v1", "Secret", b"\x0a\x04\x0a\x02db")
STALE = b"k8s:enc:aesgcm:v1:key1:" + b"x" * 40
CURRENT = b"k8s:enc:aesgcm:v1:key2:" + b"x" * 40
UNDECRYPTABLE = b"k8s:enc:aesgcm:v1:gone:" + b"x" * 40
UNKNOWN = b"k8s:enc:bogus:v1:x"


def record(key: bytes, value: bytes, mod_revision: int = 1) -> KeyValueRecord:
    """One stored key/value, as the monitor's scan reads it."""
    return KeyValueRecord(key, value, mod_revision, mod_revision, 1)


def config_yaml(resources: list[str] | None = None) -> bytes:
    """key2 writes, key1 still reads (so key1 values are stale); then identity."""
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{
            "resources": resources or ["secrets"],
            "providers": [
                {"aesgcm": {"keys": [
                    {"name": "key2", "secret": base64.b64encode(b"\x02" * 32).decode()},
                    {"name": "key1", "secret": base64.b64encode(b"\x01" * 32).decode()},
                ]}},
                {"identity": {}},
            ],
        }],
    }
    return yaml.safe_dump(doc).encode()


def make_coverage(
    *, max_rows: int = 200, clock: float = 1000.0, config: bool = True, **policy: object
) -> Coverage:
    """A coverage table with the audit's classifier (a config unless ``config=False``)."""
    cfg = load_encryption_config(config_yaml()) if config else None
    classifier = Classifier(policy=ScopePolicy(config=cfg, **policy))  # type: ignore[arg-type]
    return Coverage(CoverageJudge(classifier, RowTable(max_rows)), clock=lambda: clock)
