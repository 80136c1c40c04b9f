"""``secretkit inspect`` on the upstream vectors, offline through local KEK backends."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from secretkit.backends import write_kek_file
from tests.unit.cli.helpers import run_cli
from tests.unit.transformers.vectors import (
    IDENTITY_ONLY_CONFIG,
    VECTORS,
    all_providers_config,
    fake_kms_specs,
)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The all-providers config plus a backends file of local KEKs from fake_kms."""
    root = tmp_path_factory.mktemp("inspect")
    (root / "enc.yaml").write_bytes(all_providers_config())
    (root / "identity.yaml").write_bytes(IDENTITY_ONLY_CONFIG)
    lines = []
    for name, spec in fake_kms_specs().items():
        write_kek_file(root / f"{name}.kek", kek=base64.b64decode(spec["kek_b64"]))
        lines += [
            f"{name}:",
            "  type: local",
            "  keys:",
            f"    - kek_file: {name}.kek",
            f"      key_id: {json.dumps(spec['key_id'])}",
        ]
    (root / "backends.yaml").write_text("\n".join(lines) + "\n")
    for vector in VECTORS:
        (root / f"{vector['id']}.bin").write_bytes(base64.b64decode(vector["stored_b64"]))
    return {"root": root}


def _value(offline: dict[str, Path], vector: dict[str, Any]) -> str:
    return str(offline["root"] / f"{vector['id']}.bin")


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_classify_without_config(
    vector: dict[str, Any], offline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(
        capsys, "inspect", "--etcd-key", vector["etcd_key"], _value(offline, vector), "-o", "json"
    )
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["provider"] == vector["provider"]
    assert report["stale"] is None and report["decrypted"] is False
    assert "plaintext_b64" not in report
    if (
        vector["provider"] == "kms-v2"
        and vector["upstream_read"].get("error") != "no matching prefix found"
    ):
        assert report["provider_name"] == vector["provider_name"]
    if vector["provider"] == "kms-v2" and "key_id" in vector and report["key_id"] is not None:
        assert report["key_id"] == vector["key_id"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_decrypt_with_config_and_local_backends(
    vector: dict[str, Any], offline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    expected = vector["upstream_read"]
    root = offline["root"]
    config = root / ("enc.yaml" if expected["reader"] == "all-providers" else "identity.yaml")
    args = ["inspect", "--etcd-key", vector["etcd_key"], "--config", str(config)]
    if expected["reader"] == "all-providers":
        args += ["--backends", str(root / "backends.yaml")]
    res = run_cli(capsys, *args, "--show-plaintext", "-o", "json", _value(offline, vector))
    if not expected["ok"]:
        # upstream cannot read it either: data at risk (4), one JSON error document
        assert res.code == 4, res.err
        assert json.loads(res.out)["error"]["exit_code"] == 4
        assert "error:" in res.err
        assert ("no matching prefix" in res.err) or ("no provider could decrypt" in res.err)
        return
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["decrypted"] is True
    assert report["stale"] is expected["stale"]
    assert report["provider"] == vector["provider"]
    want = expected.get("output_b64") or vector["plaintext_b64"]
    assert report["plaintext_b64"] == want
    if vector["provider"] == "kms-v2":
        assert (report["provider_name"], report["key_id"]) == (
            vector["provider_name"],
            vector["key_id"],
        )
    elif vector["provider"] != "identity":
        assert report["key_name"] == vector["key_name"]
    if base64.b64decode(want).startswith(b"k8s\x00"):
        assert report["encoding"] == "protobuf"


def test_every_kms_v2_vector_decrypts_offline(
    offline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = offline["root"]
    good = [v for v in VECTORS if v["provider"] == "kms-v2" and v["upstream_read"]["ok"]]
    assert len(good) == 9
    for vector in good:
        res = run_cli(
            capsys, "inspect", "--etcd-key", vector["etcd_key"], "--config", str(root / "enc.yaml"),
            "--backends", str(root / "backends.yaml"), "-o", "json", _value(offline, vector),
        )  # fmt: skip
        report = json.loads(res.out)
        assert report["decrypted"] and "plaintext_b64" not in report


def test_text_output_hides_plaintext_by_default(
    offline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    vector = next(v for v in VECTORS if v["id"] == "aesgcm-11")
    root = offline["root"]
    res = run_cli(
        capsys, "inspect", "--etcd-key", vector["etcd_key"], "--config", str(root / "enc.yaml"),
        "--backends", str(root / "backends.yaml"), _value(offline, vector),
    )  # fmt: skip
    assert res.code == 0
    assert "provider:  aesgcm (key 'gcm-key-1')" in res.out and "STALE" in res.out
    assert vector["plaintext_b64"][:16] not in res.out and "plaintext" not in res.out


def test_kms_value_without_backends_names_the_missing_backend(
    offline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    vector = next(v for v in VECTORS if v["id"] == "kms-v2-22")
    root = offline["root"]
    res = run_cli(
        capsys, "inspect", "--etcd-key", vector["etcd_key"], "--config", str(root / "enc.yaml"),
        _value(offline, vector),
    )  # fmt: skip
    # nothing is known about the value: a usage problem (2), not data at risk (4)
    assert res.code == 2 and "--backends" in res.err


def test_value_from_stdin(offline: dict[str, Path]) -> None:
    vector = next(v for v in VECTORS if v["id"] == "secretbox-17")
    proc = subprocess.run(
        [
            sys.executable, "-m", "secretkit.cli.main", "inspect",
            "--etcd-key", vector["etcd_key"], "--config", str(offline["root"] / "enc.yaml"),
            "-o", "json", "-",
        ],
        input=base64.b64decode(vector["stored_b64"]),
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["provider"], report["key_name"], report["stale"]) == (
        "secretbox",
        "sb-key-1",
        True,
    )
