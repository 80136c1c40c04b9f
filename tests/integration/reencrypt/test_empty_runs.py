"""A ``reencrypt`` that finds no object fails (exit 1, saying which scope was empty)
unless ``--allow-empty``; against a real etcd, ``--via etcd`` with ``--verify``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretkit.etcd import EtcdClient
from tests.fixtures.servers import EtcdServer
from tests.integration.reencrypt.test_verify import (
    AESCBC_KEY1,
    AESGCM_KEY2,
    IDENTITY,
    config,
    put,
    writer,
)
from tests.integration.reencrypt.test_verify import cli as verify_cli
from tests.schemas import validate_document

pytestmark = pytest.mark.etcd


def test_a_namespace_with_no_value_fails_unless_allowed(
    etcd_client: EtcdClient,
    etcd_server: EtcdServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(etcd_client, writer(AESCBC_KEY1), "/registry/secrets/team-a/db")
    config_file = tmp_path / "enc.yaml"
    config_file.write_text(config(AESGCM_KEY2, AESCBC_KEY1, IDENTITY))

    res = verify_cli(capsys, etcd_server, config_file, "-n", "team-b", "-o", "json")
    assert res.code == 1, res.err
    summary = json.loads(res.out)
    validate_document(summary)
    assert summary["totals"]["seen"] == 0 and summary["verify"]["verdict"] == "empty"
    assert "0 objects of secrets in namespace 'team-b'" in res.err
    assert "--allow-empty" in res.err

    res = verify_cli(capsys, etcd_server, config_file, "-n", "team-b", "--allow-empty")
    assert res.code == 0, res.err
    assert "verify: empty (0 checked" in res.out

    # the namespace that holds the value: rewritten and verified
    res = verify_cli(capsys, etcd_server, config_file, "-n", "team-a", "-o", "json")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["totals"]["rewritten"] == 1 and summary["verify"]["verdict"] == "ok"
