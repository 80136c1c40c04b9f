"""The encryption metrics of kube-apiserver v1.36, with its names, labels and help text.

Captured in ``tests/data/real-apiserver/metrics-and-health.txt``; tests compare the
families, label names and ``# HELP``/``# TYPE`` lines with it. Families appear when
the real apiserver shows them: the reload metrics after the first automatic reload,
the KMS ones once a kms provider was used. Values are rendered like Go's Prometheus
client (``1.7964122507639432e+09``, families sorted by name, series by label values).

Labels carry hashes only (``sha256:<hex>`` of the apiserver identity and of each
key_id), never a key_id itself. The stand-in adds its own
``secretkit_sandbox_kms_calls_total`` and ``secretkit_sandbox_kms_healthy``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

#: kms_operations_latency_seconds buckets: 0.1 ms doubling up to 52.4288 s
LATENCY_BUCKETS = tuple(0.0001 * 2**k for k in range(20))

HELP = {
    "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds": (
        "gauge", "[ALPHA] Timestamp of the last successful or failed automatic reload of "
        "encryption configuration split by apiserver identity."),
    "apiserver_encryption_config_controller_automatic_reloads_total": (
        "counter", "[ALPHA] Total number of reload successes and failures of encryption "
        "configuration split by apiserver identity."),
    "apiserver_encryption_config_controller_last_config_info": (
        "gauge", "[ALPHA] Information about the last applied encryption configuration with "
        "hash as label, split by apiserver identity."),
    "apiserver_envelope_encryption_dek_cache_fill_percent": (
        "gauge", "[ALPHA] Percent of the cache slots currently occupied by cached DEKs."),
    "apiserver_envelope_encryption_dek_source_cache_size": (
        "gauge", "[ALPHA] Number of records in data encryption key (DEK) source cache. On a "
        "restart, this value is an approximation of the number of decrypt RPC calls the "
        "server will make to the KMS plugin."),
    "apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds": (
        "gauge", "[ALPHA] The last time in seconds when a keyID was used."),
    "apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds": (
        "gauge", "[ALPHA] The last time in seconds when a keyID was returned by the Status "
        "RPC call."),
    "apiserver_envelope_encryption_key_id_hash_total": (
        "counter", "[ALPHA] Number of times a keyID is used split by transformation type, "
        "provider, and apiserver identity."),
    "apiserver_envelope_encryption_kms_operations_latency_seconds": (
        "histogram", "[ALPHA] KMS operation duration with gRPC error code status total."),
    "secretkit_sandbox_kms_calls_total": (
        "counter", "KMS plugin calls by provider and method (the stand-in's own metric)."),
    "secretkit_sandbox_kms_healthy": (
        "gauge", "1 when every kms v2 plugin answered Status ok (the stand-in's own metric)."),
}


def sha256_label(text: str) -> str:
    """``sha256:<hex>``, how kube-apiserver hashes identities and key_ids in labels."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def go_float(value: float) -> str:
    """A number as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` writes it."""
    if value == 0:
        return "0"
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exponent = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    decimal_point = len(digits) + exponent  # position of the point after the first digit
    exp = decimal_point - 1
    eprec = len(text) if len(text) < 6 and len(text) >= decimal_point else 6
    prefix = "-" if sign else ""
    if exp < -4 or exp >= eprec:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if decimal_point <= 0:
        return f"{prefix}0.{'0' * -decimal_point}{text}"
    if decimal_point >= len(text):
        return prefix + text + "0" * (decimal_point - len(text))
    return f"{prefix}{text[:decimal_point]}.{text[decimal_point:]}"


Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    total: int = 0
    sum: float = 0.0


