"""VaultTransitBackend against a real OpenBao dev server."""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from secretkit.backends import build_backend
from secretkit.backends.vault import VaultTransitBackend, cluster_id_for, parse_key_id
from secretkit.errors import (
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendUnavailable,
    SafetyError,
    SecretkitError,
)
from secretkit.sandbox.servers import free_port
from tests.fixtures.servers import OpenBaoServer

pytestmark = pytest.mark.vault

TRANSIT_POLICY = """
path "transit/encrypt/{key}" {{ capabilities = ["update"] }}
path "transit/decrypt/{key}" {{ capabilities = ["update"] }}
path "transit/keys/{key}" {{ capabilities = ["read"] }}
"""


def _key(bao: OpenBaoServer, **kwargs: Any) -> str:
    name = f"k-{uuid.uuid4().hex[:8]}"
    bao.client().secrets.transit.create_key(name=name, mount_point="transit", **kwargs)
    return name


def _backend(bao: OpenBaoServer, key: str, **extra: Any) -> VaultTransitBackend:
    definition: dict[str, Any] = {
        "type": "vault",
        "address": bao.address,
        "key": key,
        "auth": {"method": "token", "token": bao.token},
    }
    definition.update(extra)
    backend = build_backend(definition, where="test")
    assert isinstance(backend, VaultTransitBackend)
    return backend


def _policy_token(bao: OpenBaoServer, key: str, **token_args: Any) -> str:
    client = bao.client()
    policy = f"p-{key}"
    client.sys.create_or_update_policy(name=policy, policy=TRANSIT_POLICY.format(key=key))
    resp = client.auth.token.create(policies=[policy], **token_args)
    return str(resp["auth"]["client_token"])


def test_round_trip_and_key_id_scheme(openbao_server: OpenBaoServer) -> None:
    key = _key(openbao_server)
    backend = _backend(openbao_server, key)
    wrapped = backend.encrypt(b"\x00seed\xff" * 4)
    cluster = cluster_id_for(openbao_server.address, None)
    assert re.fullmatch(rf"vault:{cluster}:transit:{key}:v1:\d{{10}}", wrapped.key_id)
    assert backend.status().key_id == wrapped.key_id
    assert wrapped.ciphertext.startswith(b"vault:v1:")
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"\x00seed\xff" * 4
    ref = parse_key_id(wrapped.key_id)
    assert ref is not None and (ref.mount, ref.key, ref.version) == ("transit", key, 1)
    assert ref.created is not None and ref.key_id() == wrapped.key_id
    # key_ids of earlier versions (no creation time) still decrypt
    legacy = f"vault:{cluster}:transit:{key}:v1"
    assert backend.decrypt(wrapped.ciphertext, key_id=legacy) == b"\x00seed\xff" * 4


def test_a_recreated_key_gets_a_new_key_id_and_names_the_lost_one(
    openbao_server: OpenBaoServer,
) -> None:
    import time

    key = _key(openbao_server)
    backend = _backend(openbao_server, key)
    lost = backend.encrypt(b"seed-under-the-lost-key")
    client = openbao_server.client()
    client.secrets.transit.update_key_configuration(
        name=key, deletion_allowed=True, mount_point="transit"
    )
    client.secrets.transit.delete_key(name=key, mount_point="transit")
    time.sleep(1.1)  # creation times are whole seconds
    client.secrets.transit.create_key(name=key, mount_point="transit")
    fresh = _backend(openbao_server, key)
    # same name, same version number: the key_id still differs, so apiservers re-seed
    assert fresh.status().key_id != lost.key_id
    assert fresh.status().key_id.split(":")[-2] == "v1"
    with pytest.raises(BackendInvalidRequest, match="deleted and created again"):
        fresh.decrypt(lost.ciphertext, key_id=lost.key_id)


