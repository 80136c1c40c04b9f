"""A click group of staged procedure commands (prepare/promote/reencrypt/prune/status).

``secretkit rotate``, ``secretkit encryption enable`` and ``secretkit encryption
disable`` are three instances of this group with different plans. The commands only
parse flags and wire adapters (etcd, the Kubernetes API, KMS plugins) into the stage
engine (:mod:`secretkit.rotation.engine`), which does the work in-process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from secretkit.cli.apiserver_options import (
    KUBE_OPTIONS,
    METRICS_CREDENTIAL_OPTIONS,
    PROBE_OPTIONS,
    metrics_endpoints,
    stage_probe,
)
from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option, schema_id
from secretkit.cli.params import Duration, etcd_prefix_option
from secretkit.errors import UsageError

PlanFactory = Callable[[dict[str, Any]], Any]


def _config_paths(values: tuple[str, ...]) -> list[Path]:
    paths: list[Path] = []
    for value in values:
        p = Path(value)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml", ".json"))
            found = [q for q in found if not q.name.startswith("secretkit-")]
            if not found:
                raise UsageError(f"no .yaml/.yml/.json config in directory {p}")
            paths.extend(found)
        else:
            paths.append(p)
    if not paths:
        raise UsageError(
            "no config file given",
            hint="pass --config PATH once per control-plane node (or a directory of them)",
        )
    return paths


def _options(func: Callable[..., Any], options: list[Callable[[Any], Any]]) -> Any:
    for option in reversed(options):
        func = option(func)
    return func


_COMMON = [
    click.option(
        "--config",
        "configs",
        multiple=True,
        required=True,
        help="EncryptionConfiguration file of one control-plane node (repeat per node), "
        "or a directory holding one file per node.",
    ),
    click.option(
        "--state",
        "state_path",
        type=click.Path(dir_okay=False),
        help="Rotation state file (default: secretkit-rotation.json beside the first config).",
    ),
    click.option("--dry-run", is_flag=True, help="Show what would change; write nothing."),
    click.option(
        "--apiserver-metrics",
        "metrics",
        multiple=True,
        help="An apiserver /metrics URL to poll for the loaded config hash (repeat per "
        "apiserver; needs --encryption-provider-config-automatic-reload).",
    ),
    click.option(
        "--metrics-token-file", type=click.Path(dir_okay=False), help="Bearer token file."
    ),
    click.option("--metrics-cacert", type=click.Path(dir_okay=False), help="CA for https."),
    *METRICS_CREDENTIAL_OPTIONS,
    click.option(
        "--wait-timeout",
        type=Duration(),
        default="180s",
        show_default=True,
        help="How long to wait for every apiserver to load the file (--apiserver-metrics).",
    ),
    click.option(
        "--yes",
        is_flag=True,
        help="Confirm that every apiserver was restarted with the current config.",
    ),
    output_option(),
]

#: flags of the stages that read etcd (the reencrypt proof, the prune gate)
_ETCD = [
    etcd_options,
    etcd_prefix_option(),
    click.option(
        "--kms-socket",
        "kms_sockets",
        multiple=True,
        metavar="NAME=ENDPOINT",
        help="KMS v2 plugin of a kms provider, to compare stored key_ids with its current "
        "one (default: the endpoint the config names, when reachable). Repeatable.",
    ),
]

#: flags of the reencrypt stage (the Kubernetes API client and the run)
_REENCRYPT = [
    *KUBE_OPTIONS,
    click.option("--resume", type=click.Path(dir_okay=False, path_type=Path),
                 help="Checkpoint file: created if missing, continued if present."),
    click.option("--page-size", type=click.IntRange(1, 10000), default=500, show_default=True,
                 help="Objects per list page."),
    click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
                 help="Parallel workers."),
    click.option("--qps", type=click.FloatRange(0), default=0.0, show_default=True,
                 help="Client-side request rate cap (0 = none: the in-flight window still "
              "halves on 429/503 and Retry-After, so the API server sets the pace)."),
    click.option("--burst", type=click.IntRange(1), default=1000, show_default=True,
                 help="Client-side burst size."),
    click.option("--progress/--no-progress", default=True, show_default=True,
                 help="Progress on stderr."),
]


def _metrics_endpoints(params: dict[str, Any]) -> list[Any]:
    return metrics_endpoints(params)


def _command_path() -> str:
    """``secretkit encryption enable`` or ``secretkit rotate``: the running group's path."""
    ctx = click.get_current_context(silent=True)
    parent = ctx.parent if ctx is not None else None
    return parent.command_path if parent is not None else "secretkit rotate"


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _engine(plan: Any, params: dict[str, Any], world: Any = None) -> Any:
    from secretkit.rotation.engine import StageEngine, StageOptions, StageWorld
    from secretkit.rotation.state import default_state_path

    configs = _config_paths(params["configs"])
    options = StageOptions(
        configs=configs,
        state_path=Path(params["state_path"])
        if params.get("state_path")
        else default_state_path(configs),
        dry_run=params["dry_run"],
        metrics=_metrics_endpoints(params),
        wait_timeout=params["wait_timeout"],
        assume_restarted=params["yes"],
        etcd_prefix=params.get("etcd_prefix") or "/registry",
        ignore_history=bool(params.get("ignore_history")),
        command=_command_path(),
    )
    interactive = sys.stdin.isatty() and params["output"] == "text"

    def ask(message: str) -> bool:
        return click.confirm(message, err=True)

    world = world or StageWorld()
    world.echo = _echo
    if world.open_etcd is not None:  # the write probe (--probe-apiserver) reads etcd
        world.probe = stage_probe(
            params, open_etcd=world.open_etcd, key_ids=world.kms_key_ids, echo=_echo
        )
    world.confirm = ask if interactive else None
    return StageEngine(plan, options, world)


