"""Load the keyspaces captured from a real kube-apiserver v1.36.2 (tests/data/real-apiserver).

The files' schema is in tests/data/real-apiserver/README.md. Keys and secrets in them
are throw-away test data.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).parent / "real-apiserver"
STAR_STAR = ROOT / "star-star-kms-v2"
LOCAL_PROVIDERS = ROOT / "local-providers"


class Putter(Protocol):
    """Anything with ``put(key, value)`` (an EtcdClient)."""

    def put(self, key: bytes, value: bytes) -> Any: ...


def values(folder: Path) -> list[tuple[bytes, bytes]]:
    """``(etcd key, raw value)`` of every captured key, in key order."""
    out = []
    for line in (folder / "values.jsonl").read_text().splitlines():
        entry = json.loads(line)
        out.append((entry["key"].encode(), base64.b64decode(entry["value_b64"])))
    return out


def expected(folder: Path) -> dict[str, Any]:
    """The folder's independently worked-out verdicts."""
    data: dict[str, Any] = json.loads((folder / "expected.json").read_text())
    return data


def load_into(client: Putter, folder: Path) -> int:
    """Put every captured value at its key; return how many."""
    items = values(folder)
    for key, value in items:
        client.put(key, value)
    return len(items)


def star_star_files(dest: Path) -> dict[str, Path]:
    """Copy the ``*.*`` kms v2 config, KEK (0600) and backends file into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("encryption-config.yaml", "backends.yaml", "kek.b64"):
        target = dest / name
        shutil.copyfile(STAR_STAR / name, target)
        target.chmod(0o600)
        out[name] = target
    return out
