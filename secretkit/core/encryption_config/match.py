"""Which providers apply to a resource, and which resource an etcd key belongs to.

Lookup follows upstream ``transformerFromOverrides``: the exact ``resource.group``,
then ``*.<group>`` (``*.`` is the core group), then ``*.*``, else identity. A
resource listed in several rules gets the providers of all of them, in file order
(upstream appends them to one prefix chain).
"""

from __future__ import annotations

from secretkit.core.encryption_config.model import EncryptionConfig, IdentityProvider, Provider
from secretkit.core.encryption_config.validate import parse_group_resource
from secretkit.core.layout import Layout
from secretkit.errors import UsageError


def _rule_table(cfg: EncryptionConfig) -> dict[tuple[str, str], tuple[Provider, ...]]:
    table: dict[tuple[str, str], tuple[Provider, ...]] = {}
    for rule in cfg.rules:
        for name in rule.resources:
            key = parse_group_resource(name)
            table[key] = table.get(key, ()) + rule.providers
    return table


def providers_for(cfg: EncryptionConfig, resource: str, group: str = "") -> tuple[Provider, ...]:
    """Return the ordered providers for ``resource`` in ``group`` (``""`` = core)."""
    table = _rule_table(cfg)
    for key in ((group, resource), (group, "*"), ("*", "*")):
        if key in table:
            return table[key]
    return (IdentityProvider(),)


def governing_rules(cfg: EncryptionConfig, resource: str, group: str = "") -> tuple[int, ...]:
    """Indexes of the rules whose providers :func:`providers_for` returns (empty: none,
    the default identity). A valid config names a resource in one rule only."""
    found: dict[tuple[str, str], list[int]] = {}
    for index, rule in enumerate(cfg.rules):
        for name in rule.resources:
            found.setdefault(parse_group_resource(name), []).append(index)
    for key in ((group, resource), (group, "*"), ("*", "*")):
        if key in found:
            return tuple(found[key])
    return ()


def resource_for_etcd_key(etcd_key: str, prefix: str = "/registry") -> tuple[str, str]:
    """Return ``(resource, group)`` of the object stored under ``etcd_key``.

    The layout is :mod:`secretkit.core.layout` (read off a real kube-apiserver); for a
    key two API resources share (``events/``) the first is returned. Keys that belong
    to no resource (apiserver-internal, or outside ``prefix``) are a :class:`UsageError`.
    """
    owner = Layout(prefix).owner(etcd_key)
    if owner.kind == "outside":
        raise UsageError(
            f"etcd key is not under the prefix {prefix!r}",
            where=etcd_key,
            hint="the prefix must be the one the apiserver stores objects under "
            "(its etcd prefix; /registry by default)",
        )
    if owner.kind == "internal":
        raise UsageError(
            "etcd key belongs to no API resource (apiserver-internal, stored in plaintext "
            "whatever the config)",
            where=etcd_key,
        )
    if not owner.resources:
        raise UsageError("etcd key names no resource", where=etcd_key)
    group, resource = owner.resources[0]
    return resource, group


def etcd_prefixes_for(resource: str, group: str = "", prefix: str = "/registry") -> list[str]:
    """Key prefixes (ending in ``/``) that can hold objects of ``resource`` in ``group``.

    See :meth:`secretkit.core.layout.Layout.prefixes`.
    """
    return Layout(prefix).prefixes(group, resource)
