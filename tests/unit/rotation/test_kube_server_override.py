"""``KubeConnectOptions.server``: every request goes to that endpoint, token users too.

The official client's token hook re-applies the whole kubeconfig before each request
(host included); a probe routed back to the kubeconfig's server would judge the wrong
apiserver, so each request here must try the overridden endpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.errors import KubeError
from secretkit.kube.client import KubeClient, KubeConnectOptions
from secretkit.sandbox.servers import free_port


def test_every_request_goes_to_the_overridden_server(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: u, user: {token: not-a-real-token}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    server = f"https://127.0.0.1:{free_port()}"
    client = KubeClient(KubeConnectOptions(kubeconfig=str(kubeconfig), server=server, timeout=2))
    try:
        assert client.host == server
        for _ in range(3):  # the token hook runs before each one
            with pytest.raises(KubeError) as caught:
                client.request("GET", "/api")
            assert caught.value.what == "cannot reach the Kubernetes API"
            assert caught.value.where == server
    finally:
        client.close()