@contextmanager
def _kms_services(params: dict[str, Any]) -> Iterator[Any]:
    from secretkit.kmsapi.services import open_kms_services, parse_kms_sockets

    services = open_kms_services(
        None, parse_kms_sockets(params.get("kms_sockets") or ()), config_endpoints=True
    )
    try:
        yield services
    finally:
        services.close()


def _etcd_world(params: dict[str, Any], services: Any) -> Any:
    """A StageWorld that reads etcd and asks KMS plugins for their key_ids."""
    from secretkit.etcd import EtcdClient
    from secretkit.kmsapi.services import current_key_ids, kms_v2_providers
    from secretkit.rotation.engine import StageWorld

    etcd_config = etcd_config_from(params)

    def key_ids(config: Any) -> dict[str, str]:
        # a plugin on this host (or one named by --kms-socket) sharpens the judgement
        for provider in kms_v2_providers(config):
            try:
                services.factory(provider)
            except UsageError:
                continue
        found, notes = current_key_ids(config, services)
        for note in notes:
            _echo(f"note: {note}")
        return found

    return StageWorld(open_etcd=lambda: EtcdClient(etcd_config), kms_key_ids=key_ids)


def _render(report: Any, output: str) -> None:
    from dataclasses import asdict

    if output == "json":
        emit_json(asdict(report), schema=schema_id("stage"))
        return
    if report.diff:
        click.echo(report.diff.rstrip("\n"))
    for message in report.messages:
        click.echo(f"note: {message}")
    if report.dry_run:
        click.echo(f"{report.stage}: dry run, nothing written")
        return
    for name in report.changed_files:
        click.echo(f"wrote {name} (0600); backup: see {name}.bak-{report.stage}-*")
    click.echo(
        f"{report.stage}: done. "
        + (f"Next stage: {report.next_stage}" if report.next_stage else "Procedure complete.")
    )


