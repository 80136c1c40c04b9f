"""Run the secretkit CLI as an operator would and judge etcd afterwards."""

from __future__ import annotations

import base64
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from secretkit.core.formats import classify_value, match_key_name
from secretkit.core.formats.model import ValueProvider
from tests.e2e.reencrypt.helpers import cli_env, stored_values
from tests.fixtures.sandbox import Sandbox
from tests.schemas import one_document, validate_document


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as one JSON document, validated against the schema it names."""
        doc = one_document(self.stdout)
        validate_document(doc)
        return doc

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def secretkit(*args: str, timeout: float = 600) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def metrics_flags(sb: Sandbox) -> list[str]:
    """Poll the stand-in's /metrics for the loaded config hash (automatic reload)."""
    return [
        "--apiserver-metrics",
        sb.api_url + "/metrics",
        "--metrics-token-file",
        sb.state.token_file,
        "--metrics-cacert",
        str(sb.ca_file),
        "--wait-timeout",
        "60",
    ]


def config_secrets(sb: Sandbox) -> list[str]:
    """Every key secret in the sandbox config (to prove none is ever printed)."""
    doc = yaml.safe_load(sb.config_path.read_text())
    found = []
    for rule in doc["resources"]:
        for provider in rule["providers"]:
            for body in provider.values():
                for key in (body or {}).get("keys", []) if isinstance(body, dict) else []:
                    found.append(key["secret"])
    return found


def key_names_in_etcd(sb: Sandbox, provider: ValueProvider, names: list[str]) -> dict[str, str]:
    """etcd key -> local key name, for every value written by ``provider``."""
    out = {}
    for key, value in stored_values(sb).items():
        stored = classify_value(value)
        assert stored.provider is provider, (key, stored.provider)
        name = match_key_name(value[len(stored.prefix) :], names)
        assert name is not None, key
        out[key] = name
    return out


def create_secrets(sb: Sandbox, count: int, prefix: str = "s") -> dict[str, str]:
    """Create ``count`` Secrets; return name -> plaintext value."""
    from kubernetes import client

    core = sb.core_v1()
    values = {}
    for i in range(count):
        name = f"{prefix}{i}"
        value = f"super-secret-{prefix}-{i}"
        core.create_namespaced_secret(
            "default",
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                data={"v": base64.b64encode(value.encode()).decode()},
            ),
        )
        values[name] = value
    return values


def read_secrets(sb: Sandbox, names: list[str]) -> dict[str, str]:
    core = sb.core_v1()
    return {
        n: base64.b64decode(core.read_namespaced_secret(n, "default").data["v"]).decode()
        for n in names
    }
