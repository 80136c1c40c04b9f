"""Every `secretkit ...` command line in README.md and docs/ names real commands and flags.

Docs that drift from the code are worse than none: this parses each console block,
walks the click command tree, and checks each ``--flag`` against that command's
options (arguments after a bare ``--`` belong to another command and are skipped).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from secretkit.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_BLOCK = re.compile(r"```(?:console|bash|sh|shell)?\n(.*?)```", re.S)


def _command_lines(text: str) -> list[str]:
    lines: list[str] = []
    for block in _BLOCK.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for raw in joined.splitlines():
            line = raw.strip().removeprefix("$ ").strip()
            line = line.split(" #", 1)[0].strip()
            # skip diagrams and prose that happen to sit in a code block
            if line.startswith("secretkit ") and line.isascii() and not line.endswith("."):
                lines.append(line)
    return lines


def _cases() -> list[tuple[str, str]]:
    cases = []
    for path in DOCS:
        for line in _command_lines(path.read_text()):
            cases.append((str(path.relative_to(ROOT)), line))
    return cases


def _options(command: click.Command) -> dict[str, click.Option | None]:
    names: dict[str, click.Option | None] = {"--help": None, "-h": None}
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                names[opt] = param
    return names


@pytest.mark.parametrize(("doc", "line"), _cases())
def test_documented_command_exists(doc: str, line: str) -> None:
    try:
        tokens = shlex.split(line)[1:]
    except ValueError:
        pytest.fail(f"{doc}: cannot parse {line!r}")
    # a runbook's shell variables ($ETCD, $CONFIGS) expand to flags the runbook test
    # (tests/e2e/runbooks) runs for real; here they are only skipped
    tokens = [t for t in tokens if not t.startswith("$")]
    command: click.Command = cli
    ctx = click.Context(cli)
    while tokens and isinstance(command, click.Group) and not tokens[0].startswith("-"):
        sub = command.get_command(ctx, tokens[0])
        assert sub is not None, f"{doc}: no command {tokens[0]!r} in {line!r}"
        command, tokens = sub, tokens[1:]
    known = _options(command)
    takes_value = False
    for token in tokens:
        if takes_value:  # the value of the previous option, even if it looks like a flag
            takes_value = False
            continue
        if token == "--":
            break
        if token.startswith("-") and not token.startswith("-$") and token != "-":
            flag = token.split("=", 1)[0]
            if flag.startswith("--") or len(flag) == 2:
                assert flag in known, f"{doc}: {command.name} has no option {flag} ({line!r})"
                option = known[flag]
                takes_value = (
                    option is not None
                    and not option.is_flag
                    and not option.count
                    and "=" not in token
                )


def test_docs_do_mention_commands() -> None:
    assert len(_cases()) >= 10
