"""``--check-backend``: a real round trip, non-zero with a reason when the backend fails.

``--check-config`` validates only; the deploy docs use ``--check-backend`` as the
on-node check, so it must fail for an unreachable OpenBao, a wrong token and a
missing key, and pass for a working backend.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from secretkit.backends.local import default_key_id
from secretkit.sandbox.servers import free_port
from tests.integration.kms_plugin.harness import run_plugin_cli, write_kek


def _vault_config(tmp_path: Path, address: str, token: str, key: str) -> Path:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    path = tmp_path / "plugin.yaml"
    path.write_text(json.dumps({"backend": {
        "type": "vault", "address": address, "mount": "transit", "key": key,
        "timeout_seconds": 5, "auth": {"method": "token", "token_file": str(token_file)},
    }}))
    return path


def test_local_backend_passes_and_prints_the_key_id(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    run = run_plugin_cli(["--backend", "local", "--local-kek-file", str(kek),
                          "--check-backend"])
    assert run.returncode == 0, run.stderr
    assert f"key_id:       {default_key_id(kek.read_bytes())}" in run.stdout
    assert "backend OK" in run.stdout


def test_check_config_alone_says_the_backend_was_not_contacted(tmp_path: Path) -> None:
    config = _vault_config(tmp_path, f"http://127.0.0.1:{free_port()}", "t", "k")
    run = run_plugin_cli(["--config", str(config), "--check-config"])
    assert run.returncode == 0, run.stderr
    assert "configuration OK" in run.stdout
    assert "backend not contacted (use --check-backend" in run.stdout


def test_local_backend_with_a_missing_kek_is_a_configuration_error(tmp_path: Path) -> None:
    run = run_plugin_cli(["--backend", "local", "--local-kek-file",
                          str(tmp_path / "missing.bin"), "--check-backend"])
    assert run.returncode == 2
    assert "missing.bin" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.vault
def test_working_openbao_passes(openbao_server: Any, tmp_path: Path) -> None:
    key = f"check-{os.getpid()}"
    openbao_server.create_transit_key(key)
    config = _vault_config(tmp_path, openbao_server.address, openbao_server.token, key)
    run = run_plugin_cli(["--config", str(config), "--check-backend"])
    assert run.returncode == 0, run.stderr
    assert re.search(rf"key_id: +vault:.*:transit:{key}:v1:\d+$", run.stdout, re.M), run.stdout


def _assert_failed(run: Any, *hint_words: str) -> None:
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "configuration OK" in run.stdout  # the config itself is fine
    assert "error: backend check failed:" in run.stderr
    assert "backend OK" not in run.stdout
    assert "Traceback" not in run.stderr
    for word in hint_words:
        assert word in run.stderr, run.stderr


@pytest.mark.vault
def test_unreachable_openbao_fails(tmp_path: Path) -> None:
    config = _vault_config(tmp_path, f"http://127.0.0.1:{free_port()}", "t", "k")
    _assert_failed(run_plugin_cli(["--config", str(config), "--check-backend"], timeout=60),
                   "reachable")


@pytest.mark.vault
def test_wrong_token_fails(openbao_server: Any, tmp_path: Path) -> None:
    key = f"check-token-{os.getpid()}"
    openbao_server.create_transit_key(key)
    config = _vault_config(tmp_path, openbao_server.address, "s.not-a-real-token", key)
    run = run_plugin_cli(["--config", str(config), "--check-backend"])
    _assert_failed(run, "credentials")
    assert "s.not-a-real-token" not in run.stdout + run.stderr


@pytest.mark.vault
def test_missing_key_fails(openbao_server: Any, tmp_path: Path) -> None:
    config = _vault_config(tmp_path, openbao_server.address, openbao_server.token,
                           "no-such-key")
    _assert_failed(run_plugin_cli(["--config", str(config), "--check-backend"]), "key")
