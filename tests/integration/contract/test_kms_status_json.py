"""`kms status -o json` against a real plugin process: healthy (0) and unhealthy (5).

An unhealthy plugin is "could not check" (exit 5), yet the status document is the
answer: exactly one document, the kms.status one (not an error document after it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from secretkit.backends.local import default_key_id
from secretkit.sandbox.servers import free_port
from tests.integration.kms_plugin.harness import running_plugin, write_kek
from tests.schemas import one_document, validate_document


def _status(endpoint: str, code: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", "kms", "status", "--kms-socket", endpoint,
         "--no-etcd", "-o", "json"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    doc = one_document(proc.stdout)
    assert validate_document(doc) == "secretkit.kms.status/v1"
    assert "Traceback" not in proc.stderr
    return doc


def test_a_healthy_plugin(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    with running_plugin(tmp_path / "p", ["--backend", "local", "--local-kek-file", str(kek)]) as p:
        doc = _status(p.endpoint, 0)
    assert doc["healthy"] is True and doc["plugin"]["healthz"] == "ok"
    assert doc["plugin"]["key_id"] == default_key_id(kek.read_bytes())
    assert "backend" not in doc and "objects_by_key_id" not in doc  # not asked for


def test_an_unhealthy_plugin_exits_5_with_its_status_document(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("not-a-real-token\n")
    token.chmod(0o600)
    args = ["--backend", "vault", "--vault-addr", f"http://127.0.0.1:{free_port()}",
            "--vault-key", "k", "--vault-token-file", str(token)]  # fmt: skip
    with running_plugin(tmp_path / "p", args) as p:
        doc = _status(p.endpoint, 5)
    assert doc["healthy"] is False and doc["plugin"]["healthy"] is False
    assert "cannot reach Vault" in doc["plugin"]["healthz"]
    assert "not-a-real-token" not in str(doc)
