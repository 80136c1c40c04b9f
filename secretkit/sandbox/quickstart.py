"""Quickstart: watch Secrets go from plaintext in etcd to KMS v2 envelope encryption.

Run ``scripts/quickstart`` (or ``python -m secretkit.sandbox.quickstart``). It starts
a sandbox with encryption off, seeds Secrets, shows that etcd holds them in
plaintext, switches the EncryptionConfiguration to KMS v2 (OpenBao transit through
the secretkit plugin), restarts the API stand-in and shows that new writes are
encrypted while old ones stay plaintext until re-encrypted. Then it cleans up.

Steps are plain functions in :data:`STEPS`; later steps (re-encrypt, rotate, audit)
append to that list.
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

from secretkit.etcd import EtcdClient, EtcdConfig
from secretkit.formats import classify_value
from secretkit.sandbox import configs
from secretkit.sandbox.orchestrate import SandboxOptions, down, restart_apiserver, up
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
    _title(f"1. seed {qs.seed_count} Secrets through the Kubernetes API (encryption: none)")
    start = time.monotonic()
    seed(qs.state.api_url, qs.token, secrets=qs.seed_count, configmaps=0,
         ca_file=qs.state.ca_file)
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


def step_enable_kms(qs: Quickstart) -> None:
    """Switch the config to KMS v2 and restart the API stand-in."""
    _title("3. enable KMS v2 encryption (OpenBao transit via the secretkit plugin)")
    kms_endpoint = f"unix://{qs.state.plugin_socket}"
    new_config = Path(qs.state.dir) / "encryption-config.kms.yaml"
    new_config.write_bytes(configs.encryption_config("kms", kms_endpoint=kms_endpoint))
    new_config.chmod(0o600)
    click.echo(f"   providers for secrets, configmaps: kms v2 {configs.KMS_PROVIDER_NAME!r} "
               "(writes), identity (reads old plaintext)")
    restart_apiserver(qs.state, new_config)
    qs.state.encryption = "kms"
    qs.state.save()
    click.echo(f"   API stand-in restarted with {qs.state.encryption_config}")


def step_new_writes_encrypted(qs: Quickstart) -> None:
    """Write again and show new values are KMS v2 envelopes, old ones untouched."""
    _title("4. write a new Secret and look at etcd again")
    name = DEMO_SECRET + "-after"
    qs.create_demo_secret(name)
    value = qs.raw_value(name)
    stored = classify_value(value)
    key_id = stored.kms_v2.key_id if stored.kms_v2 else "-"
    click.echo(f"   /registry/secrets/default/{name}: {stored.provider.value}, prefix "
               f"{stored.prefix}{stored.name}:, key_id {key_id}")
    click.echo(f"   demo password visible in etcd: {DEMO_PASSWORD.encode() in value}")
    _show_providers(qs)
    if stored.kms_v2 is not None and DEMO_PASSWORD.encode() not in value:
        qs.proven.append("after the switch, new writes are KMS v2 envelopes: AES-GCM data "
                         "under a seed that only the KMS (OpenBao transit) can unwrap")
    if DEMO_PASSWORD.encode() in qs.raw_value(DEMO_SECRET):
        qs.proven.append("changing the config does NOT touch existing data: the old Secrets "
                         "stay plaintext until each one is rewritten (re-encrypted)")


#: the quickstart's steps, in order (later work streams append re-encrypt/rotate/audit)
STEPS: list[Callable[[Quickstart], None]] = [
    step_seed,
    step_plaintext,
    step_enable_kms,
    step_new_writes_encrypted,
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
    state = up(root / "sandbox" if temp else root, SandboxOptions(encryption="none"))
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
    _title("what this proved")
    for fact in qs.proven:
        click.echo(f" - {fact}")
    click.echo(f"\ndone in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":  # pragma: no cover
    main()
