"""The plugin under faults: a replaced socket, garbage, overload, a cut-off shutdown.

Each test drives a real plugin process over its unix socket, as the apiserver does.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from secretkit._proto.kms.v2 import api_pb2, api_pb2_grpc
from secretkit.backends.vault_admin import create_transit_key
from tests.integration.kms_plugin.harness import (
    Plugin,
    plugin_env,
    running_plugin,
    start_plugin,
    wait_for,
    write_kek,
)
from tests.integration.kms_plugin.tcp_proxy import DelayProxy


def _local(tmp_path: Path) -> list[str]:
    kek = write_kek(tmp_path / "kek.bin")
    return ["--backend", "local", "--local-kek-file", str(kek)]


def _metric(plugin: Plugin, name: str, labels: str = "") -> float:
    text = plugin.http("/metrics")[1]
    total = 0.0
    for line in text.splitlines():
        series = line.split(" ")[0]
        if (labels and series.startswith(name + "{") and labels in series) or series == name:
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- sockets ---------------------------------------------------------------------


def test_stopping_a_plugin_leaves_its_successors_socket(tmp_path: Path) -> None:
    """A's socket was replaced by B's on the same path: stopping A must not remove B's."""
    args = _local(tmp_path)
    sock = tmp_path / "run" / "kms.sock"
    a = start_plugin(tmp_path / "a", args, listen=f"unix://{sock}", health=False)
    try:
        os.unlink(sock)  # e.g. an operator cleaning up, or a tmpfiles rule
        with running_plugin(tmp_path / "b", args, listen=f"unix://{sock}", health=False) as b:
            b_inode = os.lstat(sock).st_ino
            assert a.stop() == 0
            assert sock.exists() and os.lstat(sock).st_ino == b_inode
            assert b.status().healthz == "ok"  # B is still reachable
        assert not sock.exists()  # B removes its own socket
    finally:
        a.stop()


def test_missing_socket_directories_are_created_0700(tmp_path: Path) -> None:
    sock = tmp_path / "x" / "y" / "z" / "kms.sock"
    old = os.umask(0o022)  # the usual umask would give 0755
    try:
        with running_plugin(tmp_path, _local(tmp_path), listen=f"unix://{sock}", health=False):
            for directory in (tmp_path / "x", tmp_path / "x" / "y", tmp_path / "x" / "y" / "z"):
                assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
            assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
            # no private bind name is left next to the socket
            assert sorted(p.name for p in sock.parent.iterdir()) == ["kms.sock"]
    finally:
        os.umask(old)


def _without_capabilities(argv: list[str]) -> list[str]:
    """Run ``argv`` as root with every capability dropped (as the shipped unit and pod do)."""
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is part of every Debian system"
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--", *argv]


def _plugin_argv(sock: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "kms_plugin", "--listen", f"unix://{sock}", *args]


def test_socket_group_without_cap_chown_names_the_capability(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "kms.sock"
    argv = _without_capabilities(
        _plugin_argv(sock, [*_local(tmp_path), "--socket-group", "1", "--socket-mode", "0660"])
    )
    proc = subprocess.run(argv, capture_output=True, text=True, env=plugin_env(), timeout=60,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert "CAP_CHOWN" in proc.stderr
    assert "install -d -m 2750 -g 1" in proc.stderr and "runAsGroup" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not sock.exists() and sorted(p.name for p in sock.parent.iterdir()) == []


def test_setgid_directory_gives_the_socket_its_group_without_capabilities(
    tmp_path: Path,
) -> None:
    """The installer's setgid directory: the socket is born with the group, no chown."""
    run_dir = tmp_path / "run"
    subprocess.run(["install", "-d", "-m", "2750", "-g", "1", str(run_dir)], check=True)
    sock = run_dir / "kms.sock"
    argv = _without_capabilities(_plugin_argv(sock, [
        *_local(tmp_path), "--socket-group", "1", "--socket-mode", "0660",
        "--log-format", "json",
    ]))
    log_path = tmp_path / "plugin.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT,
                                env=plugin_env(), stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: '"msg": "serving"' in log_path.read_text() or proc.poll() is not None,
                 timeout=30)
        assert proc.poll() is None, log_path.read_text()
        st = os.lstat(sock)
        assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (1, 0o660)
        channel = grpc.insecure_channel(f"unix:{sock}")
        try:
            stub = api_pb2_grpc.KeyManagementServiceStub(channel)
            assert stub.Status(api_pb2.StatusRequest(), timeout=10).healthz == "ok"
        finally:
            channel.close()
    finally:
        proc.terminate()
        assert proc.wait(20) == 0, log_path.read_text()
    assert not sock.exists()


# --- malformed requests --------------------------------------------------------------


def test_malformed_protobuf_is_invalid_argument_with_a_bounded_log(tmp_path: Path) -> None:
    with running_plugin(tmp_path, _local(tmp_path)) as plugin:
        raw = plugin.channel().unary_unary(
            "/v2.KeyManagementService/Decrypt",
            request_serializer=lambda b: b, response_deserializer=lambda b: b,
        )
        junk = [b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05ab", b"\x08", b"\x0a\x05ab",
                bytes(range(256))]
        codes = collections.Counter()
        for i in range(600):
            try:
                raw(junk[i % len(junk)], timeout=10)
                codes["OK"] += 1
            except grpc.RpcError as exc:
                codes[exc.code().name] += 1
                if i == 0:
                    assert "not a valid v2.DecryptRequest message" in exc.details()
        assert codes == {"INVALID_ARGUMENT": 600}
        assert _metric(plugin, "secretkit_kms_plugin_malformed_requests_total",
                       'operation="decrypt"') == 600
        assert _metric(plugin, "secretkit_kms_plugin_requests_total",
                       'status_class="invalid_argument"') == 600
        # the plugin still works
        enc = plugin.encrypt(b"s" * 32)
        assert plugin.decrypt(enc) == b"s" * 32
    text = plugin.log_text()
    assert "Exception deserializing" not in text
    refused = [e for e in plugin.log_entries() if e.get("msg") == "request refused"]
    # 600 bad calls in a few seconds: a handful of lines, the rest counted
    assert 1 <= len(refused) <= 10, len(refused)


# --- overload ----------------------------------------------------------------------


async def _hammer(sock: Path, calls: int) -> collections.Counter[str]:
    async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
        stub = api_pb2_grpc.KeyManagementServiceStub(channel)

        async def one() -> str:
            try:
                await stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"x" * 32, uid="u"),
                                   timeout=60)
            except grpc.aio.AioRpcError as exc:
                return exc.code().name
            return "OK"

        return collections.Counter(await asyncio.gather(*(one() for _ in range(calls))))


