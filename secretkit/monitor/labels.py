"""Metric label values of the coverage table, bounded and free of names and secrets.

Every object is counted in one *row*: (resource, provider, key), where key is the
local key name, ``<kms provider>/<key_id>``, or ``-`` (the audit's summary row). The
values come from etcd keys and values, which anyone with etcd write access controls,
so each is checked before it becomes a label:

* resource: a Kubernetes resource name (``secrets``, ``widgets.example.com``); keys
  without an object path below the resource (``<prefix>/<name>``) never name a row,
  so an object name cannot become a label;
* provider: one of the storage formats the audit knows;
* key: printable ASCII without spaces, at most :data:`MAX_KEY_LABEL` characters
  (key names and key_ids are not secret: etcd stores them in clear in every value).

The table holds at most ``max_rows`` rows; objects of any further row are counted
in the ``<other>`` row, so the exporter serves at most ``(max_rows + 1) x 5`` object
series whatever etcd holds. Rows are never dropped until the next full scan, so an
object always leaves the row it was counted in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from secretkit.audit.model import FindingKind, SummaryKey
from secretkit.core.formats.model import ValueProvider

#: label value of the overflow row, and of values that fail a check
OTHER: Final = "<other>"
#: longest key label kept (an AWS key ARN is about 75 characters)
MAX_KEY_LABEL: Final = 256
#: default bound on rows (distinct resource x provider x key)
DEFAULT_MAX_ROWS: Final = 200

_RESOURCE = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_KEY = re.compile(rf"[!-~]{{1,{MAX_KEY_LABEL}}}")
_PROVIDERS = frozenset(p.value for p in ValueProvider)


class Verdict(IntEnum):
    """One verdict per object (the ``verdict`` label); see :func:`primary_verdict`."""

    OK = 0
    PLAINTEXT = 1
    STALE = 2
    UNDECRYPTABLE = 3
    UNKNOWN = 4

    @property
    def label(self) -> str:
        """The label value: ``ok``, ``plaintext``, ``stale``, ``undecryptable``, ``unknown``."""
        return self.name.lower()


VERDICTS: Final = tuple(Verdict)

#: when an object has several findings, the first of these names it
_PRECEDENCE: Final = (
    (FindingKind.UNDECRYPTABLE, Verdict.UNDECRYPTABLE),
    (FindingKind.PLAINTEXT, Verdict.PLAINTEXT),
    (FindingKind.UNKNOWN, Verdict.UNKNOWN),
    (FindingKind.STALE, Verdict.STALE),
)


def primary_verdict(findings: tuple[FindingKind, ...]) -> Verdict:
    """The one verdict an object with ``findings`` is counted under.

    Undecryptable first (the apiserver cannot read it: data loss), then plaintext,
    unknown, stale; ``ok`` without findings. So the object series of a row add up to
    the row's objects, and a plaintext value that is also stale counts as plaintext.
    """
    for kind, verdict in _PRECEDENCE:
        if kind in findings:
            return verdict
    return Verdict.OK


def _resource_label(resource: str) -> str:
    return resource if _RESOURCE.fullmatch(resource) else OTHER


def _key_label(key: str) -> str:
    return key if _KEY.fullmatch(key) else OTHER


@dataclass
class RowTable:
    """Summary rows -> small integers, at most ``max_rows`` of them plus ``<other>``."""

    max_rows: int = DEFAULT_MAX_ROWS
    #: label values of each row, by index; row 0 is ``<other>``
    labels: list[tuple[str, str, str]] = field(default_factory=lambda: [(OTHER, OTHER, OTHER)])
    _index: dict[SummaryKey, int] = field(default_factory=dict, repr=False)
    #: objects counted in ``<other>`` because the table was full (the bound at work)
    overflowed: int = 0

    def index(self, row: SummaryKey, object_path: bool) -> int:
        """The row number of ``row``; ``object_path`` is False for keys without an object path.

        Such keys always count in ``<other>`` (see :func:`has_object_path`), so the
        answer for one key never changes while the table lives.
        """
        if not object_path:
            return 0
        found = self._index.get(row)
        if found is not None:
            return found
        return self._add(row)

    def _add(self, row: SummaryKey) -> int:
        if len(self.labels) > self.max_rows:
            self.overflowed += 1
            return 0
        provider = row.provider if row.provider in _PROVIDERS else OTHER
        labels = (_resource_label(row.resource), provider, _key_label(row.key))
        self.labels.append(labels)
        index = self._index[row] = len(self.labels) - 1
        return index


def has_object_path(key: bytes, root: bytes) -> bool:
    """True when ``key`` has a name below its resource segments (``<root><resource>/<name>``).

    Resources of a group (a first segment with a dot) and ``services/<kind>`` take two
    segments. Keys that end at the resource (``<root><something>``) would make the
    last segment, perhaps an object's name, the resource label: they count in
    ``<other>``.
    """
    start = len(root)
    if not key.startswith(root):
        return False
    slash = key.find(b"/", start)
    if slash <= start:
        return False
    first = key[start:slash]
    if b"." in first or first == b"services":
        slash = key.find(b"/", slash + 1)
        if slash < 0:
            return False
    return slash + 1 < len(key)
