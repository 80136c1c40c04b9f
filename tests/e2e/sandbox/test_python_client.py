"""The official ``kubernetes`` Python client against the stand-in: CRUD, conflicts, paging."""

from __future__ import annotations

import base64

import pytest
from kubernetes.client.exceptions import ApiException

from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def plain(sandbox_factory: SandboxFactory) -> Sandbox:
    """A sandbox with aesgcm encryption (fast, no plugin round trips per write)."""
    return sandbox_factory("aesgcm")


def _body(name: str = "", *, generate: str = "", value: bytes = b"v") -> dict[str, object]:
    meta: dict[str, str] = {"name": name} if name else {"generateName": generate}
    return {"metadata": meta, "data": {"k": base64.b64encode(value).decode()}}


def test_create_read_replace_delete(plain: Sandbox) -> None:
    core = plain.core_v1()
    created = core.create_namespaced_secret("crud", _body("one"))
    assert created.metadata.uid and created.metadata.creation_timestamp
    rv1 = created.metadata.resource_version

    got = core.read_namespaced_secret("one", "crud")
    assert got.data == {"k": base64.b64encode(b"v").decode()}
    assert got.metadata.resource_version == rv1

    got.data["k"] = base64.b64encode(b"w").decode()
    replaced = core.replace_namespaced_secret("one", "crud", got)
    assert int(replaced.metadata.resource_version) > int(rv1)
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.creation_timestamp == created.metadata.creation_timestamp

    core.delete_namespaced_secret("one", "crud")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_secret("one", "crud")
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_secret("one", "crud")
    assert err.value.status == 404
    assert '"reason":"NotFound"' in err.value.body


