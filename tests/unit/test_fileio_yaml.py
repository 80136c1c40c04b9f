"""secretkit.fileio's YAML reader: clear errors (what, file:line:column, hint), no content."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.errors import ConfigError, SecretkitError, UsageError
from secretkit.fileio import YAMLSyntaxError, load_yaml, parse_yaml, read_yaml_file

# no "=" padding: it would end a tag or alias early and hide the redaction
SECRET = "c2VjcmV0IGlzIHNlY3VyZSBhbmQgbG9uZw"


def _message(err: SecretkitError) -> str:
    """Everything an operator could see: the one-line form and the diagnostics."""
    return f"{err}\n{err.diagnostics()}"


def test_reads_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("a: 1\nb: [x, y]\n")
    assert read_yaml_file(path, what="test file") == {"a": 1, "b": ["x", "y"]}


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(UsageError) as info:
        read_yaml_file(path, what="backends file")
    assert info.value.what == "cannot read backends file: file not found"
    assert info.value.where == str(path)
    assert info.value.hint


@pytest.mark.parametrize("kind", ["directory", "below a file"])
def test_unreadable_file(tmp_path: Path, kind: str) -> None:
    # a directory and a path below a regular file fail to open even for root
    if kind == "directory":
        path = tmp_path / "dir.yaml"
        path.mkdir()
    else:
        (tmp_path / "plain").write_text("x")
        path = tmp_path / "plain" / "child.yaml"
    with pytest.raises(ConfigError) as info:
        read_yaml_file(path, what="config file", error=ConfigError)
    assert info.value.what.startswith("cannot read config file: ")
    assert info.value.where == str(path)
    assert info.value.__cause__ is None


def test_syntax_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: c: d\n")
    with pytest.raises(UsageError) as info:
        read_yaml_file(path, what="manifest", hint="fix it")
    err = info.value
    assert err.what == "manifest is not valid YAML: mapping values are not allowed here"
    assert err.where == f"{path}:2:5"
    assert err.hint == "fix it"


def test_error_class_is_the_callers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml("a: [\n", source="x.yaml", what="backends file", error=ConfigError)


@pytest.mark.parametrize(
    "text",
    [
        # an unquoted value starting with "!" is a tag: PyYAML quotes the tag
        f"password: !{SECRET}\n",
        # an alias PyYAML quotes by name
        f"token: *{SECRET}\n",
        # a bad escape inside a secret: PyYAML's str() quotes the whole line
        f'secret: "{SECRET}\\q"\n',
        # a syntax error on the secret's own line
        f"keys:\n  - secret: {SECRET}: more\n",
        f"secret: {SECRET}\n  bad: [indent\n",
        # an undefined tag handle
        f"secret: !{SECRET}!x y\n",
        # a value its tag's constructor rejects: PyYAML raises a plain ValueError /
        # KeyError whose text quotes the value
        f"secret: !!int {SECRET}\n",
        f"secret: !!bool {SECRET}\n",
        f"secret: !!float {SECRET}\n",
        f"secret: !!timestamp {SECRET}\n",
        f"keys:\n  - {{name: k, secret: !!int {SECRET}}}\n",
    ],
)
def test_secret_never_appears_in_the_message(tmp_path: Path, text: str) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        read_yaml_file(path, what="config file")
    err = info.value
    assert SECRET not in _message(err)
    assert SECRET[:12] not in _message(err)
    # the PyYAML exception (whose str() quotes the line) is not chained either
    assert err.__cause__ is None
    assert err.__suppress_context__
    assert err.where is not None and err.where.startswith(f"{path}:")


def test_harmless_fragments_are_kept() -> None:
    # single characters and token names help the operator and cannot hold a key
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml("a:\tb\n")
    assert "'\\t'" in info.value.problem
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml("a: [\n")
    assert "'<stream end>'" in info.value.problem


def test_non_utf8_and_control_characters_are_located() -> None:
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml(b"a: 1\nb: \xff\xfe" + SECRET.encode())
    assert (info.value.problem, info.value.line, info.value.column) == ("not UTF-8 text", 2, 4)
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml(f"a: 1\nsecret: {SECRET}\x00\n")
    assert info.value.problem == "unacceptable character #x0000"
    assert (info.value.line, info.value.column) == (2, 9 + len(SECRET))
    assert SECRET not in str(info.value)


def test_unique_keys() -> None:
    assert parse_yaml("a: 1\na: 2\n") == {"a": 2}  # plain YAML: the last one wins
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml("kind: A\nb: 1\nkind: B\n", unique_keys=True)
    assert info.value.problem == "duplicate field 'kind'"
    assert (info.value.line, info.value.column) == (3, 1)
    assert info.value.at("f.yaml") == "f.yaml:3:1"


@pytest.mark.parametrize("unique_keys", [False, True])
@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        (f"secret: !!int {SECRET}\n", "a value does not fit its tag/type", (1, 9)),
        (f"a: 1\nsecret: !!bool {SECRET}\n", "a value does not fit its tag/type", (2, 9)),
        ("a: 2020-13-01\n", "a value does not fit its tag/type", (1, 4)),
        ("a: !!timestamp 'x'\n", "a value does not fit its tag/type", (1, 4)),
        ("? [a]\n: 1\n", "found unhashable key", (1, 3)),
        ("{[a]: 1}\n", "found unhashable key", (1, 2)),
        ("[" * 5000 + "]" * 5000, "the document is nested too deeply", (None, None)),
    ],
)
def test_values_that_do_not_fit_are_yaml_errors(
    text: str, problem: str, position: tuple[int | None, int | None], unique_keys: bool
) -> None:
    # these used to escape as ValueError, KeyError, TypeError, AttributeError or
    # RecursionError (a traceback quoting the value); now one content-free error
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml(text, unique_keys=unique_keys)
    err = info.value
    assert (err.problem, err.line, err.column) == (problem, *position)
    assert SECRET not in str(err)
    # neither cause nor context: nothing that quotes the value travels with it
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__


def test_long_duplicate_keys_are_shortened() -> None:
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml(f"{SECRET}: 1\n{SECRET}: 2\n", unique_keys=True)
    assert info.value.problem == f"duplicate field '{SECRET[:20]}\u2026'"
    assert SECRET not in str(info.value)
    with pytest.raises(YAMLSyntaxError) as info:
        parse_yaml("abcdefghijklmnopqrst: 1\nabcdefghijklmnopqrst: 2\n", unique_keys=True)
    assert info.value.problem == "duplicate field 'abcdefghijklmnopqrst'"
