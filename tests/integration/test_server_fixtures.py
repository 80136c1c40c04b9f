"""Smoke tests: each real-server fixture serves what it promises.

etcd is checked with the upstream ``etcdctl`` (not our own client), so a fixture bug
and a client bug cannot hide each other.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from secretkit.sandbox.servers import find_binary
from tests.fixtures.servers import EtcdServer, MotoServer, OpenBaoServer


def _etcdctl(server: EtcdServer, *args: str, tls: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [
        str(find_binary("etcdctl")),
        f"--endpoints={server.endpoint}",
        "--dial-timeout=2s",
        "--command-timeout=2s",
    ]
    if server.ca_cert is not None:
        argv.append(f"--cacert={server.ca_cert}")
        if tls:
            argv += [f"--cert={server.client_cert}", f"--key={server.client_key}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=30, env=env, check=False
    )


@pytest.mark.etcd
def test_etcd_server_put_get(etcd_server: EtcdServer) -> None:
    assert etcd_server.endpoint.startswith("http://127.0.0.1:")
    assert etcd_server.data_dir.is_dir()
    put = _etcdctl(etcd_server, "put", "/smoke/key", "value-1")
    assert put.returncode == 0, put.stderr
    got = _etcdctl(etcd_server, "get", "--print-value-only", "/smoke/key")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "value-1"
    os.kill(etcd_server.pid, 0)  # the PID we would stop is the live server


@pytest.mark.etcd
def test_etcd_tls_server_requires_client_cert(etcd_tls_server: EtcdServer) -> None:
    assert etcd_tls_server.endpoint.startswith("https://127.0.0.1:")
    assert etcd_tls_server.ca_cert is not None and etcd_tls_server.ca_cert.is_file()
    assert etcd_tls_server.client_key is not None
    assert (etcd_tls_server.client_key.stat().st_mode & 0o777) == 0o600

    refused = _etcdctl(etcd_tls_server, "put", "/smoke/tls", "x", tls=False)
    assert refused.returncode != 0

    accepted = _etcdctl(etcd_tls_server, "put", "/smoke/tls", "with-cert")
    assert accepted.returncode == 0, accepted.stderr
    got = _etcdctl(etcd_tls_server, "get", "--print-value-only", "/smoke/tls")
    assert got.stdout.strip() == "with-cert"


@pytest.mark.vault
def test_openbao_transit_round_trip(openbao_server: OpenBaoServer) -> None:
    import base64

    assert openbao_server.address.startswith("http://127.0.0.1:")
    openbao_server.create_transit_key("smoke")
    client = openbao_server.client()
    plaintext = b"fixture smoke plaintext"
    enc = client.secrets.transit.encrypt_data(
        name="smoke", plaintext=base64.b64encode(plaintext).decode(), mount_point="transit"
    )
    ciphertext = enc["data"]["ciphertext"]
    assert ciphertext.startswith("vault:v1:")
    assert plaintext not in base64.b64decode(ciphertext.split(":", 2)[2] + "==")
    dec = client.secrets.transit.decrypt_data(
        name="smoke", ciphertext=ciphertext, mount_point="transit"
    )
    assert base64.b64decode(dec["data"]["plaintext"]) == plaintext
    # the dev server prints its root token to its log: the log is private
    log_file = openbao_server.process.log_path
    assert log_file is not None and log_file.stat().st_mode & 0o777 == 0o600
    # the user's token file is never touched
    assert not (Path.home() / ".vault-token").exists() or Path.home() == openbao_server.workdir


@pytest.mark.aws
def test_moto_kms_round_trip(moto_server: MotoServer) -> None:
    assert moto_server.endpoint_url.startswith("http://127.0.0.1:")
    assert moto_server.region == "us-east-1"
    # credentials are handed to this client only, never put in the environment
    assert os.environ.get("AWS_ACCESS_KEY_ID") != "testing"
    kms = moto_server.kms_client()
    key_id = kms.create_key(Description="fixture smoke")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"moto smoke")["CiphertextBlob"]
    assert blob != b"moto smoke"
    out = kms.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"moto smoke"
    assert key_id in out["KeyId"]


# -- the process helpers themselves (no server marker: they need no server) ------------


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    from secretkit.sandbox.servers import spawn

    script = "sleep 300 & echo $! > child.pid; wait"
    proc = spawn("sh", ["/bin/sh", "-c", script], log_path=tmp_path / "sh.log", cwd=tmp_path)
    pid_file = tmp_path / "child.pid"
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert os.getpgid(child) == proc.pid  # the grandchild is in the server's group
    proc.stop(timeout=5)
    assert not proc.is_running()
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "a child of the stopped server was orphaned"
    proc.stop()  # idempotent


def test_stop_by_pid_only(tmp_path: Path) -> None:
    """The sandbox stops servers started by an earlier command: only the PID is known."""
    from secretkit.sandbox.servers import ManagedProcess

    popen = subprocess.Popen(["/bin/sleep", "300"], start_new_session=True)
    try:
        handle = ManagedProcess("sleep", popen.pid, ["/bin/sleep", "300"], None)
        assert handle.is_running()
        handle.stop(timeout=5)
        assert popen.wait(5) == -15  # SIGTERM, not SIGKILL
        assert not handle.is_running()
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()


def test_pid_reuse_guard(tmp_path: Path) -> None:
    """A recorded PID now running another program is not ours: never signalled."""
    from secretkit.sandbox.servers import ManagedProcess

    popen = subprocess.Popen(["/bin/sleep", "300"], start_new_session=True)
    try:
        stale = ManagedProcess("etcd", popen.pid, ["/opt/bin/etcd"], None)
        assert not stale.is_running()
        stale.stop(timeout=1)
        assert popen.poll() is None
    finally:
        popen.kill()
        popen.wait()


def test_find_binary_names_the_pip_package() -> None:
    from secretkit.errors import SecretkitError
    from secretkit.sandbox.servers import find_binary

    assert find_binary("etcd").is_file()
    assert find_binary("bao").is_file()
    assert find_binary("moto_server").is_file()
    assert find_binary("kubectl").is_file()
    with pytest.raises(SecretkitError) as info:
        find_binary("definitely-not-a-secretkit-binary")
    assert "not found" in info.value.what


def test_generate_test_pki(tmp_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from secretkit.sandbox.servers import generate_test_pki

    pki = generate_test_pki(tmp_path / "pki")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(pki.client_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.IPv4Address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    for key in (pki.ca_key, pki.server_key, pki.client_key):
        assert key.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "pki").iterdir()) == [
        "ca.crt",
        "ca.key",
        "client.crt",
        "client.key",
        "server.crt",
        "server.key",
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rpartition(")")[2].split()[0] == "Z")


@pytest.mark.etcd
def test_wait_for_tcp(etcd_server: EtcdServer) -> None:
    from secretkit.sandbox.servers import ServerStartError, free_port, wait_for_tcp

    host, port = etcd_server.endpoint.removeprefix("http://").rsplit(":", 1)
    wait_for_tcp(host, int(port), timeout=5)
    closed = free_port()
    with pytest.raises(ServerStartError) as info:
        wait_for_tcp("127.0.0.1", closed, timeout=0.3)
    assert info.value.where == f"127.0.0.1:{closed}"
