"""The wheel, installed into a fresh venv outside the repository, works on its own.

Builds the wheel (no dependencies), installs it with its dependencies into a new venv
in a temporary directory (pip's download cache is reused, so this stays fast), then
runs both entry points from a directory outside the repository with a clean
environment: ``--help`` of each, ``secretkit kek create``, and the plugin serving a
moment on a unix socket that a client calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import grpc
import pytest

from secretkit._proto.kms.v2 import api_pb2, api_pb2_grpc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    assert REPO not in base.parents
    # the one wheel build (it takes turns with the image build's on a lock)
    subprocess.run([sys.executable, str(REPO / "scripts" / "build-wheel"), str(base / "dist")],
                   check=True, timeout=300)
    [wheel] = (base / "dist").glob("secretkit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
        names = zf.namelist()
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    env = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
    # a clean environment: with the checkout on PYTHONPATH pip would find secretkit
    # "already installed" and skip it
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=600,
                   cwd=base, env=_env())
    return env


def _env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
    return {k: v for k, v in os.environ.items() if k in keep}


def _run(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], capture_output=True,
                          text=True, timeout=60, check=False, cwd=cwd, env=_env())


def test_both_entry_points_answer_help(venv: Path, tmp_path: Path) -> None:
    cli = _run(venv, "secretkit", "--help", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    assert "reencrypt" in cli.stdout and "kek" in cli.stdout
    plugin = _run(venv, "secretkit-kms-plugin", "--help", cwd=tmp_path)
    assert plugin.returncode == 0, plugin.stderr
    assert "--check-backend" in plugin.stdout
    where = _run(venv, "python", "-c", "import secretkit, kms_plugin; "
                 "print(secretkit.__file__); print(kms_plugin.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.splitlines():
        assert line.startswith(str(venv)), line  # the installed copy, not the checkout


def test_installed_plugin_serves_on_a_socket(venv: Path, tmp_path: Path) -> None:
    kek = tmp_path / "kek.bin"
    made = _run(venv, "secretkit", "kek", "create", str(kek), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    key_id = made.stdout.split("key_id: ", 1)[1].strip()
    check = _run(venv, "secretkit-kms-plugin", "--backend", "local", "--local-kek-file",
                 str(kek), "--check-backend", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    sock = tmp_path / "run" / "kms.sock"
    log = tmp_path / "plugin.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(venv / "bin" / "secretkit-kms-plugin"), "--socket", str(sock),
             "--backend", "local", "--local-kek-file", str(kek)],
            stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path, env=_env(),
            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sock.exists(), log.read_text()
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            stub = api_pb2_grpc.KeyManagementServiceStub(channel)
            status = stub.Status(api_pb2.StatusRequest(), timeout=10)
            assert (status.healthz, status.key_id) == ("ok", key_id)
            enc = stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"s" * 32), timeout=10)
            dec = stub.Decrypt(api_pb2.DecryptRequest(
                ciphertext=enc.ciphertext, key_id=enc.key_id), timeout=10)
            assert dec.plaintext == b"s" * 32
        proc.terminate()
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert not sock.exists()
