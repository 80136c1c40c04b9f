"""PluginService semantics against an in-test KeyBackend (no gRPC, no network)."""

from __future__ import annotations

import threading

import pytest

from kms_plugin.errors import ContractViolation, InvalidRequest
from kms_plugin.metrics import PluginMetrics
from kms_plugin.service import (
    MAX_ANNOTATIONS_BYTES,
    MAX_CIPHERTEXT_BYTES,
    MAX_KEY_ID_BYTES,
    MAX_PLAINTEXT_BYTES,
    PluginService,
    StatusPolicy,
    is_fully_qualified_domain_name,
)
from secretkit.errors import (
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
)
from tests.unit.kms_plugin.fakes import ScriptedBackend


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(backend: ScriptedBackend, clock: FakeClock) -> PluginService:
    policy = StatusPolicy(ttl_seconds=30, failure_ttl_seconds=5, grace_seconds=60)
    return PluginService(backend, policy=policy, clock=clock)


def test_encrypt_decrypt_round_trip(service: PluginService) -> None:
    seed = bytes(range(32))
    res = service.encrypt(seed, "uid-1")
    assert res.key_id == "key-1"
    assert res.ciphertext != seed
    assert service.decrypt(res.ciphertext, res.key_id, res.annotations, "uid-2") == seed


