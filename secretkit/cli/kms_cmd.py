"""``secretkit kms``: rotate a KMS v2 key end to end, and show where keys are used."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option
from secretkit.errors import ConfigError, UsageError


def _backend(path: str, provider: str) -> Any:
    from secretkit.backends import load_backends_file

    backends = load_backends_file(Path(path))
    if provider not in backends:
        raise UsageError(
            f"no backend for kms provider {provider!r} in {path}",
            hint=f"the file defines: {', '.join(sorted(backends)) or 'nothing'}",
        )
    return backends[provider]


def _kms_socket(endpoint: str) -> str:
    """Check ``--kms-socket ENDPOINT`` with the one endpoint parser; return it as given.

    Done first, before the backend, etcd or the plugin is touched, so a form the
    plugin cannot listen on (``unix:@name``, a host part, a relative path) is a usage
    error naming the flag, with the parser's message and hint, as ``audit
    --kms-socket NAME=ENDPOINT`` reports it, not a failed dial later.
    """
    from secretkit.encryption_config.endpoint import parse_endpoint

    try:
        parse_endpoint(endpoint, where="--kms-socket")
    except ConfigError as exc:
        raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None
    return endpoint


@click.group()
def kms() -> None:
    """KMS v2 key operations: rotation with proof, and status."""


@kms.command("rotate", context_settings={"ignore_unknown_options": True})
@click.option("--backends", "backends_file", required=True, help="Backends file (YAML).")
@click.option("--provider", required=True, help="kms provider name in the EncryptionConfiguration.")
@click.option("--kms-socket", required=True, help="The plugin's socket, unix:///path.")
@click.option("--resources", default="secrets", show_default=True, help="Resources to re-encrypt.")
@click.option("--prefix", default="/registry", show_default=True, help="etcd key prefix.")
@click.option(
    "--plugin-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for the plugin to report the new key_id (its --status-ttl).",
)
@click.option(
    "--refresh-wait",
    type=float,
    default=70.0,
    show_default=True,
    help="Seconds to wait for apiservers to poll Status (they do every 60s) before re-encrypting.",
)
@click.option(
    "--retire-old", is_flag=True, help="After proof, make old key versions undecryptable (Vault)."
)
@click.option(
    "--to-key",
    help="AWS KMS: move the backend's alias to this key (ARN or id) instead of rotating "
    "in place; in-place AWS rotation keeps the key ARN, so the apiserver would not re-seed.",
)
@etcd_options
@output_option()
@click.argument("reencrypt_args", nargs=-1, type=click.UNPROCESSED)
def rotate(reencrypt_args: tuple[str, ...], **params: Any) -> None:
    """Rotate the backend key, wait for plugin and apiservers, re-encrypt, and prove.

    Arguments after ``--`` go to ``secretkit reencrypt`` (e.g. ``-- --kubeconfig F``).
    """
    kms_socket = _kms_socket(params["kms_socket"])
    from secretkit.etcd import EtcdClient
    from secretkit.kmsapi import GrpcKMSService
    from secretkit.rotation import gates
    from secretkit.rotation.kms import rotate_kms_key
    from secretkit.rotation.reencrypt_step import run_reencrypt

    resources = [r.strip() for r in params["resources"].split(",") if r.strip()]
    etcd_config = etcd_config_from(params)

    def reencrypt() -> None:
        run_reencrypt(reencrypt_args, resources, echo=lambda m: click.echo(m, err=True))

    backend = _backend(params["backends_file"], params["provider"])
    plugin = GrpcKMSService(kms_socket)
    try:
        report = rotate_kms_key(
            provider=params["provider"],
            backend=backend,
            plugin=plugin,
            scan_client_factory=lambda: EtcdClient(etcd_config),
            prefixes=gates.etcd_prefixes_for(resources, params["prefix"]),
            run_reencrypt=reencrypt,
            plugin_timeout=params["plugin_timeout"],
            refresh_wait=params["refresh_wait"],
            retire_old=params["retire_old"],
            to_key=params.get("to_key"),
            echo=lambda m: click.echo(m, err=True),
        )
    finally:
        plugin.close()
        backend.close()
    if params["output"] == "json":
        emit_json(asdict(report))
    else:
        click.echo(f"rotated {report.provider}: {report.old_key_id} -> {report.new_key_id}")
        for key_id, n in sorted(report.counts_after.items()):
            click.echo(f"  {n} object(s) under {key_id}")


@kms.command("status")
@click.option("--kms-socket", required=True, help="The plugin's socket, unix:///path.")
@click.option("--provider", help="kms provider name (to count its objects in etcd).")
@click.option("--backends", "backends_file", help="Backends file, to show the backend's key.")
@click.option("--resources", default="secrets", show_default=True)
@click.option("--prefix", default="/registry", show_default=True)
@click.option("--no-etcd", is_flag=True, help="Do not count objects in etcd.")
@etcd_options
@output_option()
def status(**params: Any) -> None:
    """Plugin health and key_id, backend key, and objects per key_id in etcd."""
    kms_socket = _kms_socket(params["kms_socket"])
    from secretkit.kmsapi import GrpcKMSService

    result: dict[str, Any] = {}
    plugin = GrpcKMSService(kms_socket)
    try:
        st = plugin.status()
    finally:
        plugin.close()
    result["plugin"] = {"version": st.version, "healthz": st.healthz, "key_id": st.key_id}
    if params.get("backends_file") and params.get("provider"):
        backend = _backend(params["backends_file"], params["provider"])
        try:
            bst = backend.status()
        finally:
            backend.close()
        result["backend"] = {"kind": backend.kind, "key_id": bst.key_id, "healthy": bst.healthy}
    if params.get("provider") and not params["no_etcd"]:
        from secretkit.etcd import EtcdClient
        from secretkit.rotation import gates
        from secretkit.rotation.kms import count_key_ids

        resources = [r.strip() for r in params["resources"].split(",") if r.strip()]
        with EtcdClient(etcd_config_from(params)) as client:
            counts = count_key_ids(
                client, gates.etcd_prefixes_for(resources, params["prefix"]), params["provider"]
            )
        result["objects_by_key_id"] = dict(counts)
    if params["output"] == "json":
        emit_json(result)
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