class EncryptionMetrics:
    """Thread-safe recorder of the encryption events the metrics report."""

    def __init__(self, apiserver_id: str, clock: Callable[[], float] = time.time) -> None:
        self.id_hash = sha256_label(apiserver_id)
        self._clock = clock
        self._lock = threading.Lock()
        self.reloads: Counter[str] = Counter()
        self._reload_time: dict[str, float] = {}
        self._latency: dict[Labels, _Histogram] = {}
        self._key_use: Counter[tuple[str, str, str]] = Counter()
        self._key_use_time: dict[tuple[str, str, str], float] = {}
        self._status_time: dict[tuple[str, str], float] = {}
        self._dek_sources: dict[str, set[bytes]] = {}
        self.kms_calls: Counter[tuple[str, str]] = Counter()
        self.kms_used = False

    # -- recording -----------------------------------------------------------------------
    def reload(self, status: str) -> None:
        """An automatic reload attempt: ``success`` or ``failure``."""
        with self._lock:
            self.reloads[status] += 1
            self._reload_time[status] = self._clock()

    def kms_call(self, provider: str, method: str, seconds: float, code: str,
                 api_version: str = "v2", key_id: str | None = None) -> None:
        """One plugin call (``Status``/``Encrypt``/``Decrypt``) and its gRPC code name."""
        path = f"/{'v2' if api_version == 'v2' else 'v1beta1'}.KeyManagementService/{method}"
        labels = (("grpc_status_code", code), ("method_name", path), ("provider_name", provider))
        with self._lock:
            self.kms_used = True
            self.kms_calls[(provider, method.lower())] += 1
            hist = self._latency.setdefault(labels, _Histogram())
            hist.total += 1
            hist.sum += seconds
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    hist.counts[index] += 1
            if code == "OK" and method == "Status" and key_id:
                self._status_time[(provider, sha256_label(key_id))] = self._clock()

    def key_id_used(self, provider: str, key_id: str, to_storage: bool, dek_source: bytes
                    ) -> None:
        """A kms v2 value was read (``from_storage``) or written (``to_storage``).

        ``dek_source`` identifies the value's encrypted DEK seed (its header): the DEK
        source cache holds one entry per distinct seed used.
        """
        key = (provider, sha256_label(key_id), "to_storage" if to_storage else "from_storage")
        with self._lock:
            self._key_use[key] += 1
            self._key_use_time[key] = self._clock()
            self._dek_sources.setdefault(provider, set()).add(dek_source)

    # -- rendering -----------------------------------------------------------------------
    def render(self, config_hash: str, kms_healthy: bool) -> str:
        """The Prometheus text of every family that has something to say."""
        with self._lock:
            families = self._families(config_hash, kms_healthy)
        out: list[str] = []
        for name in sorted(families):
            kind, text = HELP[name]
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(sorted(families[name], key=_sort_key))
        return "\n".join(out) + "\n"

    def _families(self, config_hash: str, kms_healthy: bool) -> dict[str, list[str]]:
        aid = ("apiserver_id_hash", self.id_hash)
        fam: dict[str, list[str]] = {
            "apiserver_encryption_config_controller_last_config_info": [
                _line("apiserver_encryption_config_controller_last_config_info",
                      (aid, ("hash", config_hash)), 1)],
            "apiserver_envelope_encryption_dek_cache_fill_percent": [
                _line("apiserver_envelope_encryption_dek_cache_fill_percent", (), 0)],
            "secretkit_sandbox_kms_healthy": [
                _line("secretkit_sandbox_kms_healthy", (), 1 if kms_healthy else 0)],
        }
        if self.reloads:
            name = "apiserver_encryption_config_controller_automatic_reloads_total"
            fam[name] = [_line(name, (aid, ("status", s)), n) for s, n in self.reloads.items()]
            name = "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds"
            fam[name] = [_line(name, (aid, ("status", s)), t)
                         for s, t in self._reload_time.items()]
        if self._dek_sources:
            name = "apiserver_envelope_encryption_dek_source_cache_size"
            fam[name] = [_line(name, (("provider_name", p),), len(seen))
                         for p, seen in self._dek_sources.items()]
        if self._key_use:
            total = "apiserver_envelope_encryption_key_id_hash_total"
            last = "apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds"
            fam[total], fam[last] = [], []
            for (provider, key_hash, direction), count in self._key_use.items():
                labels = (aid, ("key_id_hash", key_hash), ("provider_name", provider),
                          ("transformation_type", direction))
                fam[total].append(_line(total, labels, count))
                fam[last].append(_line(last, labels,
                                       self._key_use_time[(provider, key_hash, direction)]))
        if self._status_time:
            name = "apiserver_envelope_encryption_key_id_hash_status_last_timestamp_seconds"
            fam[name] = [_line(name, (aid, ("key_id_hash", k), ("provider_name", p)), t)
                         for (p, k), t in self._status_time.items()]
        if self._latency:
            name = "apiserver_envelope_encryption_kms_operations_latency_seconds"
            fam[name] = [line for labels, hist in self._latency.items()
                         for line in _histogram(name, labels, hist)]
        if self.kms_calls:
            name = "secretkit_sandbox_kms_calls_total"
            # label order kept from earlier sandboxes: scripts and tests parse it
            fam[name] = [_line(name, (("provider", p), ("method", m)), n)
                         for (p, m), n in self.kms_calls.items()]
        return fam


def _line(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {go_float(value)}"
    text = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{text}}} {go_float(value)}"


def _histogram(name: str, labels: Labels, hist: _Histogram) -> list[str]:
    lines = [_line(f"{name}_bucket", (*labels, ("le", go_float(bound))), count)
             for bound, count in zip(LATENCY_BUCKETS, hist.counts, strict=True)]
    lines.append(_line(f"{name}_bucket", (*labels, ("le", "+Inf")), hist.total))
    lines.append(_line(f"{name}_sum", labels, hist.sum))
    lines.append(_line(f"{name}_count", labels, hist.total))
    return lines


def _sort_key(line: str) -> tuple[str, int, float]:
    # series by label values (without le), then buckets in ascending order, then sum, count
    name, _, rest = line.partition("{")
    labels, _, _value = rest.rpartition("} ")
    parts = [p for p in labels.split('",') if not p.startswith("le=")]
    suffix = 0 if name.endswith("_bucket") else 1 if name.endswith("_sum") else 2
    le = float("inf")
    if 'le="' in labels:
        text = labels.split('le="', 1)[1].split('"', 1)[0]
        le = float("inf") if text == "+Inf" else float(text)
    return ('",'.join(parts), suffix, le)
