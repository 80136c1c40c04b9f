"""Clear errors and non-zero exits: bad kubeconfig, unreachable API, wrong token,
--via etcd without the safety acknowledgement."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.reencrypt.helpers import run_cli
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sb(sandbox_factory: SandboxFactory) -> Sandbox:
    return sandbox_factory("aescbc")


def kubeconfig(path: Path, server: str, token: str, ca: Path | None) -> Path:
    cluster = f'server: "{server}"' + (f', certificate-authority: "{ca}"' if ca else "")
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{{cluster}}}}}]\n"
        f"users: [{{name: u, user: {{token: {token}}}}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    return path


def test_missing_kubeconfig(tmp_path: Path) -> None:
    res = run_cli(None, "--kubeconfig", str(tmp_path / "nope"))
    assert res.rc == 2  # bad input: the kubeconfig
    assert "kubeconfig file does not exist" in res.stderr
    assert "Traceback" not in res.stderr


def test_garbage_kubeconfig(tmp_path: Path) -> None:
    bad = tmp_path / "kc"
    bad.write_text("clusters: [this is: not, a kubeconfig\n")
    res = run_cli(None, "--kubeconfig", str(bad))
    assert res.rc == 2  # bad input: the kubeconfig
    assert "kubeconfig" in res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_context(sb: Sandbox) -> None:
    res = run_cli(sb, "--context", "no-such-context")
    assert res.rc == 2  # bad input: the kubeconfig
    assert "cannot load the Kubernetes client configuration" in res.stderr


def test_unreachable_api(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on the port once the socket is closed
    kc = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{port}", "t", None)
    res = run_cli(None, "--kubeconfig", str(kc))
    assert res.rc == 5  # could not check: the API failed
    assert "cannot reach the Kubernetes API" in res.stderr
    assert f"127.0.0.1:{port}" in res.stderr


def test_wrong_token_is_rejected_without_leaking_it(sb: Sandbox, tmp_path: Path) -> None:
    kc = kubeconfig(tmp_path / "kc", sb.api_url, "wrong-token-value-123", sb.ca_file)
    res = run_cli(None, "--kubeconfig", str(kc))
    assert res.rc == 5  # could not check: the API failed
    assert "401" in res.stderr
    assert "wrong-token-value-123" not in res.stderr + res.stdout


def test_unknown_resource_is_a_usage_error(sb: Sandbox) -> None:
    res = run_cli(sb, "--resources", "secrets,gizmos.example.com")
    assert res.rc == 2
    assert "gizmos.example.com" in res.stderr


def test_via_etcd_refuses_without_acknowledgement(sb: Sandbox) -> None:
    res = run_cli(
        sb, "--via", "etcd", "--config", str(sb.config_path), "--endpoints", sb.etcd_endpoint
    )
    assert res.rc == 3
    assert "--i-understand-the-apiserver-is-stopped" in res.stderr


def test_only_stale_needs_the_config(sb: Sandbox) -> None:
    res = run_cli(sb, "--only-stale", "--endpoints", sb.etcd_endpoint)
    assert res.rc == 2
    assert "--config" in res.stderr
