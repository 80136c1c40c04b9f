"""EtcdClient with client-certificate TLS, ETCDCTL_* configuration and user/password auth."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretkit.errors import EtcdError
from secretkit.etcd import EtcdClient, EtcdConfig
from secretkit.sandbox.servers import find_binary, generate_test_pki, start_etcd
from tests.fixtures.servers import EtcdServer

pytestmark = pytest.mark.etcd


def test_tls_with_client_cert(etcd_tls_server: EtcdServer) -> None:
    with EtcdClient(etcd_tls_server.client_config()) as client:
        rev = client.put(b"/tls/k", b"v")
        kv = client.get(b"/tls/k")
        assert kv is not None and kv.value == b"v" and kv.mod_revision == rev


def test_tls_without_client_cert_is_refused(etcd_tls_server: EtcdServer) -> None:
    cfg = EtcdConfig(
        endpoints=[etcd_tls_server.endpoint], cacert=etcd_tls_server.ca_cert, timeout=3
    )
    with EtcdClient(cfg) as client, pytest.raises(EtcdError) as info:
        client.get(b"/tls/k")
    assert info.value.hint is not None
    assert "--cert" in info.value.hint or "--endpoints" in info.value.hint


def test_tls_with_unknown_ca_is_refused(etcd_tls_server: EtcdServer, tmp_path: Path) -> None:
    other = generate_test_pki(tmp_path / "other")
    cfg = etcd_tls_server.client_config(cacert=other.ca_cert, timeout=3)
    with EtcdClient(cfg) as client, pytest.raises(EtcdError) as info:
        client.get(b"/tls/k")
    assert info.value.where == etcd_tls_server.endpoint


def test_missing_cert_file_is_a_config_error(etcd_tls_server: EtcdServer, tmp_path: Path) -> None:
    from secretkit.errors import ConfigError

    cfg = etcd_tls_server.client_config(key=tmp_path / "nope.key")
    with pytest.raises(ConfigError) as info:
        EtcdClient(cfg)
    assert info.value.where == str(tmp_path / "nope.key")


def test_config_from_etcdctl_env(
    etcd_tls_server: EtcdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETCDCTL_ENDPOINTS", etcd_tls_server.endpoint)
    monkeypatch.setenv("ETCDCTL_CACERT", str(etcd_tls_server.ca_cert))
    monkeypatch.setenv("ETCDCTL_CERT", str(etcd_tls_server.client_cert))
    monkeypatch.setenv("ETCDCTL_KEY", str(etcd_tls_server.client_key))
    monkeypatch.setenv("ETCDCTL_DIAL_TIMEOUT", "2s")
    monkeypatch.setenv("ETCDCTL_COMMAND_TIMEOUT", "1m")
    cfg = EtcdConfig.from_env()
    assert cfg.endpoints == (etcd_tls_server.endpoint,)
    assert cfg.timeout == 60.0
    with EtcdClient() as client:  # no config: from the environment
        client.put(b"/env/k", b"from-env")
        assert client.config.cert == etcd_tls_server.client_cert
    with EtcdClient(cfg) as client:
        kv = client.get(b"/env/k")
        assert kv is not None and kv.value == b"from-env"


@pytest.fixture(scope="module")
def etcd_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private etcd with auth enabled: root / root-pw (own server: auth is global)."""
    base = tmp_path_factory.mktemp("etcd-auth")
    proc, endpoint = start_etcd(base / "data", log_path=base / "etcd.log", unsafe_no_fsync=True)
    try:
        ctl = [str(find_binary("etcdctl")), f"--endpoints={endpoint}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
        for args in (
            ["user", "add", "root:root-pw"],
            ["user", "grant-role", "root", "root"],
            ["auth", "enable"],
        ):
            subprocess.run([*ctl, *args], check=True, capture_output=True, env=env, timeout=30)
        yield endpoint
    finally:
        proc.stop()


def test_user_password_auth(etcd_with_auth: str) -> None:
    cfg = EtcdConfig(endpoints=[etcd_with_auth], user="root", password="root-pw", timeout=3)
    with EtcdClient(cfg) as client:
        client.put(b"/auth/k", b"v")
        assert [kv.key for p in client.range_pages(b"/auth/") for kv in p] == [b"/auth/k"]


def test_no_credentials_is_refused(etcd_with_auth: str) -> None:
    with (
        EtcdClient(EtcdConfig(endpoints=[etcd_with_auth], timeout=3)) as client,
        pytest.raises(EtcdError) as info,
    ):
        client.put(b"/auth/k", b"v")
    assert "denied" in info.value.what or "credentials" in info.value.what


def test_wrong_password_is_refused_without_echoing_it(etcd_with_auth: str) -> None:
    cfg = EtcdConfig(endpoints=[etcd_with_auth], user="root", password="wrong-pw-123", timeout=3)
    with EtcdClient(cfg) as client, pytest.raises(EtcdError) as info:
        client.get(b"/auth/k")
    assert "wrong-pw-123" not in info.value.diagnostics()
    assert info.value.hint is not None and "--user/--password" in info.value.hint
    assert "wrong-pw-123" not in repr(cfg)


def test_status_and_snapshot_over_tls(etcd_tls_server: EtcdServer, tmp_path: Path) -> None:
    with EtcdClient(etcd_tls_server.client_config()) as client:
        client.put(b"/tls/snap", b"v")
        st = client.status()
        assert st.endpoint.startswith("https://127.0.0.1:")
        client.snapshot(tmp_path / "tls.db")
    assert (tmp_path / "tls.db").stat().st_size > 0


def _first_event(client: EtcdClient, prefix: bytes) -> bytes:
    """Watch ``prefix`` from now, put one key, return the key the watch saw."""
    import threading

    from secretkit.etcd import prefix_range_end
    from secretkit.etcd.watch import WatchRange

    start = client.current_revision() + 1
    stream = client.watch([WatchRange(prefix, prefix_range_end(prefix), start)])
    seen: list[bytes] = []

    def read() -> None:
        for batch in stream:
            if batch.events:
                seen.append(batch.events[0].kv.key)
                return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    client.put(prefix + b"k", b"v")
    thread.join(10)
    stream.close()
    return seen[0] if seen else b""


def test_watch_over_tls_with_client_cert(etcd_tls_server: EtcdServer) -> None:
    with EtcdClient(etcd_tls_server.client_config()) as client:
        assert _first_event(client, b"/tls-watch/") == b"/tls-watch/k"


def test_watch_with_user_and_password(etcd_with_auth: str) -> None:
    cfg = EtcdConfig(endpoints=[etcd_with_auth], user="root", password="root-pw", timeout=3)
    with EtcdClient(cfg) as client:
        assert _first_event(client, b"/auth-watch/") == b"/auth-watch/k"
