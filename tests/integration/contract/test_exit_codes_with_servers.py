"""The exit-code table and the one-JSON-document rule against real etcd and OpenBao.

A pipeline must tell "insecure" (1) from "could not check" (5) from "bad usage" (2);
with ``-o json`` every outcome is one JSON document that validates against its schema.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from secretkit.backends import build_backend
from secretkit.backends.interface import BackendKMSService
from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.transformers import build_transformers
from secretkit.etcd import EtcdClient
from secretkit.sandbox.servers import free_port
from tests.fixtures.servers import EtcdServer, OpenBaoServer
from tests.schemas import one_document, validate_document

PLAINTEXT_SECRET = b'{"kind":"Secret","apiVersion":"v1","data":{"k":"dg=="}}'


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _doc(proc: subprocess.CompletedProcess[str], code: int, schema: str) -> dict[str, object]:
    assert proc.returncode == code, proc.stderr
    doc = one_document(proc.stdout)
    assert validate_document(doc) == schema
    assert "Traceback" not in proc.stderr
    return doc


def _unused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.etcd
def test_audit_findings_1_typo_2_unreachable_5(
    etcd_server: EtcdServer, etcd_client: EtcdClient
) -> None:
    for i in range(3):
        etcd_client.put(f"/registry/secrets/default/s{i}".encode(), PLAINTEXT_SECRET)
    ep = ("--endpoints", etcd_server.endpoint)
    report = _doc(_run("audit", *ep, "-o", "json"), 1, "secretkit.audit.report/v1")
    assert report["failed"] is True
    # the typo used to scan nothing and pass (exit 0): now a usage error, nothing scanned
    typo = _doc(_run("audit", *ep, "--resources", "secret", "-o", "json"), 2, "secretkit.error/v1")
    assert "did you mean 'secrets'" in str(typo["error"])
    assert _run("audit", *ep, "--resources", "secret").returncode == 2
    down = _run("audit", "--endpoints", _unused_url(), "--dial-timeout", "1s", "-o", "json")
    error = _doc(down, 5, "secretkit.error/v1")["error"]
    assert isinstance(error, dict) and error["reason"] == "unavailable"
    # clean: 0
    clean = _doc(_run("audit", *ep, "--fail-on", "none", "-o", "json"), 0,
                 "secretkit.audit.report/v1")  # fmt: skip
    assert clean["failed"] is False
    junit = _run("audit", *ep, "-o", "junit")
    assert junit.returncode == 1 and junit.stdout.lstrip().startswith("<?xml")
    # a wrong prefix reads nothing: that proves nothing and fails, unless allowed
    empty = _doc(_run("audit", *ep, "--etcd-prefix", "/regsitry", "-o", "json"), 1,
                 "secretkit.audit.report/v1")
    assert empty["failed"] is True and "no keys matched" in str(empty["notes"])
    text = _run("audit", *ep, "--etcd-prefix", "/regsitry")
    assert text.returncode == 1 and "RESULT: FAIL (nothing checked: 0 objects)" in text.stdout
    allowed = _run("audit", *ep, "--etcd-prefix", "/regsitry", "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.etcd
def test_etcd_access_failures_1_and_unanswered_endpoints_5(etcd_server: EtcdServer) -> None:
    plain = _run("audit", "etcd-access", "--endpoints", etcd_server.endpoint, "-o", "json")
    assert _doc(plain, 1, "secretkit.audit.checks/v1")["failed"]
    # nothing answers: the report says so (one document) and the run could not check
    gone = _run("audit", "etcd-access", "--endpoints", _unused_url(), "--dial-timeout", "1s",
                "-o", "json")  # fmt: skip
    doc = _doc(gone, 5, "secretkit.audit.checks/v1")
    assert [c["check"] for c in doc["checks"]] == ["etcd.reachable"]  # type: ignore[index]
    assert "did not answer" in gone.stderr
    # a critical failure wins over an unanswered endpoint: what was found is certain
    both = _run("audit", "etcd-access", "--endpoints", f"{etcd_server.endpoint},{_unused_url()}",
                "--dial-timeout", "1s", "-o", "json")  # fmt: skip
    _doc(both, 1, "secretkit.audit.checks/v1")


def _kms_config(tmp_path: Path) -> Path:
    path = tmp_path / "enc.yaml"
    path.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "  - resources: [secrets]\n    providers:\n"
        "      - kms: {apiVersion: v2, name: vault, endpoint: 'unix:///nonexistent/k.sock'}\n"
        "      - identity: {}\n"
    )
    path.chmod(0o600)
    return path


def _backends(tmp_path: Path, server: OpenBaoServer, token: str, name: str) -> Path:
    token_file = tmp_path / f"{name}.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"vault:\n  type: vault\n  address: {server.address}\n  mount: {server.mount}\n"
        f"  key: contract\n  auth: {{method: token, token_file: {token_file}}}\n"
    )
    return path


@pytest.mark.etcd
@pytest.mark.vault
def test_a_vault_login_failure_during_decrypt_check_is_could_not_check(
    tmp_path: Path,
    etcd_server: EtcdServer,
    etcd_client: EtcdClient,
    openbao_server: OpenBaoServer,
) -> None:
    openbao_server.create_transit_key("contract")
    config = _kms_config(tmp_path)
    good = _backends(tmp_path, openbao_server, openbao_server.token, "good")
    # one Secret written exactly as the apiserver would, through the real transit key
    import yaml

    definition = yaml.safe_load(good.read_text())["vault"]
    backend = build_backend(definition, where="good.yaml:vault")
    try:
        transformers = build_transformers(
            load_encryption_config(config.read_bytes()), lambda p: BackendKMSService(backend)
        )
        transformers.refresh_kms()
        key = "/registry/secrets/default/db"
        etcd_client.put(key.encode(), transformers.for_resource("secrets").write(
            PLAINTEXT_SECRET, key))  # fmt: skip
    finally:
        backend.close()
    args = ("audit", "--endpoints", etcd_server.endpoint, "--config", str(config),
            "--decrypt-check", "-o", "json")  # fmt: skip
    ok = _doc(_run(*args, "--backends", str(good)), 0, "secretkit.audit.report/v1")
    assert ok["decrypt_checked"] is True
    bad = _backends(tmp_path, openbao_server, "not-a-valid-token", "bad")
    proc = _run(*args, "--backends", str(bad))
    error = _doc(proc, 5, "secretkit.error/v1")["error"]  # not "undecryptable" (1)
    assert isinstance(error, dict) and "vault login" in str(error["what"])
    assert "not-a-valid-token" not in proc.stdout + proc.stderr
