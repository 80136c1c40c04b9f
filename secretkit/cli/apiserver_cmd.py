"""``secretkit apiserver probe``: which key does each apiserver write with right now?

The question operators ask after a restart or a reload: is the key in the
apiserver's memory the one in the file? The write probe answers it for each
apiserver endpoint (:mod:`secretkit.rotation.probe_run`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from secretkit.cli.apiserver_options import api_opener, check_apiserver_url
from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import emit_json, output_option, schema_id
from secretkit.cli.params import etcd_prefix_option


@click.group("apiserver")
def apiserver() -> None:
    """Check what the kube-apiservers run (not what their files say)."""


@apiserver.command("probe")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The EncryptionConfiguration file the apiservers should run.",
)
@click.option(
    "--apiserver",
    "apiservers",
    multiple=True,
    required=True,
    metavar="URL",
    help="Base URL of one apiserver, e.g. https://10.0.0.2:6443 (repeat per apiserver; "
    "not a load balancer's, which would pick one for you).",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Credentials and CA for the apiservers (its server URL is replaced by each "
    "--apiserver; default: $KUBECONFIG, ~/.kube/config, then in-cluster).",
)
@click.option("--context", "kube_context", help="kubeconfig context to use.")
@click.option(
    "--namespace",
    default="default",
    show_default=True,
    help="Namespace of the probe objects (it must exist).",
)
@click.option(
    "--resource",
    type=click.Choice(["secrets", "configmaps"]),
    default=None,
    help="What the probe creates [default: secrets, or configmaps when only a rule for "
    "configmaps encrypts].",
)
@etcd_options
@etcd_prefix_option()
@click.option(
    "--kms-socket",
    "kms_sockets",
    multiple=True,
    metavar="NAME=ENDPOINT",
    help="KMS v2 plugin of a kms provider, to compare the key_id the apiserver wrote with "
    "the plugin's current one (default: the endpoint the config names, when reachable). "
    "Repeatable.",
)
@output_option()
def probe(**params: Any) -> None:
    """Prove which provider and key each apiserver writes with.

    \b
    For each --apiserver: create a probe object through it (a Secret named
    secretkit-write-probe-<random>, labelled secretkit.io/write-probe, holding a
    random nonce and no data), read the raw value etcd stored for it, name the
    provider / key / kms key_id that wrote it, and delete the object (always; one an
    earlier run could not delete is removed first). Compares with the file's writer:
    the first provider of the rule (its first key; a kms v2 provider's current key_id
    when its plugin answers). Works whether the apiservers were restarted or reload
    their config automatically. Nothing of the objects' data is ever printed.

    \b
    Needs: create, list and delete on the probed resource in --namespace, and etcd
    read access (--endpoints, --cacert/--cert/--key). A probe proves the writer only:
    keys and providers a file adds in a read-only position write nothing.

    \b
    Exit codes: 0 every apiserver writes with the file's writer, 3 one does not,
    5 an apiserver or etcd could not be reached.
    """
    from secretkit.config_files import load_encryption_config_file
    from secretkit.etcd import EtcdClient
    from secretkit.rotation.probe import choose_resource
    from secretkit.rotation.probe_run import ProbeRequest, run_probe

    urls = [check_apiserver_url(u, where="--apiserver") for u in params["apiservers"]]
    config = load_encryption_config_file(params["config_path"])
    etcd_config = etcd_config_from(params)
    resource = params["resource"] or choose_resource(config)
    key_ids = _current_key_ids(config, params)
    request = ProbeRequest(
        endpoints=tuple(urls),
        config=config,
        resource=resource,
        namespace=params["namespace"],
        etcd_prefix=params["etcd_prefix"],
        current_key_ids=key_ids,
    )
    with EtcdClient(etcd_config) as etcd:
        report = run_probe(
            request,
            open_api=api_opener(params["kubeconfig"], params["kube_context"]),
            etcd=etcd,
            report=lambda m: click.echo(m, err=True),
        )
    if params["output"] == "json":
        emit_json(report.to_json(), schema=schema_id("apiserver.probe"))
    else:
        click.echo(f"file's writer for {resource}: {report.expected.describe()}")
        for line in report.lines():
            click.echo(line)
    error = report.failure()
    if error is not None:
        raise error


def _current_key_ids(config: Any, params: dict[str, Any]) -> dict[str, str]:
    """Each kms v2 provider's current key_id, from its plugin (--kms-socket, else the
    endpoint the config names); a plugin that does not answer is a note, not an error."""
    from secretkit.errors import UsageError
    from secretkit.kmsapi.services import (
        current_key_ids,
        kms_v2_providers,
        open_kms_services,
        parse_kms_sockets,
    )

    providers = kms_v2_providers(config)
    if not providers:
        return {}
    services = open_kms_services(
        None, parse_kms_sockets(params.get("kms_sockets") or ()), config_endpoints=True
    )
    try:
        for provider in providers:
            try:
                services.factory(provider)
            except UsageError:
                continue
        key_ids, notes = current_key_ids(config, services)
    finally:
        services.close()
    for note in notes:
        click.echo(f"note: {note}", err=True)
    return key_ids
