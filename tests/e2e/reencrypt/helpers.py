"""Helpers shared by the reencrypt e2e tests: run the CLI, read and judge etcd."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from secretkit.backends import BackendKMSService, load_backends_file
from secretkit.config_files import load_encryption_config_file
from secretkit.core.formats import classify_value, match_key_name
from secretkit.core.formats.model import StoredValue, ValueProvider
from secretkit.core.formats.prefixes import PROVIDER_PREFIXES
from secretkit.core.transformers import build_transformers
from tests.fixtures.sandbox import Sandbox
from tests.schemas import one_document, validate_document

PREFIXES = (b"/registry/secrets/", b"/registry/configmaps/")


def key_b64(ch: str) -> str:
    return base64.b64encode(ch.encode() * 32).decode()


def config_yaml(*providers: str) -> bytes:
    """An EncryptionConfiguration for secrets+configmaps with the given provider lines."""
    lines = [
        "apiVersion: apiserver.config.k8s.io/v1",
        "kind: EncryptionConfiguration",
        "resources:",
        "  - resources: [secrets, configmaps]",
        "    providers:",
    ]
    lines += [f"      - {p}" for p in providers]
    return ("\n".join(lines) + "\n").encode()


AESGCM_K1 = f'aesgcm: {{keys: [{{name: key1, secret: "{key_b64("a")}"}}]}}'
AESGCM_K2K1 = (
    f'aesgcm: {{keys: [{{name: key2, secret: "{key_b64("b")}"}}, '
    f'{{name: key1, secret: "{key_b64("a")}"}}]}}'
)
AESCBC_K3 = f'aescbc: {{keys: [{{name: key3, secret: "{key_b64("c")}"}}]}}'
KMS = 'kms: {apiVersion: v2, name: sandbox-kms, endpoint: "{kms_endpoint}", timeout: 3s}'
IDENTITY = "identity: {}"


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, Any]:
        """stdout as one JSON document, validated against the schema it names."""
        data = one_document(self.stdout)
        validate_document(data)
        return data


def cli_argv(sb: Sandbox | None, *args: str) -> list[str]:
    argv = [sys.executable, "-m", "secretkit.cli.main", "reencrypt"]
    if sb is not None:
        argv += ["--kubeconfig", str(sb.kubeconfig)]
    return argv + list(args)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        env.pop(var, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def run_cli(sb: Sandbox | None, *args: str, timeout: float = 600) -> CliResult:
    proc = subprocess.run(
        cli_argv(sb, *args), capture_output=True, text=True, timeout=timeout, env=cli_env()
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def stored_values(sb: Sandbox) -> dict[str, bytes]:
    """Every Secret and ConfigMap value in etcd."""
    out: dict[str, bytes] = {}
    with sb.etcd_client() as etcd:
        for prefix in PREFIXES:
            for page in etcd.range_pages(prefix):
                for kv in page:
                    out[kv.key.decode()] = kv.value
    return out


def mod_revisions(sb: Sandbox) -> dict[str, int]:
    out: dict[str, int] = {}
    with sb.etcd_client() as etcd:
        for prefix in PREFIXES:
            for page in etcd.range_pages(prefix):
                for kv in page:
                    out[kv.key.decode()] = kv.mod_revision
    return out


def plaintexts(sb: Sandbox, values: dict[str, bytes], config: Path) -> dict[str, bytes]:
    """Decrypt every value with ``config`` (kms through the sandbox's backends file)."""
    backends = load_backends_file(sb.backends_file)
    chain = build_transformers(
        load_encryption_config_file(config), lambda p: BackendKMSService(backends[p.name])
    )
    return {k: chain.for_etcd_key(k).read(v, k).plaintext for k, v in values.items()}


def local_key(value: bytes, stored: StoredValue, names: list[str]) -> str | None:
    rest = value[len(PROVIDER_PREFIXES[stored.provider]) :]
    return match_key_name(rest, names)


def assert_all(
    values: dict[str, bytes],
    provider: ValueProvider,
    *,
    key: str | None = None,
    key_id: str | None = None,
) -> None:
    """Every value was written by ``provider`` (and local ``key`` / kms ``key_id``)."""
    assert values
    for name, value in values.items():
        stored = classify_value(value)
        assert stored.provider == provider, (name, stored.provider)
        if key is not None:
            assert local_key(value, stored, [key]) == key, name
        if key_id is not None:
            assert stored.kms_v2 is not None and stored.kms_v2.key_id == key_id, name


def kms_key_ids(values: dict[str, bytes]) -> set[str]:
    ids = set()
    for value in values.values():
        stored = classify_value(value)
        if stored.kms_v2 is not None:
            ids.add(stored.kms_v2.key_id)
    return ids


def switch_to_aesgcm(sb: Sandbox, name: str) -> Path:
    old = sb.dir / f"{name}-old.yaml"
    old.write_bytes(sb.config_path.read_bytes())
    path = sb.write_config(config_yaml(AESGCM_K1, *old_providers(sb), IDENTITY), name=name)
    sb.restart_apiserver(path)
    return old


def old_providers(sb: Sandbox) -> list[str]:
    # the sandbox's own aescbc key must stay readable
    doc = yaml.safe_load(sb.config_path.read_text())
    providers = doc["resources"][0]["providers"]
    return [json.dumps(p) for p in providers if "identity" not in p]


def wait_for_plugin_key_id_change(sb: Sandbox, old: str, timeout: float = 60.0) -> str:
    """Poll the plugin until Status reports a key_id other than ``old``; then give the
    API stand-in (Status every second in the fixture) time to follow."""
    import time

    from secretkit.kmsapi import GrpcKMSService

    service = GrpcKMSService(sb.plugin_endpoint)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            key_id = service.status().key_id
            if key_id != old:
                time.sleep(3.0)
                return key_id
            time.sleep(0.2)
    finally:
        service.close()
    raise AssertionError("the plugin never reported a new key_id")
