"""docs/deploy stays true: configs load, every file names the same socket and port."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kms_plugin.config import build_config, load_config_file
from secretkit.backends._schema import Definition
from secretkit.backends.vault import parse_vault_config
from secretkit.config_files import load_encryption_config_file

DEPLOY = Path(__file__).resolve().parents[3] / "docs" / "deploy"
SOCKET = "unix:///var/run/secretkit/kms-plugin.sock"


def test_encryption_config_points_at_the_plugin_socket() -> None:
    cfg = load_encryption_config_file(DEPLOY / "encryption-config.yaml")
    kms = [p for rule in cfg.rules for p in rule.providers if getattr(p, "endpoint", None)]
    assert [(p.endpoint, p.api_version) for p in kms] == [(SOCKET, "v2")]


def test_plugin_config_file_is_valid() -> None:
    data = load_config_file(DEPLOY / "kms-plugin.yaml")
    cfg = build_config(data, {}, {}, source="kms-plugin.yaml")
    assert cfg.listen.endpoint == SOCKET
    assert cfg.health_addr is not None and cfg.health_addr.port == 8787
    # the backend section passes the vault backend's own strict schema
    parse_vault_config(Definition(dict(cfg.backend), "kms-plugin.yaml:backend"))


def test_static_pod_matches() -> None:
    pod = yaml.safe_load((DEPLOY / "static-pod.yaml").read_text())
    container = pod["spec"]["containers"][0]
    assert f"--listen={SOCKET}" in container["args"]
    assert "--health-addr=127.0.0.1:8787" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["spec"]["terminationGracePeriodSeconds"] > 10  # > --grace-period
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/var/run/secretkit" in mounts


@pytest.mark.parametrize("name", ["secretkit-kms-plugin.service"])
def test_other_files_use_the_same_names(name: str) -> None:
    text = (DEPLOY / name).read_text()
    assert "secretkit-kms-plugin" in text
    if name.endswith(".service"):
        assert f"--listen {SOCKET}" in text
        timeout = int(re.search(r"TimeoutStopSec=(\d+)", text).group(1))  # type: ignore[union-attr]
        assert timeout > 10
