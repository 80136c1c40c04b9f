"""Known-answer and edge-case tests of the aescbc and aesgcm codecs."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from secretkit.core.formats import aescbc_decrypt, aescbc_encrypt, aesgcm_decrypt, aesgcm_encrypt
from secretkit.errors import ConfigError, DecryptError, FormatError

# NIST SP 800-38A, F.2.1 CBC-AES128.Encrypt (first two blocks)
NIST_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
NIST_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
NIST_PT = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
NIST_CT = bytes.fromhex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2")

KEY = bytes(range(32))
IV = bytes(range(100, 116))


def raw_cbc(key: bytes, iv: bytes, padded: bytes) -> bytes:
    """IV ‖ AES-CBC without any padding logic (the reference, not our code)."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def raw_cbc_decrypt_last_block(key: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(data[-32:-16])).decryptor()
    return decryptor.update(data[-16:]) + decryptor.finalize()


def test_aescbc_matches_nist_vector() -> None:
    out = aescbc_encrypt(NIST_KEY, NIST_PT, iv=NIST_IV)
    assert out[:16] == NIST_IV
    assert out[16:48] == NIST_CT
    assert len(out) == 16 + 32 + 16  # a full padding block follows
    assert aescbc_decrypt(NIST_KEY, out) == NIST_PT


@pytest.mark.parametrize(
    ("length", "stored", "pad"),
    [(0, 32, 16), (1, 32, 15), (15, 32, 1), (16, 48, 16), (17, 48, 15), (32, 64, 16)],
)
def test_aescbc_padding_lengths(length: int, stored: int, pad: int) -> None:
    plaintext = b"p" * length
    out = aescbc_encrypt(KEY, plaintext, iv=IV)
    assert len(out) == stored
    assert raw_cbc_decrypt_last_block(KEY, out)[-pad:] == bytes([pad]) * pad
    assert aescbc_decrypt(KEY, out) == plaintext


def test_aescbc_loose_padding_accepts_pad_above_block_size() -> None:
    # Upstream accepts any pad value that fits and whose bytes match, even 20 > 16.
    body = b"A" * 12 + bytes([20]) * 20
    assert aescbc_decrypt(KEY, raw_cbc(KEY, IV, body)) == b"A" * 12


def test_aescbc_pad_equal_to_whole_length_gives_empty() -> None:
    assert aescbc_decrypt(KEY, raw_cbc(KEY, IV, bytes([32]) * 32)) == b""


@pytest.mark.parametrize(
    "body",
    [
        b"A" * 15 + b"\x00",  # pad 0
        b"A" * 15 + bytes([17]),  # pad larger than the decrypted length
        b"A" * 13 + b"\x02\x03\x03",  # pad bytes do not match
        b"A" * 31 + bytes([33]),  # pad larger than two blocks
    ],
)
def test_aescbc_bad_padding_is_decrypt_error(body: bytes) -> None:
    if len(body) % 16:
        body = b"A" * (16 - len(body) % 16) + body
    with pytest.raises(DecryptError):
        aescbc_decrypt(KEY, raw_cbc(KEY, IV, body))


@pytest.mark.parametrize("size", [0, 15, 16, 31, 33, 47])
def test_aescbc_bad_layout_is_format_error(size: int) -> None:
    with pytest.raises(FormatError):
        aescbc_decrypt(KEY, bytes(size))


@pytest.mark.parametrize("key_size", [0, 8, 15, 20, 33, 64])
def test_aes_bad_key_sizes(key_size: int) -> None:
    key = bytes(key_size)
    with pytest.raises(ConfigError):
        aescbc_encrypt(key, b"x")
    with pytest.raises(ConfigError):
        aesgcm_encrypt(key, b"x", b"aad")
    with pytest.raises(DecryptError):
        aescbc_decrypt(key, bytes(48))
    with pytest.raises(DecryptError):
        aesgcm_decrypt(key, bytes(48), b"aad")


def test_explicit_randomness_must_have_the_right_size() -> None:
    with pytest.raises(ValueError):
        aescbc_encrypt(KEY, b"x", iv=b"short")
    with pytest.raises(ValueError):
        aesgcm_encrypt(KEY, b"x", b"", nonce=bytes(16))


def test_aesgcm_known_answer_zero_key() -> None:
    # McGrew & Viega, GCM spec, test case 2
    key = bytes(16)
    nonce = bytes(12)
    ct = bytes.fromhex("0388dace60b6a392f328c2b971b2fe78")
    tag = bytes.fromhex("ab6e47d42cec13bdf53a67b21257bddf")
    assert aesgcm_encrypt(key, bytes(16), b"", nonce=nonce) == nonce + ct + tag
    assert aesgcm_decrypt(key, nonce + ct + tag, b"") == bytes(16)


def test_aesgcm_known_answer_with_aad() -> None:
    # McGrew & Viega, GCM spec, test case 4 (AAD bound)
    key = bytes.fromhex("feffe9928665731c6d6a8f9467308308")
    nonce = bytes.fromhex("cafebabefacedbaddecaf888")
    pt = bytes.fromhex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
    )
    aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    ct = bytes.fromhex(
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
    )
    tag = bytes.fromhex("5bc94fbc3221a5db94fae95ae7121a47")
    assert aesgcm_encrypt(key, pt, aad, nonce=nonce) == nonce + ct + tag
    assert aesgcm_decrypt(key, nonce + ct + tag, aad) == pt
    with pytest.raises(DecryptError):
        aesgcm_decrypt(key, nonce + ct + tag, aad + b"x")


@pytest.mark.parametrize("size", [0, 11, 12, 27])
def test_aesgcm_short_data_is_format_error(size: int) -> None:
    with pytest.raises(FormatError):
        aesgcm_decrypt(KEY, bytes(size), b"")


def test_aesgcm_random_nonce_differs() -> None:
    first = aesgcm_encrypt(KEY, b"same", b"/registry/secrets/a/b")
    second = aesgcm_encrypt(KEY, b"same", b"/registry/secrets/a/b")
    assert first[:12] != second[:12]
    assert len(first) == 12 + 4 + 16


def test_errors_never_contain_key_or_plaintext() -> None:
    secret_plaintext = b"hunter2-top-secret"
    value = aesgcm_encrypt(KEY, secret_plaintext, b"/registry/secrets/a/b")
    with pytest.raises(DecryptError) as info:
        aesgcm_decrypt(KEY, value, b"/registry/secrets/a/other")
    text = info.value.diagnostics() + str(info.value)
    assert "hunter2" not in text
    assert KEY.hex() not in text
    assert value.hex()[:16] not in text
