"""etcd flag checks (manifest or flag string) of ``audit etcd-access``."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.audit.etcd_access import audit_etcd_access
from secretkit.audit.flags import load_manifest_flags, parse_flag_string
from secretkit.errors import UsageError

KUBEADM_ETCD = """\
apiVersion: v1
kind: Pod
metadata: {name: etcd, namespace: kube-system}
spec:
  containers:
  - name: etcd
    command:
    - etcd
    - --advertise-client-urls=https://10.0.0.5:2379
    - --cert-file=/etc/kubernetes/pki/etcd/server.crt
    - --client-cert-auth=true
    - --data-dir=/var/lib/etcd
    - --key-file=/etc/kubernetes/pki/etcd/server.key
    - --listen-client-urls=https://127.0.0.1:2379,https://10.0.0.5:2379
    - --listen-peer-urls=https://10.0.0.5:2380
    - --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt
    - --peer-client-cert-auth=true
    - --peer-key-file=/etc/kubernetes/pki/etcd/peer.key
    - --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
    - --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt
"""


def test_kubeadm_defaults_pass(tmp_path: Path) -> None:
    manifest = tmp_path / "etcd.yaml"
    manifest.write_text(KUBEADM_ETCD)
    report = audit_etcd_access([], flags=load_manifest_flags(manifest, "etcd"))
    assert report.failed == []
    assert len(report.findings) >= 8


def test_insecure_flags_are_bypass_findings() -> None:
    flags = parse_flag_string(
        "etcd --listen-client-urls=http://0.0.0.0:2379 --auto-tls --listen-peer-urls "
        "http://10.0.0.5:2380 --client-cert-auth=false"
    )
    report = audit_etcd_access([], flags=flags)
    failed = {f.check: f for f in report.failed}
    assert failed["etcd.flags.listen-client-urls"].severity.value == "critical"
    assert failed["etcd.flags.listen-client-urls"].bypass
    assert failed["etcd.flags.client-cert-auth"].bypass
    assert "etcd.flags.auto-tls" in failed
    assert "etcd.flags.peer-tls" in failed
    assert report.to_json()["bypass"] is True
    assert "FAIL: client certificate authentication on" in report.to_text()


def test_loopback_http_is_medium_not_critical() -> None:
    flags = parse_flag_string("--listen-client-urls=http://127.0.0.1:2379 --client-cert-auth")
    failed = {f.check: f for f in audit_etcd_access([], flags=flags).failed}
    assert failed["etcd.flags.listen-client-urls"].severity.value == "medium"
    assert "etcd.flags.client-cert-auth" not in failed


def test_manifest_errors_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [unclosed")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_manifest_flags(bad, "etcd")
    other = tmp_path / "other.yaml"
    other.write_text("spec:\n  containers:\n  - name: nginx\n    command: [nginx]\n")
    with pytest.raises(UsageError, match="no container named 'etcd'"):
        load_manifest_flags(other, "etcd")
    with pytest.raises(UsageError, match="cannot parse flags"):
        parse_flag_string('--a="unterminated')


def test_malformed_endpoint_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not an http"):
        audit_etcd_access(["127.0.0.1:2379"])


def test_data_dir_permissions_when_the_directory_is_local(tmp_path: Path) -> None:
    data = tmp_path / "etcd-data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    failed = {
        f.check for f in audit_etcd_access([], flags=parse_flag_string(f"--data-dir={data}")).failed
    }
    assert "etcd.flags.data-dir-permissions" in failed
    data.chmod(0o700)
    report = audit_etcd_access([], flags=parse_flag_string(f"--data-dir={data}"))
    checks = {f.check: f.passed for f in report.findings}
    assert checks["etcd.flags.data-dir-permissions"] is True
