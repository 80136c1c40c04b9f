"""--encryption-provider-config-automatic-reload: new configs apply, broken ones are ignored."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import pytest

from secretkit.core.formats import classify_value
from secretkit.core.formats.model import ValueProvider
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def _provider(sb: Sandbox, name: str) -> ValueProvider:
    with sb.etcd_client() as etcd:
        kv = etcd.get(f"/registry/secrets/default/{name}".encode())
    assert kv is not None
    return classify_value(kv.value).provider


def _metric(sb: Sandbox, status: str) -> int:
    prefix = "apiserver_encryption_config_controller_automatic_reloads_total{"
    for line in sb.metrics().splitlines():
        if line.startswith(prefix) and f'status="{status}"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def _install(sb: Sandbox, data: bytes) -> None:
    tmp = sb.config_path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(sb.config_path)  # atomic, like a config management tool


def test_automatic_reload(sandbox_factory: SandboxFactory) -> None:
    sb = sandbox_factory("none", reload_interval=0.3)
    core = sb.core_v1()
    core.create_namespaced_secret("default", {"metadata": {"name": "early"},
                                              "stringData": {"a": "b"}})
    assert _provider(sb, "early") is ValueProvider.IDENTITY
    first_hash = sb.config_hash()
    assert first_hash == hashlib.sha256(sb.config_path.read_bytes()).hexdigest()

    new_config = sb.write_config("aesgcm").read_bytes()
    _install(sb, new_config)
    _wait_for(lambda: sb.config_hash() == hashlib.sha256(new_config).hexdigest())
    assert _metric(sb, "success") == 1
    core.create_namespaced_secret("default", {"metadata": {"name": "late"},
                                              "stringData": {"a": "b"}})
    assert _provider(sb, "late") is ValueProvider.AESGCM

    # the identity value is stale under the new config: a no-op replace re-encrypts it
    early = core.read_namespaced_secret("early", "default")
    core.replace_namespaced_secret("early", "default", early)
    assert _provider(sb, "early") is ValueProvider.AESGCM

    # a config that does not load is ignored; the old one stays in force
    _install(sb, b"apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                 b"resources:\n- resources: [secrets]\n  providers:\n  - aesgcm: {keys: []}\n")
    _wait_for(lambda: _metric(sb, "failure") >= 1)
    assert sb.config_hash() == hashlib.sha256(new_config).hexdigest()
    core.create_namespaced_secret("default", {"metadata": {"name": "still"},
                                              "stringData": {"a": "b"}})
    assert _provider(sb, "still") is ValueProvider.AESGCM
