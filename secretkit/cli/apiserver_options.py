"""Flags and wiring that prove what the apiservers run: /metrics credentials, write probe.

Shared by ``secretkit apiserver probe`` and the stage commands
(:mod:`secretkit.cli.stages`), so both take the same flags the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from secretkit.errors import UsageError

#: /metrics credentials besides --metrics-token-file and --metrics-cacert (stages)
METRICS_CREDENTIAL_OPTIONS = [
    click.option(
        "--metrics-kubeconfig",
        type=click.Path(dir_okay=False),
        help="Take the /metrics CA, client certificate and token from this kubeconfig's "
        "current context (the --apiserver-metrics URLs still say where).",
    ),
    click.option(
        "--metrics-cert",
        type=click.Path(dir_okay=False),
        help="Client certificate (PEM) for /metrics (needs --metrics-key).",
    ),
    click.option(
        "--metrics-key",
        type=click.Path(dir_okay=False),
        help="Client key (PEM) for /metrics (needs --metrics-cert).",
    ),
]

#: the stages' write-probe flags (the API client comes from --kubeconfig/--context)
PROBE_OPTIONS = [
    click.option(
        "--probe-apiserver",
        "probe_apiservers",
        multiple=True,
        metavar="URL",
        help="Prove this apiserver runs the file: create a labelled probe Secret (or "
        "ConfigMap) through it, read from etcd which key wrote it, delete it (repeat per "
        "apiserver; uses --kubeconfig credentials, --endpoints etcd). Works after a "
        "restart as well as with automatic reload. At promote it does not replace "
        "--yes/--apiserver-metrics: the prepared file writes like the previous one.",
    ),
    click.option(
        "--probe-namespace",
        default="default",
        show_default=True,
        help="Namespace of the probe objects.",
    ),
]

#: the Kubernetes API client (stages that have no --kubeconfig of their own)
KUBE_OPTIONS = [
    click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, then the in-cluster "
        "service account).",
    ),
    click.option("--context", "kube_context", help="kubeconfig context to use."),
]


def metrics_endpoints(params: Mapping[str, Any]) -> list[Any]:
    """``MetricsEndpoint`` per ``--apiserver-metrics`` URL, with the credentials flags.

    Explicit flags win over what ``--metrics-kubeconfig`` holds.
    """
    from secretkit.cli.etcd_options import check_pem_file
    from secretkit.rotation.verify import (
        MetricsCredentials,
        MetricsEndpoint,
        metrics_credentials_from_kubeconfig,
    )

    urls = list(params.get("metrics") or ())
    cert, key = params.get("metrics_cert"), params.get("metrics_key")
    if bool(cert) != bool(key):
        raise UsageError(
            "pass --metrics-cert and --metrics-key together",
            where="--metrics-cert" if cert else "--metrics-key",
        )
    if not urls:
        return []
    base = MetricsCredentials()
    if params.get("metrics_kubeconfig"):
        base = metrics_credentials_from_kubeconfig(params["metrics_kubeconfig"])
    token = base.token
    if params.get("metrics_token_file"):
        from secretkit.cli.params import read_secret_file

        token = read_secret_file(
            Path(params["metrics_token_file"]),
            what="the metrics token file (--metrics-token-file)",
        ).strip()
    cafile = params.get("metrics_cacert") or base.cafile
    for flag, path in (("--metrics-cacert", params.get("metrics_cacert")),
                       ("--metrics-cert", cert), ("--metrics-key", key)):
        if path:
            check_pem_file(Path(path), what=f"the {flag} file")
    credentials = MetricsCredentials(
        token=token,
        cafile=cafile,
        certfile=cert or base.certfile,
        keyfile=key or base.keyfile,
        insecure=base.insecure and not params.get("metrics_cacert"),
    )
    return [MetricsEndpoint.with_credentials(u, credentials) for u in urls]


def check_apiserver_url(url: str, *, where: str) -> str:
    """An apiserver base URL (``https://10.0.0.2:6443``), refused unless https or loopback.

    Credentials from the kubeconfig go to it, so plain http is refused for anything
    but a loopback host; userinfo, paths and queries are refused too.
    """
    from secretkit.loopback import is_loopback_host

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            "not an apiserver URL", where=f"{where} {url}",
            hint="pass the apiserver's base URL, e.g. https://10.0.0.2:6443",
        )
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "an apiserver URL must not hold credentials", where=where,
            hint="credentials come from the kubeconfig (--kubeconfig)",
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise UsageError(
            "pass the apiserver's base URL, without a path", where=f"{where} {url}",
            hint=f"e.g. {parts.scheme}://{parts.netloc}",
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise UsageError(
            "refusing to send the kubeconfig's credentials over plain http",
            where=f"{where} {url}",
            hint="use the apiserver's https:// URL",
        )
    return f"{parts.scheme}://{parts.netloc}"


def api_opener(kubeconfig: str | None, context: str | None) -> Callable[[str], Any]:
    """``open_api(url)``: a KubeClient with the kubeconfig's credentials, at ``url``."""
    from secretkit.kube.client import KubeClient, KubeConnectOptions

    def open_api(url: str) -> Any:
        return KubeClient(
            KubeConnectOptions(
                kubeconfig=kubeconfig, context=context, server=url, timeout=15.0, pool_size=1
            )
        )

    return open_api


def stage_probe(
    params: Mapping[str, Any],
    *,
    open_etcd: Callable[[], Any],
    key_ids: Callable[[Any], dict[str, str]],
    echo: Callable[[str], None],
) -> Callable[[Any, Sequence[int]], list[str]] | None:
    """The stages' probe callable (None without ``--probe-apiserver``).

    Called with the config file's model and the procedure's rule indexes; returns one
    line per apiserver, or raises the probe's error (a mismatch refuses: exit 3).
    """
    urls = [check_apiserver_url(u, where="--probe-apiserver")
            for u in params.get("probe_apiservers") or ()]
    if not urls:
        return None
    open_api = api_opener(params.get("kubeconfig"), params.get("kube_context"))
    prefix = params.get("prefix") or params.get("etcd_prefix") or "/registry"

    def probe(config: Any, rule_indexes: Sequence[int]) -> list[str]:
        from secretkit.rotation.probe import choose_resource
        from secretkit.rotation.probe_run import ProbeRequest, run_probe

        request = ProbeRequest(
            endpoints=tuple(urls),
            config=config,
            resource=choose_resource(config, rule_indexes or None),
            namespace=params.get("probe_namespace") or "default",
            etcd_prefix=prefix,
            current_key_ids=key_ids(config),
        )
        with open_etcd() as etcd:
            report = run_probe(request, open_api=open_api, etcd=etcd, report=echo)
        for line in report.lines():
            echo(f"  {line}")
        error = report.failure()
        if error is not None:
            raise error
        return [
            f"write probe: {r.endpoint} writes with {report.expected.describe()}"
            for r in report.results
        ]

    return probe
