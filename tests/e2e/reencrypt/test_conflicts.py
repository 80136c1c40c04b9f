"""Deterministic interleavings through the real API: a writer acts between our list
and our replace. The engine must re-read and replace the newer object, never the
older one; a deletion in between is counted as gone."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from secretkit.formats.model import ValueProvider
from secretkit.kube.client import ApiResponse, KubeClient, KubeConnectOptions
from secretkit.kube.discovery import discover, resolve
from secretkit.reencrypt.api_engine import ApiRunOptions
from secretkit.reencrypt.runner import RunControl, run_api
from secretkit.sandbox.seed import seed
from tests.e2e.reencrypt.helpers import assert_all, stored_values, switch_to_aesgcm
from tests.fixtures.sandbox import SandboxFactory

pytestmark = pytest.mark.e2e

PATH = "/api/v1/namespaces/default/secrets/"


class WriterBeforePut:
    """The real client, with another writer acting right before chosen replaces."""

    def __init__(self, client: KubeClient, actions: dict[str, Callable[[], None]]) -> None:
        self.client = client
        self.host = client.host
        self.actions = actions
        self.puts: list[str] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> ApiResponse:
        if method == "PUT":
            self.puts.append(path)
            action = self.actions.pop(path, None)
            if action is not None:
                action()
        return self.client.request(method, path, query=query, body=body)


def test_conflict_rereads_newer_data_and_deletion_counts_as_gone(
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
        transport = WriterBeforePut(
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
    assert t["conflicts_retried"] == 2
    assert t["gone"] == 1
    assert t["seen"] == 30
    # the two conflicting objects were replaced a second time (after the re-read)
    assert transport.puts.count(PATH + "seed-secret-00004") == 2
    assert transport.puts.count(PATH + "seed-secret-00017") == 2
    for name, want in (("seed-secret-00004", b"newer-4"), ("seed-secret-00017", b"newer-17")):
        code, obj = sb.request("GET", PATH + name)
        assert code == 200
        assert base64.b64decode(obj["data"]["password"]) == want
    assert sb.request("GET", PATH + "seed-secret-00009")[0] == 404
    values = stored_values(sb)
    assert len(values) == 29
    assert_all(values, ValueProvider.AESGCM, key="key1")