def test_old_ciphertext_decrypts_after_rotation(
    service: PluginService, backend: ScriptedBackend
) -> None:
    old = service.encrypt(b"s" * 32)
    backend.rotate()
    new = service.encrypt(b"t" * 32)
    assert (old.key_id, new.key_id) == ("key-1", "key-2")
    assert service.decrypt(old.ciphertext, old.key_id) == b"s" * 32


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [(b"", "plaintext is empty"), (b"x" * (MAX_PLAINTEXT_BYTES + 1), "more than")],
)
def test_encrypt_rejects_bad_plaintext(
    service: PluginService, backend: ScriptedBackend, plaintext: bytes, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        service.encrypt(plaintext)
    assert backend.calls == 0  # refused before reaching the backend


def test_encrypt_accepts_the_maximum_plaintext(service: PluginService) -> None:
    res = service.encrypt(b"x" * MAX_PLAINTEXT_BYTES)
    assert service.decrypt(res.ciphertext, res.key_id) == b"x" * MAX_PLAINTEXT_BYTES


@pytest.mark.parametrize(
    ("ciphertext", "key_id", "message"),
    [
        (b"", "key-1", "ciphertext is empty"),
        (b"c" * (MAX_CIPHERTEXT_BYTES + 1), "key-1", "ciphertext is 1025 bytes"),
        (b"c" * 40, "", "key_id is empty"),
        (b"c" * 40, "k" * (MAX_KEY_ID_BYTES + 1), "key_id is longer"),
        (b"c" * 40, "é" * 513, "key_id is longer"),  # 1026 bytes in UTF-8
    ],
)
def test_decrypt_rejects_malformed_requests(
    service: PluginService, backend: ScriptedBackend, ciphertext: bytes, key_id: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        service.decrypt(ciphertext, key_id)
    assert backend.calls == 0


@pytest.mark.parametrize(
    "key",
    ["", "nodots", "UPPER.example.com", "-lead.example.com", "trail-.example.com",
     "a..b", "under_score.example.com", "x" * 64 + ".example.com", "sp ace.example.com",
     "a." * 127 + "com"],
)
def test_annotation_keys_must_be_fqdns(service: PluginService, key: str) -> None:
    with pytest.raises(InvalidRequest, match="fully qualified domain name"):
        service.decrypt(b"c" * 40, "key-1", {key: b"v"})


@pytest.mark.parametrize("key", ["version.example.com", "a.b", "kms.secretkit.io", "1.2-3.x9"])
def test_valid_fqdns(key: str) -> None:
    assert is_fully_qualified_domain_name(key)


def test_annotations_total_is_limited(service: PluginService) -> None:
    big = {"a.example.com": b"v" * (MAX_ANNOTATIONS_BYTES - len("a.example.com") + 1)}
    with pytest.raises(InvalidRequest, match="annotations total"):
        service.decrypt(b"c" * 40, "key-1", big)


def test_annotations_at_the_limit_reach_the_backend(
    service: PluginService, backend: ScriptedBackend
) -> None:
    backend.annotations = {"a.example.com": b"v" * (MAX_ANNOTATIONS_BYTES - len("a.example.com"))}
    res = service.encrypt(b"s" * 32)
    assert service.decrypt(res.ciphertext, res.key_id, res.annotations) == b"s" * 32


def test_backend_breaking_the_contract_is_refused(
    service: PluginService, backend: ScriptedBackend
) -> None:
    backend.ciphertext_override = b"c" * (MAX_CIPHERTEXT_BYTES + 1)
    with pytest.raises(ContractViolation, match="1025 bytes"):
        service.encrypt(b"s" * 32)
    backend.ciphertext_override = None
    backend.annotations = {"NotAnFqdn": b"x"}
    with pytest.raises(ContractViolation, match="KMS contract"):
        service.encrypt(b"s" * 32)


def test_backend_errors_pass_through(service: PluginService, backend: ScriptedBackend) -> None:
    backend.fail_with = BackendPermissionDenied("token lacks transit/encrypt")
    with pytest.raises(BackendPermissionDenied):
        service.encrypt(b"s" * 32)


# --- Status ---------------------------------------------------------------------


def test_status_is_a_cached_round_trip(
    service: PluginService, backend: ScriptedBackend, clock: FakeClock
) -> None:
    st = service.status()
    assert (st.version, st.healthz, st.key_id) == ("v2", "ok", "key-1")
    assert backend.calls == 2  # one encrypt + one decrypt
    clock.now += 29
    service.status()
    assert backend.calls == 2
    clock.now += 2
    service.status()
    assert backend.calls == 4


def test_rotation_shows_within_one_ttl(
    service: PluginService, backend: ScriptedBackend, clock: FakeClock
) -> None:
    assert service.status().key_id == "key-1"
    backend.rotate()
    assert service.status().key_id == "key-1"  # cached
    clock.now += 30
    assert service.status().key_id == "key-2"


def test_concurrent_status_calls_share_one_probe(
    service: PluginService, backend: ScriptedBackend
) -> None:
    backend.gate = threading.Event()
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(service.status().key_id))
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    # every thread is now waiting on the one probe that holds the gate
    backend.gate.set()
    for t in threads:
        t.join(10)
    assert results == ["key-1"] * 16
    assert backend.calls == 2


def test_transient_failure_keeps_last_good_within_grace(
    service: PluginService, backend: ScriptedBackend, clock: FakeClock
) -> None:
    assert service.status().healthz == "ok"
    backend.fail_with = BackendUnavailable("ThrottlingException from KMS")
    clock.now += 31
    st = service.status()
    assert (st.healthz, st.key_id) == ("ok", "key-1")
    clock.now += 20
    assert service.status().healthz == "ok"
    clock.now += 20  # 71 s after the last success: past the 60 s grace
    st = service.status()
    assert st.healthz != "ok"
    assert "ThrottlingException" in st.healthz
    assert st.key_id == "key-1"


def test_masked_failures_are_reprobed_soon(
    service: PluginService, backend: ScriptedBackend, clock: FakeClock
) -> None:
    service.status()
    backend.fail_with = BackendTimeout("transit did not answer")
    clock.now += 31
    service.status()
    calls = backend.calls
    backend.fail_with = None
    clock.now += 5  # the failure TTL, not the 30 s success TTL
    assert service.status().healthz == "ok"
    assert backend.calls > calls


def test_non_transient_failure_is_unhealthy_at_once(
    service: PluginService, backend: ScriptedBackend, clock: FakeClock
) -> None:
    service.status()
    backend.fail_with = BackendPermissionDenied("permission denied")
    clock.now += 31
    st = service.status()
    assert st.healthz == "scripted backend: permission denied"
    backend.fail_with = None
    clock.now += 5
    assert service.status().healthz == "ok"


def test_transient_failure_without_any_success_is_unhealthy(
    service: PluginService, backend: ScriptedBackend
) -> None:
    backend.fail_with = BackendUnavailable("connection refused")
    st = service.status()
    assert st.healthz.startswith("scripted backend: connection refused")
    assert st.key_id == "unknown"


def test_unexpected_exception_in_probe_is_unhealthy_and_secret_free(
    service: PluginService, backend: ScriptedBackend
) -> None:
    backend.fail_with = ValueError("leaky message with s3cr3t")
    st = service.status()
    assert st.healthz != "ok"
    assert "s3cr3t" not in st.healthz


# --- v1beta1 ----------------------------------------------------------------------


def test_v1beta1_round_trip_survives_rotation(
    service: PluginService, backend: ScriptedBackend
) -> None:
    backend.annotations = {"v.example.com": b"1"}
    old = service.v1beta1_encrypt(b"d" * 32)
    backend.rotate()
    new = service.v1beta1_encrypt(b"e" * 32)
    assert service.v1beta1_decrypt(old) == b"d" * 32
    assert service.v1beta1_decrypt(new) == b"e" * 32


@pytest.mark.parametrize(
    "cipher",
    [b"", b"garbage", b"skv1", b"skv1\x00\x05key", b"skv1\x00\x05key-1\x00\x00",
     b"skv1\x00\x02\xff\xfe\x00\x00payload"],
)
def test_v1beta1_rejects_foreign_ciphertexts(service: PluginService, cipher: bytes) -> None:
    with pytest.raises(InvalidRequest):
        service.v1beta1_decrypt(cipher)


# --- metrics ------------------------------------------------------------------------


def test_metrics_record_backend_errors_and_key_id(backend: ScriptedBackend) -> None:
    metrics = PluginMetrics()
    clock = FakeClock()
    service = PluginService(backend, metrics=metrics, clock=clock,
                            policy=StatusPolicy(ttl_seconds=1, grace_seconds=0.5))
    service.status()
    reg = metrics.registry
    assert reg.get_sample_value("secretkit_kms_plugin_key_id_info", {"key_id": "key-1"}) == 1
    backend.rotate()
    clock.now += 2
    service.status()
    assert reg.get_sample_value("secretkit_kms_plugin_key_id_info", {"key_id": "key-1"}) is None
    assert reg.get_sample_value("secretkit_kms_plugin_key_id_info", {"key_id": "key-2"}) == 1
    backend.fail_with = BackendUnavailable("down")
    clock.now += 2
    service.status()
    assert reg.get_sample_value("secretkit_kms_plugin_healthy") == 0
    assert reg.get_sample_value(
        "secretkit_kms_plugin_backend_errors_total",
        {"backend": "scripted", "operation": "encrypt", "error_class": "unavailable"},
    ) == 1
    assert reg.get_sample_value(
        "secretkit_kms_plugin_status_probes_total", {"result": "failed"}
    ) == 1
