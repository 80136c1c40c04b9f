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
from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config.load import check_encryption_config
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


#: values that do not fit their tag: PyYAML's constructors quote them in plain
#: ValueError/KeyError texts (line 3, column 11 again)
TAGGED = [f"a: 1\nb:\n  secret: !!{tag} {SECRET}\n" for tag in ("int", "bool", "float")]


@pytest.mark.parametrize("text", TAGGED, ids=["int", "bool", "float"])
@pytest.mark.parametrize(("name", "read", "error", "words"), READERS, ids=[r[0] for r in READERS])
def test_values_that_do_not_fit_their_tag_are_located_without_content(
    tmp_path: Path,
    name: str,
    read: Callable[[Path], object],
    error: type[SecretkitError],
    words: str,
    text: str,
) -> None:
    path = tmp_path / "file.yaml"
    path.write_text(text)
    with pytest.raises(error) as info:
        read(path)
    err = info.value
    assert words in err.what
    assert "a value does not fit its tag/type" in err.what
    assert err.where == f"{path}:3:11"
    assert SECRET not in f"{err}\n{err.diagnostics()}"
    assert err.__cause__ is None


@pytest.mark.parametrize("text", TAGGED, ids=["int", "bool", "float"])
def test_encryption_config_tagged_values_without_content(text: str) -> None:
    _, problems = check_encryption_config(text.encode(), source="enc.yaml")
    assert len(problems) == 1
    assert "a value does not fit its tag/type (line 3, column 11)" in problems[0].message
    assert SECRET not in str(problems[0])


def test_encryption_config_json_problems_without_content() -> None:
    # a JSON integer over Python's digit limit, JSON nested too deeply, a long repeated
    # field: none escapes as a crash and none quotes the document
    _, problems = check_encryption_config(b'{"secret": ' + b"7" * 5000 + b"}")
    assert [p.message for p in problems] == [
        "cannot decode YAML/JSON: a value does not fit its tag/type (line 1, column 12)"
    ]
    _, problems = check_encryption_config(b"{" * 100_000)
    assert problems[0].message == "cannot decode YAML/JSON: the document is nested too deeply"
    _, problems = check_encryption_config(f'{{"{SECRET}": 1, "{SECRET}": 2}}'.encode())
    assert problems[0].message == f"cannot decode YAML/JSON: duplicate field '{SECRET[:20]}\u2026'"


def test_plugin_cli_refuses_a_tagged_token_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # through the plugin's real entry point, error boundary included: a usage error
    # (exit 2), no traceback, no token
    from kms_plugin.cli import main

    path = tmp_path / "plugin.yaml"
    path.write_text(
        "listen: unix:///tmp/x.sock\nbackend:\n  type: vault\n  auth:\n"
        f"    method: token\n    token: !!int hvs.{SECRET}\n"
    )
    with pytest.raises(SystemExit) as info:
        main(["--config", str(path), "--check-config"])
    out = capsys.readouterr()
    assert info.value.code == 2
    assert "Traceback" not in out.err
    assert SECRET not in out.out + out.err
    assert f"{path}:6:12" in out.err
    assert "a value does not fit its tag/type" in out.err


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
