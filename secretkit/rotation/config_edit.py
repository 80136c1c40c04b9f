"""Pure edits of an EncryptionConfiguration document for staged rotations.

The functions take the parsed YAML document (plain dicts and lists, as loaded by
``yaml.safe_load``) and return a *new* document; the input is never mutated. They
work on the raw document rather than the frozen model so that fields secretkit does
not interpret survive the round trip.

The stages follow the upstream procedure for rotating a key:

1. ``prepare``: the new key (or provider) is added in a *read-only* position, so
   every apiserver can read what any other apiserver might already write with it;
2. ``promote``: it moves to the front and becomes the write key;
3. (re-encrypt every object, prove nothing needs the old key)
4. ``prune``: the old keys (or provider) are removed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from secretkit.errors import ConfigError

LOCAL_KEY_TYPES = ("aescbc", "aesgcm", "secretbox")
PROVIDER_TYPES = (*LOCAL_KEY_TYPES, "identity", "kms")

Document = dict[str, Any]


def _provider_type(entry: dict[str, Any]) -> str:
    kinds = [k for k in entry if k in PROVIDER_TYPES]
    if len(kinds) != 1:
        raise ConfigError(
            "a provider entry must hold exactly one provider type",
            hint="run `secretkit config validate` on the file",
        )
    return kinds[0]


def _rules_for(doc: Document, resources: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
    """Return (index, rule) of every rule that names one of ``resources``."""
    rules = doc.get("resources")
    if not isinstance(rules, list):
        raise ConfigError("the document has no `resources:` list", where="resources")
    wanted = set(resources)
    found = [
        (i, rule)
        for i, rule in enumerate(rules)
        if isinstance(rule, dict) and wanted.intersection(rule.get("resources") or [])
    ]
    if not found:
        raise ConfigError(
            f"no rule covers the resources {', '.join(sorted(wanted))}",
            where="resources[*].resources",
            hint="pass --resources with names exactly as they appear in the config",
        )
    return found


def key_names(doc: Document, resources: Sequence[str], provider_type: str) -> list[str]:
    """Key names, in order, of the first ``provider_type`` provider covering ``resources``."""
    for _, rule in _rules_for(doc, resources):
        for entry in rule.get("providers") or []:
            if _provider_type(entry) == provider_type:
                return [str(k.get("name")) for k in entry[provider_type].get("keys") or []]
    return []


def write_provider_type(doc: Document, resources: Sequence[str]) -> str:
    """The type of the provider that writes ``resources`` (the first one)."""
    _, rule = _rules_for(doc, resources)[0]
    providers = rule.get("providers") or []
    if not providers:
        raise ConfigError("the rule has no providers", where="resources[*].providers")
    return _provider_type(providers[0])


def add_read_key(
    doc: Document, resources: Sequence[str], provider_type: str, name: str, secret_b64: str
) -> Document:
    """Add key ``name`` as the *last* (read-only) key of the ``provider_type`` provider.

    When no rule covering ``resources`` has such a provider yet, a new one holding
    only this key is inserted right after the first provider (read-only position).
    """
    if provider_type not in LOCAL_KEY_TYPES:
        raise ConfigError(f"{provider_type} has no local keys to add")
    new = copy.deepcopy(doc)
    for index, rule in _rules_for(new, resources):
        providers = rule.setdefault("providers", [])
        target = next((p for p in providers if _provider_type(p) == provider_type), None)
        if target is None:
            providers.insert(min(1, len(providers)), {provider_type: {"keys": []}})
            target = providers[min(1, len(providers) - 1)]
        keys = target[provider_type].setdefault("keys", [])
        if any(k.get("name") == name for k in keys):
            raise ConfigError(
                f"key {name!r} already exists",
                where=f"resources[{index}].providers[{provider_type}].keys",
                hint="choose another --key-name",
            )
        keys.append({"name": name, "secret": secret_b64})
    return new


def promote_key(doc: Document, resources: Sequence[str], provider_type: str, name: str) -> Document:
    """Make key ``name`` the write key: its provider first, the key first in it."""
    new = copy.deepcopy(doc)
    for index, rule in _rules_for(new, resources):
        providers = rule.get("providers") or []
        pos = next((i for i, p in enumerate(providers) if _provider_type(p) == provider_type), None)
        if pos is None:
            raise ConfigError(
                f"no {provider_type} provider to promote",
                where=f"resources[{index}].providers",
                hint="run the prepare stage first",
            )
        provider = providers.pop(pos)
        providers.insert(0, provider)
        keys = provider[provider_type].get("keys") or []
        kpos = next((i for i, k in enumerate(keys) if k.get("name") == name), None)
        if kpos is None:
            raise ConfigError(
                f"key {name!r} is not in the {provider_type} provider",
                where=f"resources[{index}].providers[0].{provider_type}.keys",
                hint="run the prepare stage first",
            )
        keys.insert(0, keys.pop(kpos))
    return new


def remove_keys(
    doc: Document, resources: Sequence[str], provider_type: str, names: Iterable[str]
) -> Document:
    """Remove the named keys; a local-key provider left without keys is removed too."""
    drop = set(names)
    new = copy.deepcopy(doc)
    for _, rule in _rules_for(new, resources):
        kept = []
        for entry in rule.get("providers") or []:
            if _provider_type(entry) == provider_type and provider_type in LOCAL_KEY_TYPES:
                keys = [
                    k for k in entry[provider_type].get("keys") or [] if k.get("name") not in drop
                ]
                if not keys:
                    continue
                entry[provider_type]["keys"] = keys
            kept.append(entry)
        if not kept:
            raise ConfigError("pruning would leave a rule without providers")
        rule["providers"] = kept
    return new


def covered_resources(doc: Document, resources: Sequence[str]) -> list[str]:
    """Every resource named by the rules an edit for ``resources`` would change."""
    names: list[str] = []
    for _, rule in _rules_for(doc, resources):
        names += [r for r in rule.get("resources") or [] if r not in names]
    return names


def has_provider(doc: Document, resources: Sequence[str], ptype: str) -> bool:
    """True when every rule covering ``resources`` already has a ``ptype`` provider."""
    return all(
        any(_provider_type(p) == ptype for p in rule.get("providers") or [])
        for _, rule in _rules_for(doc, resources)
    )


def insert_provider(
    doc: Document, resources: Sequence[str], provider: dict[str, Any], *, position: int
) -> Document:
    """Insert a whole provider entry (e.g. ``{"kms": {...}}`` or ``{"identity": {}}``)."""
    ptype = _provider_type(provider)
    new = copy.deepcopy(doc)
    for index, rule in _rules_for(new, resources):
        providers = rule.setdefault("providers", [])
        if ptype == "kms":
            name = provider["kms"].get("name")
            if any(_provider_type(p) == "kms" and p["kms"].get("name") == name for p in providers):
                raise ConfigError(
                    f"kms provider {name!r} already present", where=f"resources[{index}]"
                )
        elif any(_provider_type(p) == ptype for p in providers):
            raise ConfigError(
                f"the rule already has an {ptype!r} provider", where=f"resources[{index}]"
            )
        providers.insert(min(position, len(providers)), copy.deepcopy(provider))
    return new


def move_provider_first(
    doc: Document, resources: Sequence[str], ptype: str, name: str | None = None
) -> Document:
    """Move the provider of type ``ptype`` (kms: with ``name``) to the front."""
    new = copy.deepcopy(doc)
    for index, rule in _rules_for(new, resources):
        providers = rule.get("providers") or []
        pos = next(
            (
                i
                for i, p in enumerate(providers)
                if _provider_type(p) == ptype and (name is None or p[ptype].get("name") == name)
            ),
            None,
        )
        if pos is None:
            raise ConfigError(f"no {ptype} provider to promote", where=f"resources[{index}]")
        providers.insert(0, providers.pop(pos))
    return new


def remove_provider(
    doc: Document, resources: Sequence[str], ptype: str, name: str | None = None
) -> Document:
    """Remove the provider of type ``ptype`` (kms: with ``name``)."""
    new = copy.deepcopy(doc)
    for _, rule in _rules_for(new, resources):
        providers = [
            p
            for p in rule.get("providers") or []
            if not (_provider_type(p) == ptype and (name is None or p[ptype].get("name") == name))
        ]
        if not providers:
            raise ConfigError("pruning would leave a rule without providers")
        rule["providers"] = providers
    return new


def split_rule(doc: Document, resources: Sequence[str]) -> Document:
    """Move ``resources`` out of the rules that share them into a rule of their own.

    The new rule holds a copy of the shared rule's providers and goes right before it,
    so every resource keeps exactly the providers it had: the split changes no
    encryption behaviour, only lets a stage edit the named resources apart. Lists are
    edited in place so their YAML style (flow ``[a, b]`` or block) survives.
    """
    wanted = list(dict.fromkeys(resources))
    new = copy.deepcopy(doc)
    rules = new.get("resources")
    if not isinstance(rules, list):
        raise ConfigError("the document has no `resources:` list", where="resources")
    index = 0
    found: list[str] = []
    while index < len(rules):
        rule = rules[index]
        names = list(rule.get("resources") or []) if isinstance(rule, dict) else []
        taken = [n for n in names if n in wanted]
        found += taken
        if taken and len(taken) < len(names):
            part = copy.deepcopy(rule)
            _replace_items(part["resources"], taken)
            _replace_items(rule["resources"], [n for n in names if n not in taken])
            rules.insert(index, part)
            index += 1
        index += 1
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ConfigError(
            f"no rule names {', '.join(missing)}",
            where="resources[*].resources",
            hint="pass names exactly as they appear in the config",
        )
    return new


def _replace_items(items: list[Any], values: Sequence[Any]) -> None:
    del items[:]
    items.extend(values)