def test_rotate_gives_new_key_id_and_old_data_still_decrypts(
    openbao_server: OpenBaoServer,
) -> None:
    key = _key(openbao_server)
    backend = _backend(openbao_server, key)
    old = backend.encrypt(b"old-seed")
    new_key_id = backend.rotate()
    assert f":{key}:v2:" in new_key_id and new_key_id != old.key_id
    assert backend.status().key_id == new_key_id
    new = backend.encrypt(b"new-seed")
    assert new.key_id == new_key_id and new.ciphertext.startswith(b"vault:v2:")
    assert backend.decrypt(old.ciphertext, key_id=old.key_id) == b"old-seed"
    assert backend.decrypt(new.ciphertext, key_id=new.key_id) == b"new-seed"


def test_key_switch_old_values_decrypt_by_key_name_from_key_id(
    openbao_server: OpenBaoServer,
) -> None:
    first, second = _key(openbao_server), _key(openbao_server)
    wrapped = _backend(openbao_server, first).encrypt(b"seed-under-first")
    switched = _backend(openbao_server, second)
    assert f":{second}:v1:" in switched.status().key_id
    assert switched.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"seed-under-first"


def test_foreign_key_ids_are_invalid_requests(openbao_server: OpenBaoServer) -> None:
    key = _key(openbao_server)
    backend = _backend(openbao_server, key)
    wrapped = backend.encrypt(b"seed")
    with pytest.raises(BackendInvalidRequest, match="another Vault cluster"):
        backend.decrypt(wrapped.ciphertext, key_id=f"vault:000000000000:transit:{key}:v1")
    with pytest.raises(BackendInvalidRequest, match="not a Vault transit key_id"):
        backend.decrypt(wrapped.ciphertext, key_id="local:sha256:abcd")
    with pytest.raises(BackendInvalidRequest):
        backend.decrypt(b"vault:v1:AAAA", key_id=wrapped.key_id)
    moved = _backend(openbao_server, key, cluster_id=parse_key_id(wrapped.key_id).cluster_id)  # type: ignore[union-attr]
    assert moved.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"seed"


def test_derived_key_binds_an_encryption_context(openbao_server: OpenBaoServer) -> None:
    key = _key(openbao_server, derived=True)
    backend = _backend(openbao_server, key)
    wrapped = backend.encrypt(b"derived-seed")
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"derived-seed"
    other_context = _backend(openbao_server, key, context="some-other-context")
    with pytest.raises(BackendInvalidRequest):
        other_context.decrypt(wrapped.ciphertext, key_id=wrapped.key_id)


def test_concurrent_callers_are_batched_and_get_their_own_results(
    openbao_server: OpenBaoServer,
) -> None:
    key = _key(openbao_server)
    backend = _backend(openbao_server, key, batch={"max_items": 16, "max_inflight": 1})
    n = 48
    seeds = [f"seed-{i:03d}".encode() * 2 for i in range(n)]
    start = threading.Barrier(n)

    def enc(seed: bytes) -> Any:
        start.wait()
        return backend.encrypt(seed)

    with ThreadPoolExecutor(n) as pool:
        wrapped = list(pool.map(enc, seeds))
    assert backend.batch_count() > 0
    assert len({w.ciphertext for w in wrapped}) == n
    key_id = wrapped[0].key_id
    bad_index = {7, 30}
    inputs = [
        b"vault:v1:" + base64.b64encode(b"x" * 40) if i in bad_index else w.ciphertext
        for i, w in enumerate(wrapped)
    ]
    before = backend.batch_count()
    start_dec = threading.Barrier(n)

    def dec(ct: bytes) -> bytes | SecretkitError:
        start_dec.wait()
        try:
            return backend.decrypt(ct, key_id=key_id)
        except SecretkitError as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(dec, inputs))
    assert backend.batch_count() > before
    for i, res in enumerate(results):
        if i in bad_index:
            assert isinstance(res, BackendInvalidRequest), res
        else:
            assert res == seeds[i]


def test_permission_denied_names_key_but_never_the_token(openbao_server: OpenBaoServer) -> None:
    key = _key(openbao_server)
    client = openbao_server.client()
    client.sys.create_or_update_policy(
        name="nothing", policy='path "secret/*" { capabilities = ["read"] }'
    )
    token = str(client.auth.token.create(policies=["nothing"])["auth"]["client_token"])
    backend = _backend(openbao_server, key, auth={"method": "token", "token": token})
    with pytest.raises(BackendPermissionDenied) as err:
        backend.encrypt(b"plain-seed-value")
    text = err.value.diagnostics() + str(err.value)
    assert key in text
    assert token not in text and openbao_server.token not in text
    assert "plain-seed-value" not in text


