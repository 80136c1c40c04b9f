"""The plugin as a subprocess with the local backend: the apiserver's view of it."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from secretkit._proto.kms.v1beta1 import api_pb2 as v1beta1_pb2
from secretkit._proto.kms.v2 import api_pb2
from secretkit.core.formats import decode_encrypted_object, kmsv2_decrypt_data
from tests.integration.kms_plugin.harness import running_plugin, start_plugin, write_kek

VECTORS = Path(__file__).resolve().parents[2] / "data" / "upstream-vectors.json"


def test_status_encrypt_decrypt_like_the_apiserver(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek-1.bin")
    with running_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek)]) as p:
        st = p.status()
        assert (st.version, st.healthz) == ("v2", "ok")
        assert st.key_id.startswith("local:sha256:")
        seed = os.urandom(32)
        enc = p.encrypt(seed, uid="4b3c2d1e")
        assert enc.key_id == st.key_id
        assert 0 < len(enc.ciphertext) < 1024
        assert seed not in enc.ciphertext
        assert p.decrypt(enc, uid="another-uid") == seed


def test_rotation_by_restart_keeps_old_ciphertexts(tmp_path: Path) -> None:
    kek1 = write_kek(tmp_path / "kek-1.bin")
    kek2 = write_kek(tmp_path / "kek-2.bin")
    with running_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek1)]) as p:
        old_key_id = p.status().key_id
        old = p.encrypt(b"o" * 32)
    # the new KEK first (writes), the old one still listed (reads)
    args = ["--backend", "local", "--local-kek-file", str(kek2), "--local-kek-file", str(kek1)]
    with running_plugin(tmp_path, args) as p:
        new_key_id = p.status().key_id
        assert new_key_id != old_key_id
        assert p.encrypt(b"n" * 32).key_id == new_key_id
        assert p.decrypt(old) == b"o" * 32


def test_decrypts_seeds_the_real_apiserver_stored(tmp_path: Path) -> None:
    """Upstream vectors: values the real apiserver wrote, through a stand-in KMS whose wrap
    layout is our local backend's. The plugin's Decrypt must return the seed that then
    decrypts the stored object exactly as upstream did."""
    vectors = json.loads(VECTORS.read_text())
    kms = [v for v in vectors if v.get("provider") == "kms-v2" and v.get("fake_kms")
           and v.get("expected_error") in (False, "False") and v.get("plaintext_b64")]
    assert len(kms) >= 2
    config = tmp_path / "plugin.yaml"
    keys = {}
    for i, vec in enumerate(kms):
        keys[vec["key_id"]] = write_kek(
            tmp_path / f"kek-{i}.bin", base64.b64decode(vec["fake_kms"]["kek_b64"])
        )
    config.write_text(json.dumps({"backend": {"type": "local", "keys": [
        {"kek_file": str(path), "key_id": key_id} for key_id, path in keys.items()]}}))
    with running_plugin(tmp_path, ["--config", str(config)]) as p:
        for vec in kms:
            stored = base64.b64decode(vec["stored_b64"])
            obj = decode_encrypted_object(stored[len(vec["stored_prefix"]):])
            req = api_pb2.DecryptRequest(
                ciphertext=obj.encrypted_dek_source, key_id=obj.key_id,
                annotations=dict(obj.annotations), uid="vector",
            )
            seed = bytes(p.v2().Decrypt(req, timeout=10).plaintext)
            assert seed == base64.b64decode(vec["dek_source_b64"]), vec["id"]
            plaintext = kmsv2_decrypt_data(obj, seed, vec["etcd_key"].encode())
            assert plaintext == base64.b64decode(vec["plaintext_b64"]), vec["id"]


def test_v1beta1_on_the_same_socket(tmp_path: Path) -> None:
    kek1 = write_kek(tmp_path / "kek-1.bin")
    kek2 = write_kek(tmp_path / "kek-2.bin")
    with running_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek1)]) as p:
        ver = p.v1beta1().Version(v1beta1_pb2.VersionRequest(version="v1beta1"), timeout=10)
        assert (ver.version, ver.runtime_name) == ("v1beta1", "secretkit-kms-plugin")
        cipher = p.v1_encrypt(b"d" * 32)
        assert p.v1_decrypt(cipher) == b"d" * 32
    # after a rotation the old v1beta1 ciphertext names its key itself
    args = ["--backend", "local", "--local-kek-file", str(kek2), "--local-kek-file", str(kek1)]
    with running_plugin(tmp_path, args) as p:
        assert p.v1_decrypt(cipher) == b"d" * 32


def test_disable_v1beta1(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    args = ["--backend", "local", "--local-kek-file", str(kek), "--disable-v1beta1"]
    with running_plugin(tmp_path, args) as p:
        with pytest.raises(grpc.RpcError) as info:
            p.v1_encrypt(b"d" * 32)
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert p.status().healthz == "ok"


def test_grpc_health_service(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    with running_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek)]) as p:
        stub = health_pb2_grpc.HealthStub(p.channel())
        for service in ("", "v2.KeyManagementService", "v1beta1.KeyManagementService"):
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_http_health_and_metrics(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    with running_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek)]) as p:
        assert p.http("/healthz") == (200, "ok\n")
        assert p.http("/livez") == (200, "ok\n")
        enc = p.encrypt(b"s" * 32)
        p.decrypt(enc)
        with pytest.raises(grpc.RpcError):
            p.v2().Encrypt(api_pb2.EncryptRequest(), timeout=10)
        code, body = p.http("/metrics")
        assert code == 200
        key_id = p.status().key_id
        assert f'secretkit_kms_plugin_key_id_info{{key_id="{key_id}"}} 1.0' in body
        assert ('secretkit_kms_plugin_requests_total{operation="encrypt",status_class="ok"} 1.0'
                in body)
        assert ('secretkit_kms_plugin_requests_total{operation="encrypt",'
                'status_class="invalid_argument"} 1.0' in body)
        assert 'secretkit_kms_plugin_backend_duration_seconds_count{backend="local"' in body
        assert p.http("/nope")[0] == 404


def test_abstract_socket(tmp_path: Path) -> None:
    kek = write_kek(tmp_path / "kek.bin")
    name = f"secretkit-test-{os.getpid()}-{tmp_path.name}"
    args = ["--backend", "local", "--local-kek-file", str(kek)]
    with running_plugin(tmp_path, args, listen=f"unix:///@{name}") as p:
        assert p.status().healthz == "ok"
        # a second plugin on the same abstract name is refused
        with pytest.raises(AssertionError, match="exited with 2"):
            start_plugin(tmp_path, args, listen=f"unix:///@{name}", log_name="second.log")


def test_log_hygiene(tmp_path: Path) -> None:
    """Debug logs of a busy plugin hold no plaintext, ciphertext or key material."""
    kek_bytes = os.urandom(32)
    kek = write_kek(tmp_path / "kek.bin", kek_bytes)
    seeds = [os.urandom(32) for _ in range(5)]
    secrets: list[bytes] = [kek_bytes, *seeds]
    with running_plugin(tmp_path, ["--backend", "local", "--local-kek-file", str(kek)]) as p:
        for seed in seeds:
            enc = p.encrypt(seed)
            secrets.append(enc.ciphertext)
            assert p.decrypt(enc) == seed
            secrets.append(p.v1_encrypt(seed))
            # errors carrying secret-looking inputs must not echo them either
            with pytest.raises(grpc.RpcError):
                p.v2().Decrypt(api_pb2.DecryptRequest(
                    ciphertext=seed, key_id=enc.key_id), timeout=10)
        p.http("/metrics")
    log = p.log_path.read_bytes()
    assert b'"level": "debug"' in log or b'"level": "info"' in log
    for secret in secrets:
        for form in (secret, secret.hex().encode(), base64.b64encode(secret),
                     repr(secret)[2:-1].encode()):
            assert form not in log


def test_secretkit_clients_talk_to_the_plugin(tmp_path: Path) -> None:
    """The project's own gRPC clients (used by the sandbox stand-in) against the daemon."""
    from secretkit.errors import BackendInvalidRequest
    from secretkit.kmsapi import GrpcKMSService
    from secretkit.kmsapi.client import V1Beta1Client

    kek = write_kek(tmp_path / "kek.bin")
    name = f"secretkit-client-{os.getpid()}-{tmp_path.name}"
    args = ["--backend", "local", "--local-kek-file", str(kek)]
    for listen in (None, f"unix:///@{name}"):
        with running_plugin(tmp_path, args, listen=listen) as p:
            with GrpcKMSService(p.endpoint) as kms:
                st = kms.status()
                assert st.healthy and st.version == "v2"
                res = kms.encrypt(b"c" * 32, "uid")
                assert res.key_id == st.key_id
                assert kms.decrypt(res.ciphertext, "uid", res.key_id, res.annotations) == b"c" * 32
                with pytest.raises(BackendInvalidRequest):
                    kms.decrypt(res.ciphertext, "uid", "local:unknown", {})
            with V1Beta1Client(p.endpoint) as v1:
                assert v1.version()[0] == "v1beta1"
                assert v1.decrypt(v1.encrypt(b"d" * 32)) == b"d" * 32
