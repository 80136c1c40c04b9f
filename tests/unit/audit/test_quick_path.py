"""The scan's quick path (rows counted without records) gives the same report as records.

Values are the upstream vectors (written by the real apiserver) plus malformed
variants, under keys of several resources, with each scope policy the CLI builds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from secretkit.audit.classify import Classifier, ScopePolicy
from secretkit.audit.model import AuditReport
from secretkit.audit.scan import classify_stream
from secretkit.formats import encode_kmsv1
from tests.unit.audit.helpers import VECTORS, classifier, config, stored

KEYS = [
    b"/registry/secrets/ns1/a",
    b"/registry/configmaps/ns1/b",
    b"/registry/apps/deployments/ns1/c",
    b"/registry/services/specs/ns1/d",
    b"/registry/secrets",
    b"/elsewhere/secrets/ns1/e",
    b"/registry/secrets/ns\xff/f",
]


def _values() -> list[bytes]:
    values = [stored(v) for v in VECTORS]
    broken = [v[: len(v) // 2] for v in values] + [v[:40] for v in values]
    odd = [b"", b"k8s:enc:aesgcm:v1:", b"k8s:enc:aesgcm:v1:nocolon", b"garbage", b"{", b"k8s\x00"]
    # no upstream vector uses kms v1: a layout-valid value and a truncated one
    kms_v1 = [b"k8s:enc:kms:v1:p1:" + encode_kmsv1(b"d" * 32, b"x" * 40), b"k8s:enc:kms:v1:p1:\x00"]
    return values + broken + odd + kms_v1


class _KV:
    def __init__(self, key: bytes, value: bytes, revision: int) -> None:
        self.key, self.value, self.mod_revision = key, value, revision
        self.create_revision, self.version = revision, 1


def _items() -> list[tuple[Any, bool]]:
    items = []
    for i, value in enumerate(_values()):
        for j, key in enumerate(KEYS):
            items.append((_KV(key, value, i * 10 + j), (i + j) % 5 == 0))
    return items


def _shape(report: AuditReport) -> dict[str, Any]:
    return {
        "totals": (report.total_objects, report.total_bytes, report.historical_values),
        "rows": {k: dataclasses.asdict(r) for k, r in report.rows.items()},
        "findings": (dict(report.finding_counts), dict(report.historical_finding_counts)),
        "offending": [r.to_json() for r in report.offending],
        "dropped": report.dropped_offending,
    }


POLICIES = {
    "default": ScopePolicy(),
    "all-resources": ScopePolicy(all_resources=True),
    "explicit": ScopePolicy(resources=("secrets", "deployments.apps"), explicit=True),
    "explicit-all": ScopePolicy(resources=("configmaps",), explicit=True, all_resources=True),
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_quick_path_report_equals_record_by_record(name: str) -> None:
    policy = POLICIES[name]
    items = _items()
    expected = AuditReport(source="t", prefix="/registry", findings_limit=50)
    full = Classifier(policy=policy)
    for kv, historical in items:
        record = full.classify_in_scope(kv.key, kv.value, kv.mod_revision, historical=historical)
        if record is not None:
            expected.add(record)
    got = AuditReport(source="t", prefix="/registry", findings_limit=50)
    quick = Classifier(policy=policy)
    assert quick.has_quick_path
    classify_stream(quick, iter(items), got)
    assert _shape(got) == _shape(expected)
    # the comparison means something: clean rows and findings both occur
    assert expected.total_objects > 0 and expected.rows
    assert name == "all-resources" or sum(expected.finding_counts.values()) > 0


def test_quick_row_matches_each_vector_record() -> None:
    c = Classifier(policy=ScopePolicy(all_resources=True))
    seen_rows = 0
    for v in VECTORS:
        key = v["etcd_key"].encode()
        value = stored(v)
        row = c.quick(c.scope_of(key), value)
        record = c.classify(key, value, 1)
        if row is None:
            assert record.findings or record.provider == "identity"
            continue
        seen_rows += 1
        assert not record.findings
        assert (row.resource, row.provider, row.key) == (
            record.resource,
            record.provider,
            record.key_label,
        )
    assert seen_rows > 0


@pytest.mark.parametrize("decrypt", [False, True])
def test_config_scan_report_equals_record_by_record(decrypt: bool) -> None:
    # names are split out only while the offending list has room: same report anyway
    items = _items()
    expected = AuditReport(source="t", prefix="/registry", findings_limit=20)
    full = classifier(config(), decrypt=decrypt)
    for kv, historical in items:
        record = full.classify_in_scope(kv.key, kv.value, kv.mod_revision, historical=historical)
        if record is not None:
            expected.add(record)
    got = AuditReport(source="t", prefix="/registry", findings_limit=20)
    scanner = classifier(config(), decrypt=decrypt)
    assert not scanner.has_quick_path
    classify_stream(scanner, iter(items), got)
    assert _shape(got) == _shape(expected)
    assert expected.dropped_offending > 0
    assert all(r.name for r in got.offending if r.key.startswith("/registry/secrets/ns"))