def test_short_ttl_token_is_renewed(openbao_server: OpenBaoServer, tmp_path: Path) -> None:
    key = _key(openbao_server)
    token = _policy_token(openbao_server, key, ttl="3s", renewable=True)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    backend = _backend(
        openbao_server,
        key,
        auth={"method": "token", "token_file": str(token_file)},
        renew_margin_seconds=1.5,
        key_cache_seconds=0.01,
    )
    first = backend.encrypt(b"one")
    deadline = time.monotonic() + 6  # twice the token's original 3s TTL
    while time.monotonic() < deadline:
        assert backend.decrypt(first.ciphertext, key_id=first.key_id) == b"one"
        time.sleep(0.5)
    logins, renewals = backend.auth_stats
    assert renewals >= 2 and logins == 1


def test_approle_logs_in_again_when_renewal_hits_max_ttl(openbao_server: OpenBaoServer) -> None:
    key = _key(openbao_server)
    client = openbao_server.client()
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    policy = f"p-{key}"
    client.sys.create_or_update_policy(name=policy, policy=TRANSIT_POLICY.format(key=key))
    role = f"r-{key}"
    client.auth.approle.create_or_update_approle(
        role, token_policies=[policy], token_ttl="3s", token_max_ttl="4s"
    )
    role_id = client.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    backend = _backend(
        openbao_server,
        key,
        auth={"method": "approle", "role_id": role_id, "secret_id": secret_id},
        renew_margin_seconds=1.5,
        key_cache_seconds=0.01,
    )
    wrapped = backend.encrypt(b"approle-seed")
    deadline = time.monotonic() + 5  # past the 4s max TTL of the first login
    while time.monotonic() < deadline:
        assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"approle-seed"
        time.sleep(0.4)
    logins, _ = backend.auth_stats
    assert logins >= 2


def test_unreachable_vault_is_unavailable() -> None:
    backend = build_backend(
        {
            "type": "vault",
            "address": f"http://127.0.0.1:{free_port()}",
            "key": "k",
            "auth": {"method": "token", "token": "dev-not-a-real-token"},
        },
        where="test",
    )
    with pytest.raises(BackendUnavailable) as err:
        backend.encrypt(b"seed")
    assert "dev-not-a-real-token" not in err.value.diagnostics()


def test_token_file_is_reread_after_a_403(openbao_server: OpenBaoServer, tmp_path: Path) -> None:
    key = _key(openbao_server)
    first = _policy_token(openbao_server, key)
    token_file = tmp_path / "token"
    token_file.write_text(first)
    backend = _backend(
        openbao_server, key, auth={"method": "token", "token_file": str(token_file)}
    )
    wrapped = backend.encrypt(b"seed-a")
    # an agent rotates the token: the old one is revoked, the file gets the new one
    openbao_server.client().auth.token.revoke(first)
    token_file.write_text(_policy_token(openbao_server, key))
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"seed-a"
    assert backend.auth_stats[0] == 2  # one re-login after the 403


def test_namespace_changes_the_cluster_part_of_key_ids(openbao_server: OpenBaoServer) -> None:
    client = openbao_server.client()
    ns = f"team-{uuid.uuid4().hex[:6]}"
    client.adapter.post(f"/v1/sys/namespaces/{ns}")
    import hvac
    import requests

    session = requests.Session()
    session.trust_env = False
    ns_client = hvac.Client(
        url=openbao_server.address, token=openbao_server.token, namespace=ns, session=session
    )
    ns_client.sys.enable_secrets_engine("transit", path="transit")
    ns_client.secrets.transit.create_key(name="nskey", mount_point="transit")
    backend = _backend(openbao_server, "nskey", namespace=ns)
    wrapped = backend.encrypt(b"ns-seed")
    ns_cluster = cluster_id_for(openbao_server.address, ns)
    assert wrapped.key_id.startswith(f"vault:{ns_cluster}:transit:nskey:v1:")
    assert ns_cluster != cluster_id_for(openbao_server.address, None)
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"ns-seed"
    root_ns = _backend(openbao_server, "nskey")
    with pytest.raises(BackendInvalidRequest, match="another Vault cluster or namespace"):
        root_ns.decrypt(wrapped.ciphertext, key_id=wrapped.key_id)


