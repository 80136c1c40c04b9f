"""Run a test file against a changed copy of the tree: proof that a test can fail.

A property test that passes proves something only if it fails on the bug it was
written for. These helpers copy the product and the tests to a scratch folder (never
touching the checkout other tests import), let the caller break the copy, and run one
test file there with the CI's fixed seed and shrinking off (the first failure is
enough, and found in seconds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_tree(target: Path) -> None:
    """Copy ``secretkit``, ``kms_plugin``, ``tests`` and ``pyproject.toml`` to ``target``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("secretkit", "kms_plugin", "tests"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")


def run_in_copy(tree: Path, test_file: str, *, timeout: float) -> tuple[int, str]:
    """Run ``test_file`` with the copy at ``tree`` on the import path; (exit code, output).

    Checks first that the copy, not the checkout, is what the interpreter imports.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(PYTHONPATH=str(tree), SECRETKIT_PROPERTY_NO_SHRINK="1",
               SECRETKIT_PROPERTY_RANDOM="0")
    where = subprocess.run(
        [sys.executable, "-c", "import secretkit; print(secretkit.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(tree), where.stdout
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", test_file],
        cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=timeout,
    )
    return run.returncode, run.stdout + run.stderr
