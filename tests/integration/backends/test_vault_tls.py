"""VaultTransitBackend over TLS (``bao server -dev-tls``): CA file and server name."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from secretkit.backends import build_backend
from secretkit.errors import BackendUnavailable
from secretkit.sandbox.servers import find_binary, free_port, spawn, wait_for_tcp

pytestmark = pytest.mark.vault


@dataclass
class TLSBao:
    address: str
    token: str
    ca_file: Path


@pytest.fixture(scope="module")
def tls_bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSBao]:
    # The shared openbao_server fixture is plain HTTP; this one exercises the TLS options.
    base = tmp_path_factory.mktemp("bao-tls")
    port = free_port()
    token = f"dev-{secrets.token_hex(12)}"
    argv = [
        str(find_binary("bao")), "server", "-dev", "-dev-tls",
        f"-dev-tls-cert-dir={base}", f"-dev-listen-address=127.0.0.1:{port}",
        "-dev-no-store-token",
    ]
    env = {"HOME": str(base), "BAO_DEV_ROOT_TOKEN_ID": token, "BAO_DISABLE_MLOCK": "true",
           "PATH": "/usr/bin:/bin"}
    proc = spawn("openbao-tls", argv, log_path=base / "bao.log", env=env, cwd=base)
    try:
        wait_for_tcp("127.0.0.1", port, 30)
        ca = base / "vault-ca.pem"
        deadline = time.monotonic() + 30
        while not ca.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        server = TLSBao(f"https://127.0.0.1:{port}", token, ca)
        client = _hvac(server)
        for _ in range(100):  # the listener opens before the transit mount can be enabled
            try:
                client.sys.enable_secrets_engine("transit", path="transit")
                break
            except Exception:
                time.sleep(0.1)
        client.secrets.transit.create_key(name="tls-key", mount_point="transit")
        yield server
    finally:
        proc.stop()


def _hvac(server: TLSBao) -> Any:
    import hvac
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = str(server.ca_file)  # hvac ignores verify= when given a session
    return hvac.Client(url=server.address, token=server.token, verify=str(server.ca_file),
                       session=session)


def _definition(server: TLSBao, tls: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "vault", "address": server.address, "key": "tls-key", "tls": tls,
        "auth": {"method": "token", "token": server.token},
    }


def test_round_trip_with_ca_file(tls_bao: TLSBao) -> None:
    backend = build_backend(_definition(tls_bao, {"ca_file": str(tls_bao.ca_file)}), where="t")
    wrapped = backend.encrypt(b"tls-seed")
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"tls-seed"


def test_server_name_is_used_for_verification(tls_bao: TLSBao) -> None:
    good = build_backend(
        _definition(tls_bao, {"ca_file": str(tls_bao.ca_file), "server_name": "localhost"}),
        where="t",
    )
    assert good.status().healthy
    wrong = build_backend(
        _definition(tls_bao, {"ca_file": str(tls_bao.ca_file), "server_name": "vault.invalid"}),
        where="t",
    )
    with pytest.raises(BackendUnavailable) as err:
        wrong.status()
    assert tls_bao.token not in err.value.diagnostics()


def test_unknown_ca_is_refused(tls_bao: TLSBao) -> None:
    backend = build_backend(_definition(tls_bao, {}), where="t")  # system CAs only
    with pytest.raises(BackendUnavailable, match="SSLError"):
        backend.status()


def test_cert_auth_with_a_client_certificate(tls_bao: TLSBao, tmp_path: Path) -> None:
    from secretkit.sandbox.servers import generate_test_pki

    pki = generate_test_pki(tmp_path / "pki", client_cn="kms-plugin")
    client = _hvac(tls_bao)
    client.sys.enable_auth_method("cert")
    client.sys.create_or_update_policy(
        name="tls-transit",
        policy='path "transit/*" { capabilities = ["update", "read"] }',
    )
    client.adapter.post(
        "/v1/auth/cert/certs/kms-plugin",
        json={"certificate": pki.ca_cert.read_text(), "token_policies": ["tls-transit"]},
    )
    backend = build_backend(
        {
            "type": "vault",
            "address": tls_bao.address,
            "key": "tls-key",
            "tls": {
                "ca_file": str(tls_bao.ca_file),
                "client_cert": str(pki.client_cert),
                "client_key": str(pki.client_key),
            },
            "auth": {"method": "cert", "role": "kms-plugin"},
        },
        where="t",
    )
    wrapped = backend.encrypt(b"cert-auth-seed")
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"cert-auth-seed"
