"""Report rendering: the JSON schema, JUnit XML and the text summary."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from secretkit.audit.model import AuditReport, FindingKind
from secretkit.audit.render import report_to_json, report_to_junit, report_to_text
from tests.unit.audit.helpers import VECTORS, classifier, config, stored

FAIL_ON = (FindingKind.PLAINTEXT, FindingKind.UNDECRYPTABLE)


def _report(limit: int = 1000) -> AuditReport:
    report = AuditReport(source="test", prefix="/registry", findings_limit=limit)
    c = classifier(config(), decrypt=True)
    for v in VECTORS:
        if v["upstream_read"]["reader"] == "all-providers":
            report.add(c.classify(v["etcd_key"].encode(), stored(v), 1))
    return report


def test_json_schema_fields() -> None:
    doc = report_to_json(_report(), FAIL_ON)
    assert set(doc) == {
        "schema",
        "source",
        "prefix",
        "revision",
        "config",
        "decrypt_checked",
        "history",
        "protected_resources",
        "kms_current_key_ids",
        "totals",
        "summary",
        "findings",
        "findings_truncated",
        "notes",
        "fail_on",
        "failed",
    }
    assert doc["schema"] == "secretkit.audit.report/v1"
    assert doc["totals"]["objects"] == sum(r["objects"] for r in doc["summary"])
    assert doc["totals"]["findings"]["undecryptable"] == sum(
        1
        for v in VECTORS
        if v["upstream_read"]["reader"] == "all-providers" and not v["upstream_read"]["ok"]
    )
    assert doc["failed"] is True


def test_findings_are_bounded_but_counted() -> None:
    report = _report(limit=3)
    assert len(report.offending) == 3
    assert report.dropped_offending > 0
    doc = report_to_json(report, FAIL_ON)
    assert doc["findings_truncated"] == report.dropped_offending
    assert doc["totals"]["findings"]["stale"] > 3


def test_junit_has_one_case_per_check_and_resource() -> None:
    xml = report_to_junit(_report(), FAIL_ON)
    suite = ET.fromstring(xml.split("?>", 1)[1])  # noqa: S314 - our own output
    cases = suite.findall("testcase")
    assert len(cases) == 4 * 2  # 4 finding kinds x {configmaps, secrets}
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert ("audit.undecryptable", "secrets") in failed
    assert ("audit.stale", "secrets") not in failed  # stale is not in fail_on
    assert suite.get("failures") == str(len(failed))


def test_text_summary_lists_offenders_and_result() -> None:
    text = report_to_text(_report(), FAIL_ON)
    assert "UNDECRYPTABLE" in text
    assert "RESULT: FAIL (plaintext, undecryptable)" in text
    assert "RESOURCE" in text.splitlines()[3]
    clean = AuditReport(source="x", prefix="/registry")
    assert report_to_text(clean, FAIL_ON).endswith("RESULT: PASS")


def test_junit_of_an_audit_over_nothing_fails() -> None:
    """A CI that reads the JUnit file, not the exit code, must not record a pass."""
    empty = AuditReport(source="x", prefix="/regsitry", nothing_checked=True)
    xml = report_to_junit(empty, FAIL_ON)
    assert 'failures="1"' in xml and 'name="nothing_checked"' in xml
    clean = AuditReport(source="x", prefix="/registry")
    assert 'failures="0"' in report_to_junit(clean, FAIL_ON)
