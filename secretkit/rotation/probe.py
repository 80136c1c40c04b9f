"""The write probe's judgement: which writer did an apiserver use, and is it the file's?

An apiserver's encryption config lives in its memory; the file on disk only says
what it *should* run. The one thing every apiserver shows from outside, whether it
reloads its config automatically or was restarted, is how it writes: create an
object through it, read the raw value etcd got, and the value's prefix (and a kms
v2 value's key_id) names the provider and key that wrote it. This module is the pure
half of that probe (no network, no clock; randomness passed in): the writer a config
expects for a resource, the writer a stored value shows, their comparison, and the
probe object itself. :mod:`.probe_run` creates, reads and deletes the objects.

A write probe proves the *writer* only. Two configs that differ only in read-only
entries (a stage's ``prepare`` adds a key or provider behind the writer) write
alike, so a probe cannot tell them apart: it proves that the file of a ``promote``
(whose writer is new) was loaded, which the ``reencrypt`` and ``prune`` gates need,
never that of a ``prepare``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secretkit.core.encryption_config.match import governing_rules, providers_for
from secretkit.core.encryption_config.model import (
    EncryptionConfig,
    IdentityProvider,
    KMSProvider,
    LocalKeyProvider,
    Provider,
)
from secretkit.core.formats import classify_value
from secretkit.core.formats.model import ValueProvider
from secretkit.core.readability import LOCAL_TYPES, kms_v1_name, local_key_name
from secretkit.errors import UsageError

#: the label every probe object carries: the next run finds (and deletes) leftovers by it
PROBE_LABEL = "secretkit.io/write-probe"
#: every probe object's name starts with this, so nobody mistakes one for real data
PROBE_NAME_PREFIX = "secretkit-write-probe-"
#: the resources a probe may create (core group): objects of any other resource have
#: side effects (a Pod runs, a Service allocates an IP)
PROBE_RESOURCES = ("secrets", "configmaps")

_KIND = {"secrets": "Secret", "configmaps": "ConfigMap"}


@dataclass(frozen=True)
class Writer:
    """A provider (and key) that writes values, as a config expects or a value shows.

    ``kind`` is ``identity``, ``aescbc``, ``aesgcm``, ``secretbox``, ``kms`` or
    ``unknown``; ``key_name`` is set for local keys, ``api_version`` and
    ``provider_name`` for kms, ``key_id`` for kms v2 when known. Names only: a
    writer never holds key material.
    """

    kind: str
    key_name: str | None = None
    api_version: str | None = None
    provider_name: str | None = None
    key_id: str | None = None

    def describe(self) -> str:
        """``aesgcm key 'key2'``, ``kms v2 provider 'vault' (key_id '...')``, ``identity``."""
        if self.kind == "identity":
            return "identity (plaintext)"
        if self.kind == "kms":
            text = f"kms {self.api_version} provider {self.provider_name!r}"
            return text + (f" (key_id {self.key_id!r})" if self.key_id is not None else "")
        if self.kind in LOCAL_TYPES.values():
            return f"{self.kind} key {self.key_name!r}"
        return "an unknown storage format"

    def to_json(self) -> dict[str, Any]:
        """The writer as a JSON object (every field, nulls included)."""
        return {
            "kind": self.kind,
            "key_name": self.key_name,
            "api_version": self.api_version,
            "provider_name": self.provider_name,
            "key_id": self.key_id,
            "description": self.describe(),
        }


def expected_writer(
    chain: Sequence[Provider], current_key_ids: Mapping[str, str] | None = None
) -> Writer:
    """The writer of a provider chain: its first provider (and first local key).

    For kms v2 the key_id is the plugin's current one when ``current_key_ids`` knows
    it (the apiserver takes the key_id Status reports); None otherwise.
    """
    write = chain[0] if chain else IdentityProvider()
    if isinstance(write, IdentityProvider):
        return Writer("identity")
    if isinstance(write, LocalKeyProvider):
        return Writer(write.type.value, key_name=write.keys[0].name if write.keys else None)
    assert isinstance(write, KMSProvider)
    key_id = (current_key_ids or {}).get(write.name) if write.api_version == "v2" else None
    return Writer(
        "kms", api_version=write.api_version, provider_name=write.name, key_id=key_id
    )


def observed_writer(value: bytes, chain: Sequence[Provider]) -> Writer:
    """The writer a stored value shows (local key names matched against ``chain``)."""
    stored = classify_value(value)
    kind = stored.provider
    if kind is ValueProvider.IDENTITY:
        return Writer("identity")
    local = LOCAL_TYPES.get(kind)
    if local is not None:
        return Writer(local, key_name=local_key_name(stored, value, chain))
    if kind is ValueProvider.KMS_V2:
        key_id = stored.kms_v2.key_id if stored.kms_v2 is not None else None
        return Writer("kms", api_version="v2", provider_name=stored.name, key_id=key_id)
    if kind is ValueProvider.KMS_V1:
        name = kms_v1_name(value, chain) or stored.name
        return Writer("kms", api_version="v1", provider_name=name)
    return Writer("unknown")


def mismatch(expected: Writer, observed: Writer) -> str | None:
    """Why ``observed`` is not ``expected`` (None when it is).

    A kms v2 key_id only counts when the expected one is known; a value's key_id is
    always known, so ``observed.key_id`` None with an expected one is a mismatch too.
    """
    if observed.kind != expected.kind:
        return "another provider"
    if expected.kind in LOCAL_TYPES.values() and observed.key_name != expected.key_name:
        return "another key"
    if expected.kind == "kms":
        if (observed.api_version, observed.provider_name) != (
            expected.api_version,
            expected.provider_name,
        ):
            return "another kms provider"
        if expected.key_id is not None and observed.key_id != expected.key_id:
            return "another kms key_id"
    return None


def mismatch_message(endpoint: str, expected: Writer, observed: Writer) -> str:
    """The sentence an operator reads for one endpoint that writes with another writer."""
    text = (
        f"apiserver {endpoint} writes with {observed.describe()}; the file's writer is "
        f"{expected.describe()}"
    )
    if mismatch(expected, observed) == "another kms key_id":
        text += (
            " (the apiserver asks the plugin for its key_id about once a minute; if the "
            "key was rotated just now, probe again in a minute)"
        )
    return text


def probe_chain(config: EncryptionConfig | None, resource: str) -> tuple[Provider, ...]:
    """The provider chain the apiserver uses for ``resource`` (core group) under ``config``."""
    if config is None:
        return (IdentityProvider(),)
    return providers_for(config, resource, "")


def choose_resource(
    config: EncryptionConfig, rule_indexes: Sequence[int] | None = None
) -> str:
    """The resource to probe: Secrets if the rules cover them, else ConfigMaps.

    ``rule_indexes`` (a stage's rules) narrows the choice to what those rules govern;
    None means any rule. UsageError when neither resource is governed by them: a
    probe object of another resource could have side effects.
    """
    for resource in PROBE_RESOURCES:
        rules = governing_rules(config, resource, "")
        if rule_indexes is None or set(rules) & set(rule_indexes):
            return resource
    raise UsageError(
        "the write probe can only create Secrets or ConfigMaps, and the rule(s) of this "
        "procedure cover neither",
        where="--probe-apiserver",
        hint="confirm the restart with --yes, or poll /metrics with --apiserver-metrics",
    )


def probe_name(rng: Callable[[int], bytes]) -> str:
    """A fresh probe object name: ``secretkit-write-probe-<16 hex digits>``."""
    return PROBE_NAME_PREFIX + rng(8).hex()


def probe_object(resource: str, namespace: str, name: str, nonce: bytes) -> dict[str, Any]:
    """The object a probe creates: labelled, annotated, holding only a random nonce."""
    kind = _KIND.get(resource)
    if kind is None:
        raise UsageError(
            f"the write probe cannot create {resource}",
            where="--resource",
            hint="choose " + " or ".join(PROBE_RESOURCES),
        )
    metadata = {
        "name": name,
        "namespace": namespace,
        "labels": {PROBE_LABEL: "true"},
        "annotations": {
            "secretkit.io/purpose": "secretkit apiserver write probe: holds no data, "
            "deleted right away; safe to delete",
        },
    }
    body: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    if resource == "secrets":
        body["type"] = "Opaque"
        body["data"] = {"nonce": base64.b64encode(nonce.hex().encode()).decode()}
    else:
        body["data"] = {"nonce": nonce.hex()}
    return body


def is_probe_object(item: Mapping[str, Any]) -> bool:
    """True for an object a probe created (label and name both say so)."""
    metadata = item.get("metadata") or {}
    name = str(metadata.get("name") or "")
    labels = metadata.get("labels") or {}
    return name.startswith(PROBE_NAME_PREFIX) and PROBE_LABEL in labels
