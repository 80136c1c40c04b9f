"""docs/deploy/monitor: the static pod and the systemd unit are valid and agree with the CLI.

The pod passes ``kubernetes-validate --strict`` for the oldest and newest Kubernetes
versions we document; its arguments parse with the real ``secretkit monitor`` parser;
the unit passes ``systemd-analyze verify`` and scores OK in ``systemd-analyze security``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from secretkit.cli.monitor_cmd import monitor

DEPLOY = Path(__file__).resolve().parents[3] / "docs" / "deploy" / "monitor"
POD = DEPLOY / "static-pod.yaml"
UNIT = DEPLOY / "secretkit-monitor.service"
VERSIONS = ["1.30.0", "1.37.0"]
METRICS_PORT = 8788


def _pod() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(POD.read_text())
    return doc


def _parse(args: list[str]) -> dict[str, Any]:
    """The parameters ``secretkit monitor`` would run with (parsed, not run)."""
    ctx = monitor.make_context("monitor", list(args), resilient_parsing=False)
    return dict(ctx.params)


@pytest.mark.parametrize("version", VERSIONS)
def test_static_pod_passes_strict_schema_validation(version: str) -> None:
    kubernetes_validate.validate(_pod(), version, strict=True)


def test_static_pod_validation_can_fail() -> None:
    broken = _pod()
    broken["spec"]["containers"][0]["volumeMount"] = []  # a typo of volumeMounts
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_static_pod_mounts_credentials_read_only_and_probes_the_right_paths() -> None:
    pod = _pod()
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["secretkit", "monitor"]
    params = _parse(container["args"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert all(m.get("readOnly") is True for m in mounts.values())
    for flag in ("cacert", "cert", "key", "config_path"):
        path = str(params[flag])
        assert any(path == m or path.startswith(m + "/") for m in mounts), (flag, path)
    socket = params["kms_sockets"][0].split("=unix://", 1)[1]
    assert any(socket.startswith(m + "/") for m in mounts)
    assert params["metrics_addr"] == f"127.0.0.1:{METRICS_PORT}"
    assert container["livenessProbe"]["httpGet"] == {
        "host": "127.0.0.1", "port": METRICS_PORT, "path": "/livez"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v["hostPath"] for v in pod["spec"]["volumes"]}
    assert volumes["etcd-ca"]["type"] == "File"


def _unit_exec() -> list[str]:
    for line in UNIT.read_text().splitlines():
        if line.startswith("ExecStart="):
            return shlex.split(line.split("=", 1)[1])
    raise AssertionError("no ExecStart")


def test_unit_and_pod_run_the_same_monitor() -> None:
    argv = _unit_exec()
    assert argv[:2] == ["/opt/secretkit/bin/secretkit", "monitor"]
    from_unit = _parse(argv[2:])
    from_pod = _parse(_pod()["spec"]["containers"][0]["args"])
    assert from_unit == from_pod


def test_deploy_arguments_are_checked_by_the_real_parser() -> None:
    with pytest.raises(click.UsageError):
        _parse(["--no-such-flag"])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the documented install path and this machine's systemd units."""
    root = tmp_path_factory.mktemp("root")
    binary = root / "opt" / "secretkit" / "bin" / "secretkit"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (root / "usr" / "lib").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd", root / "usr" / "lib" / "systemd", symlinks=True)
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(UNIT, units / UNIT.name)
    return root


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze comes with Debian's systemd package"
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=120, check=False,
        env={"SYSTEMD_LOG_LEVEL": "notice", "PATH": "/usr/bin:/bin"},
    )


def test_systemd_analyze_verify_is_clean(root: Path) -> None:
    run = _analyze("verify", f"--root={root}", f"/etc/systemd/system/{UNIT.name}")
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "" and run.stdout.strip() == "", run.stderr


def test_systemd_analyze_verify_notices_a_typo(root: Path) -> None:
    broken = root / "etc" / "systemd" / "system" / "broken-monitor.service"
    broken.write_text(UNIT.read_text().replace("NoNewPrivileges=", "NoNewPrivilegez="))
    try:
        run = _analyze("verify", f"--root={root}", "/etc/systemd/system/broken-monitor.service")
        assert "NoNewPrivilegez" in run.stderr
    finally:
        broken.unlink()


def test_unit_hardening_scores_ok(root: Path) -> None:
    import re

    run = _analyze("security", "--offline=true", f"--root={root}", UNIT.name)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", run.stdout)
    assert match is not None, run.stdout[-2000:] + run.stderr
    assert float(match.group(1)) <= 2.5, match.group(0)
