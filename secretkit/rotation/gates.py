"""Safety gates: prove from etcd itself that nothing still needs what we remove.

A gate scans the stored values of the rotated resources (one pinned revision) and,
unless told otherwise, the older revisions etcd still holds, and lists every value
that only the key (or provider) about to be removed can read. ``prune`` refuses to
run while that list is not empty: this is what keeps a rotation from losing data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from secretkit.encryption_config import etcd_prefixes_for as config_prefixes
from secretkit.etcd.history import HistoryWalk
from secretkit.etcd.pages import linear_pages
from secretkit.formats import classify_value, match_key_name
from secretkit.formats.model import StoredValue, ValueProvider

#: A predicate returns a short reason when a stored value blocks the removal.
Predicate = Callable[[StoredValue, bytes], str | None]

def etcd_prefixes_for(resources: Iterable[str], base: str = "/registry") -> list[bytes]:
    """etcd key prefixes that hold ``resources`` (``secrets``, ``roles.rbac...``, ``*.*``).

    Every prefix an object of the resources can live under is returned (see
    :func:`secretkit.encryption_config.etcd_prefixes_for`): a gate that scanned too
    little would pass while values still need the key.
    """
    prefixes: set[str] = set()
    for resource in resources:
        name, _, group = resource.partition(".")
        prefixes.update(config_prefixes(name, group, base))
    return sorted(p.encode() for p in prefixes)


@dataclass(frozen=True)
class Blocker:
    """One stored value that still needs what a stage wants to remove."""

    etcd_key: str
    mod_revision: int
    reason: str
    historic: bool = False


@dataclass
class GateResult:
    """The outcome of a gate scan."""

    scanned: int = 0
    blocker_count: int = 0
    examples: list[Blocker] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when nothing blocks."""
        return self.blocker_count == 0

    def add(self, blocker: Blocker, keep: int) -> None:
        """Count ``blocker`` and keep it as an example while under ``keep``."""
        self.blocker_count += 1
        if len(self.examples) < keep:
            self.examples.append(blocker)


def uses_local_keys(
    provider_type: str, removed: Sequence[str], all_names: Sequence[str]
) -> Predicate:
    """Blocks values written by one of the ``removed`` keys of ``provider_type``."""
    removed_set = set(removed)

    def predicate(stored: StoredValue, value: bytes) -> str | None:
        if stored.provider.value != provider_type:
            return None
        name = match_key_name(value[len(stored.prefix) :], all_names)
        if name is None:
            # a key name no config knows: it can only be read by a key we don't have
            return f"{provider_type} value under an unknown key name"
        return f"{provider_type} key {name!r}" if name in removed_set else None

    return predicate


def plaintext_values() -> Predicate:
    """Blocks values stored in plaintext (identity), e.g. before dropping ``identity``."""

    def predicate(stored: StoredValue, value: bytes) -> str | None:
        return "stored in plaintext" if stored.provider is ValueProvider.IDENTITY else None

    return predicate


def uses_provider(provider: ValueProvider, kms_name: str | None = None) -> Predicate:
    """Blocks values written by ``provider`` (for kms: with provider name ``kms_name``)."""

    def predicate(stored: StoredValue, value: bytes) -> str | None:
        if stored.provider is not provider:
            return None
        if kms_name is not None and stored.name != kms_name:
            return None
        return f"written by {provider.value}" + (f" provider {kms_name!r}" if kms_name else "")

    return predicate


def uses_kms_key_id(kms_name: str, key_ids: Sequence[str]) -> Predicate:
    """Blocks kms v2 values of provider ``kms_name`` whose key_id is in ``key_ids``."""
    wanted = set(key_ids)

    def predicate(stored: StoredValue, value: bytes) -> str | None:
        if stored.provider is not ValueProvider.KMS_V2 or stored.name != kms_name:
            return None
        key_id = stored.kms_v2.key_id if stored.kms_v2 else None
        return f"kms v2 key_id {key_id!r}" if key_id in wanted else None

    return predicate


def scan(
    client: object,
    prefixes: Sequence[bytes],
    predicate: Predicate,
    *,
    include_history: bool = True,
    keep_examples: int = 20,
    page_size: int = 1000,
) -> GateResult:
    """Scan ``prefixes`` (and older revisions when ``include_history``) for blockers.

    ``client`` is a :class:`secretkit.etcd.EtcdClient`, or anything with its
    ``range_pages`` and ``get`` (read through :func:`secretkit.etcd.pages.linear_pages`).
    """
    result = GateResult()
    # compaction ends a key's history quietly; any other error propagates: fail closed
    history = HistoryWalk(client) if include_history else None
    for prefix in prefixes:
        for page in linear_pages(client, prefix, page_size=page_size):
            for kv in page:
                result.scanned += 1
                reason = predicate(classify_value(kv.value), kv.value)
                if reason:
                    key = kv.key.decode("utf-8", "replace")
                    result.add(Blocker(key, kv.mod_revision, reason), keep_examples)
            if history is None:
                continue
            for kv, old in history.older(page):
                reason = predicate(classify_value(old.value), old.value)
                if reason:
                    key = kv.key.decode("utf-8", "replace")
                    blocker = Blocker(key, old.mod_revision, reason, historic=True)
                    result.add(blocker, keep_examples)
    return result
