"""A click group of staged procedure commands (prepare/promote/reencrypt/prune/status).

``secretkit rotate``, ``secretkit encryption enable`` and ``secretkit encryption
disable`` are three instances of this group with different plans.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option
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


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
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
        click.option(
            "--wait-timeout", type=float, default=180.0, show_default=True, help="Seconds."
        ),
        click.option(
            "--yes",
            is_flag=True,
            help="Confirm that every apiserver was restarted with the current config.",
        ),
        output_option(),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _engine(plan: Any, params: dict[str, Any]) -> Any:
    from secretkit.rotation.engine import StageEngine, StageOptions
    from secretkit.rotation.state import default_state_path
    from secretkit.rotation.verify import MetricsEndpoint

    configs = _config_paths(params["configs"])
    token = None
    if params.get("metrics_token_file"):
        from secretkit.fileio import read_file

        raw = read_file(
            Path(params["metrics_token_file"]), what="the metrics token file (--metrics-token-file)"
        )
        token = raw.decode("utf-8", "replace").strip()
    options = StageOptions(
        configs=configs,
        state_path=Path(params["state_path"])
        if params.get("state_path")
        else default_state_path(configs),
        dry_run=params["dry_run"],
        metrics=[
            MetricsEndpoint(url=u, token=token, cafile=params.get("metrics_cacert"))
            for u in params["metrics"]
        ],
        wait_timeout=params["wait_timeout"],
        assume_restarted=params["yes"],
    )
    interactive = sys.stdin.isatty() and params["output"] == "text"

    def echo(message: str) -> None:
        click.echo(message, err=True)

    def ask(message: str) -> bool:
        return click.confirm(message, err=True)

    return StageEngine(plan, options, echo=echo, confirm=ask if interactive else None)


def _render(report: Any, output: str) -> None:
    from dataclasses import asdict

    if output == "json":
        emit_json(asdict(report))
        return
    if report.diff:
        click.echo(report.diff.rstrip("\n"))
    for message in report.messages:
        click.echo(f"note: {message}")
    if report.gate is not None:
        click.echo(
            f"gate: {report.gate['scanned']} stored values scanned, "
            f"{report.gate['blockers']} still need the removed key: OK to prune"
        )
    if report.dry_run:
        click.echo(f"{report.stage}: dry run, nothing written")
    else:
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
) -> click.Group:
    """Build the prepare/promote/reencrypt/prune/status group for one procedure."""

    @click.group(name=name, help=help_text)
    def group() -> None:
        pass

    def prepare(**params: Any) -> None:
        plan = plan_factory(params)
        resources = [r.strip() for r in params["resources"].split(",") if r.strip()]
        report = _engine(plan, params).prepare(resources, params.get("key_name"))
        _render(report, params["output"])

    prepare.__doc__ = (
        "Stage 1: add the new key/provider in a read-only position on every node, so "
        "each apiserver can read what any other may soon write with it."
    )
    prepare_cmd: Any = prepare
    for option in reversed(prepare_options):
        prepare_cmd = option(prepare_cmd)
    prepare_cmd = click.option(
        "--resources",
        default="secrets",
        show_default=True,
        help="Comma-separated resources, exactly as named in the config.",
    )(prepare_cmd)
    group.command("prepare")(_common(prepare_cmd))

    @group.command("promote")
    @_common
    def promote(**params: Any) -> None:
        """Stage 2: make the new key/provider the writer on every node."""
        report = _engine(plan_factory(params), params).promote()
        _render(report, params["output"])

    @group.command(
        "reencrypt",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @_common
    @click.argument("reencrypt_args", nargs=-1, type=click.UNPROCESSED)
    def reencrypt(reencrypt_args: tuple[str, ...], **params: Any) -> None:
        """Stage 3: rewrite every object under the new writer.

        Arguments after ``--`` go to ``secretkit reencrypt`` (e.g. ``-- --kubeconfig F``).
        """
        report = _engine(plan_factory(params), params).reencrypt(list(reencrypt_args))
        _render(report, params["output"])

    @group.command("prune")
    @_common
    @etcd_options
    @click.option(
        "--ignore-history",
        is_flag=True,
        help="Only check the current revision (older revisions etcd still holds may then "
        "become unreadable).",
    )
    @click.option("--prefix", default="/registry", show_default=True, help="etcd key prefix.")
    def prune(**params: Any) -> None:
        """Stage 4: remove the old key/provider, refused while etcd holds anything that needs it."""
        from secretkit.etcd import EtcdClient
        from secretkit.rotation import gates

        etcd_config = etcd_config_from(params)

        def scan(predicate: gates.Predicate, resources: Sequence[str]) -> gates.GateResult:
            with EtcdClient(etcd_config) as client:
                return gates.scan(
                    client,
                    gates.etcd_prefixes_for(resources, params["prefix"]),
                    predicate,
                    include_history=not params["ignore_history"],
                )

        report = _engine(plan_factory(params), params).prune(scan)
        _render(report, params["output"])

    @group.command("status")
    @click.option("--state", "state_path", type=click.Path(dir_okay=False), help="State file.")
    @click.option("--config", "configs", multiple=True, help="Find the state file beside this.")
    @output_option()
    def status(state_path: str | None, configs: tuple[str, ...], output: str) -> None:
        """Show where the procedure stands and what comes next."""
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
                emit_json({"state_file": str(path), "in_progress": False})
            else:
                click.echo(f"no rotation state at {path}: nothing in progress")
            return
        if output == "json":
            emit_json(
                {
                    "state_file": str(path),
                    "in_progress": state.next_stage is not None,
                    **state.to_json(),
                }
            )
            return
        click.echo(f"{state.kind} of {', '.join(state.resources)} ({state.provider_type})")
        if state.new_key_name:
            click.echo(f"  new key: {state.new_key_name}")
        if state.old_key_names:
            click.echo(f"  old keys: {', '.join(state.old_key_names)}")
        for record in state.completed:
            click.echo(f"  done: {record.stage}")
        click.echo(f"  next: {state.next_stage or 'nothing, the procedure is complete'}")

    return group
