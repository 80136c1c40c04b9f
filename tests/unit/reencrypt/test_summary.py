"""Summary counters, error cap and the JSON schema."""

from __future__ import annotations

import json

import pytest

from secretkit.reencrypt.summary import COUNTERS, MAX_ERRORS, ObjectError, Summary


def test_totals_sum_resources_and_ok_needs_complete_and_no_failures() -> None:
    s = Summary(mode="api")
    s.add("secrets", "seen", 3)
    s.add("secrets", "rewritten", 2)
    s.add("configmaps", "seen")
    s.add("configmaps", "unchanged")
    assert s.totals()["seen"] == 4
    assert not s.ok
    s.complete = True
    assert s.ok
    s.fail(ObjectError("secrets", "ns", "x", 422, "Invalid"))
    assert not s.ok
    assert s.totals()["failed"] == 1


def test_json_schema_fields() -> None:
    s = Summary(mode="etcd", dry_run=True, elapsed_seconds=2.0, complete=True)
    s.add("secrets", "seen", 10)
    data = s.to_json()
    assert data["schema"] == "secretkit.reencrypt.summary/v1"
    assert set(data["totals"]) == set(COUNTERS)
    assert data["objects_per_second"] == 5.0
    assert data["resources"]["secrets"]["seen"] == 10
    json.dumps(data)


def test_error_list_is_capped_but_the_count_is_exact() -> None:
    s = Summary(mode="api")
    for i in range(MAX_ERRORS + 5):
        s.fail(ObjectError("secrets", None, f"n{i}", 500, "InternalError"))
    assert len(s.errors) == MAX_ERRORS
    assert s.errors_dropped == 5
    assert s.totals()["failed"] == MAX_ERRORS + 5
    assert "more failures" in s.to_text()


def test_unknown_counter_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        Summary(mode="api").add("secrets", "bogus")


def test_dry_run_lists_candidates_in_text_and_json() -> None:
    s = Summary(mode="api", dry_run=True)
    s.candidate("secrets", "ns/b")
    s.candidate("secrets", "ns/a")
    assert s.totals()["rewritten"] == 2
    assert s.to_json()["would_rewrite"] == ["secrets ns/a", "secrets ns/b"]
    text = s.to_text()
    assert text.splitlines()[:2] == ["would rewrite: secrets ns/a", "would rewrite: secrets ns/b"]
    assert "would rewrite" in text.splitlines()[3]  # the column header says so too
    # always present, as docs/reencrypt.md shows it: empty unless --dry-run
    assert Summary(mode="api").to_json()["would_rewrite"] == []
