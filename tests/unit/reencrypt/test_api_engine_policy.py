"""The API engine's request strategy and error policy, driven by a scripted transport
(no server needed): one empty merge patch per object, metadata-only lists, the
byte-for-byte send-back when a server will not patch, per-object failures that do
not stop a run, auth errors that do, bounded retries, 410 restarts and the window
that shrinks on 429."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from secretkit.errors import KubeError
from secretkit.kube.client import RawResponse
from secretkit.kube.discovery import ApiResource
from secretkit.kube.metadata import LIST_ACCEPT, OBJECT_ACCEPT, ObjectRef
from secretkit.reencrypt.api_engine import ApiReencryptor, ApiRunOptions
from secretkit.reencrypt.checkpoint import Checkpoint
from secretkit.reencrypt.ratelimit import RateLimiter
from secretkit.reencrypt.retry import RetryPolicy
from secretkit.reencrypt.summary import Summary

SECRETS = ApiResource("", "secrets", "v1", "Secret", True)
BASE = "/api/v1/namespaces/ns/secrets/"
PROTOBUF = "application/vnd.kubernetes.protobuf"


def _json(status: int, doc: Any, content_type: str = "application/json",
          retry_after: float | None = None) -> RawResponse:
    return RawResponse(status, json.dumps(doc).encode(), content_type, retry_after)


def _meta(name: str, rv: str) -> dict[str, Any]:
    return {"name": name, "namespace": "ns", "resourceVersion": rv}


class Scripted:
    """Lists ``names`` in pages of 2; PATCH/GET/PUT answers come from per-name scripts."""

    host = "https://api.test"

    def __init__(self, names: list[str], patches: dict[str, list[Any]] | None = None,
                 puts: dict[str, list[int]] | None = None) -> None:
        self.names = names
        self.patches = patches or {}
        self.puts = puts or {}
        self.calls: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
        self.sent: list[tuple[str, str, bytes | None, str | None, str]] = []
        self.expire_token_once = False
        self.metadata_lists = True
        self.remaining = False
        self.versions: dict[str, int] = {}

    def send(self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
             body: bytes | None = None, content_type: str | None = None,
             accept: str = "application/json") -> RawResponse:
        self.calls.append((method, path, tuple(query)))
        self.sent.append((method, path, body, content_type, accept))
        if method == "GET" and path == "/api/v1/secrets":
            return self._list(dict(query), accept)
        name = path.rsplit("/", 1)[1]
        if method == "PATCH":
            script = self.patches.get(name, [200])
            step = script.pop(0) if len(script) > 1 else script[0]
            status, retry_after = step if isinstance(step, tuple) else (step, None)
            if status == 200:
                return _json(200, {"kind": "PartialObjectMetadata",
                                   "metadata": _meta(name, "1-new")},
                             "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
            return _json(status, {"kind": "Status", "reason": f"R{status}"},
                         retry_after=retry_after)
        if method == "GET":  # the send-back reads the object as stored, in protobuf
            version = self.versions.get(name, 1) + 1
            self.versions[name] = version
            return RawResponse(200, f"k8s\x00object {name} v{version}".encode(), PROTOBUF)
        assert method == "PUT"
        script = self.puts.get(name, [200])
        status = script.pop(0) if len(script) > 1 else script[0]
        if status == 200:
            return _json(200, {"kind": "PartialObjectMetadata", "metadata": _meta(name, "9")})
        return _json(status, {"kind": "Status", "reason": "Conflict"})

    def _list(self, q: dict[str, str], accept: str) -> RawResponse:
        if accept == LIST_ACCEPT and not self.metadata_lists:
            return _json(406, {"kind": "Status", "reason": "NotAcceptable"})
        if "continue" in q and self.expire_token_once:
            self.expire_token_once = False
            return _json(410, {"kind": "Status", "reason": "Expired"})
        start = int(q.get("continue", "0"))
        size = int(q.get("limit", "2"))
        page = self.names[start : start + size]
        meta: dict[str, Any] = (
            {"continue": str(start + size)} if start + size < len(self.names) else {}
        )
        if self.remaining and meta:
            meta["remainingItemCount"] = len(self.names) - start - size
        kind = "PartialObjectMetadataList" if accept == LIST_ACCEPT else "SecretList"
        items = [{"metadata": _meta(n, "1")} for n in page]
        if kind == "SecretList":
            items = [dict(i, data={"k": "dg=="}) for i in items]
        return _json(200, {"kind": kind, "items": items, "metadata": meta})

    def methods(self, name: str) -> list[str]:
        return [m for m, p, _b, _c, _a in self.sent if p == BASE + name]


def engine(t: Scripted, summary: Summary, ck: Checkpoint | None = None,
           sleeps: list[float] | None = None, concurrency: int = 2) -> ApiReencryptor:
    return ApiReencryptor(
        t,
        options=ApiRunOptions(page_size=2, concurrency=concurrency,
                              retry=RetryPolicy(attempts=3)),
        limiter=RateLimiter(0, 1),
        summary=summary,
        checkpoint=ck or Checkpoint(fingerprint="f", mode="api"),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


def test_one_empty_merge_patch_per_object_and_metadata_only_lists() -> None:
    t = Scripted(["a", "b", "c"])
    s = Summary(mode="api")
    engine(t, s).run([SECRETS])
    assert s.totals()["rewritten"] == 3 and s.totals()["seen"] == 3
    patches = [x for x in t.sent if x[0] == "PATCH"]
    # a limit=1 list for the total up front, two list pages, nothing else
    assert len(patches) == 3 and len(t.sent) == 3 + 1 + 2
    for _m, _p, body, ctype, accept in patches:
        assert body == b"{}" and ctype == "application/merge-patch+json"
        assert accept == OBJECT_ACCEPT
    lists = [x for x in t.sent if x[0] == "GET"]
    assert all(x[4] == LIST_ACCEPT for x in lists)


def test_an_unchanged_object_is_counted_unchanged() -> None:
    class Same(Scripted):
        def send(self, method: str, path: str, **kw: Any) -> RawResponse:
            resp = super().send(method, path, **kw)
            if method == "PATCH" and resp.status == 200:
                name = path.rsplit("/", 1)[1]
                return _json(200, {"metadata": _meta(name, "1")})
            return resp

    s = Summary(mode="api")
    engine(Same(["a", "b"]), s).run([SECRETS])
    assert s.totals()["unchanged"] == 2 and s.totals()["rewritten"] == 0


def test_per_object_failures_are_collected_and_the_run_goes_on() -> None:
    t = Scripted(["a", "b", "c", "d", "e"], {"b": [400], "d": [503, 503, 503]})
    s = Summary(mode="api")
    engine(t, s).run([SECRETS])
    totals = s.totals()
    assert totals["seen"] == 5
    assert totals["rewritten"] == 3
    assert totals["failed"] == 2
    assert sorted((e.name, e.status, e.reason) for e in s.errors) == [
        ("b", 400, "R400"),
        ("d", 503, "R503"),
    ]
    # 503 was retried up to the attempt budget
    assert t.methods("d").count("PATCH") == 3


def test_a_conflict_on_the_patch_is_asked_again_then_given_up() -> None:
    t = Scripted(["a", "b"], {"a": [409, 200], "b": [409]})
    s = Summary(mode="api")
    engine(t, s).run([SECRETS])
    assert s.totals()["conflicts_retried"] == 1 + 2
    assert s.totals()["rewritten"] == 1
    assert [e.name for e in s.errors] == ["b"]
    assert "PUT" not in t.methods("a")  # no object ever travelled


def test_a_server_that_will_not_patch_gets_the_object_back_byte_for_byte() -> None:
    t = Scripted(["a", "b", "c"], {"a": [415]}, puts={"b": [409, 200]})
    s = Summary(mode="api")
    engine(t, s, concurrency=1).run([SECRETS])
    assert s.totals()["rewritten"] == 3
    # after the first refusal the resource is not patched again
    assert t.methods("a") == ["PATCH", "GET", "PUT"]
    assert t.methods("b") == ["GET", "PUT", "GET", "PUT"] and "PATCH" not in t.methods("c")
    puts = [(p.rsplit("/", 1)[1], body, ctype) for m, p, body, ctype, _ in t.sent if m == "PUT"]
    # the very bytes read, in their own media type; after the 409 the newer object
    assert puts == [("a", b"k8s\x00object a v2", PROTOBUF),
                    ("b", b"k8s\x00object b v2", PROTOBUF),
                    ("b", b"k8s\x00object b v3", PROTOBUF),
                    ("c", b"k8s\x00object c v2", PROTOBUF)]
    assert s.totals()["conflicts_retried"] == 1


def test_a_patch_refused_as_invalid_is_retried_as_a_byte_for_byte_replace() -> None:
    t = Scripted(["a", "b"], {"a": [422]})
    s = Summary(mode="api")
    engine(t, s).run([SECRETS])
    assert t.methods("a") == ["PATCH", "GET", "PUT"]
    assert t.methods("b") == ["PATCH"]  # one object's problem, not the resource's
    assert s.totals()["rewritten"] == 2


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
    assert s.totals()["seen"] == 5  # a and b were not patched a second time
    assert sorted(p.rsplit("/", 1)[1] for m, p, *_ in t.sent if m == "PATCH") == [
        "a", "b", "c", "d", "e"]
    assert ck.resources["secrets"].state == "done"
    lists = [c for c in t.calls if c[1] == "/api/v1/secrets"]
    # the limit=1 count up front, then the pages
    assert [dict(q).get("continue") for _, _, q in lists][:4] == [None, None, "2", None]


def test_a_server_without_metadata_lists_is_listed_in_full() -> None:
    t = Scripted(["a", "b", "c"])
    t.metadata_lists = False
    s = Summary(mode="api")
    engine(t, s).run([SECRETS])
    assert s.totals()["rewritten"] == 3
    accepts = [x[4] for x in t.sent if x[0] == "GET"]
    assert accepts[0] == LIST_ACCEPT and set(accepts[1:]) == {"application/json"}


def test_429_shrinks_the_window_and_waits_as_asked() -> None:
    t = Scripted(["a", "b", "c", "d"], {"b": [(429, 2.5), 200]})
    s = Summary(mode="api")
    sleeps: list[float] = []
    e = engine(t, s, sleeps=sleeps, concurrency=4)
    e.run([SECRETS])
    assert s.totals()["rewritten"] == 4
    assert 2.5 in sleeps
    assert e.window.shrinks == 1 and e.window.limit < 4


def test_only_stale_keys_are_patched_without_a_list() -> None:
    t = Scripted([])
    s = Summary(mode="api")
    only = {"secrets": [ObjectRef("ns", "x", "1"), ObjectRef("ns", "y", "7")]}
    engine(t, s).run([SECRETS], only=only)
    assert [m for m, *_ in t.sent] == ["PATCH", "PATCH"]
    # the scan's resourceVersion is compared like a list's: "1-new" came back for both
    assert s.totals()["rewritten"] == 2


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
    assert {m for m, *_ in t.sent} == {"GET"}
    assert s.to_json()["would_rewrite"] == ["secrets ns/a", "secrets ns/b", "secrets ns/c"]


def test_the_total_is_known_before_the_first_object_is_rewritten() -> None:
    t = Scripted([f"s{i}" for i in range(7)])
    t.remaining = True
    totals: list[tuple[int, int]] = []
    s = Summary(mode="api")
    e = engine(t, s)
    e._on_total = lambda total: totals.append((total, s.totals()["seen"]))
    e.run([SECRETS])
    # the first total reported is the real one, while nothing was seen yet
    assert totals[0] == (7, 0)
    assert all(total == 7 for total, _ in totals)
