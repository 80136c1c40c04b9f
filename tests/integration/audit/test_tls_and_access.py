"""mTLS etcd: the audit connects like etcdctl; etcd-access probes like an attacker."""

from __future__ import annotations

import json

import pytest

from secretkit.etcd import EtcdClient
from secretkit.sandbox.servers import free_port
from tests.fixtures.servers import EtcdServer
from tests.integration.audit.conftest import load_vectors, run_cli

pytestmark = pytest.mark.etcd


def unused_local_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def test_audit_over_mutual_tls(etcd_tls_server: EtcdServer) -> None:
    with EtcdClient(etcd_tls_server.client_config()) as client:
        client.delete_prefix(b"/registry/")
        load_vectors(client, ("aesgcm-11", "identity-01"))
    proc = run_cli(["audit", "--resources", "secrets,configmaps", "-o", "json"], etcd_tls_server)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["totals"]["objects"] == 2
    assert doc["totals"]["findings"]["plaintext"] == 1  # the explicit list protects configmaps


def test_audit_without_client_certificate_fails_clearly(etcd_tls_server: EtcdServer) -> None:
    assert etcd_tls_server.ca_cert is not None
    proc = run_cli(
        [
            "audit",
            "--endpoints",
            etcd_tls_server.endpoint,
            "--cacert",
            str(etcd_tls_server.ca_cert),
            "--dial-timeout",
            "3",
        ]
    )
    assert proc.returncode == 5  # could not check: etcd refused the connection
    assert "\nerror:" in "\n" + proc.stderr  # gRPC may log its handshake failure first
    assert "client certificate" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_etcd_is_a_clear_error() -> None:
    proc = run_cli(["audit", "--endpoints", unused_local_url(), "--dial-timeout", "1"])
    assert proc.returncode == 5  # could not check, not "findings" (1)
    assert proc.stderr.startswith("error:")
    assert "Traceback" not in proc.stderr


def test_etcd_access_on_plain_http_etcd_is_a_bypass(etcd_server: EtcdServer) -> None:
    proc = run_cli(["audit", "etcd-access", "--endpoints", etcd_server.endpoint, "-o", "json"])
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    failed = {c["check"]: c for c in doc["checks"] if not c["passed"]}
    assert failed["etcd.unauthenticated-read"]["severity"] == "critical"
    assert failed["etcd.unauthenticated-read"]["bypass"] is True
    assert "etcd.client-tls" in failed
    assert doc["bypass"] is True


def test_etcd_access_on_mtls_etcd_passes(etcd_tls_server: EtcdServer) -> None:
    proc = run_cli(
        [
            "audit",
            "etcd-access",
            "--endpoints",
            etcd_tls_server.endpoint,
            "--cacert",
            str(etcd_tls_server.ca_cert),
            "-o",
            "json",
        ]
    )
    assert proc.returncode == 0, proc.stdout
    doc = json.loads(proc.stdout)
    checks = {c["check"]: c for c in doc["checks"]}
    assert checks["etcd.client-cert-auth"]["passed"] is True
    assert checks["etcd.client-tls"]["passed"] is True
    assert "etcd.unauthenticated-read" not in checks
    assert doc["failed"] == 0


def test_etcd_access_unreachable_endpoint_is_reported() -> None:
    proc = run_cli(["audit", "etcd-access", "--endpoints", unused_local_url(), "-o", "json"])
    doc = json.loads(proc.stdout)
    assert doc["checks"][0]["check"] == "etcd.reachable"
    assert doc["checks"][0]["passed"] is False


def test_etcd_access_without_ca_still_sees_the_client_cert_requirement(
    etcd_tls_server: EtcdServer,
) -> None:
    proc = run_cli(["audit", "etcd-access", "--endpoints", etcd_tls_server.endpoint, "-o", "json"])
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["etcd.client-cert-auth"]["passed"] is True
    assert proc.returncode == 0
