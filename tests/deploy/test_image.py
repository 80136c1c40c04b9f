"""The OCI image from scripts/build-image runs the plugin as shipped.

Builds the image (the Debian base is cached under .cache/image/), unpacks it with
umoci into an OCI runtime bundle and runs it with runc, unchanged except for two
bind mounts: /etc/secretkit (a plugin config and a KEK, read-only) and the socket
directory. The image's own entrypoint, default arguments, user (65532) and a
read-only root filesystem are used; a client on the host then calls Status, Encrypt
and Decrypt through the socket, as kube-apiserver would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from secretkit._proto.kms.v2 import api_pb2, api_pb2_grpc
from secretkit.backends.local import default_key_id

REPO = Path(__file__).resolve().parents[2]
UID = 65532


def _ensure(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        # a fresh CI machine has only Python, pip and git; Debian's package is the tool
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", tool], check=True,
                       capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which(tool)
    assert path is not None, f"{tool} could not be installed"
    return path


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("image")
    started = time.monotonic()
    run = subprocess.run([str(REPO / "scripts" / "build-image"), "--out", str(out)],
                         capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stderr[-4000:]
    print(f"image built in {time.monotonic() - started:.0f} s")
    return out


def test_image_layout_and_config(image: Path) -> None:
    index = json.loads((image / "oci" / "index.json").read_text())
    [manifest_ref] = index["manifests"]
    assert manifest_ref["annotations"]["org.opencontainers.image.ref.name"] == "0.1.0"
    blobs = image / "oci" / "blobs" / "sha256"
    manifest = json.loads((blobs / manifest_ref["digest"].split(":")[1]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_text())
    cfg = config["config"]
    assert cfg["User"] == f"{UID}:{UID}"  # non-root by default
    assert cfg["Entrypoint"] == ["/usr/local/bin/secretkit-kms-plugin"]
    assert cfg["Cmd"] == ["--config=/etc/secretkit/kms-plugin.yaml"]
    assert "PYTHONDONTWRITEBYTECODE=1" in cfg["Env"]
    assert cfg["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert (image / "secretkit-kms-plugin.oci.tar").stat().st_size > 0
    size = sum(layer["size"] for layer in manifest["layers"])
    # docs/deploy/README.md states the size; keep it honest within a margin
    assert size < 160 * 1024 * 1024, size


@pytest.fixture
def bundle(image: Path, tmp_path: Path) -> Iterator[tuple[Path, Path, bytes]]:
    umoci = _ensure("umoci")
    bundle = tmp_path / "bundle"
    subprocess.run([umoci, "unpack", "--image", f"{image / 'oci'}:0.1.0", str(bundle)],
                   check=True, capture_output=True)
    etc = tmp_path / "etc"
    run_dir = tmp_path / "run"
    etc.mkdir()
    run_dir.mkdir(mode=0o700)
    os.chown(run_dir, UID, UID)  # what the installer does for the hostPath directory
    kek = os.urandom(32)
    kek_file = etc / "kek.bin"
    kek_file.write_bytes(kek)
    os.chown(kek_file, UID, UID)
    kek_file.chmod(0o600)
    (etc / "kms-plugin.yaml").write_text(
        "listen: unix:///var/run/secretkit/kms-plugin.sock\n"
        "log_format: json\n"
        "backend:\n  type: local\n  keys:\n    - kek_file: /etc/secretkit/kek.bin\n"
    )
    spec_path = bundle / "config.json"
    spec = json.loads(spec_path.read_text())
    # what the image itself asks for, untouched
    assert spec["process"]["user"]["uid"] == UID
    assert spec["process"]["args"] == [
        "/usr/local/bin/secretkit-kms-plugin", "--config=/etc/secretkit/kms-plugin.yaml"]
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = True  # readOnlyRootFilesystem
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/var/run/secretkit"]
    spec["mounts"] += [
        {"destination": "/var/run/secretkit", "type": "bind", "source": str(run_dir),
         "options": ["rbind", "rw"]},
        {"destination": "/etc/secretkit", "type": "bind", "source": str(etc),
         "options": ["rbind", "ro"]},
    ]
    spec_path.write_text(json.dumps(spec))
    yield bundle, run_dir, kek


def test_image_entrypoint_serves_the_plugin(bundle: tuple[Path, Path, bytes],
                                            tmp_path: Path) -> None:
    runc = _ensure("runc")
    path, run_dir, kek = bundle
    name = f"secretkit-test-{os.getpid()}"
    log_path = tmp_path / "container.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([runc, "run", "--bundle", str(path), name],
                                stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    sock = run_dir / "kms-plugin.sock"
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sock.exists(), log_path.read_text()
        st = os.lstat(sock)
        assert (st.st_uid, oct(st.st_mode & 0o777)) == (UID, "0o600")
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            stub = api_pb2_grpc.KeyManagementServiceStub(channel)
            status = stub.Status(api_pb2.StatusRequest(), timeout=30)
            assert (status.version, status.healthz) == ("v2", "ok")
            assert status.key_id == default_key_id(kek)
            seed = os.urandom(32)
            enc = stub.Encrypt(api_pb2.EncryptRequest(plaintext=seed, uid="u1"), timeout=10)
            dec = stub.Decrypt(api_pb2.DecryptRequest(
                ciphertext=enc.ciphertext, key_id=enc.key_id,
                annotations=dict(enc.annotations), uid="u2"), timeout=10)
            assert dec.plaintext == seed
        subprocess.run([runc, "kill", name, "TERM"], check=True, capture_output=True)
        assert proc.wait(30) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            subprocess.run([runc, "kill", name, "KILL"], check=False, capture_output=True)
            proc.wait(10)
        subprocess.run([runc, "delete", "--force", name], check=False, capture_output=True)
    logs = [json.loads(line) for line in log_path.read_text().splitlines()
            if line.startswith("{")]
    assert any(e.get("msg") == "stopped" and e.get("abandoned") == 0 for e in logs), logs
    assert not sock.exists()  # removed its own socket on the way out
    assert kek.hex() not in log_path.read_text()


def test_image_cli_runs_read_only(bundle: tuple[Path, Path, bytes], tmp_path: Path) -> None:
    """The secretkit CLI is in the image too, and a read-only root does not bother it."""
    runc = _ensure("runc")
    path, _run_dir, _kek = bundle
    spec_path = path / "config.json"
    spec = json.loads(spec_path.read_text())
    spec["process"]["args"] = ["/usr/local/bin/secretkit", "--help"]
    spec_path.write_text(json.dumps(spec))
    run = subprocess.run([runc, "run", "--bundle", str(path), f"secretkit-cli-{os.getpid()}"],
                         capture_output=True, text=True, timeout=60, check=False,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    assert "kek" in run.stdout and "reencrypt" in run.stdout
