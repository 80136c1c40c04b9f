"""Smoke tests: each real-server fixture serves what it promises.

etcd is checked with the upstream ``etcdctl`` (not our own client), so a fixture bug
and a client bug cannot hide each other.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from secretkit.sandbox.servers import find_binary
from tests.fixtures.servers import EtcdServer, MotoServer, OpenBaoServer


def _etcdctl(server: EtcdServer, *args: str, tls: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [str(find_binary("etcdctl")), f"--endpoints={server.endpoint}", "--dial-timeout=2s"]
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
