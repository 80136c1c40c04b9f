"""Deterministic interleavings through the real API: a writer acts between our list
and our request. The apiserver patches the newer object (an empty patch runs inside
its compare-and-swap), so the newer data survives and is re-encrypted; a deletion in
between is counted as gone, never recreated."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import pytest

from secretkit.core.formats.model import ValueProvider
from secretkit.kube.client import JSON, KubeClient, KubeConnectOptions, RawResponse
from secretkit.kube.discovery import discover, resolve
from secretkit.reencrypt.api_engine import ApiRunOptions
from secretkit.reencrypt.runner import RunControl, run_api
from secretkit.sandbox.seed import seed
from tests.e2e.reencrypt.helpers import assert_all, stored_values, switch_to_aesgcm
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e

PATH = "/api/v1/namespaces/default/secrets/"


class WriterBeforeRequest:
    """The real client, with another writer acting right before chosen object requests."""

    def __init__(self, client: KubeClient, actions: dict[str, Callable[[], None]]) -> None:
        self.client = client
        self.host = client.host
        self.actions = actions
        self.writes: list[tuple[str, str]] = []

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        content_type: str | None = None,
        accept: str = JSON,
    ) -> RawResponse:
        if method in ("PATCH", "PUT"):
            self.writes.append((method, path))
            action = self.actions.pop(path, None)
            if action is not None:
                action()
        return self.client.send(method, path, query=query, body=body,
                                content_type=content_type, accept=accept)


def test_newer_data_written_in_between_survives_and_deletion_counts_as_gone(
    sandbox_factory: SandboxFactory,
) -> None:
    sb = sandbox_factory("aescbc")
    seed(sb.api_url, sb.token, secrets=30, configmaps=0, ca_file=str(sb.ca_file))
    switch_to_aesgcm(sb, "conflicts.yaml")

    def set_password(name: str, value: bytes) -> Callable[[], None]:
        def act() -> None:
            code, obj = sb.request("GET", PATH + name)
            assert code == 200
            obj["data"]["password"] = base64.b64encode(value).decode()
            code, _ = sb.request("PUT", PATH + name, obj)
            assert code == 200

        return act

    def delete(name: str) -> Callable[[], None]:
        return lambda: sb.request("DELETE", PATH + name) and None

    with KubeClient(KubeConnectOptions(kubeconfig=str(sb.kubeconfig))) as client:
        transport = WriterBeforeRequest(
            client,
            {
                PATH + "seed-secret-00004": set_password("seed-secret-00004", b"newer-4"),
                PATH + "seed-secret-00017": set_password("seed-secret-00017", b"newer-17"),
                PATH + "seed-secret-00009": delete("seed-secret-00009"),
            },
        )
        resources = resolve(["secrets"], discover(client))
        summary = run_api(
            transport,
            resources,
            options=ApiRunOptions(page_size=10, concurrency=3),
            qps=0,
            burst=1,
            control=RunControl(show_progress=False),
        )
    t = summary.totals()
    assert summary.ok
    assert t["conflicts_retried"] == 0  # no 409 is possible: nothing we send can be stale
    assert t["gone"] == 1
    assert t["seen"] == 30
    # one empty patch per object, no object ever sent
    assert {method for method, _path in transport.writes} == {"PATCH"}
    assert len(transport.writes) == 30
    for name, want in (("seed-secret-00004", b"newer-4"), ("seed-secret-00017", b"newer-17")):
        code, obj = sb.request("GET", PATH + name)
        assert code == 200
        assert base64.b64decode(obj["data"]["password"]) == want
    assert sb.request("GET", PATH + "seed-secret-00009")[0] == 404
    values = stored_values(sb)
    assert len(values) == 29
    assert_all(values, ValueProvider.AESGCM, key="key1")
