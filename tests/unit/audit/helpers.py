"""Shared helpers of the audit tests: upstream vectors, configs, a classifier factory."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from secretkit.audit.classify import Classifier, ScopePolicy
from secretkit.core.encryption_config import EncryptionConfig, load_encryption_config
from secretkit.core.transformers import build_transformers
from tests.unit.transformers.vectors import (
    IDENTITY_ONLY_CONFIG,
    VECTORS,
    FakeKMS,
    all_providers_config,
    fake_kms_specs,
)

__all__ = [
    "IDENTITY_ONLY_CONFIG",
    "VECTORS",
    "all_providers_config",
    "backends_yaml",
    "classifier",
    "stored",
    "vector",
]


def vector(vector_id: str) -> dict[str, Any]:
    """The upstream vector with this id."""
    return next(v for v in VECTORS if v["id"] == vector_id)


def stored(v: dict[str, Any]) -> bytes:
    """The exact etcd value upstream wrote."""
    return base64.b64decode(v["stored_b64"])


def plaintext(v: dict[str, Any]) -> bytes:
    """The plaintext upstream encrypted (only to prove it never leaks)."""
    return base64.b64decode(v["plaintext_b64"])


def config(data: bytes = b"") -> EncryptionConfig:
    """An EncryptionConfig (default: the vectors' all-providers reader)."""
    return load_encryption_config(data or all_providers_config(), source="test-config.yaml")


def classifier(
    cfg: EncryptionConfig | None = None,
    *,
    decrypt: bool = False,
    resources: tuple[str, ...] | None = None,
    kms_key_ids: dict[str, str] | None = None,
) -> Classifier:
    """A Classifier; with ``decrypt`` its transformers use the vectors' fake KMS plugins."""
    policy = (
        ScopePolicy(resources=resources, explicit=True, config=cfg)
        if resources
        else ScopePolicy(config=cfg)
    )
    transformers = None
    if decrypt:
        assert cfg is not None
        services = {name: FakeKMS.from_spec(spec) for name, spec in fake_kms_specs().items()}
        transformers = build_transformers(cfg, lambda p: services[p.name])
    return Classifier(policy=policy, kms_key_ids=kms_key_ids or {}, transformers=transformers)


def backends_yaml(directory: Path, *, rotate: str | None = None) -> Path:
    """A backends file with one local backend per vector kms provider (the vectors' KEKs).

    With ``rotate`` naming a provider, that provider gets a new first KEK (a new
    current key_id), so values written under the vector's key_id become stale.
    """
    lines = []
    for name, spec in sorted(fake_kms_specs().items()):
        kek_file = directory / f"{name}.kek"
        kek_file.write_bytes(base64.b64decode(spec["kek_b64"]))
        kek_file.chmod(0o600)
        lines += [f"{name}:", "  type: local", "  keys:"]
        if rotate == name:
            new_kek = directory / f"{name}-new.kek"
            new_kek.write_bytes(bytes(range(32)))
            new_kek.chmod(0o600)
            lines += [f"    - kek_file: {new_kek}", f'      key_id: "{name}-rotated"']
        lines += [f"    - kek_file: {kek_file}", f'      key_id: "{spec["key_id"]}"']
    path = directory / "backends.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path
