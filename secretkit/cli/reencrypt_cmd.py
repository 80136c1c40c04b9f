"""``secretkit reencrypt``: rewrite every stored object with the current write key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option
from secretkit.errors import SafetyError, SecretkitError, UndecryptableError, UsageError

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


def _kms_key_ids(config: Any, services: Any) -> dict[str, str]:
    """Every kms v2 provider's current key_id; an unhealthy plugin stops the run."""
    from secretkit.kmsapi.services import current_key_ids

    return current_key_ids(config, services, strict=True)[0]


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


def _keys_where(verify: dict[str, Any]) -> str:
    """The first undecryptable etcd keys, for the error's ``where``."""
    keys: list[str] = list(verify.get("undecryptable_keys") or [])
    more = int(verify["undecryptable"]) - len(keys[:3])
    return ", ".join(keys[:3]) + (f" (and {more} more)" if more > 0 else "")


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
              "resources is stale or unreadable (needs etcd access and --config).")
@click.option("--dry-run", is_flag=True, help="Count what would be rewritten; write nothing.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint file: created if missing, continued if present.")
@click.option("--page-size", type=click.IntRange(1, 10000), default=500, show_default=True,
              help="Objects per list page (API) or range page (etcd).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Parallel workers.")
@click.option("--qps", type=float, default=500.0, show_default=True,
              help="Client-side API request rate limit (0 = unlimited).")
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
    By default each object is listed (in pages) and replaced unchanged through the
    Kubernetes API with its resourceVersion as precondition: the API server decrypts
    it with its read chain and stores it with its current write key. Conflicts are
    re-read and retried (newer data is never overwritten with older), deleted
    objects are counted as gone, and one failing object does not stop the run.

    \b
    The summary counts: rewritten, unchanged (the API server skipped a no-op),
    skipped_fresh (--only-stale), conflicts_retried/_skipped, gone, failed.
    Exit status: 1 when any object failed or --verify found stale values; 4 when
    --verify found values no provider of the config can read (data-loss risk: a
    rewrite cannot fix them; restore the missing key or the objects).
    """
    from secretkit.reencrypt.runner import RunControl

    control = RunControl(resume=params["resume"], show_progress=params["progress"])
    config_path: Path | None = params["config_path"] or params["from_config"]
    config = None
    if config_path is not None:
        from secretkit.encryption_config import load_encryption_config_file

        config = load_encryption_config_file(config_path)
    explicit = _split(params["resources"])
    from_config: list[str] = []
    if params["from_config"] is not None:
        from secretkit.encryption_config import load_encryption_config_file

        from_config = [
            n for n in _config_resources(load_encryption_config_file(params["from_config"]))
            if n not in explicit
        ]
    if not explicit and not from_config:
        explicit = ["secrets"]
    names = explicit + from_config
    needs_config = params["only_stale"] or params["verify"] or params["via"] == "etcd"
    if needs_config and config is None:
        raise UsageError(
            "this mode needs the EncryptionConfiguration",
            hint="pass --config FILE (the same file the API server uses)",
        )
    from secretkit.kmsapi.services import open_kms_services, parse_kms_sockets

    services = open_kms_services(
        params["backends"], parse_kms_sockets(params["kms_sockets"]), config_endpoints=True
    )
    try:
        if params["via"] == "etcd":
            summary = _run_etcd(params, names, config, services, control)
        else:
            summary = _run_api(params, explicit, from_config, config, services, control)
    finally:
        services.close()
    if params["output"] == "json":
        emit_json(summary.to_json())
    else:
        click.echo(summary.to_text())
    failed = summary.totals()["failed"]
    verify = summary.verify
    # checked before the failures: in etcd mode an unreadable value is also a failed
    # object, and "run again" is the wrong advice for it
    if verify is not None and verify.get("undecryptable"):
        raise UndecryptableError(
            f"{verify['undecryptable']} stored value(s) cannot be read by any provider "
            f"of {config_path} (data-loss risk; a rewrite cannot fix them)"
            + (f"; {failed} object(s) also failed" if failed else ""),
            where=_keys_where(verify),
            hint="add the missing key or provider back to the config (removed too early?) "
            "or restore these objects from a backup; the summary lists every key "
            "(verify.undecryptable_keys with -o json), `secretkit audit` explains each",
        )
    if failed:
        raise SecretkitError(
            f"{failed} object(s) could not be re-encrypted",
            hint="see the summary; fix the cause and run again (only stale objects change)",
        )
    if verify is not None and verify.get("verdict") != "ok":
        raise SecretkitError(
            f"{verify.get('stale')} stale value(s) remain after the run",
            hint="run again (objects written by an API server with an older config?)",
        )


def _run_api(
    params: dict[str, Any],
    explicit: list[str],
    from_config: list[str],
    config: Any,
    services: Any,
    control: Any,
) -> Any:
    from secretkit.kube.client import KubeClient, KubeConnectOptions
    from secretkit.kube.discovery import discover, resolve
    from secretkit.reencrypt.api_engine import ApiRunOptions
    from secretkit.reencrypt.runner import run_api
    from secretkit.reencrypt.verify import verify_no_stale

    options = KubeConnectOptions(
        kubeconfig=params["kubeconfig"],
        context=params["kube_context"],
        pool_size=params["concurrency"] + 2,
    )
    with ExitStack() as stack:
        client = stack.enter_context(KubeClient(options))
        available = discover(client)
        resources = resolve(explicit, available)
        # a config may name resources this cluster does not serve (CRD not installed)
        missing: list[str] = []
        for res in resolve(from_config, available, missing=missing):
            if res not in resources:
                resources.append(res)
        if missing:
            click.echo(
                "warning: not served by this cluster, skipped: " + ", ".join(missing), err=True
            )
        if not resources:
            raise UsageError(
                "no resource to re-encrypt", where=",".join(explicit + from_config)
            )
        key_ids: dict[str, str] = {}
        store = None
        if params["only_stale"] or params["verify"]:
            key_ids = _kms_key_ids(config, services)
            store = stack.enter_context(_etcd(params))
        summary = run_api(
            client,
            resources,
            options=ApiRunOptions(
                page_size=params["page_size"],
                concurrency=params["concurrency"],
                dry_run=params["dry_run"],
            ),
            qps=params["qps"],
            burst=params["burst"],
            control=control,
            stale_source=(
                (store, config, key_ids) if params["only_stale"] and store is not None else None
            ),
            etcd_prefix=params["etcd_prefix"],
        )
        if params["verify"] and store is not None and not params["dry_run"]:
            summary.verify = verify_no_stale(
                store, resources, config, kms_key_ids=key_ids, prefix=params["etcd_prefix"]
            )
        return summary


def _etcd_resources(names: list[str]) -> list[Any]:
    from secretkit.kube.discovery import ApiResource, split_name

    out: list[ApiResource] = []
    for name in names:
        resource, group = split_name(name.strip().lower())
        out.append(ApiResource(group, resource, "", "", True))
    return out


def _run_etcd(
    params: dict[str, Any],
    names: list[str],
    config: Any,
    services: Any,
    control: Any,
) -> Any:
    from secretkit.reencrypt.etcd_engine import EtcdRunOptions, EtcdScope
    from secretkit.reencrypt.runner import run_etcd, scopes_for
    from secretkit.reencrypt.verify import verify_no_stale
    from secretkit.transformers import build_transformers

    if params["only_stale"]:
        raise UsageError(
            "--only-stale is implied by --via etcd (only stale values are rewritten)",
            hint="drop --only-stale, or pass --force to rewrite fresh values too",
        )
    if not params["dry_run"]:
        _confirm_etcd_mode(params["acknowledged"])
    prefix = params["etcd_prefix"]
    # a KMS outage would fail every object one by one: check every plugin first
    _kms_key_ids(config, services)
    if any(n.startswith("*.") for n in names):
        # a wildcard covers keys of unknown paths: scan everything, the chain decides
        scopes = [EtcdScope("*", prefix.rstrip("/") + "/", True)]
        resources = []
    else:
        resources = _etcd_resources(names)
        scopes = scopes_for(resources, prefix)
    transformers = build_transformers(config, services.factory)
    with _etcd(params) as store:
        summary = run_etcd(
            store,
            transformers,
            scopes,
            options=EtcdRunOptions(
                page_size=params["page_size"],
                concurrency=params["concurrency"],
                dry_run=params["dry_run"],
                force=params["force"],
                etcd_prefix=prefix,
            ),
            control=control,
            config=config,
        )
        if params["verify"] and not resources:
            click.echo("warning: --verify needs explicit --resources with --via etcd "
                       "and a wildcard; skipped", err=True)
        if params["verify"] and resources and not params["dry_run"]:
            key_ids = _kms_key_ids(config, services)
            summary.verify = verify_no_stale(
                store, resources, config, kms_key_ids=key_ids, prefix=prefix
            )
        return summary
