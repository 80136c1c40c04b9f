"""``secretkit config generate|validate|show`` through the real entry point."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml

from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config import (
    KMSProvider,
    LocalKeyProvider,
    ProviderType,
    load_encryption_config,
)
from tests.unit.cli.helpers import run_cli

DATA = Path(__file__).parents[2] / "data" / "upstream-configs"


def _secret_of(path: Path) -> str:
    doc = yaml.safe_load(path.read_text())
    provider = doc["resources"][0]["providers"][0]
    (body,) = provider.values()
    return str(body["keys"][0]["secret"])


@pytest.mark.parametrize("provider", ["aescbc", "aesgcm", "secretbox"])
def test_generate_local_provider_file_is_0600_valid_and_secret_stays_out_of_output(
    provider: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "enc.yaml"
    res = run_cli(capsys, "config", "generate", "--provider", provider, "-f", str(target))
    assert res.code == 0, res.err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    secret = _secret_of(target)
    assert len(base64.b64decode(secret)) == 32
    assert secret not in res.out + res.err
    cfg = load_encryption_config_file(target)
    first = cfg.rules[0].providers[0]
    assert isinstance(first, LocalKeyProvider) and first.type == ProviderType(provider)
    assert first.keys[0].name.startswith("key-") and first.keys[0].fingerprint in res.out
    assert run_cli(capsys, "config", "validate", str(target)).code == 0
    shown = run_cli(capsys, "config", "show", str(target), "-o", "json")
    assert shown.code == 0 and secret not in shown.out
    assert json.loads(shown.out)["rules"][0]["providers"][0]["keys"][0]["size"] == 32
    assert not list(tmp_path.glob(".enc.yaml.*"))  # no temp file left behind


def test_generate_kms_v2_with_identity_fallback_and_resources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "kms.yaml"
    res = run_cli(
        capsys,
        "config", "generate", "--provider", "kms", "--kms-name", "kms-prod",
        "--kms-endpoint", "unix:///var/run/kms.sock", "--kms-timeout", "5s",
        "--resources", "secrets,configmaps,*.apps", "--identity-fallback",
        "-f", str(target), "-o", "json",
    )  # fmt: skip
    assert res.code == 0, res.err
    assert json.loads(res.out)["written"] == str(target)
    assert run_cli(capsys, "config", "validate", str(target)).code == 0
    cfg = load_encryption_config_file(target)
    (rule,) = cfg.rules
    assert rule.resources == ("secrets", "configmaps", "*.apps")
    kms, identity = rule.providers
    assert kms == KMSProvider("kms-prod", "unix:///var/run/kms.sock", "v2", 5.0, None)
    assert identity.type == ProviderType.IDENTITY


def test_generate_refuses_to_print_keys_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    refused = run_cli(capsys, "config", "generate", "--provider", "aesgcm")
    assert refused.code == 2
    assert "--show-secrets" in refused.err and "secret:" not in refused.out
    shown = run_cli(capsys, "config", "generate", "--provider", "aesgcm", "--show-secrets")
    assert shown.code == 0
    cfg = load_encryption_config(shown.out.encode())
    assert isinstance(cfg.rules[0].providers[0], LocalKeyProvider)


def test_generate_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "enc.yaml"
    assert run_cli(capsys, "config", "generate", "--key-name", "one", "-f", str(target)).code == 0
    first = target.read_bytes()
    again = run_cli(capsys, "config", "generate", "--key-name", "two", "-f", str(target))
    assert again.code == 2 and "--force" in again.err
    assert target.read_bytes() == first
    forced = run_cli(
        capsys, "config", "generate", "--key-name", "two", "-f", str(target), "--force"
    )
    assert forced.code == 0 and b"name: two" in target.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ("--provider", "kms"),
        ("--resources", "*"),
        ("--resources", ","),
        (
            "--provider",
            "kms",
            "--kms-name",
            "a",
            "--kms-endpoint",
            "unix:///s",
            "--kms-timeout",
            "x",
        ),
    ],
)
def test_generate_bad_requests_fail_clearly(
    args: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(capsys, "config", "generate", *args, "-f", str(tmp_path / "x.yaml"))
    assert res.code == 2 and res.err.startswith("error:"), res.err
    assert not (tmp_path / "x.yaml").exists()


def test_validate_upstream_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    valid = sorted(str(p) for p in (DATA / "valid-configs").rglob("*.*") if p.suffix != ".md")
    res = run_cli(capsys, "config", "validate", *valid)
    assert res.code == 0, res.out
    assert res.out.count("OK ") == len(valid)
    for path in sorted((DATA / "invalid-configs").rglob("*.yaml")):
        bad = run_cli(capsys, "config", "validate", str(path))
        assert bad.code == 1 and "INVALID" in bad.out


def test_validate_json_lists_every_problem_and_redacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short_key = base64.b64encode(b"0123456789").decode()
    target = tmp_path / "bad.yaml"
    target.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "  - resources: [secrets, '*']\n    providers:\n"
        f"      - aesgcm: {{keys: [{{name: k, secret: {short_key}}}]}}\n"
        "      - kms: {apiVersion: v2, name: 'a:b', endpoint: 'unix:///s', cachesize: 5}\n"
    )
    res = run_cli(
        capsys, "config", "validate", str(target), str(tmp_path / "missing.yaml"), "-o", "json"
    )
    assert res.code == 1
    report = json.loads(res.out)
    assert report["valid"] is False
    first, missing = report["files"]
    paths = {p["path"] for p in first["problems"]}
    assert {
        "resources[0].resources[1]",
        "resources[0].providers[0].aesgcm.keys[0].secret",
        "resources[0].providers[1].kms.name",
        "resources[0].providers[1].kms.cachesize",
    } <= paths
    assert all(p["hint"] for p in first["problems"])
    assert short_key not in res.out
    assert missing["valid"] is False and missing["problems"][0]["path"] == "(file)"


def test_show_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "valid-configs" / "secret-box-first.yaml"
    text = run_cli(capsys, "config", "show", str(path))
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[1].startswith("hash:   sha256:")
    assert "1. secretbox: key1 [sha256:" in text.out and "[writes + reads]" in lines[3]
    assert "kms v2 'testproviderv2' at unix:///tmp/testprovider.sock (timeout 1s)" in text.out
    assert "YWJjZGVmZ2hp" not in text.out  # the secretbox key's base64
    data = json.loads(run_cli(capsys, "config", "show", str(path), "-o", "json").out)
    kinds = [p["type"] for p in data["rules"][0]["providers"]]
    assert kinds == ["secretbox", "aescbc", "kms", "kms", "identity", "aesgcm"]
    kms_v1 = data["rules"][0]["providers"][2]
    assert (kms_v1["apiVersion"], kms_v1["cachesize"], kms_v1["timeout_seconds"]) == ("v1", 10, 3.0)


def test_show_invalid_file_fails_with_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    res = run_cli(capsys, "config", "show", str(DATA / "invalid-configs" / "invalid-typo.yaml"))
    assert res.code == 2 and "pandas" in res.err  # bad input
