"""`secretkit rotate` on a directory of node configs, without a cluster."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import yaml


def _secretkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", *args],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )


def _nodes(tmp_path: Path) -> Path:
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    first = nodes / "node1.yaml"
    done = _secretkit("config", "generate", "--provider", "aesgcm", "--key-name", "key1",
                      "-f", str(first))
    assert done.returncode == 0, done.stderr
    for name in ("node2.yaml", "node3.yaml"):
        (nodes / name).write_bytes(first.read_bytes())
        (nodes / name).chmod(0o600)
    return nodes


def _keys(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text())
    return [k["name"] for k in doc["resources"][0]["providers"][0]["aesgcm"]["keys"]]


def test_dry_run_writes_nothing_and_redacts(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path)
    before = {p.name: p.read_bytes() for p in nodes.iterdir()}
    secret = yaml.safe_load(before["node1.yaml"])["resources"][0]["providers"][0]["aesgcm"][
        "keys"][0]["secret"]
    done = _secretkit("rotate", "prepare", "--config", str(nodes), "--dry-run", "--yes")
    assert done.returncode == 0, done.stderr
    assert "+      - name: key-" in done.stdout or "name: key-" in done.stdout
    assert secret not in done.stdout + done.stderr
    assert {p.name: p.read_bytes() for p in nodes.iterdir()} == before


def test_stages_edit_every_node_and_keep_private_backups(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path)
    done = _secretkit("rotate", "prepare", "--config", str(nodes), "--key-name", "key2",
                      "--yes", "-o", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["changed_files"]) == 3 and report["next_stage"] == "promote"
    for node in ("node1.yaml", "node2.yaml", "node3.yaml"):
        assert _keys(nodes / node) == ["key1", "key2"]
        assert stat.S_IMODE((nodes / node).stat().st_mode) == 0o600
    backups = sorted(nodes.glob("*.bak-prepare-*"))
    assert len(backups) == 3
    assert all(stat.S_IMODE(b.stat().st_mode) == 0o600 for b in backups)

    # out of order, then in order
    refused = _secretkit("rotate", "prune", "--config", str(nodes), "--yes")
    assert refused.returncode == 3 and "next one is `promote`" in refused.stderr
    done = _secretkit("rotate", "promote", "--config", str(nodes), "--yes")
    assert done.returncode == 0, done.stderr
    assert _keys(nodes / "node2.yaml") == ["key2", "key1"]

    # a node edited by hand since the last stage is detected
    (nodes / "node3.yaml").write_text((nodes / "node3.yaml").read_text() + "\n# edited\n")
    refused = _secretkit("rotate", "reencrypt", "--config", str(nodes), "--yes")
    assert refused.returncode == 3
    assert "changed since the last stage" in refused.stderr

    status = json.loads(_secretkit("rotate", "status", "--config", str(nodes), "-o",
                                   "json").stdout)
    assert status["last_stage"] == "promote" and status["old_key_names"] == ["key1"]


def test_a_missing_metrics_token_file_is_a_usage_error(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path)
    done = _secretkit(
        "rotate", "prepare", "--config", str(nodes), "--dry-run", "--yes",
        "--apiserver-metrics", "https://127.0.0.1:6443/metrics",
        "--metrics-token-file", str(tmp_path / "absent-token"),
    )
    assert done.returncode == 2, done.stderr
    assert "cannot read the metrics token file" in done.stderr
    assert "Traceback" not in done.stderr
