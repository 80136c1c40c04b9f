"""KMS v2 seed life cycle of the stand-in against the real plugin and OpenBao transit.

One seed per key_id (one Encrypt), a new seed after a transit key rotation, stale
values rewritten by a no-op update, cached Decrypt, writes refused when the
plugin has been unhealthy for longer than the grace period.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
from kubernetes.client.exceptions import ApiException

from secretkit.core.formats import classify_value
from secretkit.sandbox.orchestrate import restart_plugin
from secretkit.sandbox.servers import ManagedProcess
from tests.fixtures.sandbox import Sandbox, SandboxFactory

pytestmark = pytest.mark.e2e

GRACE = 3.0


@pytest.fixture(scope="module")
def kms(sandbox_factory: SandboxFactory) -> Sandbox:
    return sandbox_factory("kms", kms_poll=0.5, plugin_status_ttl=0.5, unhealthy_grace=GRACE)


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def _kms_fields(sb: Sandbox, name: str) -> tuple[str, bytes]:
    with sb.etcd_client() as etcd:
        kv = etcd.get(f"/registry/secrets/life/{name}".encode())
    assert kv is not None
    obj = classify_value(kv.value).kms_v2
    assert obj is not None
    return obj.key_id, obj.encrypted_dek_source


def _create(sb: Sandbox, name: str) -> str:
    created = sb.core_v1().create_namespaced_secret("life", {
        "metadata": {"name": name}, "data": {"v": base64.b64encode(name.encode()).decode()}})
    return str(created.metadata.resource_version)


def test_one_encrypt_per_key_id_and_a_new_seed_after_rotation(kms: Sandbox) -> None:
    assert kms.kms_calls("encrypt") == 1  # the seed drawn at start-up
    for i in range(5):
        _create(kms, f"before-{i}")
    assert kms.kms_calls("encrypt") == 1
    sources = {_kms_fields(kms, f"before-{i}") for i in range(5)}
    assert len(sources) == 1  # every write shares one encryptedDEKSource
    (old_key_id, _old_source), = sources

    kms.rotate_transit_key()
    _wait_for(lambda: kms.kms_calls("encrypt") == 2)
    _create(kms, "after-0")
    new_key_id, _ = _kms_fields(kms, "after-0")
    assert new_key_id != old_key_id
    assert new_key_id.split(":")[-2] == "v2" and old_key_id.split(":")[-2] == "v1"
    time.sleep(2)  # several more Status polls: no further seeds without a new key_id
    assert kms.kms_calls("encrypt") == 2


def test_noop_update_rewrites_only_stale_values(kms: Sandbox) -> None:
    core = kms.core_v1()
    current_key_id, _ = _kms_fields(kms, "after-0")

    fresh = core.read_namespaced_secret("after-0", "life")
    again = core.replace_namespaced_secret("after-0", "life", fresh)
    assert again.metadata.resource_version == fresh.metadata.resource_version  # skipped

    stale = core.read_namespaced_secret("before-0", "life")
    rewritten = core.replace_namespaced_secret("before-0", "life", stale)
    assert int(rewritten.metadata.resource_version) > int(stale.metadata.resource_version)
    assert _kms_fields(kms, "before-0")[0] == current_key_id
    assert rewritten.data == stale.data


def test_decrypt_results_are_cached(kms: Sandbox) -> None:
    kms.restart_apiserver()
    core = kms.core_v1()
    with kms.etcd_client() as etcd:
        values = [kv for page in etcd.range_pages(b"/registry/secrets/life/") for kv in page]
    distinct = set()
    for kv in values:
        obj = classify_value(kv.value).kms_v2
        assert obj is not None
        distinct.add((obj.key_id, obj.encrypted_dek_source))
    assert len(distinct) == 2  # before-1..4 (first seed) and the rest (second seed)
    # a restarted apiserver draws a new seed: one Encrypt, and neither stored seed is known
    assert kms.kms_calls("encrypt") == 1
    assert kms.kms_calls("decrypt") == 0
    assert len(core.list_namespaced_secret("life").items) == 6
    assert kms.kms_calls("decrypt") == 2  # one Decrypt per distinct encryptedDEKSource
    core.list_namespaced_secret("life")
    core.read_namespaced_secret("before-1", "life")
    assert kms.kms_calls("decrypt") == 2  # cached


def test_writes_are_refused_while_the_plugin_is_down_too_long(kms: Sandbox) -> None:
    info = kms.state.processes["kms-plugin"]
    ManagedProcess(name=info.name, pid=info.pid, argv=info.argv, log_path=None).stop()
    try:
        _wait_for(lambda: kms.request("GET", "/readyz")[0] == 500)
        time.sleep(GRACE + 1)
        with pytest.raises(ApiException) as err:
            _create(kms, "refused")
        assert err.value.status == 500
        assert "unhealthy" in err.value.body
        # reads of values whose DEK is cached still work
        assert kms.core_v1().read_namespaced_secret("after-0", "life").data
    finally:
        restart_plugin(kms.state)
    _wait_for(lambda: kms.request("GET", "/readyz")[0] == 200)

    # /readyz asks the plugin itself; writes follow the Status poller, as in
    # kube-apiserver: they resume at its next successful poll, moments later
    def accepted() -> bool:
        try:
            _create(kms, "accepted-again")
        except ApiException as exc:
            assert exc.status == 500 and "unhealthy" in exc.body, exc.body
            return False
        return True

    _wait_for(accepted, timeout=15.0)
