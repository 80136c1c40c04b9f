"""``secretkit inspect``: what wrote one etcd value, and can this config read it?"""

from __future__ import annotations

import base64
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option, schema_id
from secretkit.cli.params import etcd_prefix_option
from secretkit.core.formats import PlaintextEncoding, StoredValue, ValueProvider, classify_value
from secretkit.core.transformers import TransformerSet
from secretkit.errors import UsageError

#: the ``schema`` of ``inspect -o json`` (docs/schemas/secretkit.inspect.v1.json)
INSPECT_SCHEMA = schema_id("inspect")


def _encoding_fields(sv: StoredValue) -> dict[str, Any]:
    known = sv.encoding in (PlaintextEncoding.PROTOBUF, PlaintextEncoding.JSON)
    return {
        "encoding": sv.encoding.value if known and sv.encoding is not None else None,
        "api_version": sv.api_version,
        "kind": sv.kind,
    }


def describe_stored_value(value: bytes, etcd_key: str) -> dict[str, Any]:
    """Classify ``value`` without keys: provider, names and key_id as the bytes tell."""
    sv = classify_value(value)
    local = sv.provider in (ValueProvider.AESCBC, ValueProvider.AESGCM, ValueProvider.SECRETBOX)
    kms = sv.provider in (ValueProvider.KMS_V1, ValueProvider.KMS_V2)
    report: dict[str, Any] = {
        "etcd_key": etcd_key,
        "size": sv.size,
        "provider": sv.provider.value,
        "provider_name": sv.name if kms else sv.provider.value if local else None,
        "key_name": sv.name if local else None,
        "key_id": sv.kms_v2.key_id if sv.kms_v2 is not None else None,
        "stale": None,
        "decrypted": False,
        "detail": sv.detail,
        "encoding": None,
        "api_version": None,
        "kind": None,
    }
    if sv.provider == ValueProvider.IDENTITY:
        report["provider_name"] = "identity"
        report.update(_encoding_fields(sv))
    if sv.kms_v2 is not None:
        report["dek_source_type"] = int(sv.kms_v2.encrypted_dek_source_type)
        report["annotation_keys"] = sorted(sv.kms_v2.annotations)
    return report


def inspect_value(
    value: bytes,
    etcd_key: str,
    transformers: TransformerSet | None,
    *,
    prefix: str = "/registry",
    show_plaintext: bool = False,
) -> dict[str, Any]:
    """Classify ``value`` and, given ``transformers``, decrypt it like the apiserver would.

    Raises :class:`~secretkit.errors.DecryptError` (naming every provider tried) when
    the configured providers cannot read it.
    """
    from secretkit.core.encryption_config import resource_for_etcd_key

    report = describe_stored_value(value, etcd_key)
    resource, group = resource_for_etcd_key(etcd_key, prefix)
    report["resource"] = f"{resource}.{group}" if group else resource
    plaintext: bytes | None = value if report["provider"] == "identity" else None
    if transformers is not None:
        result = transformers.for_resource(resource, group).read(value, etcd_key)
        plaintext = result.plaintext
        inner = classify_value(result.plaintext)
        report.update(
            {
                "provider": result.provider.value,
                "provider_name": result.provider_name,
                "key_name": result.key_name,
                "key_id": result.key_id,
                "stale": result.stale,
                "decrypted": True,
                **_encoding_fields(inner),
            }
        )
    if show_plaintext and plaintext is not None:
        report["plaintext_b64"] = base64.b64encode(plaintext).decode("ascii")
    return report


def _value_from_etcd(etcd_key: str, params: dict[str, Any]) -> bytes:
    from secretkit.etcd import EtcdClient

    with EtcdClient(etcd_config_from(params)) as client:
        kv = client.get(etcd_key.encode("utf-8", "surrogateescape"))
    if kv is None:
        raise UsageError(
            "etcd holds no value at this key",
            where=etcd_key,
            hint="check the key (`etcdctl get --prefix --keys-only /registry/secrets/NS/`) "
            "and --endpoints",
        )
    return bytes(kv.value)


def _read_value(source: str) -> bytes:
    # bounded like every file the tools take: `inspect /dev/zero` must not eat memory
    from secretkit.fileio import read_file, read_stream

    if source == "-":
        return read_stream(sys.stdin.buffer, what="the value on stdin")
    return read_file(Path(source), what="the value file")


