"""A real scenario on the sandbox, logged at DEBUG, then searched for secrets.

One sandbox (etcd + OpenBao transit + KMS plugin + API stand-in) runs a config whose
kms v2 provider writes and whose aesgcm provider (a canary key) still reads. Secrets
and ConfigMaps holding a canary plaintext are written through the API, one value is
planted in etcd under the canary aesgcm key, and then audit, inspect, kms status and
reencrypt run through the CLI with ``-vv``. Afterwards:

- no CLI output, no sandbox log file and no ``/metrics`` page holds the canary key,
  the canary plaintext, the OpenBao token or the API bearer token (the OpenBao dev
  server's own log prints its root token by design, so only its mode is checked);
- every file in the sandbox directory that holds any of them is 0600;
- every sandbox process listens on loopback addresses only.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from secretkit.backends import BackendKMSService, load_backends_file
from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config import load_encryption_config
from secretkit.core.formats import classify_value
from secretkit.core.formats.model import ValueProvider
from secretkit.core.transformers import build_transformers
from secretkit.sandbox.configs import KMS_PROVIDER_NAME
from tests.e2e.reencrypt.helpers import cli_env
from tests.fixtures.sandbox import Sandbox, SandboxFactory
from tests.security import canaries as c
from tests.security.netcheck import is_loopback, listening, process_tree, remote_peers

pytestmark = pytest.mark.e2e

_HEAD = """\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets, configmaps]
    providers:
"""
_KMS = f"""\
      - kms:
          apiVersion: v2
          name: {KMS_PROVIDER_NAME}
          endpoint: "{{kms_endpoint}}"
          timeout: 3s
"""
_AESGCM = f"""\
      - aesgcm:
          keys:
            - name: canary
              secret: {c.KEY_B64}
