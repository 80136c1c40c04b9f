"""What each staged procedure changes in the config.

A plan is the only thing that differs between a local-key rotation, enabling
encryption and disabling it: the stage engine (:mod:`.engine`) does the rest (node
checks, diffs, atomic writes, backups, state, apiserver verification, re-encryption
and the one safety gate, which judges every stored value under the pruned config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from secretkit.core.encryption_config.generate import default_key_name, new_key_secret
from secretkit.errors import ConfigError, UsageError
from secretkit.rotation import config_edit
from secretkit.rotation.state import RotationState

Document = dict[str, Any]


def new_key_name() -> str:
    """A fresh key name that sorts by creation time: ``key-20261123T041500Z``."""
    return default_key_name()


def new_secret(provider_type: str) -> str:
    """Fresh key material from the OS CSPRNG, base64 (32 bytes suit every type)."""
    del provider_type  # aescbc/aesgcm accept 32; secretbox requires it
    return new_key_secret()


@dataclass
class LocalKeyRotation:
    """Rotate the key of an aescbc, aesgcm or secretbox provider."""

    kind: str = "local-key"

    def start(self, doc: Document, resources: Sequence[str], key_name: str | None) -> RotationState:
        """Create the state of a new rotation from the current config."""
        ptype = config_edit.write_provider_type(doc, resources)
        if ptype not in config_edit.LOCAL_KEY_TYPES:
            raise UsageError(
                f"the write provider of {', '.join(resources)} is {ptype}, not a local key",
                hint="for kms use `secretkit kms rotate`; for identity use "
                "`secretkit encryption enable`",
            )
        return RotationState(
            kind=self.kind,
            resources=list(resources),
            provider_type=ptype,
            new_key_name=key_name or new_key_name(),
            old_key_names=config_edit.key_names(doc, resources, ptype),
        )

    def prepare(self, doc: Document, state: RotationState) -> Document:
        """Add the new key as a read-only key."""
        assert state.new_key_name
        return config_edit.add_read_key(
            doc,
            state.resources,
            state.provider_type,
            state.new_key_name,
            new_secret(state.provider_type),
        )

    def promote(self, doc: Document, state: RotationState) -> Document:
        """Make the new key the write key."""
        assert state.new_key_name
        return config_edit.promote_key(
            doc, state.resources, state.provider_type, state.new_key_name
        )

    def prune(self, doc: Document, state: RotationState) -> Document:
        """Remove the old keys."""
        return config_edit.remove_keys(
            doc, state.resources, state.provider_type, state.old_key_names
        )


@dataclass
class EnableEncryption:
    """identity → a real provider (identity kept as read fallback until proven)."""

    # e.g. {"aesgcm": {"keys": [...]}}: holds the new key, so it stays out of the repr
    provider: Document = field(default_factory=dict, repr=False)
    kind: str = "enable"

    def start(self, doc: Document, resources: Sequence[str], key_name: str | None) -> RotationState:
        """Create the state for enabling encryption with ``self.provider``."""
        current = config_edit.write_provider_type(doc, resources)
        if current != "identity":
            raise UsageError(
                f"{', '.join(resources)} are already written by {current}",
                hint="use `secretkit rotate` to change keys",
            )
        (ptype,) = self.provider.keys()
        kms_name = self.provider["kms"].get("name") if ptype == "kms" else None
        return RotationState(
            kind=self.kind,
            resources=list(resources),
            provider_type=ptype,
            kms_name=kms_name,
            new_key_name=key_name,
        )

    def prepare(self, doc: Document, state: RotationState) -> Document:
        """Add the provider in a read-only position (after identity)."""
        return config_edit.insert_provider(doc, state.resources, self.provider, position=1)

    def promote(self, doc: Document, state: RotationState) -> Document:
        """Make it the writer; identity stays as a read fallback."""
        return config_edit.move_provider_first(
            doc, state.resources, state.provider_type, state.kms_name
        )

    def prune(self, doc: Document, state: RotationState) -> Document:
        """Drop the identity fallback."""
        return config_edit.remove_provider(doc, state.resources, "identity")


@dataclass
class DisableEncryption:
    """a provider → identity (decrypt everything, e.g. for a migration)."""

    kind: str = "disable"

    def start(self, doc: Document, resources: Sequence[str], key_name: str | None) -> RotationState:
        """Create the state for disabling encryption of ``resources``."""
        current = config_edit.write_provider_type(doc, resources)
        if current == "identity":
            raise UsageError(f"{', '.join(resources)} are already stored in plaintext")
        return RotationState(kind=self.kind, resources=list(resources), provider_type=current)

    def prepare(self, doc: Document, state: RotationState) -> Document:
        """Add identity as a read-only fallback, unless the rule already has it.

        Identity reads anything without a ``k8s:enc:`` prefix, so it must be in the
        chain before any apiserver writes plaintext; most configs already end with it.
        """
        if config_edit.has_provider(doc, state.resources, "identity"):
            return doc
        return config_edit.insert_provider(doc, state.resources, {"identity": {}}, position=1)

    def promote(self, doc: Document, state: RotationState) -> Document:
        """Make identity the writer; the old provider stays to read what exists."""
        return config_edit.move_provider_first(doc, state.resources, "identity")

    def prune(self, doc: Document, state: RotationState) -> Document:
        """Remove every provider but identity."""
        new = doc
        for ptype in ("aescbc", "aesgcm", "secretbox", "kms"):
            try:
                new = config_edit.remove_provider(new, state.resources, ptype)
            except ConfigError:  # would leave a rule without providers: keep that one
                continue
        return new


Plan = LocalKeyRotation | EnableEncryption | DisableEncryption
