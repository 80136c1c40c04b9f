"""The plugin against a real OpenBao transit engine (``bao server -dev``)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from secretkit.sandbox.servers import enable_transit, free_port, start_openbao_dev
from tests.integration.kms_plugin.harness import running_plugin, start_plugin, wait_for
from tests.integration.kms_plugin.tcp_proxy import DelayProxy

pytestmark = pytest.mark.vault


def _token_file(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "vault-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return path


def _config(tmp_path: Path, address: str, token: str, key: str, **extra: Any) -> Path:
    backend = {
        "type": "vault", "address": address, "mount": "transit", "key": key,
        "auth": {"method": "token", "token_file": str(_token_file(tmp_path, token))},
        # Status must see a rotation at once in tests; production keeps the 5 s cache
        "key_cache_seconds": 0, **extra,
    }
    path = tmp_path / "plugin.yaml"
    path.write_text(json.dumps({"backend": backend}))
    return path


def _new_key(openbao_server: Any, tmp_path: Path) -> str:
    name = f"k8s-{tmp_path.name[-20:].replace('_', '-')}-{os.getpid()}"
    openbao_server.create_transit_key(name)
    return name


def test_round_trip_and_rotation_within_one_ttl(openbao_server: Any, tmp_path: Path) -> None:
    key = _new_key(openbao_server, tmp_path)
    config = _config(tmp_path, openbao_server.address, openbao_server.token, key)
    with running_plugin(tmp_path, ["--config", str(config), "--status-ttl", "1"]) as p:
        st = p.status()
        assert st.healthz == "ok", st
        assert f":transit:{key}:v1:" in st.key_id
        seed = os.urandom(32)
        old = p.encrypt(seed)
        assert old.key_id == st.key_id
        assert p.decrypt(old) == seed
        openbao_server.client().secrets.transit.rotate_key(name=key, mount_point="transit")
        wait_for(lambda: ":v2:" in p.status().key_id, timeout=15)
        new = p.encrypt(b"n" * 32)
        assert ":v2:" in new.key_id
        assert p.decrypt(old) == seed
        assert p.decrypt(new) == b"n" * 32
        assert "Traceback" not in p.log_text()
    # log hygiene: the token and the plaintexts never reach the log
    log = p.log_text()
    assert openbao_server.token not in log
    assert seed.hex() not in log and repr(seed)[2:-1] not in log


def test_permission_denied_is_reported(openbao_server: Any, tmp_path: Path) -> None:
    key = _new_key(openbao_server, tmp_path)
    config = _config(tmp_path, openbao_server.address, "not-a-valid-token", key)
    with running_plugin(tmp_path, ["--config", str(config)]) as p:
        with pytest.raises(grpc.RpcError) as info:
            p.encrypt(b"s" * 32)
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        st = p.status()
        assert st.healthz != "ok"
        assert "not-a-valid-token" not in st.healthz
        assert p.http("/livez")[0] == 200  # liveness ignores the backend
        assert p.http("/healthz")[0] == 503
    assert "not-a-valid-token" not in p.log_text()


def test_backend_killed_and_restarted(tmp_path: Path) -> None:
    """Status turns unhealthy while OpenBao is down and recovers without a plugin restart."""
    port = free_port()
    token = "dev-plugin-restart-test-token"
    proc, address, _ = start_openbao_dev(tmp_path / "bao1", port=port, root_token=token)
    try:
        enable_transit(address, token)
        _create_key(address, token, "k8s")
        config = _config(tmp_path, address, token, "k8s")
        args = ["--config", str(config), "--status-ttl", "1", "--status-grace", "1"]
        with running_plugin(tmp_path, args) as p:
            assert p.status().healthz == "ok"
            proc.stop(10)
            wait_for(lambda: p.status().healthz != "ok", timeout=15, interval=0.3)
            assert p.http("/healthz")[0] == 503
            assert p.http("/livez") == (200, "ok\n")
            with pytest.raises(grpc.RpcError) as info:
                p.encrypt(b"s" * 32)
            assert info.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                         grpc.StatusCode.DEADLINE_EXCEEDED)
            proc, _, _ = start_openbao_dev(tmp_path / "bao2", port=port, root_token=token)
            enable_transit(address, token)
            _create_key(address, token, "k8s")
            wait_for(lambda: p.status().healthz == "ok", timeout=20, interval=0.3)
            assert p.decrypt(p.encrypt(b"r" * 32)) == b"r" * 32
            assert p.proc.poll() is None
        assert token not in p.log_text()
    finally:
        proc.stop(10)


def _create_key(address: str, token: str, name: str) -> None:
    import hvac
    import requests

    session = requests.Session()
    session.trust_env = False
    hvac.Client(url=address, token=token, session=session).secrets.transit.create_key(
        name=name, mount_point="transit"
    )
    session.close()


def test_sigterm_lets_in_flight_requests_finish(openbao_server: Any, tmp_path: Path) -> None:
    """In-flight calls to a slow backend complete after SIGTERM; the plugin exits 0."""
    key = _new_key(openbao_server, tmp_path)
    host_port = openbao_server.address.rsplit(":", 1)
    proxy = DelayProxy("127.0.0.1", int(host_port[1]))
    try:
        config = _config(tmp_path, proxy.address, openbao_server.token, key,
                         timeout_seconds=10)
        plugin = start_plugin(tmp_path, ["--config", str(config), "--grace-period", "30"])
        try:
            enc = plugin.encrypt(b"f" * 32)
            proxy.delay = 1.5
            results: list[object] = []

            def call() -> None:
                # the proxy delays every request chunk: with four transit calls in
                # flight and the rest riding the next one, the last answers take 6-9 s
                try:
                    results.append(plugin.decrypt(enc, timeout=30))
                except grpc.RpcError as exc:
                    results.append(exc.code())

            threads = [threading.Thread(target=call) for _ in range(8)]
            for t in threads:
                t.start()
            # all eight are inside the plugin, waiting on OpenBao
            wait_for(lambda: "secretkit_kms_plugin_requests_in_flight 8.0"
                     in plugin.http("/metrics")[1], timeout=10)
            signaled = time.monotonic()
            plugin.signal()
            for t in threads:
                t.join(30)
            code = plugin.proc.wait(30)
            took = time.monotonic() - signaled
        finally:
            if plugin.proc.poll() is None:
                plugin.proc.kill()
        assert results == [b"f" * 32] * 8, results
        assert code == 0, plugin.log_text()
        stopped = [e for e in plugin.log_entries() if e.get("msg") == "stopped"]
        assert stopped[0]["in_flight_at_signal"] == 8, stopped
        assert stopped[0]["abandoned"] == 0
        assert took < 30
        assert plugin.socket is not None and not plugin.socket.exists()
    finally:
        proxy.close()

