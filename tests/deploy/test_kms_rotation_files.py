"""docs/deploy/kms-rotation: valid manifests and units that agree with the real CLI and metrics."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from secretkit.cli.kms_cmd import rotate
from secretkit.rotation.kms import KMSRotationReport
from secretkit.rotation.schedule import ScheduleOutcome, metrics_text
from tests.fixtures.promql import Sample, evaluate, samples_from_text

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "kms-rotation"
VERSIONS = ["1.30.0", "1.37.0"]


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def _parse(args: list[str]) -> dict[str, Any]:
    ctx = rotate.make_context("rotate", list(args), resilient_parsing=False)
    return dict(ctx.params)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["cronjob.yaml", "rbac.yaml"])
def test_manifests_pass_strict_schema_validation(name: str, version: str) -> None:
    for doc in _docs(name):
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_cronjob_runs_a_scheduled_rotation_the_cli_accepts() -> None:
    (job,) = _docs("cronjob.yaml")
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["secretkit", "kms", "rotate"]
    params = _parse(container["args"])
    assert params["lease"] == "kube-system/secretkit-kms-rotation"
    assert params["record"] == "kube-system/secretkit-kms-rotations"
    assert params["min_age"] == 720 * 3600
    assert not params["retire_old"]  # retiring is by hand, after compaction
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for path in ("/etc/secretkit", "/etc/kubernetes/enc", "/etc/kubernetes/pki"):
        assert mounts[path].get("readOnly") is True
    # every file the arguments name is under a mount
    for flag in ("backends_file", "config_path", "cacert", "cert", "key", "metrics_textfile"):
        value = str(params[flag])
        assert any(value.startswith(m + "/") for m in mounts), (flag, value)
    # the ServiceAccount of rbac.yaml may hold exactly that Lease and record
    rbac = {(d["kind"], d["metadata"]["name"]): d for d in _docs("rbac.yaml")}
    assert pod["serviceAccountName"] == "secretkit-kms-rotate"
    role = rbac[("Role", "secretkit-kms-rotate")]
    names = {n for r in role["rules"] for n in r.get("resourceNames", [])}
    assert names == {"secretkit-kms-rotation", "secretkit-kms-rotations"}


def test_the_systemd_service_runs_the_same_rotation() -> None:
    unit = (DEPLOY / "secretkit-kms-rotate.service").read_text()
    line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[:3] == ["/opt/secretkit/bin/secretkit", "kms", "rotate"]
    params = _parse(argv[3:])
    assert params["lease"] and params["record"] and params["min_age"] == 720 * 3600
    assert "SuccessExitStatus=3" in unit  # refused is not a failure of the unit


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze comes with Debian's systemd package"
    root = tmp_path / "root"
    binary = root / "opt" / "secretkit" / "bin" / "secretkit"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (root / "usr" / "lib").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd", root / "usr" / "lib" / "systemd", symlinks=True)
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    for name in ("secretkit-kms-rotate.service", "secretkit-kms-rotate.timer"):
        shutil.copy(DEPLOY / name, units / name)
    done = subprocess.run(
        [tool, "verify", f"--root={root}", "secretkit-kms-rotate.timer",
         "secretkit-kms-rotate.service"],
        capture_output=True, text=True, check=False,
    )
    problems = [
        line for line in done.stderr.splitlines()
        # units this minimal root does not carry (network-online, the plugin's unit)
        if "secretkit-kms-plugin.service" not in line and line.strip()
    ]
    assert done.returncode == 0 or not problems, done.stderr


def _exposition(outcome: ScheduleOutcome) -> list[Sample]:
    return samples_from_text(metrics_text(outcome, now=10_000_000.0))


def test_every_alert_names_metrics_the_job_writes_and_fires_only_when_due() -> None:
    (rule,) = _docs("prometheus-rule.yaml")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    young = ScheduleOutcome("skipped", "kms-prod", "k", key_age_seconds=3 * 86400,
                            key_created=10_000_000.0 - 3 * 86400)
    old = ScheduleOutcome("failed", "kms-prod", "k", key_age_seconds=40 * 86400,
                          key_created=10_000_000.0 - 40 * 86400)
    rotated = ScheduleOutcome("rotated", "kms-prod", "k2", key_age_seconds=0.0,
                              report=KMSRotationReport("kms-prod", "k", "k2", rewritten=9))
    for name, expr in alerts.items():
        for outcome in (young, old, rotated):
            evaluate(expr, _exposition(outcome), now=10_000_000.0)  # names resolve
        del name
    assert evaluate(alerts["SecretkitKMSKeyTooOld"], _exposition(old), now=10_000_000.0)
    assert not evaluate(alerts["SecretkitKMSKeyTooOld"], _exposition(young), now=10_000_000.0)
    assert evaluate(alerts["SecretkitKMSRotationFailing"], _exposition(old), now=10_000_000.0)
    assert not evaluate(
        alerts["SecretkitKMSRotationFailing"], _exposition(rotated), now=10_000_000.0
    )
    assert evaluate(
        alerts["SecretkitKMSRotationNotRunning"], _exposition(rotated), now=10_000_000.0 + 3e5
    )
