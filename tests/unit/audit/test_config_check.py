"""``audit config``: CIS-style checks on apiserver flags and upstream config files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from secretkit.audit.config_check import audit_config
from secretkit.audit.flags import load_manifest_flags, parse_flag_string

CONFIGS = Path(__file__).parents[2] / "data" / "upstream-configs"
VALID = CONFIGS / "valid-configs"

APISERVER_MANIFEST = """\
apiVersion: v1
kind: Pod
metadata: {{name: kube-apiserver, namespace: kube-system}}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.31.0
    command:
    - kube-apiserver
    - --advertise-address=10.0.0.5
    - --etcd-servers={etcd}
    - --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt
    - --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt
    - --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key
{extra}
"""


def _copy(name: str, tmp_path: Path, mode: int = 0o600) -> Path:
    target = tmp_path / Path(name).name
    shutil.copy(VALID / name, target)
    target.chmod(mode)
    return target


def _manifest(tmp_path: Path, *, etcd: str = "https://127.0.0.1:2379", extra: str = "") -> Path:
    path = tmp_path / "kube-apiserver.yaml"
    path.write_text(APISERVER_MANIFEST.format(etcd=etcd, extra=extra))
    return path


def _checks(report: object) -> dict[str, bool]:
    return {f.check: f.passed for f in report.findings}  # type: ignore[attr-defined]


def test_missing_encryption_flag_is_critical(tmp_path: Path) -> None:
    report = audit_config(load_manifest_flags(_manifest(tmp_path), "kube-apiserver"), None)
    failed = {f.check: f for f in report.failed}
    assert failed["apiserver.encryption-provider-config"].severity.value == "critical"
    assert failed["apiserver.encryption-provider-config"].remediation
    assert _checks(report)["apiserver.etcd-tls"] is True


def test_manifest_names_the_config_and_it_is_read(tmp_path: Path) -> None:
    config = _copy("kmsv2-first.yaml", tmp_path)
    extra = (
        f"    - --encryption-provider-config={config}\n"
        "    - --encryption-provider-config-automatic-reload=true\n"
        "    - --etcd-prefix=/custom"
    )
    flags = load_manifest_flags(_manifest(tmp_path, extra=extra), "kube-apiserver")
    report = audit_config(flags, None)
    checks = _checks(report)
    assert checks["apiserver.encryption-provider-config"] is True
    assert checks["apiserver.encryption-config-reload"] is True
    assert checks["config.identity-not-first"] is True
    assert checks["config.secrets-covered"] is True
    assert checks["config.file-permissions"] is True
    assert checks["config.kms-v1"] is False  # the file also lists a kms v1 provider
    assert checks["config.aescbc"] is False
    notes = {f.check: f for f in report.findings}
    assert "--prefix /custom" in notes["apiserver.etcd-prefix"].detail


def test_identity_first_is_critical() -> None:
    report = audit_config(None, VALID / "identity-first.yaml")
    failed = {f.check: f for f in report.failed}
    assert failed["config.identity-not-first"].severity.value == "critical"
    assert report.fails_at(failed["config.identity-not-first"].severity)


def test_world_readable_config_fails_the_permission_check(tmp_path: Path) -> None:
    config = _copy("secret-box-first.yaml", tmp_path, mode=0o644)
    report = audit_config(None, config)
    failed = {f.check: f for f in report.failed}
    assert "chmod 600" in failed["config.file-permissions"].remediation
    assert _checks(report)["config.identity-not-first"] is True


def test_aesgcm_first_gets_rotation_advice() -> None:
    report = audit_config(None, VALID / "aes-gcm-first.yaml")
    assert _checks(report)["config.aesgcm-rotation"] is False


@pytest.mark.parametrize("name", ["invalid-aes-gcm.yaml", "invalid-typo.yaml"])
def test_invalid_config_is_reported_not_raised(name: str) -> None:
    report = audit_config(None, CONFIGS / "invalid-configs" / name)
    failed = {f.check for f in report.failed}
    assert "config.valid" in failed


def test_plain_http_etcd_servers_fail(tmp_path: Path) -> None:
    flags = parse_flag_string(
        "--etcd-servers=http://10.0.0.5:2379 --encryption-provider-config=/nonexistent.yaml"
    )
    report = audit_config(flags, None)
    checks = _checks(report)
    assert checks["apiserver.etcd-tls"] is False
    assert checks["config.readable"] is False


def test_config_values_never_appear_in_output(tmp_path: Path) -> None:
    config = _copy("aes-gcm-first.yaml", tmp_path, mode=0o644)
    text = config.read_text()
    secrets = [line.split("secret:")[1].strip() for line in text.splitlines() if "secret:" in line]
    assert secrets
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "secretkit.cli.main",
            "audit",
            "config",
            "--encryption-config",
            str(config),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1  # the 0644 mode is a high finding
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "secretkit.audit.checks/v1"
    assert all({"check", "severity", "remediation", "passed"} <= set(c) for c in doc["checks"])
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
