"""Fuzzed requests reach a real plugin process: INVALID_ARGUMENT, never a crash."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretkit._proto.kms.v1beta1 import api_pb2 as v1beta1_pb2
from secretkit._proto.kms.v2 import api_pb2
from tests.integration.kms_plugin.harness import Plugin, start_plugin, write_kek

FUZZ = settings(
    max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: DecryptError/InvalidRequest -> INVALID_ARGUMENT; nothing else is acceptable for junk
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    tmp = tmp_path_factory.mktemp("fuzz")
    kek = write_kek(tmp / "kek.bin")
    p = start_plugin(tmp, ["--backend", "local", "--local-kek-file", str(kek)])
    try:
        yield p
    finally:
        assert p.stop() == 0, p.log_text()


def _code(call: object) -> grpc.StatusCode:
    assert callable(call)
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


fqdn_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
fqdn = st.lists(fqdn_label, min_size=2, max_size=4).map(".".join)
any_key = st.one_of(fqdn, st.text(max_size=40))


@FUZZ
@given(
    ciphertext=st.one_of(st.binary(max_size=64), st.binary(min_size=1020, max_size=1100)),
    key_id=st.one_of(st.text(max_size=40), st.text(min_size=1020, max_size=1100)),
    annotations=st.dictionaries(any_key, st.binary(max_size=64), max_size=3),
)
def test_fuzzed_decrypt_is_refused(
    plugin: Plugin, ciphertext: bytes, key_id: str, annotations: dict[str, bytes]
) -> None:
    req = api_pb2.DecryptRequest(ciphertext=ciphertext, key_id=key_id, annotations=annotations)
    assert _code(lambda: plugin.v2().Decrypt(req, timeout=10)) in REFUSED


@FUZZ
@given(
    plaintext=st.one_of(st.just(b""), st.binary(min_size=513, max_size=4096)),
    uid=st.text(max_size=64),
)
def test_fuzzed_encrypt_out_of_contract_is_refused(
    plugin: Plugin, plaintext: bytes, uid: str
) -> None:
    req = api_pb2.EncryptRequest(plaintext=plaintext, uid=uid)
    assert _code(lambda: plugin.v2().Encrypt(req, timeout=10)) in REFUSED


@FUZZ
@given(cipher=st.one_of(st.binary(max_size=80), st.binary(max_size=40).map(b"skv1".__add__)))
def test_fuzzed_v1beta1_decrypt_is_refused(plugin: Plugin, cipher: bytes) -> None:
    req = v1beta1_pb2.DecryptRequest(version="v1beta1", cipher=cipher)
    assert _code(lambda: plugin.v1beta1().Decrypt(req, timeout=10)) in REFUSED


@FUZZ
@given(tamper=st.integers(min_value=0, max_value=59), bit=st.integers(min_value=0, max_value=7))
def test_tampered_ciphertext_is_refused(plugin: Plugin, tamper: int, bit: int) -> None:
    enc = plugin.encrypt(b"s" * 32)
    raw = bytearray(enc.ciphertext)
    raw[tamper % len(raw)] ^= 1 << bit
    req = api_pb2.DecryptRequest(ciphertext=bytes(raw), key_id=enc.key_id)
    assert _code(lambda: plugin.v2().Decrypt(req, timeout=10)) in REFUSED


def test_wrong_v1beta1_version_is_refused(plugin: Plugin) -> None:
    req = v1beta1_pb2.VersionRequest(version="v9")
    assert _code(lambda: plugin.v1beta1().Version(req, timeout=10)) in REFUSED


def test_oversized_message_is_refused_by_grpc(plugin: Plugin) -> None:
    req = api_pb2.EncryptRequest(plaintext=b"x" * (512 * 1024))
    assert _code(lambda: plugin.v2().Encrypt(req, timeout=10)) is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )


def test_plugin_survived_the_fuzzing(plugin: Plugin) -> None:
    """Runs last in this module: the same process still serves and logged no secret."""
    assert plugin.proc.poll() is None
    assert plugin.status().healthz == "ok"
    assert plugin.decrypt(plugin.encrypt(b"z" * 32)) == b"z" * 32
    assert "Traceback" not in plugin.log_text()
    assert plugin.http("/livez")[0] == 200
