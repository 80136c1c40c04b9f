"""EtcdConfig, key-range arithmetic and endpoint parsing (no server needed).

These are pure checks; they live next to the etcd integration tests because the
etcd stream owns this folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secretkit.errors import ConfigError
from secretkit.etcd import (
    DEFAULT_ENDPOINT,
    EtcdConfig,
    grpc_target,
    parse_duration,
    prefix_range_end,
)


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"/registry/secrets/", b"/registry/secrets0"),
        (b"a", b"b"),
        (b"a\xff", b"b"),
        (b"a\xfe", b"a\xff"),
        (b"\x00", b"\x01"),
        (b"a\xff\xff", b"b"),
        (b"\xff", b"\x00"),
        (b"\xff\xff", b"\x00"),
        (b"", b"\x00"),
    ],
)
def test_prefix_range_end(prefix: bytes, end: bytes) -> None:
    assert prefix_range_end(prefix) == end


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("500ms", 0.5), ("1m30s", 90.0), ("2", 2.0), ("1.5s", 1.5), ("1h", 3600.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "s", "5s3", "abc"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text, where="ETCDCTL_DIAL_TIMEOUT")


def test_from_env_reads_etcdctl_variables() -> None:
    env = {
        "ETCDCTL_ENDPOINTS": "https://10.0.0.1:2379, https://10.0.0.2:2379",
        "ETCDCTL_CACERT": "/pki/ca.crt",
        "ETCDCTL_CERT": "/pki/c.crt",
        "ETCDCTL_KEY": "/pki/c.key",
        "ETCDCTL_USER": "alice:s3cret",
        "ETCDCTL_DIAL_TIMEOUT": "3s",
    }
    cfg = EtcdConfig.from_env(env)
    assert cfg.endpoints == ("https://10.0.0.1:2379", "https://10.0.0.2:2379")
    assert cfg.cacert == Path("/pki/ca.crt")
    assert (cfg.cert, cfg.key) == (Path("/pki/c.crt"), Path("/pki/c.key"))
    assert (cfg.user, cfg.password) == ("alice", "s3cret")
    assert cfg.timeout == 3.0
    assert cfg.uses_tls
    assert "s3cret" not in repr(cfg)


def test_from_env_password_variable_and_overrides() -> None:
    env = {"ETCDCTL_USER": "bob", "ETCDCTL_PASSWORD": "pw", "ETCDCTL_ENDPOINTS": "127.0.0.1:1"}
    cfg = EtcdConfig.from_env(env, endpoints=("http://127.0.0.1:2",), cacert=None, timeout=9)
    assert (cfg.user, cfg.password) == ("bob", "pw")
    assert cfg.endpoints == ("http://127.0.0.1:2",)  # override wins, None is ignored
    assert cfg.timeout == 9
    assert not cfg.uses_tls


def test_defaults() -> None:
    cfg = EtcdConfig.from_env({})
    assert cfg.endpoints == (DEFAULT_ENDPOINT,)
    assert cfg.timeout == 5.0 and cfg.user is None


def test_invalid_configs() -> None:
    with pytest.raises(ConfigError, match="--cert and --key"):
        EtcdConfig(cert=Path("/c"))
    with pytest.raises(ConfigError, match="no etcd endpoint"):
        EtcdConfig(endpoints=())
    with pytest.raises(ConfigError, match="without a user"):
        EtcdConfig(password="x")
    with pytest.raises(TypeError):
        EtcdConfig.from_env({}, bogus=1)


@pytest.mark.parametrize(
    ("endpoint", "target"),
    [
        ("http://127.0.0.1:2379", "127.0.0.1:2379"),
        ("https://etcd.local:2379/", "etcd.local:2379"),
        ("127.0.0.1:2379", "127.0.0.1:2379"),
    ],
)
def test_grpc_target(endpoint: str, target: str) -> None:
    assert grpc_target(endpoint) == target


def test_grpc_target_rejects_paths() -> None:
    with pytest.raises(ConfigError):
        grpc_target("http://h:1/v3")
