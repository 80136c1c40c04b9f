"""``secretkit kms``: rotate a KMS v2 key end to end, and show where keys are used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option, schema_id
from secretkit.cli.params import Duration, etcd_prefix_option
from secretkit.errors import ConfigError, DependencyError, ExitCode, UsageError

F = TypeVar("F", bound=Callable[..., Any])


def _backend(path: str, provider: str) -> Any:
    from secretkit.backends import load_backends_file

    backends = load_backends_file(Path(path))
    if provider not in backends:
        raise UsageError(
            f"no backend for kms provider {provider!r} in {path}",
            hint=f"the file defines: {', '.join(sorted(backends)) or 'nothing'}",
        )
    return backends[provider]


def _kms_socket(value: str, provider: str | None = None) -> str:
    """Check ``--kms-socket [NAME=]ENDPOINT`` with the one endpoint parser; the endpoint.

    ``NAME=unix:///path`` is the form ``audit``/``reencrypt`` take; here NAME must be
    the ``--provider`` (a bare endpoint is the plugin of that provider).

    Done first, before the backend, etcd or the plugin is touched, so a form the
    plugin cannot listen on (``unix:@name``, a host part, a relative path) is a usage
    error naming the flag, with the parser's message and hint, as ``audit
    --kms-socket NAME=ENDPOINT`` reports it, not a failed dial later.
    """
    from secretkit.core.encryption_config.endpoint import parse_endpoint

    endpoint = value
    name, sep, rest = value.partition("=")
    if sep and name and not any(c in name for c in "/:"):
        if provider is not None and name != provider:
            raise UsageError(
                f"--kms-socket names provider {name!r}, but --provider is {provider!r}",
                where="--kms-socket",
                hint=f"pass --kms-socket {provider}=ENDPOINT, or the bare endpoint",
            )
        endpoint = rest
    try:
        parse_endpoint(endpoint, where="--kms-socket")
    except ConfigError as exc:
        raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None
    return endpoint


def _provider_options(config_help: str) -> Callable[[F], F]:
    """The flags naming one kms provider, its plugin, backend, config and etcd prefix."""
    options = [
        click.option("--backends", "backends_file", required=True,
                     help="Backends file (YAML)."),
        click.option("--provider", required=True,
                     help="kms provider name in the EncryptionConfiguration."),
        click.option("--kms-socket", required=True, metavar="[NAME=]ENDPOINT",
                     help="The plugin's socket, unix:///path (or PROVIDER=unix:///path)."),
        click.option("--config", "config_path", required=True,
                     type=click.Path(dir_okay=False, path_type=Path), help=config_help),
        etcd_prefix_option(),
    ]

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@click.group()
def kms() -> None:
    """KMS v2 key operations: rotation with proof, and status."""


@kms.command("rotate", context_settings={"ignore_unknown_options": True})
@_provider_options(
    "The EncryptionConfiguration the apiservers run: every rule holding the provider is "
    "re-encrypted (a *.* rule covers every resource)."
)
@click.option(
    "--plugin-timeout",
    type=Duration(),
    default="120s",
    show_default=True,
    envvar="SECRETKIT_KMS_PLUGIN_TIMEOUT",
    show_envvar=True,
    help="How long to wait for the plugin to report the new key_id (its --status-ttl); "
    "a Go duration (90s, 2m) or seconds.",
)
@click.option(
    "--refresh-wait",
    type=Duration(allow_minimum=True),
    default="70s",
    show_default=True,
    envvar="SECRETKIT_KMS_REFRESH_WAIT",
    show_envvar=True,
    help="How long to wait for every apiserver to poll Status (they do every 60s) and "
    "draw a seed under the new key_id before re-encrypting.",
)
@click.option(
    "--retire-old",
    is_flag=True,
    help="After proof, make old key versions undecryptable (Vault/OpenBao). Needs "
    "--ignore-history: this run's re-encryption leaves old values in etcd's history until "
    "compaction; otherwise run `secretkit kms retire` after compaction.",
)
@click.option(
    "--ignore-history",
    is_flag=True,
    help="With --retire-old: only judge current values (older revisions etcd still holds "
    "become unreadable; a restore of one could no longer be read).",
)
@click.option(
    "--to-key",
    help="AWS KMS: move the backend's alias to this key (ARN or id) instead of rotating "
    "in place; in-place AWS rotation keeps the key ARN, so the apiserver would not re-seed.",
)
@click.option(
    "--via",
    type=click.Choice(["api", "etcd"]),
    default="api",
    show_default=True,
    help="How to re-encrypt: through the API server (default), or in etcd directly with "
    "every apiserver stopped (recovery; see `secretkit reencrypt --help`).",
)
@click.option("--i-understand-the-apiserver-is-stopped", "acknowledged", is_flag=True,
              help="Required for --via etcd.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="kubeconfig for the "
              "re-encryption (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--context", "kube_context", help="kubeconfig context to use.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Parallel re-encryption workers.")
@click.option("--qps", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Client-side request rate cap (0 = none: the in-flight window still "
              "halves on 429/503 and Retry-After, so the API server sets the pace).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Re-encryption progress on stderr.")
@click.option(
    "--lease",
    metavar="NAMESPACE/NAME",
    help="Unattended runs: hold this coordination.k8s.io Lease for the whole run, so two "
    "runs (two nodes' timers, or a slow run and the next) never overlap; refused (exit 3) "
    "while another run holds it. E.g. kube-system/secretkit-kms-rotation.",
)
@click.option(
    "--record",
    metavar="NAMESPACE/NAME",
    help="Record each run (when, old -> new key_id, objects rewritten, proof) in this "
    "ConfigMap; `kubectl get cm -n NS NAME -o jsonpath='{.data.last}'` shows the newest.",
)
@click.option(
    "--if-older-than",
    "min_age",
    type=Duration(),
    help="Rotate only when the current key version is at least this old (e.g. 720h), so "
    "a daily job keeps a 30-day policy; younger: nothing happens (exit 0).",
)
@click.option(
    "--metrics-textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write key age and last-rotation metrics here for node_exporter's textfile "
    "collector (0644, atomic).",
)
@etcd_options
@output_option()
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def rotate(extra_args: tuple[str, ...], **params: Any) -> None:
    """Rotate the backend key, wait for plugin and apiservers, re-encrypt, and prove.

    Everything the provider covers in --config is re-encrypted through the API server,
    then etcd is read whole to prove every value of the provider carries the new key_id.

    \b
    Unattended (CronJob, systemd timer; docs/deploy/kms-rotation/):
      secretkit kms rotate ... --lease kube-system/secretkit-kms-rotation \\
          --record kube-system/secretkit-kms-rotations --if-older-than 720h \\
          --metrics-textfile /var/lib/node_exporter/textfile/secretkit-kms.prom
    refuses to start while another run holds the Lease, or while a previous rotation's
    re-encryption is incomplete (values under an older key_id remain).
    """
    if extra_args:
        raise UsageError(
            "arguments after `--` are no longer passed to `secretkit reencrypt`",
            where=" ".join(extra_args[:3]),
            hint="give them to this command directly: --kubeconfig, --context, "
            "--concurrency, --qps (see --help)",
        )
    kms_socket = _kms_socket(params["kms_socket"], params.get("provider"))
    for flag in ("lease", "record"):
        if params[flag]:
            _namespaced(params[flag], f"--{flag}")  # checked before anything is opened
    from secretkit.config_files import load_encryption_config_file
    from secretkit.core.layout import Layout
    from secretkit.etcd import EtcdClient
    from secretkit.kmsapi import GrpcKMSService
    from secretkit.kmsapi.services import KMSServices
    from secretkit.kube.client import KubeConnectOptions
    from secretkit.reencrypt.request import (
        ReencryptRequest,
        ReencryptWorld,
        outcome_error,
        run_reencrypt,
    )
    from secretkit.rotation.kms import KMSRotation

    config = load_encryption_config_file(params["config_path"])
    etcd_config = etcd_config_from(params)

    def echo(message: str) -> None:
        click.echo(message, err=True)

    services = KMSServices(config_endpoints=True)

    def reencrypt(resources: list[str]) -> int:
        request = ReencryptRequest(
            via=params["via"],
            config_resources=tuple(resources),
            config=config,
            config_source=str(params["config_path"]),
            concurrency=params["concurrency"],
            qps=params["qps"],
            etcd_prefix=params["etcd_prefix"],
            show_progress=params["progress"],
            kube=KubeConnectOptions(
                kubeconfig=params["kubeconfig"], context=params["kube_context"]
            ),
        )
        echo(
            "re-encrypting " + ", ".join(resources)
            + (" through the API server ..." if params["via"] == "api" else " in etcd ...")
        )
        summary = run_reencrypt(
            request,
            ReencryptWorld(
                kms=services,
                open_etcd=lambda: EtcdClient(etcd_config),
                warn=lambda m: echo(f"warning: {m}"),
                apiservers_stopped=params["acknowledged"],
            ),
        )
        error = outcome_error(summary, request)
        if error is not None:
            raise error
        return int(summary.totals().get("rewritten", 0))

    backend = _backend(params["backends_file"], params["provider"])
    plugin = GrpcKMSService(kms_socket)
    # the re-encryption (--via etcd) reaches the provider through the same plugin
    services.services[params["provider"]] = plugin
    scheduled = any(params[k] for k in ("lease", "record", "min_age", "metrics_textfile"))
    kube = None
    try:
        rotation = KMSRotation(
            provider=params["provider"],
            config=config,
            backend=backend,
            plugin=plugin,
            open_etcd=lambda: EtcdClient(etcd_config),
            reencrypt=reencrypt,
            layout=Layout(params["etcd_prefix"]),
            plugin_timeout=params["plugin_timeout"],
            refresh_wait=params["refresh_wait"],
            retire_old=params["retire_old"],
            include_history=not params["ignore_history"],
            to_key=params.get("to_key"),
            echo=echo,
        )
        if not scheduled:
            report = rotation.run()
            outcome = None
        else:
            kube = _kube_client(params) if params["lease"] or params["record"] else None
            outcome = _scheduled(rotation, kube, params).run()
            report = outcome.report
    finally:
        services.close()
        plugin.close()
        backend.close()
        if kube is not None:
            kube.close()
    _render_rotation(report, outcome, params["output"])


def _kube_client(params: dict[str, Any]) -> Any:
    from secretkit.kube.client import KubeClient, KubeConnectOptions

    return KubeClient(
        KubeConnectOptions(kubeconfig=params["kubeconfig"], context=params["kube_context"])
    )


def _namespaced(value: str, flag: str) -> tuple[str, str]:
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise UsageError(
            f"{flag} takes NAMESPACE/NAME, not {value!r}",
            where=flag,
            hint=f"e.g. {flag} kube-system/secretkit-kms-rotation",
        )
    return namespace, name


def _scheduled(rotation: Any, kube: Any, params: dict[str, Any]) -> Any:
    import os
    import socket

    from secretkit.kube.lease import LeaseLock
    from secretkit.rotation.record import RotationRecord
    from secretkit.rotation.schedule import ScheduledRotation

    lease = record = None
    if params["lease"]:
        namespace, name = _namespaced(params["lease"], "--lease")
        identity = f"{socket.gethostname()}/{os.getpid()}"
        lease = LeaseLock(kube, namespace, name, identity)
    if params["record"]:
        namespace, name = _namespaced(params["record"], "--record")
        record = RotationRecord(kube, namespace, name)
    return ScheduledRotation(
        rotation,
        lease=lease,
        record=record,
        min_age=params["min_age"],
        metrics_textfile=params["metrics_textfile"],
    )


def _render_rotation(report: Any, outcome: Any, output: str) -> None:
    from secretkit.rotation.schedule import outcome_json

    if output == "json":
        doc: dict[str, Any] = asdict(report) if report is not None else {}
        if outcome is not None:
            doc["schedule"] = outcome_json(outcome)
        emit_json(doc, schema=schema_id("kms.rotate"))
        return
    if outcome is not None and outcome.outcome == "skipped":
        click.echo(f"{outcome.provider}: not rotated: {outcome.reason}")
        return
    click.echo(f"rotated {report.provider}: {report.old_key_id} -> {report.new_key_id}")
    for step in report.steps:
        click.echo(f"  {step}")
    for key_id, n in sorted(report.counts_after.items()):
        click.echo(f"  {n} value(s) under {key_id}")


@kms.command("retire")
@_provider_options("The EncryptionConfiguration the apiservers run.")
@click.option(
    "--ignore-history",
    is_flag=True,
    help="Only judge current values (older revisions etcd still holds become unreadable).",
)
@etcd_options
@output_option()
def retire(**params: Any) -> None:
    """Make the provider's old key versions undecryptable, once etcd proves none is needed.

    \b
    Run after `secretkit kms rotate` and after etcd compacted the history that still
    holds values under the old key versions (or with --ignore-history). Every value
    etcd holds is judged as if only the plugin's current key_id still decrypted;
    while any would be unreadable, nothing is retired (exit 3).
    """
    kms_socket = _kms_socket(params["kms_socket"], params.get("provider"))
    from secretkit.config_files import load_encryption_config_file
    from secretkit.core.layout import Layout
    from secretkit.etcd import EtcdClient
    from secretkit.kmsapi import GrpcKMSService
    from secretkit.rotation.kms import KMSRotation

    config = load_encryption_config_file(params["config_path"])
    etcd_config = etcd_config_from(params)
    backend = _backend(params["backends_file"], params["provider"])
    plugin = GrpcKMSService(kms_socket)

    def echo(message: str) -> None:
        click.echo(message, err=True)

    def no_reencrypt(_resources: list[str]) -> int:
        raise AssertionError("retire never re-encrypts")

    try:
        report = KMSRotation(
            provider=params["provider"],
            config=config,
            backend=backend,
            plugin=plugin,
            open_etcd=lambda: EtcdClient(etcd_config),
            reencrypt=no_reencrypt,
            layout=Layout(params["etcd_prefix"]),
            include_history=not params["ignore_history"],
            echo=echo,
        ).retire_only()
    finally:
        plugin.close()
        backend.close()
    if params["output"] == "json":
        emit_json(asdict(report), schema=schema_id("kms.retire"))
    else:
        click.echo(f"retired the old key versions of {report.provider}; kept {report.new_key_id}")
        for step in report.steps:
            click.echo(f"  {step}")


@kms.command("status")
@click.option("--kms-socket", required=True, metavar="[NAME=]ENDPOINT",
              help="The plugin's socket, unix:///path (or PROVIDER=unix:///path).")
@click.option("--provider", help="kms provider name (to count its objects in etcd).")
@click.option("--backends", "backends_file", help="Backends file, to show the backend's key.")
@click.option("--resources", hidden=True, help="Ignored: every key under --prefix is counted.")
@etcd_prefix_option()
@click.option("--no-etcd", is_flag=True, help="Do not count objects in etcd.")
@etcd_options
@output_option()
def status(**params: Any) -> None:
    """Plugin health and key_id, backend key, and objects per key_id in etcd."""
    kms_socket = _kms_socket(params["kms_socket"], params.get("provider"))
    from secretkit.kmsapi import GrpcKMSService

    result: dict[str, Any] = {}
    plugin = GrpcKMSService(kms_socket)
    try:
        st = plugin.status()
    finally:
        plugin.close()
    result["plugin"] = {
        "version": st.version,
        "healthz": st.healthz,
        "key_id": st.key_id,
        "healthy": st.healthy,
    }
    if params.get("backends_file") and params.get("provider"):
        backend = _backend(params["backends_file"], params["provider"])
        try:
            bst = backend.status()
        finally:
            backend.close()
        result["backend"] = {"kind": backend.kind, "key_id": bst.key_id, "healthy": bst.healthy}
    if params.get("provider") and not params["no_etcd"]:
        from secretkit.core.layout import Layout
        from secretkit.etcd import EtcdClient
        from secretkit.rotation.gates import count_key_ids

        with EtcdClient(etcd_config_from(params)) as client:
            counts = count_key_ids(client, Layout(params["etcd_prefix"]).root, params["provider"])
        result["objects_by_key_id"] = dict(counts)
    unhealthy = [
        part
        for part, healthy in (
            ("plugin", st.healthy),
            ("backend", result.get("backend", {}).get("healthy", True)),
        )
        if not healthy
    ]
    result["healthy"] = not unhealthy
    if params["output"] == "json":
        emit_json(result, schema=schema_id("kms.status"))
        if unhealthy:
            raise click.exceptions.Exit(ExitCode.UNAVAILABLE)
        return
    p = result["plugin"]
    click.echo(f"plugin: healthz={p['healthz']} version={p['version']} key_id={p['key_id']}")
    if "backend" in result:
        b = result["backend"]
        click.echo(f"backend ({b['kind']}): key_id={b['key_id']} healthy={b['healthy']}")
    if "objects_by_key_id" in result:
        if not result["objects_by_key_id"]:
            click.echo(f"etcd: no objects of provider {params['provider']}")
        for key_id, n in sorted(result["objects_by_key_id"].items()):
            marker = "" if key_id == p["key_id"] else "  (stale: not the current key_id)"
            click.echo(f"etcd: {n} object(s) under {key_id}{marker}")
    if unhealthy:
        # a KMS that cannot serve is "could not check" (exit 5), not a finding
        raise DependencyError(
            f"the {' and the '.join(unhealthy)} {'is' if len(unhealthy) == 1 else 'are'} "
            "not healthy",
            where=kms_socket,
            hint="see the healthz above; the apiservers cannot encrypt or decrypt with "
            "this provider until it is fixed (the plugin's log says why)",
        )
