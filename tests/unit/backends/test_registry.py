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
