"""Run ``secretkit reencrypt`` as a step of a rotation, the way an operator would.

Shared by the rotation stages and ``secretkit kms rotate``. The child's stdout goes to
our stderr so that our own ``-o json`` stays clean, and the command line we echo has
credentials masked (the etcd flags after ``--`` may carry a password).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence

from secretkit.errors import SafetyError, SecretkitError, UndecryptableError

#: ``secretkit reencrypt``'s exit code when ``--verify`` found values no provider
#: of the config can read
UNDECRYPTABLE_EXIT = UndecryptableError.exit_code

_SECRET_FLAGS = ("--password",)


def masked(args: Sequence[str]) -> list[str]:
    """``args`` with ``--password`` values and the password of ``--user u:p`` hidden."""
    out: list[str] = []
    previous = ""
    for arg in args:
        if previous in _SECRET_FLAGS:
            arg = "***"
        elif previous == "--user" and ":" in arg:
            arg = arg.split(":", 1)[0] + ":***"
        elif arg.startswith(tuple(f + "=" for f in _SECRET_FLAGS)):
            arg = arg.split("=", 1)[0] + "=***"
        elif arg.startswith("--user=") and ":" in arg:
            arg = arg.split(":", 1)[0] + ":***"
        out.append(arg)
        previous = arg
    return out


def run_reencrypt(
    args: Sequence[str],
    resources: Sequence[str],
    *,
    dry_run: bool = False,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Run ``secretkit reencrypt ARGS`` for ``resources``; raise when it fails.

    See :func:`reencrypt_failure`: :class:`~secretkit.errors.UndecryptableError` (exit 4) for
    undecryptable values, :class:`~secretkit.errors.SafetyError` (exit 3) otherwise.
    """
    tail = list(args)
    if not any(a.startswith("--resources") for a in tail):
        tail += ["--resources", ",".join(resources)]
    if dry_run:
        tail.append("--dry-run")
    if echo is not None:
        echo("running: secretkit reencrypt " + " ".join(masked(tail)))
    argv = [sys.executable, "-m", "secretkit.cli.main", "reencrypt", *tail]
    proc = subprocess.run(argv, check=False, stdout=sys.stderr)  # keep our stdout for -o json
    if proc.returncode != 0:
        raise reencrypt_failure(proc.returncode)


def reencrypt_failure(returncode: int) -> SecretkitError:
    """The error for a ``secretkit reencrypt`` child that exited with ``returncode`` (not 0).

    Exit 4 (undecryptable values) keeps its code and says what protects the data;
    "run it again" would not help there, and pruning would make the loss permanent.
    Every other failure is a :class:`SafetyError` (exit 3): the step is not recorded.
    """
    if returncode == UNDECRYPTABLE_EXIT:
        return UndecryptableError(
            "re-encryption found values that no provider of the config can read "
            "(listed above); the step is not recorded",
            hint="data-loss risk: do not prune; put the key that wrote them back into "
            "the config (or restore those objects from a backup), then run the step again",
        )
    return SafetyError(
        f"re-encryption failed (exit {returncode}); the step is not recorded",
        hint="fix the cause shown above and run it again; "
        "pass --resume FILE (after --) to continue a long run",
    )
