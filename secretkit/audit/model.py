"""The audit report model: per-object verdicts, bounded findings, counters (pure data).

An :class:`AuditReport` keeps only counters and a bounded list of offending objects,
so a scan of millions of keys uses flat memory. Nothing here ever holds plaintext,
key material or ciphertext: an :class:`ObjectRecord` carries names, sizes and
revisions only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

#: the ``schema`` of ``audit -o json`` (docs/schemas/secretkit.audit.report.v1.json);
#: a new version on any incompatible change
REPORT_SCHEMA = "secretkit.audit.report/v1"
#: the ``schema`` of ``audit etcd-access|config -o json``
CHECKS_SCHEMA = "secretkit.audit.checks/v1"

#: most keys per etcd range request (pages of large values hold fewer: etcd.pages)
DEFAULT_PAGE_SIZE = 3000

#: default number of offending objects kept in memory per finding kind
DEFAULT_FINDINGS_LIMIT = 1_000

#: offending objects kept with ``--show-all`` (still bounded: memory must stay flat)
SHOW_ALL_FINDINGS_LIMIT = 100_000


class FindingKind(StrEnum):
    """What can be wrong with one stored object (part of the JSON schema)."""

    PLAINTEXT = "plaintext"  # a protected resource stored unencrypted
    STALE = "stale"  # readable, but not written by the current write provider/key
    UNDECRYPTABLE = "undecryptable"  # the current config cannot read it: data-loss risk
    UNKNOWN = "unknown"  # the bytes match no known storage format


#: the SummaryRow counter of each finding kind
_ROW_FIELD = {kind: kind.value for kind in FindingKind}


@dataclass(slots=True)
class ObjectRecord:
    """The classification of one etcd value, without any secret material.

    ``mod_revision`` is the revision that wrote the value; ``historical`` marks older
    values (``--history``) that are no longer the live one. ``namespace`` and ``name``
    are only filled in for objects with findings (the only ones ever listed).
    """

    key: str
    resource: str
    namespace: str | None
    name: str
    provider: str
    size: int
    mod_revision: int
    provider_name: str | None = None
    key_name: str | None = None
    key_id: str | None = None
    dek_source_type: int | None = None
    encoding: str | None = None
    protected: bool = False
    findings: tuple[FindingKind, ...] = ()
    reasons: tuple[str, ...] = ()
    historical: bool = False

    @property
    def key_label(self) -> str:
        """The key column of the summary: key name, kms provider name, or ``-``."""
        return summary_label(self.provider, self.provider_name, self.key_name, self.key_id)

    def to_json(self) -> dict[str, object]:
        """The documented JSON shape of one offending object."""
        return {
            "key": self.key,
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
            "provider": self.provider,
            "provider_name": self.provider_name,
            "key_name": self.key_name,
            "key_id": self.key_id,
            "dek_source_type": self.dek_source_type,
            "encoding": self.encoding,
            "size": self.size,
            "mod_revision": self.mod_revision,
            "historical": self.historical,
            "findings": [f.value for f in self.findings],
            "reasons": list(self.reasons),
        }


def summary_label(
    provider: str, provider_name: str | None, key_name: str | None, key_id: str | None
) -> str:
    """The key column of a summary row: ``<kms name>/<key_id>``, key name, or ``-``."""
    if provider == "kms-v2":
        return f"{provider_name}/{key_id or '?'}"
    return key_name or provider_name or "-"


class SummaryKey(NamedTuple):
    """One row of the summary table: resource x provider x key (x key_id)."""

    resource: str
    provider: str
    key: str


@dataclass
class SummaryRow:
    """Counters of one summary row."""

    objects: int = 0
    bytes: int = 0
    stale: int = 0
    undecryptable: int = 0
    plaintext: int = 0
    unknown: int = 0


@dataclass
class AuditReport:
    """Everything one audit run found; built incrementally by :meth:`add`."""

    source: str
    prefix: str
    revision: int | None = None
    config_source: str | None = None
    config_hash: str | None = None
    decrypt_checked: bool = False
    history: bool = False
    protected_resources: tuple[str, ...] = ()
    kms_key_ids: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: no object was read and the request did not allow that (``--allow-empty``)
    nothing_checked: bool = False
    findings_limit: int = DEFAULT_FINDINGS_LIMIT
    total_objects: int = 0
    total_bytes: int = 0
    historical_values: int = 0
    #: apiserver-internal keys seen (lease and allocation data the apiserver writes in
    #: plaintext whatever the config; never a finding)
    internal_keys: int = 0
    rows: dict[SummaryKey, SummaryRow] = field(default_factory=dict)
    finding_counts: Counter[FindingKind] = field(default_factory=Counter)
    historical_finding_counts: Counter[FindingKind] = field(default_factory=Counter)
    offending: list[ObjectRecord] = field(default_factory=list)
    dropped_offending: int = 0

    def add(self, record: ObjectRecord) -> None:
        """Count one object; keep it (bounded) when it has findings."""
        findings = record.findings
        row_key = SummaryKey(record.resource, record.provider, record.key_label)
        self._count(row_key, record.size, findings, record.historical)
        if findings:
            if len(self.offending) < self.findings_limit:
                self.offending.append(record)
            else:
                self.dropped_offending += 1

    def add_counted(
        self,
        row_key: SummaryKey,
        size: int,
        findings: tuple[FindingKind, ...],
        historical: bool = False,
    ) -> None:
        """Count one object of ``row_key`` without keeping it (its findings included).

        For the scan once the list of offending objects is full: an object with
        findings counts as dropped from that list.
        """
        self._count(row_key, size, findings, historical)
        if findings:
            self.dropped_offending += 1

    def _count(
        self,
        row_key: SummaryKey,
        size: int,
        findings: tuple[FindingKind, ...],
        historical: bool,
    ) -> None:
        if historical:
            self.historical_values += 1
            if findings:
                self.historical_finding_counts.update(findings)
        else:
            self.total_objects += 1
            self.total_bytes += size
            row = self.rows.get(row_key)
            if row is None:
                row = self.rows[row_key] = SummaryRow()
            row.objects += 1
            row.bytes += size
            if findings:
                counts = self.finding_counts
                for finding in findings:
                    field_name = _ROW_FIELD[finding]  # not finding.value: enum lookups are slow
                    setattr(row, field_name, getattr(row, field_name) + 1)
                    counts[finding] += 1

    def add_clean(self, row_key: SummaryKey, objects: int, size: int) -> None:
        """Count ``objects`` live objects without findings (``size`` bytes) in one row."""
        self.total_objects += objects
        self.total_bytes += size
        row = self.rows.get(row_key)
        if row is None:
            row = self.rows[row_key] = SummaryRow()
        row.objects += objects
        row.bytes += size

    def extend(self, records: Iterable[ObjectRecord]) -> None:
        """Add every record of ``records``."""
        for record in records:
            self.add(record)

    def count(self, kind: FindingKind, *, include_history: bool = True) -> int:
        """How many objects (and, by default, historical values) have ``kind``."""
        total = self.finding_counts[kind]
        if include_history:
            total += self.historical_finding_counts[kind]
        return total

    def failed(self, fail_on: Iterable[FindingKind]) -> bool:
        """True when any finding of a kind in ``fail_on`` was seen, or nothing was read
        (an audit over nothing proves nothing; see ``nothing_checked``)."""
        return self.nothing_checked or any(self.count(kind) > 0 for kind in fail_on)

    def sorted_rows(self) -> list[tuple[SummaryKey, SummaryRow]]:
        """Summary rows in a stable order (resource, provider, key)."""
        return sorted(self.rows.items(), key=lambda kv: (kv[0].resource, kv[0].provider, kv[0].key))
