"""``secretkit reencrypt``: rewrite every stored object with the current write key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option
from secretkit.errors import SafetyError, UsageError

_EPILOG = """\b
Examples:
  # every Secret, through the API server (uses KUBECONFIG / --kubeconfig)
  secretkit reencrypt
  # several resources, resumable, as JSON
  secretkit reencrypt --resources secrets,configmaps --resume /tmp/re.json -o json
  # every resource the EncryptionConfiguration covers
  secretkit reencrypt --from-config /etc/kubernetes/enc.yaml
  # only what is stale, judged from etcd, then prove nothing stale remains
  secretkit reencrypt --only-stale --verify --config enc.yaml --endpoints https://127.0.0.1:2379 \\
      --cacert ca.crt --cert client.crt --key client.key
  # recovery with the API server stopped: rewrite in etcd directly
  secretkit reencrypt --via etcd --config enc.yaml --backends backends.yaml \\
      --i-understand-the-apiserver-is-stopped

See docs/reencrypt.md for the safety properties and the JSON summary schema.
"""


def _split(values: tuple[str, ...]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _config_resources(config: Any) -> list[str]:
    names: list[str] = []
    for rule in config.rules:
        for name in rule.resources:
            if name not in names:
                names.append(name)
    return names


@contextmanager
def _etcd(params: dict[str, Any]) -> Iterator[Any]:
    from secretkit.etcd import EtcdClient

    with EtcdClient(etcd_config_from(params)) as client:
        yield client


def _confirm_etcd_mode(acknowledged: bool) -> None:
    if acknowledged:
        return
    if not sys.stdin.isatty():
        raise SafetyError(
            "--via etcd rewrites etcd behind the API server's back",
            hint="stop every kube-apiserver (or make sure none can write with an older config), "
            "then pass --i-understand-the-apiserver-is-stopped",
        )
    if not click.confirm(
        "--via etcd writes etcd directly. Is every kube-apiserver stopped?", err=True
    ):
        raise SafetyError("not confirmed", hint="run through the API server instead (default)")


@click.command(
    "reencrypt",
    epilog=_EPILOG,
    context_settings={"max_content_width": 100},
)
@click.option(
    "--via",
    type=click.Choice(["api", "etcd"]),
    default="api",
    show_default=True,
    help="api: replace each object unchanged through the API server (safe while it runs). "
    "etcd: decrypt/encrypt in etcd directly (recovery; API server stopped).",
)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="kubeconfig (default: "
              "$KUBECONFIG, ~/.kube/config, then the in-cluster service account).")
@click.option("--context", "kube_context", help="kubeconfig context to use.")
@click.option(
    "--resources",
    multiple=True,
    help="Comma-separated resources: secrets (default), configmaps, deployments.apps, "
    "widgets.example.com, *.example.com, *.*. Repeatable.",
)
@click.option("-n", "--namespace", help="Only objects of this namespace (cluster-scoped "
              "resources are left out, with a note).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace (the default; "
              "kubectl's spelling, for scripts that pass it).")
@click.option("-l", "--selector", "label_selector", help="Only objects with these labels, a "
              "Kubernetes label selector (app=web,tier!=db). Through the API only, without "
              "--only-stale.")
@click.option(
    "--from-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take every resource an EncryptionConfiguration names (wildcards via discovery).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="EncryptionConfiguration to judge staleness (--only-stale, --verify) and to "
    "decrypt/encrypt with (--via etcd). Defaults to --from-config.",
)
@click.option("--only-stale", is_flag=True, help="Rewrite only objects whose value in etcd is "
              "stale (needs etcd access and --config).")
@click.option("--verify", is_flag=True, help="Afterwards, read etcd and prove no value of the "
              "resources is stale or unreadable (needs etcd access and --config; not with "
              "--dry-run).")
@click.option("--dry-run", is_flag=True, help="Count and list what would be rewritten; write "
              "nothing. Refused with --verify (nothing written, nothing to verify; `secretkit "
              "audit --config FILE` reports what is stale now).")
@click.option("--allow-empty", is_flag=True, help="Pass when no object is found (a namespace "
              "or cluster known to be empty). Without it a run that found nothing fails "
              "(exit 1): a misspelt -n or -l proves nothing, nor does a misspelt "
              "--resources name with --via etcd (no discovery to tell it from a CRD "
              "with no objects; through the API it is a usage error, exit 2).")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint file: created if missing, continued if present.")
@click.option("--page-size", type=click.IntRange(1, 10000), default=500, show_default=True,
              help="Objects per list page (API) or range page (etcd).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Parallel workers.")
@click.option("--qps", type=float, default=0.0, show_default=True,
              help="Client-side request rate cap (0 = none: the in-flight window still "
              "halves on 429/503 and Retry-After, so the API server sets the pace).")
@click.option("--burst", type=click.IntRange(1), default=1000, show_default=True,
              help="Client-side burst size.")
@click.option("--kms-socket", "kms_sockets", multiple=True, metavar="NAME=ENDPOINT",
              help="KMS v2 plugin endpoint for a kms provider (unix:///path). Repeatable.")
@click.option("--backends", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Backends file: use key backends in-process instead of plugins.")
@click.option("--etcd-prefix", default="/registry", show_default=True,
              help="The API server's --etcd-prefix.")
@click.option("--force", is_flag=True, help="--via etcd: rewrite values that are not stale too.")
@click.option("--i-understand-the-apiserver-is-stopped", "acknowledged", is_flag=True,
              help="Required for --via etcd without an interactive confirmation.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress on stderr (a bar on a terminal, log lines otherwise).")
@etcd_options
@output_option()
def reencrypt(**params: Any) -> None:
    """Re-encrypt every stored object with the current write provider.

    \b
    By default each object is listed (metadata only, in pages) and sent an empty
    merge patch through the Kubernetes API: the API server reads it with its read
    chain and, inside its own compare-and-swap, stores it with its current write key,
    so no object travels and no concurrent write can be lost. Resources that refuse
    patches get a GET and a PUT of the very bytes read (resourceVersion guards it).
    Conflicts are retried, deleted objects are counted as gone, and one failing
    object does not stop the run.

    \b
    The summary counts: rewritten, unchanged (the API server skipped a no-op),
    skipped_fresh (--only-stale), conflicts_retried/_skipped, gone, failed.
    Exit status: 1 when any object failed, the run found no object at all (unless
    --allow-empty), or --verify found stale values or read none; 2 bad usage (also
    --dry-run with --verify); 3 the --via etcd gate refused; 4 when --verify found
    values no provider of the config can read (data-loss risk: a rewrite cannot fix
    them; restore the missing key or the objects); 5 when the API server or etcd
    could not be reached.
    """
    from secretkit.kmsapi.services import open_kms_services, parse_kms_sockets
    from secretkit.kube.client import KubeConnectOptions
    from secretkit.reencrypt.request import (
        ReencryptRequest,
        ReencryptWorld,
        iter_names,
        outcome_error,
        run_reencrypt,
    )

    config_path: Path | None = params["config_path"] or params["from_config"]
    config = None
    if config_path is not None:
        from secretkit.config_files import load_encryption_config_file

        config = load_encryption_config_file(config_path)
    explicit = tuple(iter_names(params["resources"]))
    from_config: tuple[str, ...] = ()
    if params["from_config"] is not None:
        from secretkit.config_files import load_encryption_config_file

        from_config = tuple(
            n
            for n in _config_resources(load_encryption_config_file(params["from_config"]))
            if n not in explicit
        )
    request = ReencryptRequest(
        via=params["via"],
        resources=explicit,
        config_resources=from_config,
        config=config,
        config_source=str(config_path) if config_path else None,
        only_stale=params["only_stale"],
        verify=params["verify"],
        dry_run=params["dry_run"],
        force=params["force"],
        page_size=params["page_size"],
        concurrency=params["concurrency"],
        qps=params["qps"],
        burst=params["burst"],
        etcd_prefix=params["etcd_prefix"],
        resume=params["resume"],
        show_progress=params["progress"],
        kube=KubeConnectOptions(kubeconfig=params["kubeconfig"], context=params["kube_context"]),
        namespace=params["namespace"],
        label_selector=params["label_selector"],
        allow_empty=params["allow_empty"],
    )
    if params["namespace"] and params["all_namespaces"]:
        raise UsageError(
            "--namespace and --all-namespaces contradict each other", where="-n/-A"
        )
    request.check()
    stopped = False
    if request.via == "etcd" and not request.dry_run:
        _confirm_etcd_mode(params["acknowledged"])
        stopped = True
    services = open_kms_services(
        params["backends"], parse_kms_sockets(params["kms_sockets"]), config_endpoints=True
    )
    try:
        summary = run_reencrypt(
            request,
            ReencryptWorld(
                kms=services,
                open_etcd=lambda: _etcd(params),
                warn=lambda message: click.echo(f"warning: {message}", err=True),
                apiservers_stopped=stopped,
            ),
        )
    finally:
        services.close()
    if params["output"] == "json":
        emit_json(summary.to_json())
    else:
        click.echo(summary.to_text())
    error = outcome_error(summary, request)
    if error is not None:
        raise error
