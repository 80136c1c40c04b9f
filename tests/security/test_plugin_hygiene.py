"""The KMS plugin at debug log level: no secret in its log, metrics or gRPC errors.

A real ``python -m kms_plugin`` process with a local KEK (the canary key) serves
Encrypt/Decrypt of a canary plaintext over v2 and v1beta1, rejects tampered
ciphertexts, and serves /metrics on 127.0.0.1. Its log (debug), its metrics page
and every gRPC error detail are then searched for the KEK, the plaintext and the
wrapped ciphertexts. Its health server must refuse non-loopback addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest

from kms_plugin.config import parse_health_addr
from secretkit._proto.kms.v2 import api_pb2 as v2_pb2
from secretkit.errors import UsageError
from tests.integration.kms_plugin.harness import Plugin, start_plugin, write_kek
from tests.security import canaries as c


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    work = tmp_path_factory.mktemp("plugin-hygiene")
    kek = write_kek(work / "kek.bin", c.KEY)
    started = start_plugin(work, ["--backend", "local", "--local-kek-file", str(kek)])
    try:
        yield started
    finally:
        started.stop()


def test_plugin_log_metrics_and_errors_hold_no_secret(plugin: Plugin) -> None:
    assert plugin.status().healthz == "ok"
    wrapped = plugin.encrypt(c.PLAINTEXT)
    assert plugin.decrypt(wrapped) == c.PLAINTEXT
    v1_wrapped = plugin.v1_encrypt(c.PLAINTEXT)
    assert plugin.v1_decrypt(v1_wrapped) == c.PLAINTEXT
    details = []
    bad_requests = [
        v2_pb2.DecryptRequest(ciphertext=wrapped.ciphertext[:-1] + b"\x00",
                              key_id=wrapped.key_id, uid="tampered"),
        v2_pb2.DecryptRequest(ciphertext=c.PLAINTEXT, key_id=wrapped.key_id, uid="garbage"),
        v2_pb2.DecryptRequest(ciphertext=wrapped.ciphertext,
                              key_id="local:sha256:0000000000000000", uid="bad-key-id"),
        v2_pb2.DecryptRequest(ciphertext=b"", key_id=wrapped.key_id, uid="empty"),
    ]
    for request in bad_requests:
        with pytest.raises(grpc.RpcError) as info:
            plugin.v2().Decrypt(request, timeout=10)
        details.append(f"{info.value.code()} {info.value.details()}")
    with pytest.raises(grpc.RpcError) as info:
        plugin.v2().Encrypt(v2_pb2.EncryptRequest(plaintext=c.PLAINTEXT * 40000, uid="big"),
                            timeout=10)
    details.append(f"{info.value.code()} {info.value.details()}")
    code, metrics = plugin.http("/metrics")
    assert code == 200 and "kms" in metrics.lower()
    log = plugin.log_text()
    assert "tampered" in log or "debug" in log.lower()  # the failures were logged
    # the random tail of each wrapped seed (the v1beta1 envelope starts with the public key_id)
    secrets = (c.KEY, c.PLAINTEXT, wrapped.ciphertext[-32:], v1_wrapped[-32:])
    for name, text in {"log": log, "metrics": metrics, "grpc errors": "\n".join(details)}.items():
        found = c.leaks(text, *secrets)
        assert not found, f"plugin {name} leaked {found}:\n{text[-3000:]}"


def test_plugin_health_server_listens_on_loopback_only(plugin: Plugin) -> None:
    listening = [conn.laddr for conn in psutil.Process(plugin.pid).net_connections("inet")
                 if conn.status == psutil.CONN_LISTEN]
    assert listening and all(ipaddress.ip_address(a.ip).is_loopback for a in listening)
    assert (plugin.socket is not None
            and (plugin.socket.stat().st_mode & 0o777) == 0o600)  # the socket itself is 0600


@pytest.mark.parametrize("addr", ["0.0.0.0:8787", "[::]:8787", "10.1.2.3:80",
                                  "192.168.0.1:9000", "[::ffff:10.0.0.1]:80"])
def test_health_addr_refuses_non_loopback_without_the_flag(addr: str) -> None:
    with pytest.raises(UsageError, match="non-loopback"):
        parse_health_addr(addr, allow_remote=False, where="--health-addr")
    assert parse_health_addr(addr, allow_remote=True, where="--health-addr") is not None


@pytest.mark.parametrize("addr", ["metrics.example.com:80", "my-host:9000"])
def test_health_addr_refuses_host_names_it_would_have_to_resolve(addr: str) -> None:
    with pytest.raises(UsageError):
        parse_health_addr(addr, allow_remote=False, where="--health-addr")


@pytest.mark.parametrize("addr", ["127.0.0.1:0", "127.0.0.2:9000", "[::1]:0", "localhost:0"])
def test_health_addr_accepts_loopback(addr: str) -> None:
    assert parse_health_addr(addr, allow_remote=False, where="--health-addr") is not None


def test_kek_file_written_by_the_harness_is_private(tmp_path: Path) -> None:
    """(sanity) the plugin refuses a KEK file others can read, like ssh does."""
    kek = write_kek(tmp_path / "loose.bin", c.KEY)
    kek.chmod(0o644)
    from tests.integration.kms_plugin.harness import PluginExited

    with pytest.raises(PluginExited) as info:
        start_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek)],
                     health=False)
    assert not c.leaks(str(info.value), c.KEY)
