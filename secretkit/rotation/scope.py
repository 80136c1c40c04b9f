"""What a staged procedure covers: whole rules of the config, never part of one.

A stage edits *rules* (the provider list of ``resources: [secrets, configmaps]`` is
one list), so everything those rules cover is re-encrypted and proven, not only the
names an operator typed. :func:`rule_scope` turns ``--resources`` into the rules it
selects and refuses when the names cover only part of them, naming the rest and the
two ways on: name them too, or split the rule first (``secretkit config split-rule``).

:class:`ScopeMatcher` answers, for an etcd key's owner, whether one of the selected
rules governs it (upstream's lookup: exact ``resource.group``, then ``*.<group>``,
then ``*.*``), so the re-encryption proof counts exactly what the stage changes,
wildcards included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secretkit.core.encryption_config.match import governing_rules
from secretkit.core.encryption_config.model import EncryptionConfig
from secretkit.core.encryption_config.validate import parse_group_resource
from secretkit.core.layout import KeyOwner
from secretkit.errors import UsageError


@dataclass(frozen=True)
class RuleScope:
    """The rules a stage edits and every resource name they list (file order)."""

    rule_indexes: tuple[int, ...]
    names: tuple[str, ...]


def _quoted(names: Sequence[str]) -> str:
    return ",".join(names)


def rule_scope(config: EncryptionConfig, requested: Sequence[str]) -> RuleScope:
    """The rules ``requested`` names select; refuse a selection of part of a rule.

    Each name must appear literally in a rule (the rule a stage will edit). A name
    only a wildcard rule covers, or no rule at all, is refused with the name to use.
    """
    wanted = list(dict.fromkeys(n.strip() for n in requested if n.strip()))
    if not wanted:
        raise UsageError("no resource given", where="--resources", hint="e.g. --resources secrets")
    indexes: list[int] = []
    for name in wanted:
        literal = [i for i, rule in enumerate(config.rules) if name in rule.resources]
        if literal:
            indexes += [i for i in literal if i not in indexes]
            continue
        group, resource = parse_group_resource(name)
        covering = governing_rules(config, resource, group)
        if covering:
            rule = config.rules[covering[0]]
            raise UsageError(
                f"{name} is covered by the rule resources[{covering[0]}] "
                f"({_quoted(rule.resources)}), not named in it",
                where="--resources",
                hint=f"a stage edits that whole rule: pass --resources {_quoted(rule.resources)}",
            )
        raise UsageError(
            f"no rule of the config covers {name} (it is stored in plaintext by default)",
            where="--resources",
            hint=f"add a rule for it first, e.g. `- resources: [{name}]` with "
            "`providers: [{identity: {}}]`, on every node, and restart the apiservers",
        )
    indexes.sort()
    names: list[str] = []
    for index in indexes:
        names += [n for n in config.rules[index].resources if n not in names]
    others = [n for n in names if n not in wanted]
    if others:
        raise UsageError(
            f"--resources {_quoted(wanted)} names part of a rule: the same rule also covers "
            f"{_quoted(others)}, which a stage would change too",
            where="--resources",
            hint=f"pass --resources {_quoted(names)} to treat them together, or split the "
            f"rule first: `secretkit config split-rule --config FILE --resources "
            f"{_quoted(wanted)}` (on every node's file; it changes no provider)",
        )
    return RuleScope(tuple(indexes), tuple(names))


class ScopeMatcher:
    """Is an etcd key governed by one of a config's selected rules? (cached per resource)"""

    def __init__(self, config: EncryptionConfig, rule_indexes: Sequence[int]) -> None:
        self.config = config
        self.rule_indexes = frozenset(rule_indexes)
        self._cache: dict[tuple[str, str], bool] = {}

    def governs(self, group: str, resource: str) -> bool:
        """True when a selected rule supplies the providers of ``resource`` in ``group``."""
        found = self._cache.get((group, resource))
        if found is None:
            rules = governing_rules(self.config, resource, group)
            found = self._cache[(group, resource)] = bool(self.rule_indexes.intersection(rules))
        return found

    def covers(self, owner: KeyOwner) -> bool:
        """True when a selected rule governs any API resource that reads the key."""
        return any(self.governs(group, resource) for group, resource in owner.resources)


def rule_indexes_of(config: EncryptionConfig, names: Sequence[str]) -> tuple[int, ...]:
    """Indexes of the rules that list any of ``names`` literally (a recorded scope)."""
    wanted = set(names)
    return tuple(i for i, rule in enumerate(config.rules) if wanted.intersection(rule.resources))
