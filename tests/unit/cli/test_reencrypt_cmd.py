"""``secretkit reencrypt`` flag combinations and outcomes, through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from secretkit.kube.client import RawResponse
from tests.schemas import one_document, validate_document
from tests.unit.cli.helpers import Run, run_cli
from tests.unit.reencrypt.test_etcd_engine import NEW


def test_dry_run_with_verify_is_a_usage_error_before_anything_is_opened(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "enc.yaml"
    config.write_bytes(NEW)
    # no kubeconfig, no etcd: refused before either is needed
    res = run_cli(capsys, "reencrypt", "--dry-run", "--verify", "--config", str(config),
                  "--endpoints", "http://127.0.0.1:1", "--kubeconfig", str(tmp_path / "none"))
    assert res.code == 2, res.err
    assert "writes nothing" in res.err


class FakeCluster:
    """Discovery and metadata lists of a cluster holding ``secrets`` (namespace -> names)."""

    host = "https://api.test"
    secrets: dict[str, list[str]] = {}

    def __init__(self, options: Any) -> None:
        self.options = options

    def __enter__(self) -> FakeCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get_json(self, path: str) -> Any:
        return {
            "/api": {"versions": ["v1"]},
            "/api/v1": {"resources": [
                {"name": "secrets", "namespaced": True, "kind": "Secret",
                 "verbs": ["get", "list", "patch", "update"]},
                {"name": "namespaces", "namespaced": False, "kind": "Namespace",
                 "verbs": ["get", "list", "patch", "update"]},
            ]},
            "/apis": {"groups": []},
        }[path]

    def send(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
             body: bytes | None = None, content_type: str | None = None,
             accept: str = "application/json") -> RawResponse:
        if method == "PATCH":
            name = path.rsplit("/", 1)[1]
            meta = {"name": name, "resourceVersion": "2"}
            return RawResponse(200, json.dumps({"metadata": meta}).encode(),
                               "application/json", None)
        assert method == "GET", (method, path)
        parts = path.split("/")  # /api/v1/secrets or /api/v1/namespaces/NS/secrets
        namespaces = [parts[4]] if len(parts) == 6 else sorted(self.secrets)
        items = [{"metadata": {"namespace": ns, "name": n, "resourceVersion": "1"}}
                 for ns in namespaces for n in self.secrets.get(ns, [])]
        doc = {"kind": "PartialObjectMetadataList", "items": items, "metadata": {}}
        return RawResponse(200, json.dumps(doc).encode(), "application/json", None)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> type[FakeCluster]:
    from secretkit.kube import client

    monkeypatch.setattr(client, "KubeClient", FakeCluster)
    monkeypatch.setattr(FakeCluster, "secrets", {"team-a": ["db", "web"]})
    return FakeCluster


def reencrypt(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    return run_cli(capsys, "reencrypt", "--no-progress", *argv)


def test_a_namespace_with_no_object_fails_unless_allowed(
    capsys: pytest.CaptureFixture[str], cluster: type[FakeCluster]
) -> None:
    res = reencrypt(capsys, "-n", "team-b", "-o", "json")
    assert res.code == 1, res.err
    summary = one_document(res.out)
    validate_document(summary)
    assert summary["totals"]["seen"] == 0
    assert "0 objects" in res.err and "namespace 'team-b'" in res.err
    assert "--allow-empty" in res.err

    res = reencrypt(capsys, "-n", "team-b")
    assert res.code == 1 and "nothing to re-encrypt" in res.err

    # an operator who knows the namespace is empty says so
    res = reencrypt(capsys, "-n", "team-b", "--allow-empty", "-o", "json")
    assert res.code == 0, res.err
    validate_document(one_document(res.out))


def test_an_empty_cluster_fails_like_an_empty_namespace(
    capsys: pytest.CaptureFixture[str], cluster: type[FakeCluster]
) -> None:
    cluster.secrets = {}
    res = reencrypt(capsys)
    assert res.code == 1
    assert "0 objects of secrets" in res.err and "--allow-empty" in res.err
    assert reencrypt(capsys, "--allow-empty").code == 0
    # a dry run that would rewrite nothing is told the same
    assert reencrypt(capsys, "--dry-run").code == 1


def test_a_run_that_found_objects_passes(
    capsys: pytest.CaptureFixture[str], cluster: type[FakeCluster]
) -> None:
    res = reencrypt(capsys, "-n", "team-a", "-o", "json")
    assert res.code == 0, res.err
    assert one_document(res.out)["totals"]["rewritten"] == 2
    assert reencrypt(capsys).code == 0
