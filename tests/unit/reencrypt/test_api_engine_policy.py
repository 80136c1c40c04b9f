"""The API engine's error policy, driven by a scripted transport (no server needed):
per-object failures do not stop a run, auth errors do, transient errors are retried,
conflicts are bounded, and 410 restarts the list after the last finished key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from secretkit.errors import KubeError
from secretkit.kube.client import ApiResponse
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.api_engine import ApiReencryptor, ApiRunOptions
from secretkit.reencrypt.checkpoint import Checkpoint
from secretkit.reencrypt.ratelimit import RateLimiter
from secretkit.reencrypt.retry import RetryPolicy
from secretkit.reencrypt.summary import Summary

SECRETS = ApiResource("", "secrets", "v1", "Secret", True)
BASE = "/api/v1/namespaces/ns/secrets/"


def obj(name: str, rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class Scripted:
    """Lists ``names`` in pages of 2; PUT/GET answers come from per-name scripts."""

    host = "https://api.test"

    def __init__(self, names: list[str], puts: dict[str, list[int]] | None = None) -> None:
        self.names = names
        self.puts = puts or {}
        self.calls: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
        self.expire_token_once = False
        self.sent: list[dict[str, Any]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        self.calls.append((method, path, tuple(query)))
        if method == "GET" and path == "/api/v1/secrets":
            q = dict(query)
            if "continue" in q and self.expire_token_once:
                self.expire_token_once = False
                return ApiResponse(410, {"kind": "Status", "reason": "Expired"})
            start = int(q.get("continue", "0"))
            page = self.names[start : start + 2]
            meta = {"continue": str(start + 2)} if start + 2 < len(self.names) else {}
            return ApiResponse(200, {"items": [obj(n) for n in page], "metadata": meta})
        name = path.rsplit("/", 1)[1]
        if method == "GET":
            return ApiResponse(200, obj(name, "2"))
        assert body is not None
        self.sent.append(dict(body))
        script = self.puts.get(name, [200])
        status = script.pop(0) if len(script) > 1 else script[0]
        if status == 200:
            rv = body["metadata"]["resourceVersion"]
            return ApiResponse(200, obj(name, rv + "-new"))
        reasons = {409: "Conflict", 422: "Invalid", 403: "Forbidden", 503: "ServiceUnavailable"}
        return ApiResponse(status, {"kind": "Status", "reason": reasons.get(status, "")})


def engine(t: Scripted, summary: Summary, ck: Checkpoint | None = None) -> ApiReencryptor:
    return ApiReencryptor(
        t,
        options=ApiRunOptions(page_size=2, concurrency=2, retry=RetryPolicy(attempts=3)),
        limiter=RateLimiter(0, 1),
        summary=summary,
        checkpoint=ck or Checkpoint(fingerprint="f", mode="api"),
        sleep=lambda s: None,
    )


def test_per_object_failures_are_collected_and_the_run_goes_on() -> None:
    t = Scripted(["a", "b", "c", "d", "e"], {"b": [422], "d": [503, 503, 503]})
    s = Summary(mode="api")
    engine(t, s).run([SECRETS])
    totals = s.totals()
    assert totals["seen"] == 5
    assert totals["rewritten"] == 3
    assert totals["failed"] == 2
    assert sorted((e.name, e.status, e.reason) for e in s.errors) == [
        ("b", 422, "Invalid"),
        ("d", 503, "ServiceUnavailable"),
    ]
    # 503 was retried up to the attempt budget
    assert sum(1 for c in t.calls if c[0] == "PUT" and c[1].endswith("/d")) == 3


def test_conflicts_reread_and_replace_the_newer_object_then_give_up() -> None:
    t = Scripted(["a", "b"], {"a": [409, 200], "b": [409]})
    s = Summary(mode="api")
    engine(t, s).run([SECRETS])
    assert s.totals()["conflicts_retried"] == 2 + 1
    assert s.totals()["rewritten"] == 1
    assert [e.name for e in s.errors] == ["b"]
    # the retry sent the re-read object (resourceVersion 2), never the listed one again
    a_puts = [b["metadata"]["resourceVersion"] for b in t.sent if b["metadata"]["name"] == "a"]
    assert a_puts == ["1", "2"]
    assert all(b["apiVersion"] == "v1" and b["kind"] == "Secret" for b in t.sent)


def test_forbidden_stops_the_run_with_a_clear_error() -> None:
    t = Scripted(["a", "b", "c"], {"b": [403]})
    ck = Checkpoint(fingerprint="f", mode="api")
    with pytest.raises(KubeError) as info:
        engine(t, Summary(mode="api"), ck).run([SECRETS])
    assert "403" in info.value.what
    assert "RBAC" in (info.value.hint or "")
    assert ck.resources["secrets"].state == "running"


def test_expired_continue_token_restarts_after_the_last_finished_key() -> None:
    t = Scripted(["a", "b", "c", "d", "e"])
    t.expire_token_once = True
    s = Summary(mode="api")
    ck = Checkpoint(fingerprint="f", mode="api")
    engine(t, s, ck).run([SECRETS])
    assert s.totals()["seen"] == 5  # a and b were not replaced a second time
    assert sorted(b["metadata"]["name"] for b in t.sent) == ["a", "b", "c", "d", "e"]
    assert ck.resources["secrets"].state == "done"
    lists = [c for c in t.calls if c[1] == "/api/v1/secrets"]
    assert [dict(q).get("continue") for _, _, q in lists][:3] == [None, "2", None]


def test_dry_run_writes_nothing_and_lists_candidates() -> None:
    t = Scripted(["a", "b", "c"])
    s = Summary(mode="api", dry_run=True)
    ApiReencryptor(
        t,
        options=ApiRunOptions(page_size=2, dry_run=True),
        limiter=RateLimiter(0, 1),
        summary=s,
        checkpoint=Checkpoint(fingerprint="f", mode="api"),
    ).run([SECRETS])
    assert not [c for c in t.calls if c[0] == "PUT"]
    assert s.to_json()["would_rewrite"] == ["secrets ns/a", "secrets ns/b", "secrets ns/c"]
