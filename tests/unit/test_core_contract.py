"""The pure core is a place: secretkit/core imports nothing that talks to the world.

Every module under secretkit/core may import the standard library (minus the modules
that reach the network or spawn processes), the crypto libraries, a YAML parser,
other core modules and the error family. File reading and writing, gRPC, HTTP
clients, Kubernetes, Vault and AWS SDKs, and the CLI live in the callers.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "secretkit" / "core"

#: standard modules that reach outside the process (network, processes, files by path)
FORBIDDEN_STDLIB = frozenset(
    {"socket", "ssl", "subprocess", "urllib.request", "http", "shutil", "tempfile",
     "multiprocessing", "asyncio", "ftplib", "smtplib", "select", "selectors"}
)
#: third-party packages the core may use: cryptography, PyNaCl, a YAML parser
ALLOWED_THIRD_PARTY = frozenset({"cryptography", "nacl", "yaml"})
#: secretkit modules outside the core it may import
ALLOWED_SECRETKIT = frozenset({"secretkit.errors"})


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    if module == "__future__":
        return True
    if top == "secretkit":
        return module.startswith("secretkit.core") or module in ALLOWED_SECRETKIT
    if top in sys.stdlib_module_names:
        return not any(module == f or module.startswith(f + ".") for f in FORBIDDEN_STDLIB)
    return top in ALLOWED_THIRD_PARTY


MODULES = sorted(CORE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_only_the_allowed(path: Path) -> None:
    bad = [f"line {n}: {m}" for n, m in _imports(path) if not _allowed(m)]
    assert not bad, f"{path.relative_to(CORE.parent)} imports outside the core contract: {bad}"


def test_the_contract_can_fail() -> None:
    assert not _allowed("secretkit.fileio")
    assert not _allowed("grpc")
    assert not _allowed("subprocess")
    assert not _allowed("urllib.request")
    assert _allowed("urllib.parse")  # string parsing only
    assert not _allowed("secretkit.etcd.client")
    assert _allowed("secretkit.core.formats.kmsv2")
    assert _allowed("cryptography.hazmat.primitives.ciphers.aead")
    assert len(MODULES) > 20


def test_the_core_does_not_open_files() -> None:
    offenders = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
                name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                if name in {"open", "read_bytes", "read_text", "write_bytes", "write_text"}:
                    offenders.append(f"{path.relative_to(CORE)}:{node.lineno} {name}()")
    assert not offenders, offenders
