"""Quickstart: the whole encryption-at-rest runbook on a one-machine sandbox.

Run ``scripts/quickstart`` (or ``python -m secretkit.sandbox.quickstart``). It starts
a sandbox (etcd, OpenBao, the KMS plugin, the API stand-in) whose Secrets are stored
in plaintext and whose ConfigMaps are under a local aesgcm key, seeds objects, shows
the plaintext in etcd, then runs the real ``secretkit`` commands an operator would:
audit → enable KMS v2 in stages (the prune gate refusing while old plaintext
revisions remain) → audit clean → rotate the transit key → audit shows only the new
key_id → rotate the ConfigMaps' local key (prune gate again) → a table of what was
proved. Then it cleans up.

Steps are plain functions in :data:`STEPS`.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from secretkit.core.formats import classify_value
from secretkit.etcd import EtcdClient, EtcdConfig
from secretkit.sandbox.orchestrate import SandboxOptions, down, up
from secretkit.sandbox.runbook import Runbook, initial_config
from secretkit.sandbox.seed import seed
from secretkit.sandbox.state import SandboxState

#: a made-up credential, printed on purpose to show what plaintext storage means
DEMO_PASSWORD = "quickstart-not-a-real-password"  # noqa: S105 - fake, shown on purpose
DEMO_SECRET = "quickstart-demo"  # noqa: S105 - an object name


@dataclass
class Quickstart:
    """What the steps share: the sandbox, its token and a log of proven facts."""

    state: SandboxState
    seed_count: int
    proven: list[str] = field(default_factory=list)

    @property
    def runbook(self) -> Runbook:
        """The CLI-driven runbook steps on this sandbox (created on first use)."""
        if self._runbook is None:
            self._runbook = Runbook(self.state)
        return self._runbook

    _runbook: Runbook | None = None

    @property
    def token(self) -> str:
        return Path(self.state.token_file).read_text().strip()

    def etcd(self) -> EtcdClient:
        return EtcdClient(EtcdConfig(endpoints=(self.state.etcd_endpoint,)))

    def providers(self) -> Counter[str]:
        """How many Secrets in etcd each provider wrote (from the bytes alone)."""
        counts: Counter[str] = Counter()
        with self.etcd() as etcd:
            for page in etcd.range_pages(b"/registry/secrets/"):
                for kv in page:
                    stored = classify_value(kv.value)
                    label = stored.provider.value
                    if stored.kms_v2 is not None:
                        label += f" (key_id {stored.kms_v2.key_id})"
                    counts[label] += 1
        return counts

    def create_demo_secret(self, name: str) -> None:
        import http.client
        import ssl

        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "data": {"password": base64.b64encode(DEMO_PASSWORD.encode()).decode()}}
        port = self.state.api_port
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=30,
            context=ssl.create_default_context(cafile=self.state.ca_file))
        try:
            conn.request("POST", "/api/v1/namespaces/default/secrets", json.dumps(body),
                         {"Authorization": f"Bearer {self.token}",
                          "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status not in (201, 409):
                raise click.ClickException(f"creating {name} failed: HTTP {resp.status}")
        finally:
            conn.close()

    def raw_value(self, name: str) -> bytes:
        with self.etcd() as etcd:
            kv = etcd.get(f"/registry/secrets/default/{name}".encode())
        return kv.value if kv is not None else b""


def _title(text: str) -> None:
    click.echo("")
    click.secho(f"== {text}", bold=True)


def _show_providers(qs: Quickstart) -> None:
    for label, count in sorted(qs.providers().items()):
        click.echo(f"   {count:5d} secrets stored as {label}")


def step_seed(qs: Quickstart) -> None:
    """Seed Secrets through the API while encryption is off."""
    _title(f"1. seed {qs.seed_count} Secrets (stored in plaintext) and "
           f"{max(1, qs.seed_count // 4)} ConfigMaps (aesgcm key1) through the Kubernetes API")
    start = time.monotonic()
    seed(qs.state.api_url, qs.token, secrets=qs.seed_count,
         configmaps=max(1, qs.seed_count // 4), ca_file=qs.state.ca_file)
    qs.create_demo_secret(DEMO_SECRET)
    click.echo(f"   created {qs.seed_count + 1} Secrets in {time.monotonic() - start:.1f}s")


def step_plaintext(qs: Quickstart) -> None:
    """Show that etcd holds the Secrets in plaintext."""
    _title("2. read etcd directly: the Secrets are plaintext protobuf")
    _show_providers(qs)
    value = qs.raw_value(DEMO_SECRET)
    visible = DEMO_PASSWORD.encode() in value
    click.echo(f"   /registry/secrets/default/{DEMO_SECRET} starts with {value[:4]!r} and "
               f"{'CONTAINS' if visible else 'does not contain'} the demo password "
               f"{DEMO_PASSWORD!r}")
    if visible:
        qs.proven.append("without an EncryptionConfiguration anyone who can read etcd (or a "
                         "backup of it) reads every Secret")


def step_audit_plaintext(qs: Quickstart) -> None:
    """The audit finds the plaintext Secrets."""
    qs.runbook.find_plaintext()


def step_enable_kms(qs: Quickstart) -> None:
    """Enable KMS v2 for Secrets with the staged procedure and its gate."""
    qs.runbook.enable_kms()
    value = qs.raw_value(DEMO_SECRET)
    visible = DEMO_PASSWORD.encode() in value
    click.echo(f"   /registry/secrets/default/{DEMO_SECRET} now starts with {value[:15]!r}; "
               f"demo password visible: {visible}")
    if visible:
        raise click.ClickException("the demo Secret is still plaintext after re-encryption")
    qs.proven.append("after the staged enable and re-encryption, the demo Secret's value in "
                     "etcd no longer contains its password (the audits above cover every Secret)")


def step_audit_clean(qs: Quickstart) -> None:
    """Audit with decryption: nothing plaintext, stale or undecryptable."""
    click.secho("\n== audit with --decrypt-check", bold=True)
    qs.runbook.audit_clean("audit")


def step_rotate_kms(qs: Quickstart) -> None:
    """Rotate the transit key, re-encrypt, prove only the new key_id remains."""
    qs.runbook.rotate_kms()
    qs.runbook.audit_clean("audit after rotation")


def step_rotate_local_key(qs: Quickstart) -> None:
    """Rotate the ConfigMaps' aesgcm key with the prune gate."""
    qs.runbook.rotate_local_key()


