"""``reencrypt --verify`` against a real etcd: values no provider of the config can
read are reported as undecryptable (count, etcd keys, exit 4), not as stale."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.transformers import TransformerSet, build_transformers
from secretkit.etcd import EtcdClient
from secretkit.kube.discovery import ApiResource
from secretkit.reencrypt.verify import verify_no_stale
from tests.fixtures.servers import EtcdServer
from tests.unit.cli.helpers import run_cli

pytestmark = pytest.mark.etcd

KEY0 = base64.b64encode(b"0" * 32).decode()
KEY1 = base64.b64encode(b"1" * 32).decode()
KEY2 = base64.b64encode(b"2" * 32).decode()


def config(*providers: str) -> str:
    lines = [
        "apiVersion: apiserver.config.k8s.io/v1",
        "kind: EncryptionConfiguration",
        "resources:",
        "  - resources: [secrets]",
        "    providers:",
    ]
    return "\n".join(lines + [f"      - {p}" for p in providers]) + "\n"


AESGCM_KEY0 = f'aesgcm: {{keys: [{{name: key0, secret: "{KEY0}"}}]}}'
AESCBC_KEY1 = f'aescbc: {{keys: [{{name: key1, secret: "{KEY1}"}}]}}'
AESGCM_KEY2 = f'aesgcm: {{keys: [{{name: key2, secret: "{KEY2}"}}]}}'
IDENTITY = "identity: {}"
#: what the cluster runs now: key0 was dropped from it too early
CURRENT = config(AESGCM_KEY2, AESCBC_KEY1, IDENTITY)
SECRETS = [ApiResource("", "secrets", "v1", "Secret", True)]


def writer(*providers: str) -> TransformerSet:
    return build_transformers(load_encryption_config(config(*providers).encode()), _no_kms)


def _no_kms(provider: Any) -> Any:
    raise AssertionError("no kms provider in these configs")


def put(client: EtcdClient, chain: TransformerSet, key: str) -> None:
    plaintext = b"k8s\x00" + key.encode()
    client.put(key.encode(), chain.for_etcd_key(key).write(plaintext, key))


def seed(client: EtcdClient) -> dict[str, list[str]]:
    """Fresh (key2), stale (key1) and undecryptable (key0, absent from CURRENT) values."""
    keys: dict[str, list[str]] = {
        "fresh": [f"/registry/secrets/ns/fresh-{i}" for i in range(3)],
        "stale": [f"/registry/secrets/ns/stale-{i}" for i in range(2)],
        "lost": ["/registry/secrets/ns/lost-0", "/registry/secrets/other/lost-1"],
    }
    for key in keys["fresh"]:
        put(client, writer(AESGCM_KEY2), key)
    for key in keys["stale"]:
        put(client, writer(AESCBC_KEY1), key)
    for key in keys["lost"]:
        put(client, writer(AESGCM_KEY0), key)
    return keys


def test_values_under_a_key_absent_from_the_config_are_undecryptable_not_stale(
    etcd_client: EtcdClient,
) -> None:
    keys = seed(etcd_client)
    verdict = verify_no_stale(
        etcd_client, SECRETS, load_encryption_config(CURRENT.encode()), page_size=2
    )
    assert verdict["verdict"] == "undecryptable"
    assert verdict["checked"] == 7
    assert verdict["stale"] == 2
    assert verdict["stale_examples"] == ["secrets:ns/stale-0", "secrets:ns/stale-1"]
    assert verdict["undecryptable"] == 2
    assert verdict["undecryptable_keys"] == sorted(keys["lost"])
    assert verdict["undecryptable_keys_dropped"] == 0


def test_verdict_is_stale_only_when_everything_is_readable(etcd_client: EtcdClient) -> None:
    seed(etcd_client)
    # key0 back in the read chain: the same values are now merely stale
    restored = config(AESGCM_KEY2, AESCBC_KEY1, AESGCM_KEY0, IDENTITY)
    verdict = verify_no_stale(etcd_client, SECRETS, load_encryption_config(restored.encode()))
    assert verdict["verdict"] == "stale"
    assert (verdict["stale"], verdict["undecryptable"]) == (4, 0)
    assert verdict["undecryptable_keys"] == []


def cli(
    capsys: pytest.CaptureFixture[str], server: EtcdServer, config_file: Path, *extra: str
) -> Any:
    return run_cli(
        capsys,
        "reencrypt",
        "--via",
        "etcd",
        "--config",
        str(config_file),
        "--endpoints",
        server.endpoint,
        "--resources",
        "secrets",
        "--verify",
        "--i-understand-the-apiserver-is-stopped",
        "--no-progress",
        *extra,
    )


def test_cli_reports_undecryptable_values_with_exit_4(
    etcd_client: EtcdClient,
    etcd_server: EtcdServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = seed(etcd_client)
    config_file = tmp_path / "enc.yaml"
    config_file.write_text(CURRENT)

    res = cli(capsys, etcd_server, config_file, "-o", "json")
    assert res.code == 4, res.err
    summary = json.loads(res.out)
    # the run rewrote the stale values; the lost ones failed and stay lost
    assert summary["totals"]["rewritten"] == 2
    assert summary["totals"]["failed"] == 2
    verify = summary["verify"]
    assert verify["verdict"] == "undecryptable"
    assert (verify["stale"], verify["undecryptable"]) == (0, 2)
    assert verify["undecryptable_keys"] == sorted(keys["lost"])
    assert "2 stored value(s) cannot be read by any provider" in res.err
    assert "data-loss risk" in res.err
    assert "where: /registry/secrets/ns/lost-0, /registry/secrets/other/lost-1" in res.err
    assert "2 object(s) also failed" in res.err
    # no key material in what the operator sees
    for secret in (KEY0, KEY1, KEY2):
        assert secret not in res.out + res.err

    # text output names the keys under their own heading
    res = cli(capsys, etcd_server, config_file)
    assert res.code == 4, res.err
    assert "verify: undecryptable (7 checked, 0 stale, 2 undecryptable)" in res.out
    assert "UNDECRYPTABLE (data-loss risk" in res.out
    assert "    /registry/secrets/other/lost-1" in res.out

    # once the key is back in the read chain, the run rewrites them and verify is ok
    config_file.write_text(config(AESGCM_KEY2, AESCBC_KEY1, AESGCM_KEY0, IDENTITY))
    res = cli(capsys, etcd_server, config_file, "-o", "json")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["totals"]["rewritten"] == 2
    assert summary["verify"]["verdict"] == "ok"
    assert summary["verify"]["undecryptable"] == 0


def with_widgets(text: str) -> str:
    """``text`` (a config of secrets) covering a CRD too: widgets.example.com."""
    return text.replace("resources: [secrets]", "resources: [secrets, widgets.example.com]")


def test_cli_via_etcd_verifies_a_cluster_scoped_resource_of_unknown_scope(
    etcd_client: EtcdClient,
    etcd_server: EtcdServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cluster-scoped CRD the layout table does not know: its keys have one segment
    after the resource prefix; --verify reads them instead of skipping them."""
    current = load_encryption_config(with_widgets(CURRENT).encode())
    lost = "/registry/example.com/widgets/w-lost"
    for key, providers in (
        ("/registry/secrets/ns/s-0", (AESCBC_KEY1,)),
        ("/registry/example.com/widgets/w-0", (AESCBC_KEY1,)),
        (lost, (AESGCM_KEY0,)),
    ):
        chain = build_transformers(
            load_encryption_config(with_widgets(config(*providers)).encode()), _no_kms
        )
        put(etcd_client, chain, key)
    widgets = ApiResource("example.com", "widgets", "", "", True)
    verdict = verify_no_stale(etcd_client, [*SECRETS, widgets], current,
                              unknown_scope=[widgets])
    assert (verdict["checked"], verdict["stale"], verdict["undecryptable"]) == (3, 2, 1)
    assert verdict["stale_examples"] == ["secrets:ns/s-0", "widgets.example.com:w-0"]
    assert verdict["undecryptable_keys"] == [lost]

    config_file = tmp_path / "enc.yaml"
    config_file.write_text(with_widgets(CURRENT))
    res = cli(capsys, etcd_server, config_file, "--resources", "widgets.example.com",
              "-o", "json")
    # the run rewrote the stale widget; the lost one is a data-loss risk, not "ok"
    assert res.code == 4, res.err
    summary = json.loads(res.out)
    assert summary["totals"]["rewritten"] == 2
    assert summary["verify"]["checked"] == 3
    assert summary["verify"]["undecryptable_keys"] == [lost]
    assert "warning" not in res.err  # -n not given: no object of the CRD is left out