def _es256_jwt(private_key: Any, claims: dict[str, Any]) -> str:
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    der = private_key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{header}.{payload}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def test_jwt_auth_login(openbao_server: OpenBaoServer, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _key(openbao_server)
    client = openbao_server.client()
    mount = f"jwt-{key}"
    client.sys.enable_auth_method("jwt", path=mount)
    signer = ec.generate_private_key(ec.SECP256R1())
    pub_pem = signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    client.adapter.post(f"/v1/auth/{mount}/config", json={"jwt_validation_pubkeys": [pub_pem]})
    policy = f"p-{key}"
    client.sys.create_or_update_policy(name=policy, policy=TRANSIT_POLICY.format(key=key))
    client.adapter.post(
        f"/v1/auth/{mount}/role/kms-plugin",
        json={
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["secretkit"],
            "token_policies": [policy],
            "token_ttl": "1m",
        },
    )
    now = int(time.time())
    token_file = tmp_path / "sa-token"
    token_file.write_text(
        _es256_jwt(
            signer,
            {"sub": "system:serviceaccount:kube-system:kms", "aud": "secretkit",
             "iat": now, "nbf": now - 5, "exp": now + 300},
        )
    )
    backend = _backend(
        openbao_server,
        key,
        auth={"method": "jwt", "role": "kms-plugin", "token_file": str(token_file), "mount": mount},
    )
    wrapped = backend.encrypt(b"jwt-seed")
    assert backend.decrypt(wrapped.ciphertext, key_id=wrapped.key_id) == b"jwt-seed"
    token_file.write_text("not-a-jwt")
    other = _backend(
        openbao_server,
        key,
        auth={"method": "jwt", "role": "kms-plugin", "token_file": str(token_file), "mount": mount},
    )
    with pytest.raises((BackendInvalidRequest, BackendPermissionDenied)) as err:
        other.status()
    assert "not-a-jwt" not in err.value.diagnostics()


def test_retire_old_versions_makes_old_ciphertexts_undecryptable(
    openbao_server: OpenBaoServer,
) -> None:
    key = _key(openbao_server)
    backend = _backend(openbao_server, key)
    old = backend.encrypt(b"old")
    backend.rotate()
    new = backend.encrypt(b"new")
    assert backend.retire_old_versions(new.key_id) == 2
    assert backend.decrypt(new.ciphertext, key_id=new.key_id) == b"new"
    with pytest.raises(BackendInvalidRequest):
        backend.decrypt(old.ciphertext, key_id=old.key_id)


def test_retire_keeps_the_proven_version_even_after_a_later_rotation(
    openbao_server: OpenBaoServer,
) -> None:
    """The proof covered v2; a rotation to v3 after it must not retire v2's values."""
    key = _key(openbao_server)
    backend = _backend(openbao_server, key)
    old = backend.encrypt(b"v1")
    backend.rotate()
    proven = backend.encrypt(b"v2")
    backend.rotate()  # between the proof and the retirement
    assert backend.owns_key_id(proven.key_id) and not backend.owns_key_id("local:sha256:x")
    assert backend.retire_old_versions(proven.key_id) == 2
    assert backend.decrypt(proven.ciphertext, key_id=proven.key_id) == b"v2"
    with pytest.raises(BackendInvalidRequest):
        backend.decrypt(old.ciphertext, key_id=old.key_id)


def test_retire_refuses_a_key_id_of_another_key(openbao_server: OpenBaoServer) -> None:
    backend = _backend(openbao_server, _key(openbao_server))
    other = _backend(openbao_server, _key(openbao_server))
    foreign = other.encrypt(b"x").key_id
    with pytest.raises(SafetyError, match="not a version of this key"):
        backend.retire_old_versions(foreign)