#: the quickstart's steps, in order (later work streams append re-encrypt/rotate/audit)
STEPS: list[Callable[[Quickstart], None]] = [
    step_seed,
    step_plaintext,
    step_audit_plaintext,
    step_enable_kms,
    step_audit_clean,
    step_rotate_kms,
    step_rotate_local_key,
]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Sandbox directory (default: a new temp dir).")
@click.option("--secrets", "count", type=click.IntRange(1, 100_000), default=200,
              show_default=True, help="How many Secrets to seed.")
@click.option("--keep", is_flag=True, help="Leave the sandbox running at the end.")
def main(directory: Path | None, count: int, keep: bool) -> None:
    """Rehearse enabling KMS v2 encryption at rest on a one-machine sandbox."""
    temp = directory is None
    root = Path(tempfile.mkdtemp(prefix="secretkit-quickstart-")) if temp else directory
    assert root is not None
    click.secho("secretkit quickstart: etcd + OpenBao + KMS plugin + API stand-in on 127.0.0.1",
                bold=True)
    started = time.monotonic()
    state = up(root / "sandbox" if temp else root, SandboxOptions(
        encryption="none", encryption_config=initial_config(), reload_interval=1.0,
        kms_poll_healthy=2.0, kms_poll_unhealthy=2.0, plugin_status_ttl=1.0))
    click.echo(f"   sandbox up in {state.dir} ({time.monotonic() - started:.1f}s)")
    qs = Quickstart(state=state, seed_count=count)
    try:
        for step in STEPS:
            step(qs)
    finally:
        if keep:
            click.echo(f"\nsandbox left running: export KUBECONFIG={state.kubeconfig}; "
                       f"stop it with `secretkit sandbox down --dir {state.dir} --purge`")
        else:
            down(qs.state, purge=True)
            if temp:
                shutil.rmtree(root, ignore_errors=True)
    if qs._runbook is not None:
        qs.runbook.summary()
    for fact in qs.proven:
        click.echo(f" - {fact}")
    click.echo(f"\ndone in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":  # pragma: no cover
    main()