@click.command("inspect", short_help="What wrote one etcd value; decrypt it offline.")
@click.option(
    "--etcd-key",
    required=True,
    help="The value's etcd key, e.g. /registry/secrets/default/db (it is the AAD).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="EncryptionConfiguration to decrypt with (the apiserver's).",
)
@click.option(
    "--backends",
    "backends_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Backends file resolving the config's kms providers (offline decrypt).",
)
@etcd_prefix_option()
@click.option(
    "--show-plaintext",
    is_flag=True,
    help="Also print the decrypted object (base64 in JSON). It is secret: handle with care.",
)
@click.option(
    "--from-etcd",
    is_flag=True,
    help="Read the value at --etcd-key from etcd (the --endpoints/--cacert/... flags) "
    "instead of VALUE_FILE: the exact stored bytes, no shell pipeline to get wrong.",
)
@etcd_options
@click.argument("value_file", default="-", required=False)
@output_option()
def inspect_cmd(
    etcd_key: str,
    config_path: Path | None,
    backends_path: Path | None,
    etcd_prefix: str,
    show_plaintext: bool,
    from_etcd: bool,
    value_file: str,
    output: str,
    **etcd_params: Any,
) -> None:
    """Say what wrote one etcd value (VALUE_FILE, or - for stdin: raw bytes).

    Without --config the bytes alone are classified: provider, key or kms name,
    key_id. With --config the value is decrypted through the same provider chain the
    apiserver uses, reporting which provider and key read it and whether it is
    stale (a no-op update would rewrite it). kms providers are resolved through
    --backends. A value the configured providers cannot read exits 4, naming every
    provider tried; a KMS plugin or backend that fails exits 5; bad input exits 2.

    \b
    Examples:
      secretkit inspect --etcd-key /registry/secrets/default/db --from-etcd \\
          --endpoints https://10.0.0.1:2379 --cacert ca.crt --cert c.crt --key c.key \\
          --config enc.yaml --backends backends.yaml
      # a value saved earlier (exact bytes: not `etcdctl get --print-value-only`,
      # which appends a newline)
      etcdctl get -w json /registry/secrets/default/db \\
          | jq -r '.kvs[0].value' | base64 -d > v.bin
      secretkit inspect --etcd-key /registry/secrets/default/db \\
          --config enc.yaml --backends backends.yaml -o json v.bin
    """
    from secretkit.config_files import load_encryption_config_file
    from secretkit.core.transformers import build_transformers

    if backends_path is not None and config_path is None:
        raise UsageError("--backends needs --config", hint="pass the EncryptionConfiguration too")
    value = _value_from_etcd(etcd_key, etcd_params) if from_etcd else _read_value(value_file)
    services = None
    transformers = None
    try:
        if config_path is not None:
            from secretkit.kmsapi.services import open_kms_services

            cfg = load_encryption_config_file(config_path)
            services = open_kms_services(backends_path, {})
            transformers = build_transformers(cfg, services.factory)
        report = inspect_value(
            value, etcd_key, transformers, prefix=etcd_prefix, show_plaintext=show_plaintext
        )
    finally:
        if services is not None:
            services.close()
    if output == "json":
        emit_json(report, schema=INSPECT_SCHEMA)
        return
    _print_text(report)


def _print_text(report: Mapping[str, Any]) -> None:
    click.echo(f"etcd key:  {report['etcd_key']}  ({report['resource']}, {report['size']} bytes)")
    provider = report["provider"]
    names = []
    if report.get("provider_name") and report["provider_name"] != provider:
        names.append(f"name {report['provider_name']!r}")
    if report.get("key_name"):
        names.append(f"key {report['key_name']!r}")
    if report.get("key_id"):
        names.append(f"key_id {report['key_id']!r}")
    click.echo(f"provider:  {provider}" + (f" ({', '.join(names)})" if names else ""))
    if report["decrypted"]:
        verdict = (
            "STALE (rewrite to move it to the first provider/key)" if report["stale"] else "current"
        )
        click.echo(f"read:      ok, {verdict}")
    elif provider != "identity":
        click.echo("read:      not attempted (pass --config to decrypt)")
    if report.get("encoding"):
        kind = f" {report['api_version']}/{report['kind']}" if report.get("kind") else ""
        click.echo(f"object:    {report['encoding']}{kind}")
    if report.get("detail"):
        click.echo(f"note:      {report['detail']}")
    if "plaintext_b64" in report:
        click.echo(f"plaintext (base64): {report['plaintext_b64']}")
