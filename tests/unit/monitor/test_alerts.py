"""The shipped alert rules and dashboard name only metrics the exporter serves, and fire.

The exporter's families are read from a real exposition (every family populated),
so a renamed metric breaks this test, not a dashboard in production.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from secretkit.monitor.metrics import METRIC_NAMES, MonitorMetrics, WatchProgress
from tests.fixtures.promql import evaluate, metric_names, samples_from_text
from tests.unit.monitor.helpers import (
    CURRENT,
    PLAINTEXT,
    STALE,
    UNDECRYPTABLE,
    UNKNOWN,
    make_coverage,
    record,
)

DEPLOY = Path(__file__).resolve().parents[3] / "docs" / "deploy" / "monitor"
DAY = 86_400.0


def _exposition(*, findings: bool, age: float = 0.0, following: bool = True) -> str:
    """/metrics of a monitor whose table holds findings (or only clean values)."""
    start = 1_000_000.0
    metrics = MonitorMetrics(max_rows=50, clock=lambda: start + age)
    coverage = make_coverage(clock=start)
    values = [CURRENT] + ([PLAINTEXT, STALE, UNDECRYPTABLE, UNKNOWN] if findings else [])
    coverage.count(record(f"/registry/secrets/ns/s{i}".encode(), v) for i, v in enumerate(values))
    metrics.serve(coverage, revision=7, duration=0.1)
    metrics.set_following(following)
    metrics.key_ids = {"kms-prod": "key-2"}
    metrics.history_counts = {}
    metrics.snapshot_counts = {}
    metrics.snapshot_mtime = start
    metrics.progress = lambda: WatchProgress(9, 12, 3, 5, 1, 0.01)
    return generate_latest(metrics.registry).decode()


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus-rule.yaml").read_text())
    assert doc["kind"] == "PrometheusRule"
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def _rule(name: str) -> str:
    return next(str(r["expr"]) for r in _rules() if r["alert"] == name)


def _served_samples() -> set[str]:
    return {s.name for f in text_string_to_metric_families(_exposition(findings=True))
            for s in f.samples}


def test_the_exposition_serves_exactly_the_documented_families() -> None:
    families = {f.name for f in text_string_to_metric_families(_exposition(findings=True))}
    # prometheus_client adds a <counter>_created family per counter (its start time)
    assert {f for f in families if not f.endswith("_created")} == set(METRIC_NAMES)


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_every_alert_names_served_metrics(rule: dict[str, Any]) -> None:
    names = metric_names(str(rule["expr"]))
    assert names, "an alert must read at least one metric"
    assert names <= _served_samples(), names - _served_samples()
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"]


def test_every_dashboard_query_names_served_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    served = _served_samples()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        names = set(re.findall(r"\b(secretkit_[a-z0-9_]+)\b", expr))
        assert names and names <= served, (expr, names - served)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def _fires(expr: str, text: str, now: float = 0.0) -> list[Any]:
    result = evaluate(expr, samples_from_text(text), now)
    assert isinstance(result, list)
    return result


@pytest.mark.parametrize(
    ("alert", "labels"),
    [
        ("SecretkitPlaintextInEtcd", {"resource": "secrets"}),
        ("SecretkitUndecryptableInEtcd",
         {"resource": "secrets", "provider": "aesgcm", "key": "gone"}),
        ("SecretkitUnknownValuesInEtcd", {"resource": "secrets"}),
    ],
)
def test_finding_alerts_fire_on_findings_only(alert: str, labels: dict[str, str]) -> None:
    fired = _fires(_rule(alert), _exposition(findings=True))
    assert [dict(s.labels) for s in fired] == [labels]
    assert fired[0].value == 1
    assert not _fires(_rule(alert), _exposition(findings=False))


def test_stale_alert_fires_once_stale_values_are_a_day_old() -> None:
    expr = _rule("SecretkitStaleValuesAfterRotation")
    assert not _fires(expr, _exposition(findings=True, age=DAY - 60))
    fired = _fires(expr, _exposition(findings=True, age=DAY + 60))
    assert [dict(s.labels) for s in fired] == [
        {"resource": "secrets", "provider": "aesgcm", "key": "key1"}
    ]
    assert not _fires(expr, _exposition(findings=False, age=DAY + 60))


def test_not_scanning_alert_fires_when_not_following_or_absent() -> None:
    expr = _rule("SecretkitMonitorNotScanning")
    assert not _fires(expr, _exposition(findings=False))
    assert _fires(expr, _exposition(findings=False, following=False))
    assert _fires(expr, "")  # nothing scraped at all


def test_the_evaluator_subset() -> None:
    text = 'a{x="1",y="p"} 2\na{x="2",y="q"} 3\nb 5\n'
    samples = samples_from_text(text)
    assert evaluate("sum(a)", samples, 0)[0].value == 5  # type: ignore[index]
    by_x = evaluate("sum by (x) (a) > 2", samples, 0)
    assert [dict(s.labels) for s in by_x] == [{"x": "2"}]  # type: ignore[union-attr]
    assert evaluate('a{y=~"p|z"}', samples, 0)[0].value == 2  # type: ignore[index]
    assert evaluate("time() - b", samples, 100)[0].value == 95  # type: ignore[index]
    assert evaluate("absent(c)", samples, 0)[0].value == 1  # type: ignore[index]
    assert evaluate("absent(b)", samples, 0) == []
    assert len(evaluate("max(b) < 1 or absent(b)", samples, 0)) == 0  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        evaluate("rate(a[5m])", samples, 0)


def test_sees_nothing_fires_per_monitor_also_when_its_rows_fell_to_zero() -> None:
    expr = _rule("SecretkitMonitorSeesNothing")
    assert not _fires(expr, _exposition(findings=False))  # counting objects
    following = "secretkit_monitor_following 1\n"
    assert _fires(expr, following)  # no row at all
    # every object gone: the rows stay exported at 0 (they once held objects)
    assert _fires(expr, following + 'secretkit_monitor_objects{resource="secrets",'
                  'provider="aesgcm",key="key1",verdict="current"} 0\n')
    assert not _fires(expr, "secretkit_monitor_following 0\n")  # NotScanning's case
