"""Config merge rules and validation (flags > env > file > defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kms_plugin.config import (
    build_config,
    load_config_file,
    parse_health_addr,
    parse_listen,
    parse_mode,
)
from secretkit.errors import UsageError

LOCAL = {"type": "local", "keys": [{"kek_file": "/k"}]}


def test_defaults() -> None:
    cfg = build_config({}, {}, {"type": "local", "keys": [{"kek_file": "/k"}]})
    assert cfg.listen.endpoint == "unix:///var/run/secretkit/kms-plugin.sock"
    assert (cfg.socket_mode, cfg.health_addr, cfg.status_ttl, cfg.grace_period) == (
        0o600, None, 30.0, 10.0)
    assert not cfg.disable_v1beta1


def test_flags_override_file() -> None:
    file_data = {"listen": "unix:///run/a.sock", "status_ttl": 5, "backend": LOCAL}
    cfg = build_config(file_data, {"listen": "unix:///@plugin", "status_ttl": 2.5}, {})
    assert cfg.listen.abstract == "plugin"
    assert cfg.listen.grpc_target == "unix-abstract:plugin"
    assert cfg.status_ttl == 2.5
    assert cfg.backend["type"] == "local"


def test_backend_flags_merge_into_file_section() -> None:
    file_data = {"backend": {"type": "vault", "address": "http://127.0.0.1:1", "key": "k"}}
    cfg = build_config(file_data, {}, {"key": "other"})
    assert dict(cfg.backend) == {"type": "vault", "address": "http://127.0.0.1:1", "key": "other"}


def test_changing_backend_type_drops_file_fields() -> None:
    file_data = {"backend": {"type": "vault", "address": "http://127.0.0.1:1", "key": "k"}}
    cfg = build_config(file_data, {}, {"type": "aws", "key": "alias/x", "region": "r"})
    assert dict(cfg.backend) == {"type": "aws", "key": "alias/x", "region": "r"}


def test_missing_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no backend configured") as info:
        build_config({}, {}, {})
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "value",
    ["relative.sock", "/run/p.sock", "tcp://127.0.0.1:1", "unix:@plugin", "unix:///@",
     "unix:///" + "x" * 120],
)
def test_bad_listen(value: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(value, "--listen")


def test_listen_forms() -> None:
    assert parse_listen("unix:///run/p.sock", "x").path == Path("/run/p.sock")
    assert parse_listen("unix:/run/p.sock", "x").endpoint == "unix:///run/p.sock"
    assert parse_listen("unix:///@p", "x").endpoint == "unix:///@p"


def test_health_addr_loopback_only_by_default() -> None:
    assert parse_health_addr("off", allow_remote=False, where="x") is None
    addr = parse_health_addr("127.0.0.1:8787", allow_remote=False, where="x")
    assert addr is not None and (addr.host, addr.port) == ("127.0.0.1", 8787)
    v6 = parse_health_addr("[::1]:9", allow_remote=False, where="x")
    assert v6 is not None and v6.host == "::1"
    with pytest.raises(UsageError, match="non-loopback"):
        parse_health_addr("0.0.0.0:8787", allow_remote=False, where="x")
    remote = parse_health_addr("10.1.2.3:8787", allow_remote=True, where="x")
    assert remote is not None and remote.host == "10.1.2.3"
    for bad in ("8787", "host:80", "127.0.0.1:99999", "127.0.0.1:abc"):
        with pytest.raises(UsageError):
            parse_health_addr(bad, allow_remote=False, where="x")


@pytest.mark.parametrize("bad", ["8787", "of", ":8787", "nope"])
def test_a_health_addr_of_the_wrong_shape_says_off_is_accepted_too(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_health_addr(bad, allow_remote=False, where="--health-addr")
    assert info.value.what == f"expected HOST:PORT or 'off', got {bad!r}"
    assert info.value.where == "--health-addr"
    # the shared parser's other complaints stay as they are
    with pytest.raises(UsageError, match="is not a number"):
        parse_health_addr("127.0.0.1:abc", allow_remote=False, where="x")


def test_socket_mode() -> None:
    assert parse_mode("0660", "x") == 0o660
    for bad in ("0400", "1777", "rw", "0066"):
        with pytest.raises(UsageError):
            parse_mode(bad, "x")


def test_config_file_rejects_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text("listen: unix:///run/p.sock\nstatus_tll: 5\n")
    with pytest.raises(UsageError, match="unknown field 'status_tll'"):
        load_config_file(path)


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text("listen: [unclosed\n")
    with pytest.raises(UsageError) as info:
        load_config_file(path)
    assert info.value.where is not None and str(path) in info.value.where
    with pytest.raises(UsageError, match="not found"):
        load_config_file(tmp_path / "missing.yaml")


def test_errors_name_the_flag_or_field() -> None:
    with pytest.raises(UsageError) as info:
        build_config({"status_ttl": -1, "backend": LOCAL}, {}, {}, source="p.yaml")
    assert info.value.where == "p.yaml:status_ttl"
    with pytest.raises(UsageError) as info:
        build_config({"backend": LOCAL}, {"max_workers": 0}, {})
    assert info.value.where == "--max-workers"