def make_stage_group(
    name: str,
    help_text: str,
    plan_factory: PlanFactory,
    prepare_options: list[Callable[[Any], Any]],
    *,
    check_plugin: bool = False,
) -> click.Group:
    """Build the prepare/promote/reencrypt/prune/status group for one procedure."""

    @click.group(name=name, help=help_text)
    def group() -> None:
        pass

    def prepare(**params: Any) -> None:
        plan = plan_factory(params)
        resources = [r.strip() for r in params["resources"].split(",") if r.strip()]
        checker = None
        if check_plugin and not params.get("skip_plugin_check"):
            checker = _plugin_status
        report = _engine(plan, params).prepare(
            resources, params.get("key_name"), check_plugin=checker
        )
        _render(report, params["output"])

    prepare.__doc__ = (
        "Stage 1: add the new key/provider in a read-only position on every node, so "
        "each apiserver can read what any other may soon write with it. A stage edits "
        "whole rules: --resources must name every resource of the rules it selects."
    )
    extra = list(prepare_options)
    if check_plugin:
        extra.append(
            click.option(
                "--skip-plugin-check",
                is_flag=True,
                help="With --provider kms: do not ask the plugin for its Status before "
                "writing its endpoint (offline preparation).",
            )
        )
    prepare_cmd = _options(prepare, extra)
    prepare_cmd = click.option(
        "--resources",
        default="secrets",
        show_default=True,
        help="Comma-separated resources, exactly as named in the config; every resource "
        "of the selected rules (e.g. secrets,configmaps for a shared rule, or *.*).",
    )(prepare_cmd)
    group.command("prepare")(_options(prepare_cmd, _COMMON))

    def promote(**params: Any) -> None:
        """Stage 2: make the new key/provider the writer on every node."""
        with _kms_services(params) as services:
            world = _etcd_world(params, services)
            report = _engine(plan_factory(params), params, world).promote()
        _render(report, params["output"])

    group.command("promote")(_options(promote, [*_COMMON, *_ETCD, *KUBE_OPTIONS, *PROBE_OPTIONS]))

    def reencrypt(extra_args: tuple[str, ...], **params: Any) -> None:
        if extra_args:
            raise UsageError(
                "arguments after `--` are no longer passed to `secretkit reencrypt`",
                where=" ".join(extra_args[:3]),
                hint="give them to this stage directly: --kubeconfig, --context, --resume, "
                "--concurrency, --qps (see --help)",
            )
        from secretkit.kube.client import KubeConnectOptions
        from secretkit.reencrypt.request import ReencryptRequest, ReencryptWorld, run_reencrypt

        with _kms_services(params) as services:
            world = _etcd_world(params, services)
            etcd_opener = world.open_etcd

            def run(request: ReencryptRequest) -> Any:
                return run_reencrypt(
                    request,
                    ReencryptWorld(
                        kms=services,
                        open_etcd=etcd_opener,
                        warn=lambda m: _echo(f"warning: {m}"),
                    ),
                )

            world.reencrypt = run
            world.reencrypt_template = ReencryptRequest(
                page_size=params["page_size"],
                concurrency=params["concurrency"],
                qps=params["qps"],
                burst=params["burst"],
                resume=params["resume"],
                show_progress=params["progress"],
                kube=KubeConnectOptions(
                    kubeconfig=params["kubeconfig"], context=params["kube_context"]
                ),
            )
            report = _engine(plan_factory(params), params, world).reencrypt()
        _render(report, params["output"])

    reencrypt.__doc__ = (
        "Stage 3: rewrite every object of the edited rules through the API server, then "
        "prove from etcd that each is written by the new writer (fails otherwise, e.g. "
        "when the apiservers do not run the promoted file yet)."
    )
    reencrypt_cmd = click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)(reencrypt)
    reencrypt_cmd = _options(reencrypt_cmd, [*_COMMON, *_ETCD, *_REENCRYPT, *PROBE_OPTIONS])
    group.command(
        "reencrypt",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )(reencrypt_cmd)

    def prune(**params: Any) -> None:
        with _kms_services(params) as services:
            world = _etcd_world(params, services)
            report = _engine(plan_factory(params), params, world).prune()
        _render(report, params["output"])

    prune.__doc__ = (
        "Stage 4: remove the old key/provider, refused while any value under the etcd "
        "prefix (or an older revision etcd holds) would be unreadable without it."
    )
    prune_cmd = click.option(
        "--ignore-history",
        is_flag=True,
        help="Only judge the current revision (older revisions etcd still holds may then "
        "become unreadable).",
    )(prune)
    group.command("prune")(
        _options(prune_cmd, [*_COMMON, *_ETCD, *KUBE_OPTIONS, *PROBE_OPTIONS])
    )

    @group.command("status")
    @click.option("--state", "state_path", type=click.Path(dir_okay=False), help="State file.")
    @click.option("--config", "configs", multiple=True, help="Find the state file beside this.")
    @output_option()
    def status(state_path: str | None, configs: tuple[str, ...], output: str) -> None:
        """Show where the procedure stands and what comes next."""
        _status(state_path, configs, output)

    @group.command("clean-backups")
    @click.option("--config", "configs", multiple=True, required=True,
                  help="A config file whose .bak-* copies to delete (repeat per node).")
    @click.option("--yes", is_flag=True, help="Delete without asking.")
    @click.option("--dry-run", is_flag=True, help="List what would be deleted.")
    @output_option()
    def clean_backups(configs: tuple[str, ...], yes: bool, dry_run: bool, output: str) -> None:
        """Delete the .bak-<stage>-* copies the stages left (they hold removed keys)."""
        _clean_backups(configs, yes=yes, dry_run=dry_run, output=output)

    return group


