"""Exceptions raised on bad input carry no key, plaintext, ciphertext or token.

Each case feeds a canary secret into a library entry point in a way that fails
(wrong key, tampered data, loose KEK file, bad token, unreachable service) and
searches the error's message, diagnostics, repr and any chained exception.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from secretkit.backends import build_backend
from secretkit.backends.interface import WrapResult
from secretkit.backends.local import LocalBackend, LocalKey, read_kek_file, write_kek_file
from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import (
    aescbc_decrypt,
    aesgcm_decrypt,
    aesgcm_encrypt,
    decode_encrypted_object,
    decode_kmsv1,
    decode_unknown,
    encode_unknown,
    kmsv1_decrypt_payload,
    prefix_for,
    secretbox_decrypt,
    secretbox_encrypt,
)
from secretkit.core.transformers import build_transformers
from secretkit.errors import (
    BackendError,
    BackendPermissionDenied,
    ConfigError,
    SecretkitError,
)
from secretkit.etcd import EtcdConfig
from secretkit.kmsapi import GrpcKMSService
from tests.fixtures.servers import OpenBaoServer
from tests.security import canaries as c

ETCD_KEY = "/registry/secrets/default/db"
AAD = ETCD_KEY.encode()


def _assert_clean(exc: BaseException, *secrets: bytes | str) -> None:
    chain = []
    current: BaseException | None = exc
    while current is not None:  # what a traceback prints: causes, unsuppressed contexts
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__)
    texts = []
    for item in chain:
        texts += [str(item), repr(item)]
        if isinstance(item, SecretkitError):
            texts.append(item.diagnostics())
    found = c.leaks("\n".join(texts), *(secrets or c.ALL))
    assert not found, f"{found} in {texts}"


def _raises(fn: Callable[[], object], kind: type[BaseException] = SecretkitError) -> BaseException:
    with pytest.raises(kind) as info:
        fn()
    return info.value


def _config(provider: str, key_b64: str) -> bytes:
    return (
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        f"  - resources: [secrets]\n    providers:\n      - {provider}:\n          keys:\n"
        f"            - name: k1\n              secret: {key_b64}\n"
    ).encode()


# -- storage formats --------------------------------------------------------------------------

SEALED = aesgcm_encrypt(c.KEY, c.PLAINTEXT, AAD)


@pytest.mark.parametrize(
    "case",
    [
        lambda: aesgcm_decrypt(c.KEY2, SEALED, AAD),  # wrong key
        lambda: aesgcm_decrypt(c.KEY, SEALED, b"/registry/secrets/other/x"),  # wrong AAD
        lambda: aesgcm_decrypt(c.KEY, SEALED[:-1] + b"\x00", AAD),  # tampered
        lambda: aesgcm_decrypt(c.KEY, c.PLAINTEXT[:5], AAD),  # too short
        lambda: aescbc_decrypt(c.KEY, c.PLAINTEXT),  # not a multiple of the block size
        lambda: aescbc_decrypt(c.KEY2, bytes(16) + c.PLAINTEXT),  # bad padding
        lambda: secretbox_decrypt(c.KEY2, secretbox_encrypt(c.KEY, c.PLAINTEXT)),
        lambda: decode_encrypted_object(c.PLAINTEXT),
        lambda: decode_encrypted_object(b"\x0a\x20" + c.KEY),  # field 1 only
        lambda: decode_kmsv1(c.PLAINTEXT),
        lambda: kmsv1_decrypt_payload(c.KEY, c.PLAINTEXT, AAD),
        lambda: decode_unknown(b"k8s\x00" + c.PLAINTEXT),
    ],
    ids=["gcm-wrong-key", "gcm-wrong-aad", "gcm-tampered", "gcm-short", "cbc-length",
         "cbc-padding", "secretbox-wrong-key", "kmsv2-garbage", "kmsv2-truncated",
         "kmsv1-garbage", "kmsv1-payload", "unknown-garbage"],
)
def test_format_errors_hold_no_secret(case: Callable[[], object]) -> None:
    _assert_clean(_raises(case))


def test_transformer_read_failures_hold_no_secret() -> None:
    cfg = load_encryption_config(_config("aesgcm", c.KEY_B64))
    chain = build_transformers(cfg, kms=lambda p: pytest.fail("no kms"))
    resource = chain.for_etcd_key(ETCD_KEY)
    written = resource.write(encode_unknown("v1", "Secret", c.PLAINTEXT), ETCD_KEY)
    assert c.PLAINTEXT in resource.read(written, ETCD_KEY).plaintext
    other = build_transformers(load_encryption_config(_config("aesgcm", c.KEY2_B64)),
                               kms=lambda p: pytest.fail("no kms"))
    _assert_clean(_raises(lambda: other.for_etcd_key(ETCD_KEY).read(written, ETCD_KEY)))
    # a plaintext value with no identity provider configured: the value is not echoed
    plain = encode_unknown("v1", "Secret", c.PLAINTEXT)
    _assert_clean(_raises(lambda: resource.read(plain, ETCD_KEY)))
    # a prefix that no provider claims
    foreign = prefix_for("secretbox", "k9") + secretbox_encrypt(c.KEY, c.PLAINTEXT)
    _assert_clean(_raises(lambda: resource.read(foreign, ETCD_KEY)))


@pytest.mark.parametrize(
    "secret",
    [c.KEY_B64[:-4], c.TOKEN + "!", base64.b64encode(c.KEY[:16]).decode(),
     base64.b64encode(c.KEY + b"extra-bytes").decode()],
    ids=["truncated", "not-base64", "16-bytes-for-secretbox", "43-bytes"],
)
def test_config_loader_errors_hold_no_secret(secret: str) -> None:
    exc = _raises(lambda: load_encryption_config(_config("secretbox", secret)), ConfigError)
    _assert_clean(exc, secret, c.KEY, c.TOKEN)


# -- local KEK files --------------------------------------------------------------------------


def test_kek_files_are_0600_and_loose_or_bad_ones_fail_without_echo(tmp_path: Path) -> None:
    kek = tmp_path / "kek.bin"
    key_id = write_kek_file(kek, kek=c.KEY)
    assert (kek.stat().st_mode & 0o777) == 0o600
    assert not c.leaks(key_id, c.KEY)
    assert read_kek_file(kek) == c.KEY
    exc = _raises(lambda: write_kek_file(kek, kek=c.KEY2), ConfigError)  # no silent replace
    _assert_clean(exc)
    assert read_kek_file(kek) == c.KEY
    kek.chmod(0o644)
    _assert_clean(_raises(lambda: read_kek_file(kek), ConfigError))
    short = tmp_path / "short.bin"
    short.write_bytes(c.PLAINTEXT[:20])
    short.chmod(0o600)
    _assert_clean(_raises(lambda: read_kek_file(short), ConfigError))
    text = tmp_path / "text.bin"
    text.write_text(c.TOKEN * 3)
    text.chmod(0o600)
    _assert_clean(_raises(lambda: read_kek_file(text), ConfigError))


def test_local_backend_unwrap_failures_hold_no_secret() -> None:
    backend = LocalBackend([LocalKey(kek=c.KEY)])
    wrapped = backend.encrypt(c.PLAINTEXT)
    assert not c.leaks(repr(wrapped), c.PLAINTEXT, c.KEY)
    other = LocalBackend([LocalKey(kek=c.KEY2, key_id=wrapped.key_id)])
    _assert_clean(_raises(lambda: other.decrypt(wrapped.ciphertext, key_id=wrapped.key_id,
                                                annotations={}), BackendError))
    _assert_clean(_raises(lambda: backend.decrypt(c.PLAINTEXT, key_id="local:nope",
                                                  annotations={}), BackendError))


# -- backend definitions and connections ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backend_definition_errors_hold_no_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(c.TOKEN)
    bad: list[dict[str, object]] = [
        {"type": "vault", "address": "http://127.0.0.1:1", "key": "k",
         "auth": {"method": "token", "token": c.TOKEN, "token_file": str(token_file)}},
        {"type": "vault", "address": "http://127.0.0.1:1", "key": "k",
         "auth": {"method": "token", "token": c.TOKEN, "tokn": c.TOKEN}},
        {"type": "vault", "address": "http://127.0.0.1:1", "key": "k",
         "auth": {"method": "approle", "role_id": "r", "secret_id": c.TOKEN, "x": 1}},
        {"type": "vault", "address": "http://127.0.0.1:1", "key": "bad:key",
         "auth": {"method": "token", "token": c.TOKEN}},
        {"type": "local", "keys": [{"kek_file": str(tmp_path / "missing.bin")}],
         "secret": c.TOKEN},
    ]
    for definition in bad:
        with pytest.raises(ConfigError) as info:
            build_backend(definition, where="b.yaml:p")
        _assert_clean(info.value)
    _assert_clean(_raises(lambda: EtcdConfig(password=c.TOKEN), ConfigError))


def test_unreachable_vault_error_holds_no_token_or_plaintext() -> None:
    backend = build_backend(
        {"type": "vault", "address": f"http://127.0.0.1:{_free_port()}", "key": "k",
         "auth": {"method": "token", "token": c.TOKEN}, "timeout_seconds": 1},
        where="b.yaml:p",
    )
    try:
        _assert_clean(_raises(lambda: backend.encrypt(c.PLAINTEXT), BackendError))
    finally:
        backend.close()


def test_unreachable_plugin_error_holds_no_plaintext(tmp_path: Path) -> None:
    with GrpcKMSService(f"unix://{tmp_path}/absent.sock", timeout=1.0) as kms:
        _assert_clean(_raises(lambda: kms.encrypt(c.PLAINTEXT, uid="u"), BackendError))
        _assert_clean(_raises(lambda: kms.decrypt(c.KEY, "u", "kid", {}), BackendError))


@pytest.mark.vault
def test_openbao_refusals_hold_no_token_plaintext_or_ciphertext(
    openbao_server: OpenBaoServer,
) -> None:
    openbao_server.create_transit_key("security-canary")
    definition = {"type": "vault", "address": openbao_server.address,
                  "key": "security-canary"}
    wrong = build_backend({**definition, "auth": {"method": "token", "token": c.TOKEN}},
                          where="b.yaml:wrong")
    right = build_backend({**definition, "auth": {"method": "token",
                                                  "token": openbao_server.token}},
                          where="b.yaml:right")
    try:
        exc = _raises(lambda: wrong.encrypt(c.PLAINTEXT), BackendPermissionDenied)
        _assert_clean(exc, c.TOKEN, c.PLAINTEXT, openbao_server.token)
        wrapped = right.encrypt(c.PLAINTEXT)
        assert right.decrypt(wrapped.ciphertext, key_id=wrapped.key_id,
                             annotations=dict(wrapped.annotations)) == c.PLAINTEXT
        forged = b"vault:v1:" + base64.b64encode(c.KEY)
        exc = _raises(lambda: right.decrypt(forged, key_id=wrapped.key_id,
                                            annotations=dict(wrapped.annotations)),
                      BackendError)
        _assert_clean(exc, c.KEY, openbao_server.token)
        tampered = wrapped.ciphertext[:-6] + b"AAAA=="
        exc = _raises(lambda: right.decrypt(tampered, key_id=wrapped.key_id,
                                            annotations=dict(wrapped.annotations)),
                      BackendError)
        _assert_clean(exc, c.PLAINTEXT, openbao_server.token, wrapped.ciphertext.decode())
    finally:
        wrong.close()
        right.close()


class _LeakyBackend(LocalBackend):
    """A backend whose SDK fails with a message quoting the request (as SDKs do)."""

    def _encrypt(self, plaintext: bytes, *, uid: str) -> WrapResult:
        raise RuntimeError(f"request failed: {{'Plaintext': {plaintext!r}}}")

    def _decrypt(self, ciphertext: bytes, *, key_id: str, annotations: Mapping[str, bytes],
                 uid: str) -> bytes:
        raise ValueError(f"bad response body {base64.b64encode(c.PLAINTEXT).decode()}")


def test_unexpected_backend_failures_keep_no_message_and_no_chain() -> None:
    backend = _LeakyBackend([LocalKey(kek=c.KEY)])
    exc = _raises(lambda: backend.encrypt(c.PLAINTEXT), BackendError)
    _assert_clean(exc)
    assert "RuntimeError at test_errors.py:" in str(exc)  # the origin, for debugging
    assert exc.__cause__ is None and exc.__suppress_context__
    exc = _raises(lambda: backend.decrypt(b"x", key_id="k", annotations={}), BackendError)
    _assert_clean(exc)
    assert "ValueError" in str(exc)
