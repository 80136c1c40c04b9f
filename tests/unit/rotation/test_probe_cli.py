"""`secretkit apiserver probe` and the stages' probe flags: bad input is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.schemas import one_document, validate_document
from tests.unit.cli.helpers import run_cli

VALID = (
    Path(__file__).resolve().parents[2]
    / "data" / "upstream-configs" / "valid-configs" / "aes" / "aes-gcm.yaml"
)


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("http://10.0.0.2:6443", "plain http"),  # the kubeconfig's token in the clear
        ("https://admin:pw@10.0.0.2:6443", "must not hold credentials"),
        ("https://10.0.0.2:6443/metrics", "without a path"),
        ("10.0.0.2:6443", "not an apiserver URL"),
    ],
)
def test_bad_apiserver_urls_are_usage_errors(
    url: str, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(capsys, "apiserver", "probe", "--config", str(VALID), "--apiserver", url,
                  "-o", "json")
    assert res.code == 2, res.err
    doc = one_document(res.out)
    assert validate_document(doc) == "secretkit.error/v1" and what in doc["error"]["what"]
    assert "pw" not in res.out + res.err


def test_the_stages_refuse_a_bad_probe_url_and_half_a_client_cert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "enc.yaml"
    config.write_bytes(VALID.read_bytes())
    res = run_cli(capsys, "rotate", "promote", "--config", str(config),
                  "--probe-apiserver", "http://10.0.0.2:6443")
    assert res.code == 2 and "plain http" in res.err, res.err
    res = run_cli(capsys, "rotate", "promote", "--config", str(config),
                  "--apiserver-metrics", "https://10.0.0.2:6443/metrics",
                  "--metrics-cert", str(config))
    assert res.code == 2 and "--metrics-key" in res.err, res.err


def test_help_teaches_the_probe(capsys: pytest.CaptureFixture[str]) -> None:
    res = run_cli(capsys, "apiserver", "probe", "--help")
    assert res.code == 0 and "secretkit.io/write-probe" in res.out
    assert "Exit codes: 0" in res.out
    for stage in ("promote", "reencrypt", "prune"):
        res = run_cli(capsys, "rotate", stage, "--help")
        assert "--probe-apiserver" in res.out and "--metrics-kubeconfig" in res.out, stage