"""
#: kms v2 writes; the canary aesgcm key still reads; identity reads plaintext
CONFIG = (_HEAD + _KMS + _AESGCM + "      - identity: {}\n").encode()
#: what an older apiserver wrote with: the canary aesgcm key
AESGCM_WRITER = (_HEAD + _AESGCM).encode()

#: a stored Secret that is re-written under the canary aesgcm key
PLANTED = "/registry/secrets/hygiene/s0"


JUNK = {
    "/registry/secrets/hygiene/undecryptable":
        f"k8s:enc:kms:v2:{KMS_PROVIDER_NAME}:".encode() + c.PLAINTEXT,
    "/registry/secrets/hygiene/wrong-key": b"k8s:enc:aesgcm:v1:canary:" + bytes(12) + c.PLAINTEXT,
    "/registry/secrets/hygiene/plaintext": b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12"
        + bytes([len(c.PLAINTEXT)]) + c.PLAINTEXT,
    "/registry/widgets/hygiene/raw": c.PLAINTEXT,
}


@dataclass
class Scenario:
    """The sandbox after the scenario and everything the CLI printed."""

    sb: Sandbox
    outputs: dict[str, str] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    checkpoint: Path | None = None

    @property
    def secrets(self) -> tuple[bytes | str, ...]:
        return (c.KEY, c.PLAINTEXT, c.TOKEN, self.sb.openbao_token, self.sb.token)


def _cli(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "secretkit.cli.main", *args], capture_output=True, text=True,
        timeout=300, env=cli_env(), stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _plant_aesgcm_value(sb: Sandbox) -> None:
    """Re-write one stored Secret under the canary aesgcm key (as an old apiserver did)."""
    source = PLANTED
    backends = load_backends_file(sb.backends_file)
    current = build_transformers(
        load_encryption_config_file(sb.config_path),
        kms=lambda p: BackendKMSService(backends[p.name]),
    )
    aesgcm_writer = build_transformers(
        load_encryption_config(AESGCM_WRITER),
        kms=lambda p: pytest.fail("no kms here"),
    )
    with sb.etcd_client() as etcd:
        kv = etcd.get(source.encode())
        assert kv is not None
        plaintext = current.for_etcd_key(source).read(kv.value, source).plaintext
        value = aesgcm_writer.for_etcd_key(PLANTED).write(plaintext, PLANTED)
        assert classify_value(value).provider is ValueProvider.AESGCM
        etcd.put(PLANTED.encode(), value)
    for backend in backends.values():
        backend.close()


@pytest.fixture(scope="module")
def scenario(sandbox_factory: SandboxFactory, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Scenario]:
    sb = sandbox_factory(config=CONFIG)
    run = Scenario(sb)
    core = sb.core_v1()
    secret_data = {"password": base64.b64encode(c.PLAINTEXT).decode()}
    for i in range(3):
        core.create_namespaced_secret("hygiene", {"metadata": {"name": f"s{i}"},
                                                  "data": secret_data})
    core.create_namespaced_config_map("hygiene", {"metadata": {"name": "cm"},
                                                  "data": {"v": c.PLAINTEXT.decode()}})
    _plant_aesgcm_value(sb)
    # the object planted under the canary key is readable through the API
    got = core.read_namespaced_secret("s0", "hygiene")
    assert base64.b64decode(got.data["password"]) == c.PLAINTEXT

    work = tmp_path_factory.mktemp("hygiene")
    with sb.etcd_client() as etcd:
        kv = etcd.get(PLANTED.encode())
        assert kv is not None
        (work / "planted.bin").write_bytes(kv.value)
    etcd_flags = ["--endpoints", sb.etcd_endpoint]
    decrypt_flags = ["--config", str(sb.config_path), "--backends", str(sb.backends_file)]
    commands = {
        "audit-text": ["-vv", "audit", *etcd_flags, *decrypt_flags, "--decrypt-check",
                       "--resources", "secrets,configmaps"],
        "audit-json": ["-vv", "audit", *etcd_flags, *decrypt_flags, "--decrypt-check",
                       "--show-all", "-o", "json"],
        "inspect-text": ["-vv", "inspect", "--etcd-key", PLANTED, *decrypt_flags,
                         str(work / "planted.bin")],
        "inspect-json": ["-vv", "inspect", "--etcd-key", PLANTED, *decrypt_flags, "-o", "json",
                         str(work / "planted.bin")],
        "kms-status-text": ["-vv", "kms", "status", "--kms-socket", sb.plugin_endpoint,
                            "--provider", KMS_PROVIDER_NAME, "--backends",
                            str(sb.backends_file), *etcd_flags],
        "kms-status-json": ["-vv", "kms", "status", "--kms-socket", sb.plugin_endpoint,
                            "--provider", KMS_PROVIDER_NAME, "--backends",
                            str(sb.backends_file), *etcd_flags, "-o", "json"],
        "reencrypt": ["-vv", "reencrypt", "--kubeconfig", str(sb.kubeconfig),
                      "--resources", "secrets,configmaps", "--config", str(sb.config_path),
                      "--backends", str(sb.backends_file), "--verify", *etcd_flags,
                      "--no-progress", "--resume", str(work / "checkpoint.json")],
        # etcd auth with a canary password (the sandbox etcd has auth off): never echoed
        "audit-password": ["-vv", "audit", "--endpoints", sb.etcd_endpoint, "--user", "root",
                           "--password", c.TOKEN],
        # a wrong OpenBao token in a backends file: the denial does not echo it
        "audit-bad-token": ["-vv", "audit", *etcd_flags, "--config", str(sb.config_path),
                            "--backends", str(_bad_backends(sb, work)), "--decrypt-check"],
        "sandbox-status": ["-vv", "sandbox", "status", "--dir", str(sb.dir), "-o", "json"],
    }
    for name, argv in commands.items():
        run.codes[name], run.outputs[name] = _cli(*argv)
    # values no provider can read, or stored in plaintext: the audit must flag them
    # without printing what they hold
    with sb.etcd_client() as etcd:
        for key, value in JUNK.items():
            etcd.put(key.encode(), value)
    for name, output in (("audit-junk-text", "text"), ("audit-junk-json", "json")):
        run.codes[name], run.outputs[name] = _cli(
            "-vv", "audit", *etcd_flags, *decrypt_flags, "--decrypt-check", "--all-resources",
            "--show-all", "-o", output)
    run.codes["reencrypt-etcd-junk"], run.outputs["reencrypt-etcd-junk"] = _cli(
        "-vv", "reencrypt", "--via", "etcd", "--dry-run", "--resources", "secrets",
        *decrypt_flags, *etcd_flags, "--i-understand-the-apiserver-is-stopped", "--no-progress")
    run.checkpoint = work / "checkpoint.json"
    run.outputs["metrics"] = sb.metrics()
    yield run


def _bad_backends(sb: Sandbox, work: Path) -> Path:
    token = work / "wrong-token"
    token.write_text(c.TOKEN)
    token.chmod(0o600)
    text = sb.backends_file.read_text().replace(str(sb.state.openbao_token_file), str(token))
    path = work / "bad-backends.yaml"
    path.write_text(text)
    return path


def test_commands_did_their_job(scenario: Scenario) -> None:
    """The scenario really ran (so the searches below are not vacuous)."""
    codes, out = scenario.codes, scenario.outputs
    for name in ("audit-json", "inspect-json", "kms-status-json", "sandbox-status"):
        assert codes[name] == 0, out[name]
    assert codes["reencrypt"] == 0, out["reencrypt"]
    inspect = json.loads(out["inspect-json"][: out["inspect-json"].rindex("}") + 1])
    assert inspect["decrypted"] is True and inspect["provider"] == "aesgcm"
    assert "DEBUG" in out["reencrypt"] or "DEBUG" in out["audit-text"]  # -vv logged
    assert codes["audit-bad-token"] != 0 and "error" in out["audit-bad-token"].lower()
    junk = out["audit-junk-json"]
    assert codes["audit-junk-json"] == 1  # findings
    for key in JUNK:
        assert key in junk, f"{key} not reported"
    # bad input gets a clear error and a non-zero exit
    assert codes["reencrypt-etcd-junk"] != 0
    assert "could not be re-encrypted" in out["reencrypt-etcd-junk"]
    with scenario.sb.etcd_client() as etcd:
        kv = etcd.get(PLANTED.encode())
        assert kv is not None and classify_value(kv.value).provider is ValueProvider.KMS_V2


def test_no_cli_output_or_metrics_page_holds_a_secret(scenario: Scenario) -> None:
    for name, text in scenario.outputs.items():
        found = c.leaks(text, *scenario.secrets)
        assert not found, f"{name} leaked {found}:\n{text}"


def test_reencrypt_checkpoint_is_private_and_holds_no_secret(scenario: Scenario) -> None:
    assert scenario.checkpoint is not None and scenario.checkpoint.exists()
    assert scenario.checkpoint.stat().st_mode & 0o777 == 0o600
    assert not c.leaks(scenario.checkpoint.read_bytes(), *scenario.secrets)


def test_no_sandbox_log_holds_a_secret(scenario: Scenario) -> None:
    logs = sorted(scenario.sb.dir.glob("*.log"))
    assert {p.name for p in logs} >= {"apiserver.log", "kms-plugin.log", "etcd.log"}
    assert "status changed" in (scenario.sb.dir / "kms-plugin.log").read_text()
    for log in logs:
        text = log.read_text(errors="replace")
        secrets = scenario.secrets
        if log.name == "openbao.log":  # `bao server -dev` prints its root token itself
            secrets = tuple(s for s in secrets if s != scenario.sb.openbao_token)
        found = c.leaks(text, *secrets)
        assert not found, f"{log.name} leaked {found}"


def test_every_file_holding_a_secret_is_0600(scenario: Scenario) -> None:
    needles = [f.encode() for s in scenario.secrets for f in c.forms(s)] + [b"PRIVATE KEY"]
    holding: dict[str, int] = {}
    for path in scenario.sb.dir.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if any(n in data for n in needles):
            holding[str(path.relative_to(scenario.sb.dir))] = path.stat().st_mode & 0o777
    # the files that must hold secrets were found, and all of them are private
    assert {"apiserver-token", "openbao-token", "kubeconfig", "encryption-config.yaml",
            "pki/server.key", "openbao.log"} <= set(holding)
    assert {name: mode for name, mode in holding.items() if mode != 0o600} == {}
    assert (scenario.sb.dir.stat().st_mode & 0o077) == 0  # the directory itself is private


def _sandbox_processes(sb: Sandbox) -> list[psutil.Process]:
    return [p for info in sb.state.processes.values() for p in process_tree(info.pid)]


def test_sandbox_listens_on_loopback_only(scenario: Scenario) -> None:
    procs = _sandbox_processes(scenario.sb)
    names = {p.name() for p in procs}
    assert len(names) >= 3  # etcd, bao, python (plugin, stand-in): the sandbox is running
    bound = listening(procs)
    assert len(bound) >= 4  # etcd client+peer, OpenBao, API stand-in
    assert [entry for entry in bound if not is_loopback(entry[1])] == []
    # and every connection any of them holds goes to loopback too
    assert remote_peers(procs) == []
