"""``secretkit sandbox up|status|seed|restart-apiserver|down`` through the CLI entry point."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secretkit.sandbox import configs
from tests.schemas import validate_document

pytestmark = pytest.mark.e2e


def secretkit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([sys.executable, "-m", "secretkit.cli.main", *args],
                          capture_output=True, text=True, timeout=180, env=env, check=False)


def test_sandbox_life_cycle_via_cli(tmp_path: Path) -> None:
    directory = tmp_path / "sb"
    done = secretkit("sandbox", "up", "--dir", str(directory), "--encryption", "aesgcm",
                     "-o", "json")
    assert done.returncode == 0, done.stderr
    try:
        state = json.loads(done.stdout)
        assert validate_document(state) == "secretkit.sandbox.up/v1"
        assert state["api_url"].startswith("https://127.0.0.1:")
        for name in ("token_file", "openbao_token_file", "encryption_config", "kubeconfig"):
            mode = stat.S_IMODE(Path(state[name]).stat().st_mode)
            assert mode == 0o600, name
        # the state file names the token files but holds no token
        token = Path(state["token_file"]).read_text().strip()
        assert token not in (directory / "sandbox.json").read_text()

        status = secretkit("sandbox", "status", "--dir", str(directory), "-o", "json")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert validate_document(report) == "secretkit.sandbox.status/v1"
        assert report["healthy"] is True
        assert set(report["parts"]) == {"etcd", "openbao", "kms-plugin", "apiserver"}
        assert report["parts"]["kms-plugin"]["key_id"].startswith("vault:")
        config_hash = report["parts"]["apiserver"]["config_hash"]
        assert config_hash.startswith("sha256:")

        seeded = secretkit("sandbox", "seed", "--dir", str(directory), "--secrets", "30",
                           "--configmaps", "5", "-o", "json")
        assert seeded.returncode == 0, seeded.stderr
        assert validate_document(json.loads(seeded.stdout)) == "secretkit.sandbox.seed/v1"
        assert json.loads(seeded.stdout)["existed"] == 0
        again = secretkit("sandbox", "seed", "--dir", str(directory), "--secrets", "30", "-o",
                          "json")
        assert json.loads(again.stdout)["existed"] == 30

        new_config = tmp_path / "secretbox.yaml"
        new_config.write_bytes(configs.encryption_config("secretbox"))
        restarted = secretkit("sandbox", "restart-apiserver", "--dir", str(directory),
                              "--encryption-provider-config", str(new_config))
        assert restarted.returncode == 0, restarted.stderr
        report = json.loads(secretkit("sandbox", "status", "--dir", str(directory), "-o",
                                      "json").stdout)
        assert report["healthy"] is True
        assert report["parts"]["apiserver"]["config_hash"] != config_hash
        assert (directory / "encryption-config.yaml").read_bytes() == new_config.read_bytes()

        broken = tmp_path / "broken.yaml"
        broken.write_text("kind: EncryptionConfiguration\n")
        refused = secretkit("sandbox", "restart-apiserver", "--dir", str(directory),
                            "--encryption-provider-config", str(broken))
        assert refused.returncode == 2  # an invalid config is bad input
        assert "error:" in refused.stderr

        # a stopped part: the status document still comes, and the run could not check (5)
        openbao_pid = json.loads((directory / "sandbox.json").read_text())["processes"][
            "openbao"]["pid"]
        os.kill(openbao_pid, signal.SIGTERM)  # a process this test started, by its PID
        deadline = time.monotonic() + 30
        while Path(f"/proc/{openbao_pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        unhealthy = secretkit("sandbox", "status", "--dir", str(directory), "-o", "json")
        assert unhealthy.returncode == 5, unhealthy.stderr
        report = json.loads(unhealthy.stdout)
        assert validate_document(report) == "secretkit.sandbox.status/v1"
        assert report["healthy"] is False
    finally:
        stopped = secretkit("sandbox", "down", "--dir", str(directory), "--purge")
    assert stopped.returncode == 0, stopped.stderr
    assert not directory.exists()
    missing = secretkit("sandbox", "status", "--dir", str(directory))
    assert missing.returncode == 2 and "no sandbox here" in missing.stderr
    missing = secretkit("sandbox", "status", "--dir", str(directory), "-o", "json")
    assert validate_document(json.loads(missing.stdout)) == "secretkit.error/v1"