def test_thousands_of_concurrent_calls_are_served_not_silently_cancelled(tmp_path: Path) -> None:
    """grpc core alone cancels calls past 1,000 waiting, silently; the plugin serves them."""
    # --max-pending above the burst: this is about grpc core's own limit (1,000)
    args = [*_local(tmp_path), "--log-level", "info", "--max-pending", "10000"]
    with running_plugin(tmp_path, args) as plugin:
        assert plugin.socket is not None
        codes = asyncio.run(_hammer(plugin.socket, 5000))
        assert codes == {"OK": 5000}, codes
        assert _metric(plugin, "secretkit_kms_plugin_requests_total",
                       'status_class="ok"') == 5000


def test_overload_is_refused_visibly(tmp_path: Path) -> None:
    args = [*_local(tmp_path), "--max-pending", "64", "--max-workers", "4",
            "--log-level", "info"]
    with running_plugin(tmp_path, args) as plugin:
        assert plugin.socket is not None
        codes = asyncio.run(_hammer(plugin.socket, 3000))
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
        refused = codes["RESOURCE_EXHAUSTED"]
        assert refused > 0 and codes["OK"] > 0, codes
        assert _metric(plugin, "secretkit_kms_plugin_overload_refusals_total") == refused
        assert _metric(plugin, "secretkit_kms_plugin_requests_total",
                       'status_class="resource_exhausted"') == refused
        # every task ends (its bookkeeping may trail the answer by a moment)
        wait_for(lambda: _metric(plugin, "secretkit_kms_plugin_requests_pending") == 0, 10)
    lines = [e for e in plugin.log_entries() if str(e.get("msg", "")).startswith("overloaded")]
    assert 1 <= len(lines) <= 5, len(lines)
    assert lines[0]["max_pending"] == 64


# --- shutdown cut off by the grace period ------------------------------------------------


@pytest.mark.vault
def test_grace_period_cut_off_is_counted(openbao_server: Any, tmp_path: Path) -> None:
    key = f"cutoff-{os.getpid()}"
    create_transit_key(openbao_server.address, openbao_server.token, key)
    proxy = DelayProxy("127.0.0.1", int(openbao_server.address.rsplit(":", 1)[1]))
    try:
        token_file = tmp_path / "token"
        token_file.write_text(openbao_server.token)
        token_file.chmod(0o600)
        config = tmp_path / "plugin.yaml"
        config.write_text(json.dumps({"backend": {
            "type": "vault", "address": proxy.address, "mount": "transit", "key": key,
            "key_cache_seconds": 0, "timeout_seconds": 20,
            "auth": {"method": "token", "token_file": str(token_file)},
        }}))
        plugin = start_plugin(tmp_path, ["--config", str(config), "--grace-period", "0.5"])
        enc = plugin.encrypt(b"f" * 32)
        proxy.delay = 3.0
        results: list[object] = []

        def call() -> None:
            try:
                results.append(plugin.decrypt(enc, timeout=30))
            except grpc.RpcError as exc:
                results.append(exc.code())

        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        wait_for(lambda: "secretkit_kms_plugin_requests_in_flight 8.0"
                 in plugin.http("/metrics")[1], timeout=10)
        plugin.signal()
        for t in threads:
            t.join(30)
        assert plugin.proc.wait(30) == 0, plugin.log_text()
    finally:
        proxy.close()
    assert len(results) == 8 and all(isinstance(r, grpc.StatusCode) for r in results), results
    stopped = [e for e in plugin.log_entries() if e.get("msg") == "stopped"]
    assert stopped, plugin.log_text()
    assert stopped[0]["in_flight_at_signal"] == 8
    assert stopped[0]["abandoned"] == 8 and stopped[0]["handled"] == 0
    assert stopped[0]["level"] == "warning"


def test_clean_stop_counts_handled_calls(tmp_path: Path) -> None:
    with running_plugin(tmp_path, _local(tmp_path)) as plugin:
        for _ in range(5):
            plugin.status()
    stopped = [e for e in plugin.log_entries() if e.get("msg") == "stopped"]
    assert stopped[0]["abandoned"] == 0 and stopped[0]["level"] == "info"
    # a call whose answer is still being sent at the signal counts as in flight, and
    # then as handled; nothing else can be pending after five sequential calls
    assert stopped[0]["in_flight_at_signal"] == stopped[0]["handled"] <= 1


def test_the_plugin_survives_all_of_it(tmp_path: Path) -> None:
    """A smoke check that the plugin answers promptly after a burst of faults."""
    with running_plugin(tmp_path, [*_local(tmp_path), "--max-pending", "8"]) as plugin:
        assert plugin.socket is not None
        asyncio.run(_hammer(plugin.socket, 500))
        started = time.monotonic()
        assert plugin.status().healthz == "ok"
        assert time.monotonic() - started < 5
