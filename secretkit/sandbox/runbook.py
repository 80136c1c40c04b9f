"""The full rotation runbook on a sandbox, run with the real ``secretkit`` commands.

Used by the quickstart: every step prints the exact command an operator would type
(with the sandbox's paths abbreviated as ``$SB``), runs it as a subprocess, reads
its ``-o json`` report, and records what the step proved, so the closing table is
made of evidence rather than claims.

The story: Secrets stored in plaintext are found by the audit → KMS v2 via OpenBao is
enabled in stages → everything is re-encrypted → the audit is clean → the transit key
is rotated → re-encrypted again → the audit shows only the new key_id → a local-key
rotation on ConfigMaps whose prune is refused while older revisions still need the
old key, and allowed once etcd has compacted them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from secretkit.config_files import load_encryption_config_file
from secretkit.core.encryption_config.model import KMSProvider, LocalKeyProvider
from secretkit.etcd import EtcdClient, EtcdConfig
from secretkit.sandbox import configs
from secretkit.sandbox.state import SandboxState

#: the runbook's starting config: Secrets in plaintext, ConfigMaps under a local key
INITIAL_CONFIG = b"""\
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - identity: {}
  - resources: [configmaps]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: %s
      - identity: {}
"""


@dataclass
class Proof:
    """One line of the closing table."""

    step: str
    command: str
    proved: str


@dataclass
class Runbook:
    """Runs CLI steps against one sandbox and collects proofs."""

    state: SandboxState
    proofs: list[Proof] = field(default_factory=list)
    echo: Callable[[str], None] = click.echo

    # -- plumbing ---------------------------------------------------------------
    def _short(self, arg: str) -> str:
        # endpoints hold the directory %-escaped (see configs.plugin_endpoint)
        escaped = configs.plugin_endpoint(self.state.dir).removeprefix("unix://")
        return arg.replace(escaped, "$SB").replace(str(self.state.dir), "$SB")

    def secretkit(self, *args: str, expect: tuple[int, ...] = (0,)) -> tuple[int, Any, str]:
        """Run ``secretkit ARGS``; return (exit code, parsed JSON or None, stderr)."""
        self.echo("   $ secretkit " + " ".join(self._short(a) for a in args))
        proc = subprocess.run(
            [sys.executable, "-m", "secretkit.cli.main", *args],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode not in expect:
            raise click.ClickException(
                f"`secretkit {args[0]} {args[1] if len(args) > 1 else ''}` exited "
                f"{proc.returncode}, expected {expect}:\n{proc.stderr[-2000:]}"
            )
        data = None
        if "-o" in args and args[args.index("-o") + 1] == "json":
            data = json.loads(proc.stdout)
        return proc.returncode, data, proc.stderr

    def prove(self, step: str, command: str, proved: str) -> None:
        """Record a proof and print it."""
        self.proofs.append(Proof(step, command, proved))
        self.echo(f"   proved: {proved}")

    @property
    def etcd_flags(self) -> list[str]:
        return ["--endpoints", self.state.etcd_endpoint]

    @property
    def metrics_flags(self) -> list[str]:
        return [
            "--apiserver-metrics",
            self.state.api_url + "/metrics",
            "--metrics-token-file",
            self.state.token_file,
            "--metrics-cacert",
            self.state.ca_file,
        ]

    @property
    def kms_endpoint(self) -> str:
        """The plugin's endpoint, for ``--kms-endpoint`` and ``--kms-socket``."""
        return configs.plugin_endpoint(self.state.plugin_socket)

    @property
    def config(self) -> list[str]:
        return ["--config", self.state.encryption_config]

    def reencrypt_args(self) -> list[str]:
        return ["--kubeconfig", self.state.kubeconfig, "--no-progress", *self.etcd_flags]

    def compact(self) -> int:
        """Compact etcd at its current revision (what etcd's auto-compaction does)."""
        with EtcdClient(EtcdConfig(endpoints=(self.state.etcd_endpoint,))) as etcd:
            revision = etcd.current_revision()
            etcd.compact(revision)
        return revision

    def providers_of(self, resource: str) -> list[str]:
        """Provider types (local keys as ``type:name``) of ``resource`` in the live config."""
        config = load_encryption_config_file(Path(self.state.encryption_config))
        for rule in config.rules:
            if resource in rule.resources:
                out: list[str] = []
                for provider in rule.providers:
                    if isinstance(provider, LocalKeyProvider):
                        ptype = provider.type.value
                        out += [f"{ptype}:{k.name}" for k in provider.keys] or [ptype]
                    elif isinstance(provider, KMSProvider):
                        out.append("kms")
                    else:
                        out.append("identity")
                return out
        return []

    def audit(self, *extra: str, expect: tuple[int, ...] = (0, 1)) -> dict[str, Any]:
        _, report, _ = self.secretkit(
            "audit", *self.etcd_flags, *extra, "-o", "json", expect=expect
        )
        assert isinstance(report, dict)
        return report

    # -- the story --------------------------------------------------------------
    def find_plaintext(self) -> None:
        """The audit finds every Secret in plaintext."""
        click.secho("\n== audit: what does etcd hold?", bold=True)
        report = self.audit("--resources", "secrets,configmaps", expect=(1,))
        plaintext = report["totals"]["findings"]["plaintext"]
        self.echo(f"   {plaintext} plaintext value(s) out of {report['totals']['objects']}")
        self.prove(
            "audit",
            "secretkit audit",
            f"{plaintext} Secrets are plaintext in etcd (exit 1: --fail-on plaintext)",
        )

    def enable_kms(self) -> None:
        """identity → KMS v2 (OpenBao transit via the plugin) for Secrets, in stages."""
        click.secho(
            "\n== enable KMS v2 for Secrets: prepare → promote → reencrypt → prune", bold=True
        )
        stage = ["encryption", "enable"]
        self.secretkit(
            *stage,
            "prepare",
            *self.config,
            *self.metrics_flags,
            "--resources",
            "secrets",
            "--provider",
            "kms",
            "--kms-name",
            configs.KMS_PROVIDER_NAME,
            "--kms-endpoint",
            self.kms_endpoint,
        )
        self.secretkit(*stage, "promote", *self.config, *self.metrics_flags)
        self.secretkit(
            *stage, "reencrypt", *self.config, *self.metrics_flags, *self.reencrypt_args()
        )
        _, _, why = self.secretkit(
            *stage, "prune", *self.config, *self.metrics_flags, *self.etcd_flags, expect=(3,)
        )
        history = self.audit("--resources", "secrets", "--history")
        old = history["totals"]["historical_findings"]["plaintext"]
        self.echo(f"   prune refused: {_error_line(why)}")
        self.echo(f"   audit --history: {old} plaintext value(s) in older revisions")
        self.prove(
            "enable",
            "secretkit encryption enable prune",
            f"identity is not dropped while {old} old plaintext revision(s) remain",
        )
        revision = self.compact()
        self.echo(f"   compacted etcd at revision {revision} (etcd's auto-compaction would)")
        self.secretkit(*stage, "prune", *self.config, *self.metrics_flags, *self.etcd_flags)
        providers = self.providers_of("secrets")
        if providers != ["kms"]:
            raise click.ClickException(f"unexpected providers for secrets: {providers}")
        self.prove(
            "enable",
            "secretkit encryption enable",
            f"the config now lists {providers} for Secrets: identity was dropped only "
            "after etcd proved nothing needs it",
        )

    def audit_clean(self, label: str) -> str:
        """Audit with decryption: nothing plaintext, stale or undecryptable; one key_id."""
        report = self.audit(
            *self.config,
            "--backends",
            self.state.backends_file,
            "--decrypt-check",
            "--resources",
            "secrets",
            "--fail-on",
            "plaintext,stale,undecryptable,unknown",
            expect=(0,),
        )
        key_ids = sorted({row["key"] for row in report["summary"] if row["objects"]})
        self.echo(f"   {report['totals']['objects']} Secrets, all decryptable, under {key_ids}")
        self.prove(
            label,
            "secretkit audit --decrypt-check",
            f"all {report['totals']['objects']} Secrets decrypt, none stale, "
            f"one key: {', '.join(key_ids)}",
        )
        return key_ids[0] if key_ids else ""

    def rotate_kms(self) -> None:
        """Rotate the transit key and prove only the new key_id remains."""
        click.secho("\n== rotate the KMS key (OpenBao transit) and re-encrypt", bold=True)
        _, report, _ = self.secretkit(
            "kms",
            "rotate",
            "--backends",
            self.state.backends_file,
            "--provider",
            configs.KMS_PROVIDER_NAME,
            "--kms-socket",
            self.kms_endpoint,
            *self.etcd_flags,
            "--refresh-wait",
            "3",
            "--plugin-timeout",
            "60",
            *self.config,
            "-o",
            "json",
            "--kubeconfig",
            self.state.kubeconfig,
            "--no-progress",
        )
        self.echo(f"   key_id {report['old_key_id']} -> {report['new_key_id']}")
        self.prove(
            "kms rotate",
            "secretkit kms rotate",
            f"every Secret now carries key_id {report['new_key_id']} ({report['counts_after']})",
        )

    def rotate_local_key(self) -> None:
        """Rotate the ConfigMaps' aesgcm key; the prune gate refuses, then allows."""
        click.secho("\n== rotate the ConfigMaps' aesgcm key: key1 → key2", bold=True)
        for stage in ("prepare", "promote", "reencrypt"):
            extra = (
                ["--key-name", "key2", "--resources", "configmaps"] if stage == "prepare" else []
            )
            tail = self.reencrypt_args() if stage == "reencrypt" else []
            self.secretkit("rotate", stage, *self.config, *self.metrics_flags, *extra, *tail)
        _, _, why = self.secretkit(
            "rotate", "prune", *self.config, *self.metrics_flags, *self.etcd_flags, expect=(3,)
        )
        self.echo(f"   prune refused: {_error_line(why)}")
        self.prove(
            "rotate prune gate",
            "secretkit rotate prune",
            "key1 is kept while older revisions written with it remain",
        )
        self.compact()
        self.secretkit("rotate", "prune", *self.config, *self.metrics_flags, *self.etcd_flags)
        report = self.audit(
            *self.config,
            "--backends",
            self.state.backends_file,
            "--resources",
            "configmaps",
            "--decrypt-check",
            "--fail-on",
            "plaintext,stale,undecryptable",
            expect=(0,),
        )
        keys = sorted({row["key"] for row in report["summary"] if row["objects"]})
        providers = self.providers_of("configmaps")
        if keys != ["key2"] or "aesgcm:key1" in providers:
            raise click.ClickException(f"rotation incomplete: values {keys}, config {providers}")
        self.prove(
            "rotate",
            "secretkit rotate",
            f"all {report['totals']['objects']} ConfigMaps are under {keys}; the config "
            f"lists {providers}",
        )

    def summary(self) -> None:
        """The closing table."""
        click.secho("\n== what this proved", bold=True)
        width = max(len(p.step) for p in self.proofs)
        for proof in self.proofs:
            self.echo(f" {proof.step:<{width}}  {proof.proved}")


def _error_line(stderr: str) -> str:
    """The ``error: ...`` line of a refused command's stderr."""
    for line in stderr.splitlines():
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    return stderr.strip().splitlines()[-1] if stderr.strip() else "(no message)"


def initial_config() -> bytes:
    """The starting EncryptionConfiguration with a fresh ConfigMaps key."""
    import base64
    import os

    return INITIAL_CONFIG % base64.b64encode(os.urandom(32))
