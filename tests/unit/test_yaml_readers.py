"""Every YAML file secretkit reads goes through secretkit.fileio: same errors, no content.

A file with a key-looking value and a syntax error on that value's line is given to
each reader; each must name the file with line and column, keep its own error class
and wording, and never show the value.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kms_plugin.config import load_config_file
from secretkit.audit.flags import load_manifest_flags
from secretkit.backends.registry import load_backends_file
from secretkit.encryption_config.load import check_encryption_config, load_encryption_config_file
from secretkit.errors import ConfigError, SecretkitError, UsageError
from secretkit.rotation.files import read_config_bytes
from secretkit.rotation.verify import load_identical_configs

SECRET = "c2VjcmV0IGlzIHNlY3VyZSBhbmQgbG9uZw"
# line 3, column 11: a value starting with "!" is a tag, which PyYAML's error quotes
BAD = f"a: 1\nb:\n  secret: !{SECRET}\n"

READERS: list[tuple[str, Callable[[Path], object], type[SecretkitError], str]] = [
    ("plugin config", load_config_file, UsageError, "config file is not valid YAML"),
    ("backends file", load_backends_file, ConfigError, "backends file is not valid YAML"),
    ("manifest", lambda p: load_manifest_flags(p, "etcd"), UsageError, "manifest is not valid"),
    ("node configs", lambda p: load_identical_configs([p]), UsageError, "config file is not"),
]


@pytest.mark.parametrize(("name", "read", "error", "words"), READERS, ids=[r[0] for r in READERS])
def test_syntax_errors_are_located_without_content(
    tmp_path: Path,
    name: str,
    read: Callable[[Path], object],
    error: type[SecretkitError],
    words: str,
) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(BAD)
    with pytest.raises(error) as info:
        read(path)
    err = info.value
    assert words in err.what
    assert err.where == f"{path}:3:11"
    assert SECRET not in f"{err}\n{err.diagnostics()}"
    assert err.__cause__ is None


@pytest.mark.parametrize(("name", "read", "error", "words"), READERS, ids=[r[0] for r in READERS])
def test_missing_files_say_which_file(
    tmp_path: Path,
    name: str,
    read: Callable[[Path], object],
    error: type[SecretkitError],
    words: str,
) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(error) as info:
        read(path)
    assert "cannot read" in info.value.what and "not found" in info.value.what
    assert info.value.where == str(path)


def test_encryption_config_reports_position_without_content(tmp_path: Path) -> None:
    _, problems = check_encryption_config(BAD.encode(), source="enc.yaml")
    assert len(problems) == 1
    assert "(line 3, column 11)" in problems[0].message
    assert SECRET not in str(problems[0])
    with pytest.raises(ConfigError, match="cannot read encryption config file: file not found"):
        load_encryption_config_file(tmp_path / "absent.yaml")


def test_rotation_config_read_errors_use_the_same_wording(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        read_config_bytes(tmp_path)  # a directory
    assert info.value.what.startswith("cannot read config file: ")
    assert info.value.hint == "check the --config path"
