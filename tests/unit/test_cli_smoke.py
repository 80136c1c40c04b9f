"""The CLI entry point starts and explains itself."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Protect the Secrets" in out


def test_unknown_command_exits_nonzero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "no-such-command"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "No such command" in proc.stderr
