"""Render an :class:`AuditReport` as human text, JSON (schema v1) or JUnit XML.

The JSON document is the stable interface (docs/audit.md); text is for people and may
change. Nothing rendered here contains plaintext, key material or ciphertext.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as ET

from secretkit.audit.model import REPORT_SCHEMA, AuditReport, FindingKind, ObjectRecord

#: offending objects listed per finding kind in text output unless ``--show-all``
TEXT_LIST_LIMIT = 20

_FINDING_TEXT = {
    FindingKind.PLAINTEXT: "PLAINTEXT (readable by anyone who can read etcd or its backups)",
    FindingKind.UNDECRYPTABLE: "UNDECRYPTABLE (data-loss risk: the config cannot read them)",
    FindingKind.STALE: "STALE (readable, but not written by the current write key)",
    FindingKind.UNKNOWN: "UNKNOWN format",
}
_ORDER = (
    FindingKind.PLAINTEXT,
    FindingKind.UNDECRYPTABLE,
    FindingKind.STALE,
    FindingKind.UNKNOWN,
)


def report_to_json(report: AuditReport, fail_on: Iterable[FindingKind]) -> dict[str, Any]:
    """The documented ``-o json`` document (docs/schemas/secretkit.audit.report.v1.json)."""
    fail_on = tuple(fail_on)
    return {
        "schema": REPORT_SCHEMA,
        "source": report.source,
        "prefix": report.prefix,
        "revision": report.revision,
        "config": (
            {"source": report.config_source, "hash": report.config_hash}
            if report.config_source
            else None
        ),
        "decrypt_checked": report.decrypt_checked,
        "history": report.history,
        "protected_resources": list(report.protected_resources),
        "kms_current_key_ids": dict(sorted(report.kms_key_ids.items())),
        "totals": {
            "objects": report.total_objects,
            "bytes": report.total_bytes,
            "historical_values": report.historical_values,
            "internal_keys": report.internal_keys,
            "findings": {k.value: report.finding_counts[k] for k in _ORDER},
            "historical_findings": {k.value: report.historical_finding_counts[k] for k in _ORDER},
        },
        "summary": [
            {
                "resource": key.resource,
                "provider": key.provider,
                "key": key.key,
                "objects": row.objects,
                "bytes": row.bytes,
                "plaintext": row.plaintext,
                "stale": row.stale,
                "undecryptable": row.undecryptable,
                "unknown": row.unknown,
            }
            for key, row in report.sorted_rows()
        ],
        "findings": [record.to_json() for record in report.offending],
        "findings_truncated": report.dropped_offending,
        "notes": list(report.notes),
        "fail_on": [k.value for k in fail_on],
        "failed": report.failed(fail_on),
    }


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _shorten(text: str, width: int = 48) -> str:
    """Middle-ellipsize long kms key_ids so the table stays readable (JSON has them whole)."""
    if len(text) <= width:
        return text
    keep = (width - 3) // 2
    return text[:keep] + "..." + text[-keep:]


def _describe(record: ObjectRecord) -> str:
    where = record.key
    what = record.provider
    if record.key_label != "-":
        what += f" {record.key_label}"
    history = f" (old value at revision {record.mod_revision})" if record.historical else ""
    return f"  {where}{history}: {what}; {'; '.join(record.reasons)}"


def report_to_text(
    report: AuditReport, fail_on: Iterable[FindingKind], *, show_all: bool = False
) -> str:
    """A human summary: counts per resource x provider/key, then offending objects."""
    fail_on = tuple(fail_on)
    lines = [
        f"etcd audit of {report.source} (prefix {report.prefix or '/'}"
        + (f", revision {report.revision})" if report.revision else ")"),
    ]
    if report.config_source:
        lines.append(f"config: {report.config_source} ({report.config_hash})")
    for name, key_id in sorted(report.kms_key_ids.items()):
        lines.append(f"kms provider {name}: current key_id {key_id}")
    lines.append(
        f"{report.total_objects} objects, {_human_bytes(report.total_bytes)}"
        + (f"; {report.historical_values} older values checked" if report.history else "")
        + (
            "; every value decrypted ("
            f"{report.finding_counts[FindingKind.UNDECRYPTABLE]} failed)"
            if report.decrypt_checked
            else ""
        )
    )
    lines.append("")
    header = ("RESOURCE", "PROVIDER", "KEY", "OBJECTS", "STALE", "UNDECRYPTABLE", "PLAINTEXT")
    table = [header] + [
        (
            key.resource,
            key.provider,
            _shorten(key.key),
            str(row.objects),
            str(row.stale),
            str(row.undecryptable),
            str(row.plaintext),
        )
        for key, row in report.sorted_rows()
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.extend(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )
    for kind in _ORDER:
        total = report.count(kind)
        if not total:
            continue
        marker = "!!" if kind in fail_on else "--"
        lines.append("")
        lines.append(f"{marker} {total} {_FINDING_TEXT[kind]}")
        records = [r for r in report.offending if kind in r.findings]
        shown = records if show_all else records[:TEXT_LIST_LIMIT]
        lines.extend(_describe(r) for r in shown)
        hidden = total - len(shown)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more (use --show-all or -o json)")
    for note in report.notes:
        lines.append(f"note: {note}")
    lines.append("")
    failed = [k.value for k in fail_on if report.count(k)]
    if report.nothing_checked:
        failed.append("nothing checked: 0 objects")
    lines.append(f"RESULT: FAIL ({', '.join(failed)})" if failed else "RESULT: PASS")
    return "\n".join(lines)


def report_to_junit(report: AuditReport, fail_on: Iterable[FindingKind]) -> str:
    """JUnit XML: one testcase per finding kind x resource (plus one per checked resource)."""
    fail_on = tuple(fail_on)
    resources = sorted({key.resource for key in report.rows})
    suite = ET.Element("testsuite", name="secretkit-audit")
    failures = 0
    cases = 0
    for kind in _ORDER:
        for resource in resources:
            count = sum(
                getattr(row, kind.value)
                for key, row in report.rows.items()
                if key.resource == resource
            )
            objects = sum(
                row.objects for key, row in report.rows.items() if key.resource == resource
            )
            case = ET.SubElement(suite, "testcase", classname=f"audit.{kind.value}", name=resource)
            cases += 1
            if count and kind in fail_on:
                failures += 1
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"{count} of {objects} {resource} objects are {kind.value}",
                    type=kind.value,
                )
                keys = [
                    r.key
                    for r in report.offending
                    if r.resource == resource and kind in r.findings and not r.historical
                ]
                failure.text = "\n".join(keys[:TEXT_LIST_LIMIT])
            elif count:
                ET.SubElement(case, "system-out").text = f"{count} {kind.value} (not failing)"
    if report.history:
        for kind in _ORDER:
            case = ET.SubElement(suite, "testcase", classname="audit.history", name=kind.value)
            cases += 1
            count = report.historical_finding_counts[kind]
            if count and kind in fail_on:
                failures += 1
                ET.SubElement(
                    case,
                    "failure",
                    message=f"{count} older values still held by etcd are {kind.value}",
                    type=kind.value,
                )
    if report.nothing_checked:
        # a proof over nothing must not read as a pass to a CI that reads this file
        case = ET.SubElement(suite, "testcase", classname="audit.scope", name="nothing_checked")
        ET.SubElement(case, "failure", type="nothing_checked",
                      message="the audit read 0 objects: nothing is proven "
                      "(check --resources and --etcd-prefix, or pass --allow-empty)")
        cases += 1
        failures += 1
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
