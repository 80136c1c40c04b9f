"""The stand-in's /metrics and health answers against kube-apiserver v1.36.2's (captured).

The recorder is fed the events of the capture (same apiserver identity, config hash,
times and KMS call durations) and must render the captured text exactly; the health
endpoints must answer with the captured bodies for a healthy and a stopped plugin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from secretkit.core.kms_service import KMSStatus
from secretkit.sandbox.apiserver.encryption import KMSProbe
from secretkit.sandbox.apiserver.health import HealthChecks
from secretkit.sandbox.apiserver.metrics import HELP, EncryptionMetrics, go_float
from tests.unit.sandbox.captured import http_bodies, text_sections

APISERVER_ID = "apiserver-wlv32tlttr4jl3gtroqexyxapa"
KMS_HASH = "sha256:72a8360a07201ea1d36bd0ad0050fd45fc1ffc55b7e0fc3afb8912059944a959"
KEY_ID = "local:sha256:efea6caecc2b4100"


def _section(prefix: str) -> str:
    (body,) = [text for title, text in text_sections().items() if title.startswith(prefix)]
    return body.strip("\n") + "\n"


def _upstream_only(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if "secretkit_sandbox" not in line)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_metrics_after_an_automatic_reload_render_exactly_as_captured() -> None:
    clock = Clock(1.7964122507626889e09)
    recorder = EncryptionMetrics(APISERVER_ID, clock=clock)
    recorder.kms_call("real-kms", "Status", 0.008824737, "OK", key_id=KEY_ID)
    recorder.kms_call("real-kms", "Encrypt", 0.00105022, "OK")
    clock.now = 1.7964122507639432e09
    recorder.reload("success")
    ours = _upstream_only(recorder.render(KMS_HASH, kms_healthy=True))
    assert ours == _section("METRICS AFTER RELOAD")


def test_metrics_with_the_plugin_stopped_render_the_latency_families_as_captured() -> None:
    recorder = EncryptionMetrics(APISERVER_ID)
    recorder.kms_call("real-kms", "Encrypt", 0.00105022, "OK")
    for seconds in (0.008824737, 0.0012, 0.003248895):  # three Status calls, same buckets
        recorder.kms_call("real-kms", "Status", seconds, "OK", key_id=KEY_ID)
    recorder.kms_call("real-kms", "Status", 3.0, "DeadlineExceeded")
    recorder.kms_call("real-kms", "Status", 3.00091027, "DeadlineExceeded")
    name = "apiserver_envelope_encryption_kms_operations_latency_seconds"

    def family(text: str) -> list[str]:
        return [line for line in text.splitlines() if name in line and "_sum" not in line]

    ours = family(recorder.render(KMS_HASH, kms_healthy=False))
    assert ours == family(_section("METRICS, plugin stopped"))


def test_every_captured_family_has_the_real_help_type_and_label_names() -> None:
    captured = "".join(text for title, text in text_sections().items()
                       if title.startswith("METRICS"))
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", captured, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", captured, re.M))
    assert helps and set(helps) <= set(HELP)
    for name, text in helps.items():
        assert HELP[name] == (types[name], text)
    # label names of every captured series are the ones the recorder writes
    recorder = EncryptionMetrics(APISERVER_ID)
    recorder.reload("success")
    recorder.kms_call("real-kms", "Status", 0.01, "OK", key_id=KEY_ID)
    recorder.key_id_used("real-kms", KEY_ID, True, b"seed")
    recorder.key_id_used("real-kms", KEY_ID, False, b"seed")
    ours = recorder.render(KMS_HASH, kms_healthy=True)

    def label_names(text: str) -> dict[str, set[tuple[str, ...]]]:
        out: dict[str, set[tuple[str, ...]]] = {}
        for metric, labels in re.findall(r"^([a-z_]+)\{([^}]*)\}", text, re.M):
            out.setdefault(metric, set()).add(tuple(re.findall(r'(\w+)="', labels)))
        return out

    theirs = label_names(captured)
    mine = label_names(ours)
    for metric, names in theirs.items():
        assert mine[metric] == names, metric
    # every value the capture shows is formatted the way Go formats it
    for value in re.findall(r"^[a-z_]+(?:\{[^}]*\})? (\S+)$", captured, re.M):
        assert go_float(float(value)) == value


@dataclass
class FakeService:
    healthy: bool = True
    calls: int = 0

    def status(self) -> KMSStatus:
        self.calls += 1
        if not self.healthy:
            raise OSError("rpc error: code = DeadlineExceeded")
        return KMSStatus(version="v2", healthz="ok", key_id=KEY_ID)


@dataclass
class FakeState:
    automatic_reload: bool
    probes: list[KMSProbe] = field(default_factory=list)


def _probe(service: FakeService, clock: Clock, index: int = 0) -> KMSProbe:
    from secretkit.core.encryption_config.model import KMSProvider

    provider = KMSProvider(name="real-kms", endpoint="unix:///run/secretkit/kms.sock",
                           api_version="v2", timeout_seconds=3.0, cachesize=1000)
    return KMSProbe(index, provider, service, 20.0, 3.0, clock)  # type: ignore[arg-type]


@pytest.mark.parametrize("healthy", [True, False])
def test_health_bodies_match_the_capture(healthy: bool) -> None:
    service, clock = FakeService(healthy=healthy), Clock(0.0)
    checks = HealthChecks(FakeState(True, [_probe(service, clock)]))  # type: ignore[arg-type]
    title = "HEALTH, kms v2 config, plugin " + ("healthy" if healthy else "stopped")
    captured = http_bodies(_section(title))
    for endpoint in ("readyz", "livez", "healthz"):
        code, body = checks.root(endpoint, verbose=True)
        expected = captured[f"/{endpoint}?verbose"]
        assert body.strip("\n") == expected.strip("\n"), endpoint
        assert code == (200 if healthy or endpoint == "livez" else 500)
    for path in ("/healthz/kms-providers", "/readyz/kms-providers"):
        endpoint, _, check = path[1:].partition("/")
        answer = checks.single(endpoint, check)
        assert answer is not None
        if healthy:
            assert answer == (200, "ok") and captured[path].strip() == "ok"
        else:
            assert answer[0] == 500
            # the reason text is the stand-in's own gRPC error; the frame is the real one
            assert captured[path].startswith("internal server error: kms-provider-0: ")
            assert answer[1].startswith("internal server error: kms-provider-0: ")
    # the kms check is not part of livez; per-provider names only without reload
    assert checks.single("livez", "kms-providers") is None
    assert checks.single("healthz", "kms-provider-0") is None


def test_identity_config_health_matches_the_capture() -> None:
    checks = HealthChecks(FakeState(True))  # type: ignore[arg-type]
    captured = http_bodies(_section("HEALTH, identity-only config"))
    for endpoint in ("readyz", "livez", "healthz"):
        code, body = checks.root(endpoint, verbose=True)
        assert code == 200 and body.strip("\n") == captured[f"/{endpoint}?verbose"].strip("\n")
    assert checks.root("readyz", verbose=False) == (200, "ok")


def test_without_automatic_reload_each_kms_provider_has_its_own_check() -> None:
    clock = Clock(0.0)
    checks = HealthChecks(FakeState(False, [_probe(FakeService(), clock),  # type: ignore[arg-type]
                                            _probe(FakeService(False), clock, 1)]))
    code, body = checks.root("readyz", verbose=True)
    assert code == 500
    assert "[+]kms-provider-0 ok\n" in body
    assert "[-]kms-provider-1 failed: reason withheld\n" in body
    assert "automatic-reload" not in body


def test_the_kms_probe_reuses_its_answer_20s_after_success_and_3s_after_failure() -> None:
    service, clock = FakeService(), Clock(100.0)
    probe = _probe(service, clock)
    assert probe.check() is None and service.calls == 1
    service.healthy = False  # the plugin stops right after a successful check
    clock.now = 119.9
    assert probe.check() is None and service.calls == 1  # still the cached success
    clock.now = 120.0
    assert probe.check() is not None and service.calls == 2
    clock.now = 122.9
    assert probe.check() is not None and service.calls == 2  # cached failure
    service.healthy = True
    clock.now = 123.0
    assert probe.check() is None and service.calls == 3
