"""build_backend / load_backends_file: strict validation with field paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from secretkit.backends import LocalBackend, build_backend, load_backends_file, write_kek_file
from secretkit.errors import ConfigError


@pytest.fixture
def kek_dir(tmp_path: Path) -> Path:
    write_kek_file(tmp_path / "kek-1.bin")
    write_kek_file(tmp_path / "kek-2.bin")
    return tmp_path


def test_load_backends_file_resolves_relative_paths(kek_dir: Path, monkeypatch: Any) -> None:
    path = kek_dir / "backends.yaml"
    path.write_text(
        "kms-prod:\n"
        "  type: local\n"
        "  keys:\n"
        "    - kek_file: kek-2.bin\n"
        "      key_id: second\n"
        "    - kek_file: kek-1.bin\n"
    )
    monkeypatch.chdir("/")
    backends = load_backends_file(path)
    assert list(backends) == ["kms-prod"]
    backend = backends["kms-prod"]
    assert isinstance(backend, LocalBackend)
    assert backend.status().key_id == "second"
    assert len(backend.key_ids) == 2


def _expect(defn: Any, where: str, match: str, base: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError, match=match) as err:
        build_backend(defn, where="b.yaml:kms", base_dir=base)
    assert err.value.where == where
    return err.value


def test_validation_errors_name_the_field(kek_dir: Path) -> None:
    _expect({"type": "local", "keys": [{"kek_file": "kek-1.bin"}], "kek": 1},
            "b.yaml:kms.kek", "unknown field 'kek'", kek_dir)
    _expect({"type": "local", "keys": [{"kek_file": "kek-1.bin", "keyid": "x"}]},
            "b.yaml:kms.keys[0].keyid", "unknown field", kek_dir)
    _expect({"type": "local"}, "b.yaml:kms.keys", "missing required field 'keys'")
    _expect({"type": "local", "keys": []}, "b.yaml:kms.keys", "non-empty list")
    _expect({"type": "local", "keys": [{}]}, "b.yaml:kms.keys[0].kek_file", "missing required")
    err = _expect({"type": "gcp"}, "b.yaml:kms.type", "unknown backend type 'gcp'")
    assert err.hint is not None and "local, vault, aws" in err.hint
    _expect({"keys": []}, "b.yaml:kms.type", "missing required field 'type'")
    _expect(["type", "local"], "b.yaml:kms", "expected a mapping")
    _expect({"type": "local", "keys": [{"kek_file": "kek-1.bin"}, {"kek_file": "kek-1.bin"}]},
            "b.yaml:kms.keys", "share the key_id", kek_dir)


def test_unknown_fields_in_vault_and_aws_are_rejected() -> None:
    _expect({"type": "vault", "address": "http://127.0.0.1:1", "key": "k", "adress": "x"},
            "b.yaml:kms.adress", "unknown field")
    _expect({"type": "aws", "key": "alias/x", "regoin": "us-east-1"},
            "b.yaml:kms.regoin", "unknown field")


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "non-empty mapping"), ("- a\n", "non-empty mapping"), ("a: [\n", "not valid YAML")],
)
def test_bad_backends_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "backends.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_backends_file(path)


def test_missing_backends_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_backends_file(tmp_path / "nope.yaml")


VAULT = {"type": "vault", "address": "http://127.0.0.1:8200", "key": "k8s"}


@pytest.mark.parametrize(
    ("extra", "where", "match"),
    [
        ({}, "b.yaml:kms.auth", "missing required field 'auth'"),
        ({"auth": {"method": "token"}}, "b.yaml:kms.auth", "exactly one of token or token_file"),
        ({"auth": {"method": "token", "token": "t", "token_file": "f"}}, "b.yaml:kms.auth",
         "exactly one"),
        ({"auth": {"method": "ldap"}}, "b.yaml:kms.auth.method", "unknown auth method"),
        ({"auth": {"method": "approle"}}, "b.yaml:kms.auth.role_id", "missing required"),
        ({"auth": {"method": "jwt", "role": "r"}}, "b.yaml:kms.auth.token_file", "missing"),
        ({"auth": {"method": "kubernetes"}}, "b.yaml:kms.auth.role", "missing required"),
        ({"auth": {"method": "cert"}}, "b.yaml:kms.auth", "client_cert"),
        ({"auth": {"method": "token", "token": "t"}, "tls": {"client_cert": "c"}},
         "b.yaml:kms.tls", "both client_cert and client_key"),
        ({"auth": {"method": "token", "token": "t"}, "address": "127.0.0.1:8200"},
         "b.yaml:kms.address", "http"),
        ({"auth": {"method": "token", "token": "t"}, "key": "a:b"}, "b.yaml:kms.key", "invalid"),
        ({"auth": {"method": "token", "token": "t"}, "batch": {"max_items": 0}},
         "b.yaml:kms.batch.max_items", "integer from 1 to"),
        ({"auth": {"method": "token", "token": "t"}, "timeout_seconds": "2"},
         "b.yaml:kms.timeout_seconds", "number"),
    ],
)
def test_vault_validation(extra: dict[str, Any], where: str, match: str) -> None:
    _expect({**VAULT, **extra}, where, match)


def test_vault_relative_paths_and_secret_free_repr(tmp_path: Path) -> None:
    from secretkit.backends.vault import VaultTransitBackend

    # the CA file must exist and look like PEM (checked before requests reads it)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    backend = build_backend(
        {**VAULT, "auth": {"method": "approle", "role_id": "rid", "secret_id": "s3cr3t-id"},
         "tls": {"ca_file": "ca.pem"}},
        where="b.yaml:kms",
        base_dir=tmp_path,
    )
    assert isinstance(backend, VaultTransitBackend)
    assert backend.cfg.tls.ca_file == tmp_path / "ca.pem"
    assert "s3cr3t-id" not in repr(backend.cfg)


@pytest.mark.parametrize(
    ("defn", "where", "match"),
    [
        ({"type": "aws", "key": "alias/x"}, "b.yaml:kms.region", "missing required field"),
        ({"type": "aws", "key": "arn:aws:kms:eu-west-1:111122223333:key/abc",
          "region": "us-east-1"}, "b.yaml:kms.region", "differs"),
        ({"type": "aws", "key": "arn:aws:s3:::bucket", "region": "us-east-1"},
         "b.yaml:kms.key", "not a KMS key"),
        ({"type": "aws", "key": "alias/x", "region": "us-east-1", "assume_role": {}},
         "b.yaml:kms.assume_role.role_arn", "missing required"),
        ({"type": "aws", "key": "alias/x", "region": "us-east-1",
          "encryption_context": {"a": 1}}, "b.yaml:kms.encryption_context", "strings"),
    ],
)
def test_aws_validation(defn: dict[str, Any], where: str, match: str) -> None:
    _expect(defn, where, match)


def test_aws_region_comes_from_the_key_arn() -> None:
    from secretkit.backends.aws import DEFAULT_CONTEXT, AwsKmsBackend

    backend = build_backend(
        {"type": "aws", "key": "arn:aws:kms:eu-west-1:111122223333:key/abc"}, where="b"
    )
    assert isinstance(backend, AwsKmsBackend)
    assert backend.cfg.region == "eu-west-1"
    assert dict(backend.cfg.encryption_context) == DEFAULT_CONTEXT