def test_already_exists_and_generate_name(plain: Sandbox) -> None:
    core = plain.core_v1()
    core.create_namespaced_config_map("crud", {"metadata": {"name": "dup"}, "data": {"a": "1"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("crud", {"metadata": {"name": "dup"}, "data": {}})
    assert err.value.status == 409
    assert '"reason":"AlreadyExists"' in err.value.body

    generated = core.create_namespaced_secret("crud", _body(generate="gen-"))
    assert generated.metadata.name.startswith("gen-")
    assert len(generated.metadata.name) == len("gen-") + 5


def test_stale_resource_version_is_a_conflict(plain: Sandbox) -> None:
    core = plain.core_v1()
    core.create_namespaced_secret("crud", _body("race"))
    first = core.read_namespaced_secret("race", "crud")
    second = core.read_namespaced_secret("race", "crud")
    first.data["k"] = base64.b64encode(b"first").decode()
    core.replace_namespaced_secret("race", "crud", first)
    second.data["k"] = base64.b64encode(b"second").decode()
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_secret("race", "crud", second)
    assert err.value.status == 409
    assert '"reason":"Conflict"' in err.value.body
    assert "the object has been modified" in err.value.body
    final = core.read_namespaced_secret("race", "crud")
    assert base64.b64decode(final.data["k"]) == b"first"


def test_configmap_patch_and_immutable(plain: Sandbox) -> None:
    core = plain.core_v1()
    core.create_namespaced_config_map("crud", {"metadata": {"name": "frozen"},
                                               "data": {"a": "1"}, "immutable": True})
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("frozen", "crud", {"data": {"a": "2"}})
    assert err.value.status == 422
    core.create_namespaced_config_map("crud", {"metadata": {"name": "soft"}, "data": {"a": "1"}})
    patched = core.patch_namespaced_config_map("soft", "crud", {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}


def test_pagination_is_pinned_and_expires_after_compaction(plain: Sandbox) -> None:
    core = plain.core_v1()
    for i in range(7):
        core.create_namespaced_secret(f"page-{i % 2}", _body(f"s{i}"))
    seen: list[str] = []
    page = core.list_secret_for_all_namespaces(limit=3, label_selector=None)
    first_rv = page.metadata.resource_version
    token = page.metadata._continue
    seen += [f"{s.metadata.namespace}/{s.metadata.name}" for s in page.items]
    assert len(page.items) == 3 and token
    # a write between pages is invisible to the rest of this list (pinned revision)
    core.create_namespaced_secret("page-0", _body("zz-late"))
    while token:
        page = core.list_secret_for_all_namespaces(limit=3, _continue=token)
        assert page.metadata.resource_version == first_rv
        seen += [f"{s.metadata.namespace}/{s.metadata.name}" for s in page.items]
        token = page.metadata._continue
    page_keys = [k for k in seen if k.startswith("page-")]
    assert page_keys == sorted(page_keys)
    assert len(page_keys) == 7 and "page-0/zz-late" not in page_keys

    namespaced = core.list_namespaced_secret("page-1", limit=2)
    assert [s.metadata.name for s in namespaced.items] == ["s1", "s3"]
    rest = core.list_namespaced_secret("page-1", limit=2, _continue=namespaced.metadata._continue)
    assert [s.metadata.name for s in rest.items] == ["s5"]
    assert not rest.metadata._continue

    # once etcd compacts past the pinned revision, continuing is 410 Gone / Expired
    page = core.list_namespaced_secret("page-0", limit=1)
    core.create_namespaced_secret("page-0", _body("bump"))
    with plain.etcd_client() as etcd:
        etcd.compact(etcd.current_revision())
    with pytest.raises(ApiException) as err:
        core.list_namespaced_secret("page-0", limit=1, _continue=page.metadata._continue)
    assert err.value.status == 410
    assert '"reason":"Expired"' in err.value.body


def test_selectors_and_namespaces(plain: Sandbox) -> None:
    core = plain.core_v1()
    core.create_namespaced_secret("sel", {"metadata": {"name": "a", "labels": {"tier": "db"}}})
    core.create_namespaced_secret("sel", {"metadata": {"name": "b", "labels": {"tier": "web"}}})
    names = [s.metadata.name for s in core.list_namespaced_secret(
        "sel", label_selector="tier=db").items]
    assert names == ["a"]
    names = [s.metadata.name for s in core.list_namespaced_secret(
        "sel", field_selector="metadata.name=b").items]
    assert names == ["b"]
    namespaces = {n.metadata.name for n in core.list_namespace().items}
    assert {"sel", "default"} <= namespaces


def test_requests_without_the_token_are_refused(plain: Sandbox) -> None:
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(plain.ca_file))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ctx))
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(plain.api_url + "/api/v1/secrets", timeout=10)
    assert err.value.code == 401
    code, body = plain.request("GET", "/api/v1/secrets",
                               headers={"Authorization": "Bearer wrong"})
    assert code == 401 and body["reason"] == "Unauthorized"


def test_secret_type_is_immutable(plain: Sandbox) -> None:
    core = plain.core_v1()
    core.create_namespaced_secret("crud", {"metadata": {"name": "typed"},
                                           "type": "example.com/custom"})
    got = core.read_namespaced_secret("typed", "crud")
    got.type = "Opaque"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_secret("typed", "crud", got)
    assert err.value.status == 422
    assert '"reason":"Invalid"' in err.value.body


def test_concurrent_read_modify_write_loses_no_update(plain: Sandbox) -> None:
    """Optimistic concurrency: with retries on 409, every increment lands exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    core = plain.core_v1()  # one client (a thread-safe urllib3 pool) for all workers
    core.create_namespaced_config_map(
        "race", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    conflicts = 0

    def bump(_: int) -> None:
        nonlocal conflicts
        for _attempt in range(200):
            cm = core.read_namespaced_config_map("counter", "race")
            cm.data["n"] = str(int(cm.data["n"]) + 1)
            try:
                core.replace_namespaced_config_map("counter", "race", cm)
                return
            except ApiException as exc:
                assert exc.status == 409
                conflicts += 1
        raise AssertionError("too many conflicts")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(bump, range(30)))
    final = core.read_namespaced_config_map("counter", "race")
    assert final.data["n"] == "30"
    assert int(final.metadata.resource_version) > 0


def test_watch_streams_changes(plain: Sandbox) -> None:
    import threading
    import time

    from kubernetes import watch

    core = plain.core_v1()
    core.create_namespaced_secret("watched", _body("existing"))
    listed = core.list_namespaced_secret("watched")

    def change() -> None:
        # pauses longer than the stand-in's poll interval, so no two changes merge
        writer = plain.core_v1()
        writer.create_namespaced_secret("watched", _body("fresh"))
        time.sleep(1.0)
        got = writer.read_namespaced_secret("existing", "watched")
        got.data["k"] = base64.b64encode(b"changed").decode()
        writer.replace_namespaced_secret("existing", "watched", got)
        time.sleep(1.0)
        writer.delete_namespaced_secret("fresh", "watched")

    events: list[tuple[str, str]] = []
    timer = threading.Timer(0.5, change)
    timer.start()
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_secret, "watched", timeout_seconds=10,
                               resource_version=listed.metadata.resource_version):
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 3:
            stream.stop()
    timer.join()
    assert events == [("ADDED", "fresh"), ("MODIFIED", "existing"), ("DELETED", "fresh")]
    # without a resourceVersion every existing object is first sent as ADDED
    initial = [e["type"] for e in watch.Watch().stream(
        core.list_namespaced_secret, "watched", timeout_seconds=1)]
    assert initial == ["ADDED"]