def _plugin_status(endpoint: str) -> str:
    """Ask the plugin at ``endpoint`` for its Status; its key_id, or a clear error."""
    from secretkit.errors import SafetyError
    from secretkit.kmsapi import GrpcKMSService

    plugin = GrpcKMSService(endpoint, timeout=5.0)
    try:
        status = plugin.status()
    except Exception as exc:  # any failure: the endpoint must not go into the config
        what = getattr(exc, "what", type(exc).__name__)
        raise SafetyError(
            f"no KMS plugin answers Status at {endpoint} ({what})",
            where="--kms-endpoint",
            hint="start the plugin on every control-plane node first (docs/deploy/), or "
            "pass --skip-plugin-check to prepare the config offline",
        ) from None
    finally:
        plugin.close()
    if not status.healthy or not status.key_id:
        raise SafetyError(
            f"the KMS plugin at {endpoint} is not healthy ({status.healthz or 'no key_id'})",
            where="--kms-endpoint",
            hint="fix the plugin's backend first (`secretkit kms status`), or pass "
            "--skip-plugin-check to prepare the config offline",
        )
    return status.key_id


def _status(state_path: str | None, configs: tuple[str, ...], output: str) -> None:
    from secretkit.rotation.state import default_state_path, load_state

    if state_path is None:
        if not configs:
            raise UsageError("pass --state FILE or --config PATH")
        path = default_state_path(_config_paths(configs))
    else:
        path = Path(state_path)
    state = load_state(path)
    if state is None:
        if output == "json":
            emit_json(
                {"state_file": str(path), "in_progress": False}, schema=schema_id("stage.status")
            )
        else:
            click.echo(f"no rotation state at {path}: nothing in progress")
        return
    if output == "json":
        emit_json(
            {
                "state_file": str(path),
                "in_progress": state.next_stage is not None or state.pending is not None,
                **state.to_json(),
            },
            schema=schema_id("stage.status"),
        )
        return
    click.echo(f"{state.kind} of {', '.join(state.resources)} ({state.provider_type})")
    if state.new_key_name:
        click.echo(f"  new key: {state.new_key_name}")
    if state.old_key_names:
        click.echo(f"  old keys: {', '.join(state.old_key_names)}")
    for record in state.completed:
        click.echo(f"  done: {record.stage}")
    if state.pending is not None:
        click.echo(
            f"  interrupted: `{state.pending.stage}` was writing the config files; the next "
            "stage command settles it from the files (finishes or undoes it)"
        )
    click.echo(f"  next: {state.next_stage or 'nothing, the procedure is complete'}")


def _clean_backups(configs: tuple[str, ...], *, yes: bool, dry_run: bool, output: str) -> None:
    from secretkit.rotation.engine import backup_files, deletable_backups

    paths = _config_paths(configs)
    found = backup_files(paths) if dry_run else deletable_backups(paths)
    deleted: list[str] = []
    if found and not dry_run:
        if not yes and not (
            sys.stdin.isatty()
            and click.confirm(
                f"delete {len(found)} backup file(s)? They hold removed keys; without them "
                "a value written by a removed key can never be read again",
                err=True,
            )
        ):
            raise UsageError(
                f"not confirmed: {len(found)} backup file(s) kept", hint="pass --yes"
            )
        for name in found:
            Path(name).unlink()
            deleted.append(name)
    if output == "json":
        emit_json(
            {"backups": found, "deleted": deleted, "dry_run": dry_run},
            schema=schema_id("stage.clean-backups"),
        )
        return
    if not found:
        click.echo("no backup files found")
    for name in found:
        click.echo(("would delete " if dry_run else "deleted ") + name)
