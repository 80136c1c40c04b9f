"""The scan's per-header verdicts give the same report as classifying value by value.

Values are the upstream vectors (written by the real apiserver) plus malformed
variants, under keys of several resources, with each scope policy the CLI builds;
with a config, with and without the decrypt check. Every value also appears under
its own etcd key several times and then tampered, so verdicts are reused, and a
reused verdict meets a value its reader cannot open.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from secretkit.audit.classify import Classifier, ScopePolicy
from secretkit.audit.model import AuditReport, FindingKind
from secretkit.audit.scan import classify_stream
from secretkit.core.encryption_config import EncryptionConfig, load_encryption_config
from secretkit.core.formats import (
    DEKSourceType,
    EncryptedObject,
    encode_encrypted_object,
    encode_kmsv1,
)
from secretkit.core.formats.protowire import encode_len_field
from secretkit.core.kms_service import KMSStatus
from secretkit.core.transformers import build_transformers
from secretkit.errors import BackendError, SecretkitError
from secretkit.etcd.model import KeyValueRecord
from tests.unit.audit.helpers import VECTORS, classifier, config, plaintext, stored, vector
from tests.unit.transformers.vectors import FakeKMS

KEYS = [
    b"/registry/secrets/ns1/a",
    b"/registry/configmaps/ns1/b",
    b"/registry/apps/deployments/ns1/c",
    b"/registry/services/specs/ns1/d",
    b"/registry/secrets",
    b"/elsewhere/secrets/ns1/e",
    b"/registry/secrets/ns\xff/f",
]


def _values() -> list[bytes]:
    values = [stored(v) for v in VECTORS]
    broken = [v[: len(v) // 2] for v in values] + [v[:40] for v in values]
    odd = [b"", b"k8s:enc:aesgcm:v1:", b"k8s:enc:aesgcm:v1:nocolon", b"garbage", b"{", b"k8s\x00"]
    # no upstream vector uses kms v1: a layout-valid value and a truncated one
    kms_v1 = [b"k8s:enc:kms:v1:p1:" + encode_kmsv1(b"d" * 32, b"x" * 40), b"k8s:enc:kms:v1:p1:\x00"]
    return values + broken + odd + kms_v1


def _kv(key: bytes, value: bytes, revision: int) -> KeyValueRecord:
    return KeyValueRecord(key, value, revision, revision, 1)


def _tampered(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 1]) if value else value


def _items() -> list[tuple[Any, bool]]:
    items = []
    for i, value in enumerate(_values()):
        for j, key in enumerate(KEYS):
            items.append((_kv(key, value, i * 10 + j), (i + j) % 5 == 0))
    # each vector under its own key (it decrypts there), repeated, then tampered
    for i, v in enumerate(VECTORS):
        key = v["etcd_key"].encode()
        for n in range(3):
            items.append((_kv(key, stored(v), 10_000 + i * 10 + n), n == 2))
        items.append((_kv(key, _tampered(stored(v)), 10_000 + i * 10 + 5), False))
    return items


def _shape(report: AuditReport) -> dict[str, Any]:
    return {
        "totals": (report.total_objects, report.total_bytes, report.historical_values),
        "rows": {k: dataclasses.asdict(r) for k, r in report.rows.items()},
        "findings": (dict(report.finding_counts), dict(report.historical_finding_counts)),
        "offending": [r.to_json() for r in report.offending],
        "dropped": report.dropped_offending,
    }


POLICIES = {
    "default": ScopePolicy(),
    "all-resources": ScopePolicy(all_resources=True),
    "explicit": ScopePolicy(resources=("secrets", "deployments.apps"), explicit=True),
    "explicit-all": ScopePolicy(resources=("configmaps",), explicit=True, all_resources=True),
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_no_config_report_equals_record_by_record(name: str) -> None:
    policy = POLICIES[name]
    items = _items()
    expected = AuditReport(source="t", prefix="/registry", findings_limit=50)
    full = Classifier(policy=policy)
    for kv, historical in items:
        record = full.classify_in_scope(kv.key, kv.value, kv.mod_revision, historical=historical)
        if record is not None:
            expected.add(record)
    got = AuditReport(source="t", prefix="/registry", findings_limit=50)
    classify_stream(Classifier(policy=policy), iter(items), got)
    assert _shape(got) == _shape(expected)
    # the comparison means something: clean rows and findings both occur
    assert expected.total_objects > 0 and expected.rows
    assert name == "all-resources" or sum(expected.finding_counts.values()) > 0


def test_verdict_row_matches_each_vector_record() -> None:
    c = Classifier(policy=ScopePolicy(all_resources=True))
    seen_rows = 0
    for v in VECTORS:
        key = v["etcd_key"].encode()
        value = stored(v)
        verdict = c.verdict(c.scope_of(key), value)
        record = c.classify(key, value, 1)
        if verdict is None:
            continue
        seen_rows += 1
        assert verdict.findings == record.findings
        assert (verdict.row.resource, verdict.row.provider, verdict.row.key) == (
            record.resource,
            record.provider,
            record.key_label,
        )
    assert seen_rows > 0


@pytest.mark.parametrize("limit", [0, 20, 10_000])
@pytest.mark.parametrize("decrypt", [False, True])
def test_config_scan_report_equals_record_by_record(decrypt: bool, limit: int) -> None:
    # names are split out only while the offending list has room: same report anyway
    items = _items()
    expected = AuditReport(source="t", prefix="/registry", findings_limit=limit)
    full = classifier(config(), decrypt=decrypt)
    for kv, historical in items:
        record = full.classify_in_scope(kv.key, kv.value, kv.mod_revision, historical=historical)
        if record is not None:
            expected.add(record)
    got = AuditReport(source="t", prefix="/registry", findings_limit=limit)
    classify_stream(classifier(config(), decrypt=decrypt), iter(items), got)
    assert _shape(got) == _shape(expected)
    assert (expected.dropped_offending > 0) is (limit < 10_000)
    assert all(r.name for r in got.offending if r.key.startswith("/registry/secrets/ns"))
    if decrypt:
        # tampered values behind a reused verdict are caught, not counted clean
        assert expected.finding_counts[FindingKind.UNDECRYPTABLE] >= len(VECTORS) // 2


def test_decrypt_verdicts_are_reused_and_readers_match_the_chain() -> None:
    c = classifier(config(), decrypt=True)
    assert c.transformers is not None
    reused = 0
    for v in VECTORS:
        key = v["etcd_key"].encode()
        value = stored(v)
        scope = c.scope_of(key)
        verdict = c.verdict(scope, value)
        if verdict is None or verdict.reader is None:
            continue
        assert c.verdict(scope, value) is verdict
        reused += 1
        transformer = c.transformers.for_resource(scope.resource, scope.group)
        try:
            chain = transformer.read(value, key.decode())
        except SecretkitError:
            # a negative vector: the first provider's key fails, and so does the reader
            with pytest.raises(SecretkitError):
                verdict.reader.read(value, key)
            continue
        assert verdict.reader.read(value, key) == chain.plaintext
        if v["expected_error"] == "False":  # tampered CBC may "decrypt" to garbage
            assert chain.plaintext == plaintext(v)
        assert verdict.reader.stale is chain.stale
        assert (FindingKind.STALE in verdict.findings) is chain.stale
    # aescbc, aesgcm, secretbox, kms v2 and identity vectors all have readers
    assert reused >= 20


def test_a_key_name_that_prefixes_another_is_judged_value_by_value() -> None:
    # "gcm:key:3" is configured: a value under header "gcm:" may or may not be its
    c = classifier(config(), decrypt=True)
    v = vector(next(x["id"] for x in VECTORS if x["stored_prefix"].endswith("gcm:key:3:")))
    key = v["etcd_key"].encode()
    assert c.verdict(c.scope_of(key), stored(v)) is None


# -- values whose header alone must not decide (found in review) -------------------

_KEK = bytes(range(32))


def _one_rule(providers_yaml: str) -> EncryptionConfig:
    return load_encryption_config(
        (
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
            "resources:\n  - resources: ['secrets']\n    providers:\n" + providers_yaml
        ).encode(),
        source="t.yaml",
    )


_KMS_P = "      - kms:\n          apiVersion: v2\n          name: p\n          endpoint: unix:///tmp/p.sock\n"


def _stream_equals_per_value(make: Callable[[], Classifier], items: list[tuple[Any, bool]]) -> None:
    expected = AuditReport(source="t", prefix="/registry")
    full = make()
    for kv, historical in items:
        record = full.classify_in_scope(kv.key, kv.value, kv.mod_revision, historical=historical)
        if record is not None:
            expected.add(record)
    got = AuditReport(source="t", prefix="/registry")
    classify_stream(make(), iter(items), got)
    assert _shape(got) == _shape(expected)


def test_a_repeated_encrypted_data_field_is_read_as_the_chain_reads_it() -> None:
    # protobuf readers keep the last encryptedData; the header names the first one
    cfg = _one_rule(_KMS_P + "      - identity: {}\n")
    fake = FakeKMS(_KEK, "k1", {})
    writer = build_transformers(cfg, lambda p: fake).for_resource("secrets")
    key = "/registry/secrets/ns/a"
    good = writer.write(b"payload", key)
    doubled = good + encode_len_field(1, b"G" * 80)
    items = [(_kv(key.encode(), v, n), False) for n, v in enumerate([good, doubled, good], 1)]

    def make() -> Classifier:
        return Classifier(
            policy=ScopePolicy(config=cfg),
            transformers=build_transformers(cfg, lambda p: FakeKMS(_KEK, "k1", {})),
        )

    _stream_equals_per_value(make, items)
    report = AuditReport(source="t", prefix="/registry")
    classify_stream(make(), iter(items), report)
    assert report.finding_counts[FindingKind.UNDECRYPTABLE] == 1


def test_a_failed_first_status_is_not_remembered_for_the_header() -> None:
    cfg = _one_rule(_KMS_P + "      - identity: {}\n")
    writer = build_transformers(cfg, lambda p: FakeKMS(_KEK, "k1", {})).for_resource("secrets")
    items = []
    for i in range(4):
        key = f"/registry/secrets/ns/a{i}"
        items.append((_kv(key.encode(), writer.write(b"x", key), i + 1), False))

    class FirstStatusFails(FakeKMS):
        def status(self) -> KMSStatus:
            if self.status_calls == 0:
                self.status_calls += 1
                raise BackendError("transient")
            return super().status()

    fake = FirstStatusFails(_KEK, "k1", {})
    scanner = Classifier(
        policy=ScopePolicy(config=cfg), transformers=build_transformers(cfg, lambda p: fake)
    )
    report = AuditReport(source="t", prefix="/registry")
    classify_stream(scanner, iter(items), report)
    # the header got no shared reader (which would carry "stale" to every value);
    # each value asked Status itself, and the later calls succeeded
    assert scanner.verdict(scanner.scope_of(items[0][0].key), items[0][0].value) is None
    assert report.total_objects == 4
    assert report.finding_counts[FindingKind.STALE] <= 1
    assert fake.status_calls >= 2


def test_non_ascii_key_names_read_back_on_both_paths() -> None:
    secret = base64.b64encode(bytes(32)).decode()
    cfg = _one_rule(f'      - aesgcm:\n          keys:\n            - name: "clé"\n'
                    f"              secret: {secret}\n      - identity: {{}}\n")
    chain = build_transformers(cfg, lambda p: None).for_resource("secrets")  # type: ignore[arg-type, return-value]
    key = "/registry/secrets/ns/a"
    value = chain.write(b"hello", key)
    assert chain.read(value, key).plaintext == b"hello"
    items = [(_kv(key.encode(), value, 1), False), (_kv(key.encode(), _tampered(value), 2), False)]

    def make() -> Classifier:
        tf = build_transformers(cfg, lambda p: None)  # type: ignore[arg-type, return-value]
        return Classifier(policy=ScopePolicy(config=cfg), transformers=tf)

    _stream_equals_per_value(make, items)


def test_legacy_type_0_values_do_not_fill_the_verdict_memo() -> None:
    # each type-0 value carries its own DEK, hence its own header
    c = Classifier(policy=ScopePolicy(all_resources=True))
    scope = c.scope_of(b"/registry/secrets/ns/a")
    for i in range(50):
        obj = EncryptedObject(
            encrypted_data=b"d" * 40,
            key_id="k1",
            encrypted_dek_source=i.to_bytes(4, "big") * 8,
            annotations={},
            encrypted_dek_source_type=DEKSourceType.AES_GCM_KEY,
        )
        assert c.verdict(scope, b"k8s:enc:kms:v2:p:" + encode_encrypted_object(obj)) is None
    assert c.verdict(scope, b"k8s\x00plain") is not None
    assert len(c._verdicts) == 1


def test_keys_that_are_not_utf8_authenticate_with_their_raw_bytes() -> None:
    # upstream's AAD is the stored key's bytes; a replacement character would not match
    secret = base64.b64encode(bytes(32)).decode()
    cfg = _one_rule(f"      - aesgcm:\n          keys:\n            - name: k1\n"
                    f"              secret: {secret}\n      - identity: {{}}\n")
    raw = b"/registry/secrets/ns/s\xe9"
    chain = build_transformers(cfg, lambda p: None).for_resource("secrets")  # type: ignore[arg-type, return-value]
    value = chain.write(b"hello", raw.decode("utf-8", "surrogateescape"))
    items = [(_kv(raw, value, 1), False), (_kv(raw, value, 2), False)]

    def make() -> Classifier:
        tf = build_transformers(cfg, lambda p: None)  # type: ignore[arg-type, return-value]
        return Classifier(policy=ScopePolicy(config=cfg), transformers=tf)

    _stream_equals_per_value(make, items)
    record = make().classify_in_scope(raw, value, 1)
    assert record is not None and record.findings == ()
