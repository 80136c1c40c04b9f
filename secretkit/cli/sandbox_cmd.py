"""``secretkit sandbox``: a one-machine rehearsal cluster (etcd, OpenBao, KMS plugin, API).

Thin click layer over :mod:`secretkit.sandbox`.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import click

from secretkit.cli.output import emit_json, output_option, schema_id
from secretkit.cli.params import Duration, read_secret_file

DEFAULT_DIR = ".secretkit-sandbox"
#: most objects one `sandbox seed` creates (a rehearsal, not a load test of etcd)
MAX_SEED = 1_000_000

_dir_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR, show_default=True, envvar="SECRETKIT_SANDBOX_DIR",
    help="Sandbox directory (state, logs, kubeconfig, configs). [env: SECRETKIT_SANDBOX_DIR]",
)


@click.group()
def sandbox() -> None:
    """Run a rehearsal cluster on this machine (127.0.0.1 only).

    A real etcd, an OpenBao dev server with a transit key, the secretkit KMS v2
    plugin and a Kubernetes-API stand-in for Secrets and ConfigMaps that stores
    them in etcd exactly as kube-apiserver does. Rehearse enabling encryption,
    key rotation, re-encryption and audits before touching a real cluster.

    \b
      secretkit sandbox up --dir /tmp/sb --encryption kms
      export KUBECONFIG=/tmp/sb/kubeconfig
      secretkit sandbox seed --dir /tmp/sb --secrets 500
      kubectl get secrets -A
      secretkit sandbox down --dir /tmp/sb --purge

    The API stand-in is not Kubernetes: it serves Secrets, ConfigMaps and a
    namespace list, nothing else.
    """


@sandbox.command()
@_dir_option
@click.option("--encryption", type=click.Choice(["none", "kms", "aesgcm", "aescbc", "secretbox"]),
              default="none", show_default=True,
              help="Initial EncryptionConfiguration: none (identity), kms (KMS v2 through the "
                   "plugin and OpenBao transit) or a local-key provider with a fresh key.")
@click.option("--kms-poll-interval", type=Duration(), default="60s", show_default=True,
              help="Time between KMS Status polls while healthy (apiserver: 1m).")
@click.option("--kms-unhealthy-grace", type=Duration(), default="3m", show_default=True,
              help="Refuse kms v2 writes once the plugin has been unhealthy this long "
                   "(apiserver: 3m).")
@click.option("--reload-interval", type=Duration(), default=None,
              help="Enable automatic config reload, re-reading the file this often (e.g. 10s).")
@click.option("--plugin-status-ttl", type=Duration(), default="30s", show_default=True,
              help="How long the plugin caches a healthy Status (lower: key rotations show "
                   "up sooner).")
@output_option()
def up(directory: Path, encryption: str, kms_poll_interval: float, kms_unhealthy_grace: float,
       reload_interval: float | None, plugin_status_ttl: float, output: str) -> None:
    """Start a sandbox and write its kubeconfig, configs and state file."""
    from secretkit.sandbox.orchestrate import SandboxOptions
    from secretkit.sandbox.orchestrate import up as do_up

    state = do_up(directory, SandboxOptions(
        encryption=encryption, kms_poll_healthy=kms_poll_interval,
        kms_unhealthy_grace=kms_unhealthy_grace, reload_interval=reload_interval,
        plugin_status_ttl=plugin_status_ttl))
    if output == "json":
        emit_json(state.to_json(), schema=schema_id("sandbox.up"))
        return
    click.echo(f"sandbox up in {state.dir} (encryption: {state.encryption})")
    click.echo(f"  API stand-in   {state.api_url}")
    click.echo(f"  etcd           {state.etcd_endpoint}")
    click.echo(f"  OpenBao        {state.openbao_address} (transit key {state.transit_key})")
    click.echo(f"  KMS plugin     unix://{state.plugin_socket}")
    click.echo(f"  config         {state.encryption_config}")
    click.echo(f"  backends file  {state.backends_file}")
    click.echo(f"\n  export KUBECONFIG={state.kubeconfig}")
    click.echo(f"  export ETCDCTL_ENDPOINTS={state.etcd_endpoint}")


@sandbox.command()
@_dir_option
@output_option()
def status(directory: Path, output: str) -> None:
    """Show the health of every sandbox part (exit 5 when something is unhealthy)."""
    from secretkit.errors import DependencyError
    from secretkit.sandbox.orchestrate import status as do_status
    from secretkit.sandbox.state import SandboxState

    report = do_status(SandboxState.load(directory))
    if output == "json":
        emit_json(report, schema=schema_id("sandbox.status"))
    else:
        click.echo(f"sandbox {report['dir']} (encryption: {report['encryption']})")
        for name, part in report["parts"].items():
            mark = "ok  " if part.get("healthy") else "FAIL"
            click.echo(f"  {mark} {name:<11} pid {part.get('pid', '-')}  {part.get('detail', '')}")
    if not report["healthy"]:
        raise DependencyError("some sandbox parts are unhealthy", where=str(directory),
                             hint="see the logs in the sandbox directory")


@sandbox.command()
@_dir_option
@click.option("--secrets", "n_secrets", type=click.IntRange(0, MAX_SEED), default=100,
              show_default=True)
@click.option("--configmaps", "n_configmaps", type=click.IntRange(0, MAX_SEED), default=0,
              show_default=True)
@click.option("--namespace", default="default", show_default=True)
@click.option("--prefix", default="seed", show_default=True, help="Object name prefix.")
@click.option("--workers", type=click.IntRange(1, 128), default=16, show_default=True)
@output_option()
def seed(directory: Path, n_secrets: int, n_configmaps: int, namespace: str, prefix: str,
         workers: int, output: str) -> None:
    """Create Secrets and ConfigMaps through the API stand-in (existing names are kept)."""
    from secretkit.sandbox.seed import seed as do_seed
    from secretkit.sandbox.state import SandboxState

    state = SandboxState.load(directory)
    token = read_secret_file(Path(state.token_file), what="the sandbox token file")
    total = n_secrets + n_configmaps
    start = time.monotonic()
    if output == "text" and sys.stderr.isatty():
        with click.progressbar(length=total, label="seeding", file=sys.stderr) as bar:
            result = do_seed(state.api_url, token, secrets=n_secrets, configmaps=n_configmaps,
                             namespace=namespace, prefix=prefix, workers=workers,
                             progress=bar.update, ca_file=state.ca_file)
    else:
        result = do_seed(state.api_url, token, secrets=n_secrets, configmaps=n_configmaps,
                         namespace=namespace, prefix=prefix, workers=workers,
                         ca_file=state.ca_file)
    seconds = time.monotonic() - start
    if output == "json":
        emit_json({"secrets": result.secrets, "configmaps": result.configmaps,
                   "existed": result.existed, "namespace": namespace,
                   "seconds": round(seconds, 3)}, schema=schema_id("sandbox.seed"))
    else:
        click.echo(f"seeded {result.secrets} secrets and {result.configmaps} configmaps in "
                   f"{namespace} ({result.existed} already existed) in {seconds:.1f}s")


@sandbox.command()
@_dir_option
@click.option("--purge", is_flag=True, help="Also delete the sandbox directory (data, logs).")
def down(directory: Path, purge: bool) -> None:
    """Stop every sandbox process by PID."""
    from secretkit.sandbox.orchestrate import down as do_down
    from secretkit.sandbox.state import SandboxState

    names = do_down(SandboxState.load(directory), purge=purge)
    click.echo(f"stopped {', '.join(names) or 'nothing'}" + (" and removed the directory"
                                                              if purge else ""))


@sandbox.command("restart-apiserver")
@_dir_option
@click.option("--encryption-provider-config", "config", type=click.Path(
    exists=True, dir_okay=False, path_type=Path),
    help="Install this EncryptionConfiguration (copied over the sandbox's config) first.")
def restart_apiserver(directory: Path, config: Path | None) -> None:
    """Restart the API stand-in, optionally with a new EncryptionConfiguration.

    This is what a control-plane node does in a rotation runbook: change the
    config file, restart kube-apiserver.
    """
    from secretkit.sandbox.orchestrate import restart_apiserver as do_restart
    from secretkit.sandbox.state import SandboxState

    state = do_restart(SandboxState.load(directory), config)
    click.echo(f"API stand-in restarted at {state.api_url} with {state.encryption_config}")


@sandbox.command()
@click.option("--etcd-servers", required=True, help="Comma-separated etcd endpoints.")
@click.option("--etcd-cafile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None)
@click.option("--etcd-certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None)
@click.option("--etcd-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None)
@click.option("--etcd-prefix", default="/registry", show_default=True)
@click.option("--encryption-provider-config", "config", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--encryption-provider-config-automatic-reload", "auto_reload", is_flag=True,
              help="Re-read the config periodically; a config that fails to load is ignored.")
@click.option("--reload-interval", type=Duration(), default="60s", show_default=True,
              help="Time between re-reads with automatic reload (apiserver: 1m).")
@click.option("--bind", default="127.0.0.1:6443", show_default=True,
              help="Loopback HOST:PORT to serve on (port 0 picks a free one).")
@click.option("--token-file", required=True, type=click.Path(exists=True, dir_okay=False,
                                                             path_type=Path),
              help="Bearer tokens, one per line (or the apiserver's token CSV).")
@click.option("--tls-cert-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Serve HTTPS with this PEM certificate (kubectl only sends "
              "tokens over HTTPS).")
@click.option("--tls-private-key-file", type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path), default=None)
@click.option("--kms-poll-interval", type=Duration(), default="1m", show_default=True)
@click.option("--kms-unhealthy-poll-interval", type=Duration(), default="10s", show_default=True)
@click.option("--kms-unhealthy-grace", type=Duration(), default="3m", show_default=True,
              help="Refuse kms v2 writes once the plugin has been unhealthy this long.")
def apiserver(etcd_servers: str, etcd_cafile: Path | None, etcd_certfile: Path | None,
              etcd_keyfile: Path | None, etcd_prefix: str, config: Path, auto_reload: bool,
              reload_interval: float, bind: str, token_file: Path, tls_cert_file: Path | None,
              tls_private_key_file: Path | None, kms_poll_interval: float,
              kms_unhealthy_poll_interval: float, kms_unhealthy_grace: float) -> None:
    """Serve the Kubernetes-API stand-in for Secrets/ConfigMaps in the foreground.

    Objects are stored in etcd exactly as kube-apiserver stores them, through
    the EncryptionConfiguration's providers. Stops on SIGTERM/SIGINT.
    """
    from secretkit.etcd import EtcdConfig
    from secretkit.sandbox.apiserver import (
        ApiServer,
        ApiServerConfig,
        EncryptionOptions,
        parse_bind,
        read_token_file,
    )

    etcd = EtcdConfig(endpoints=tuple(e.strip() for e in etcd_servers.split(",") if e.strip()),
                      cacert=etcd_cafile, cert=etcd_certfile, key=etcd_keyfile)
    options = EncryptionOptions(poll_healthy=kms_poll_interval,
                                poll_unhealthy=kms_unhealthy_poll_interval,
                                unhealthy_grace=kms_unhealthy_grace,
                                reload_interval=reload_interval if auto_reload else None)
    server = ApiServer(ApiServerConfig(etcd=etcd, encryption_config=config,
                                       tokens=read_token_file(token_file), bind=parse_bind(bind),
                                       etcd_prefix=etcd_prefix, options=options,
                                       tls_cert=tls_cert_file, tls_key=tls_private_key_file))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        click.echo(f"serving on {server.url} (config {server.encryption.config.hash})", err=True)
        stop.wait()
    click.echo("stopped", err=True)
