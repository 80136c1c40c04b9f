"""``secretkit monitor``: watch etcd and export encryption coverage (thin parser)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from secretkit.audit.model import DEFAULT_PAGE_SIZE
from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.params import etcd_prefix_option
from secretkit.monitor.labels import DEFAULT_MAX_ROWS
from secretkit.monitor.options import DEFAULT_METRICS_ADDR


def _duration(value: str | None, where: str) -> float | None:
    if value is None:
        return None
    from secretkit.errors import ConfigError, UsageError
    from secretkit.etcd.config import parse_duration

    try:
        return parse_duration(value, where=where)
    except ConfigError as exc:
        raise UsageError(exc.what, where=exc.where, hint=exc.hint) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@etcd_options
@etcd_prefix_option()
@click.option("--resources",
              help="Comma-separated resources to watch, e.g. secrets,configmaps "
              "(default: secrets, or with --config every resource the config encrypts).")
@click.option("--all-resources", is_flag=True,
              help="Count every key under the prefix (plaintext is still only a finding "
              "for the protected resources).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The apiserver's EncryptionConfiguration: enables stale/undecryptable "
              "verdicts. Re-read every --check-every; a change triggers a full scan.")
@click.option("--backends", type=click.Path(dir_okay=False, path_type=Path),
              help="Backends file (kms provider name -> key backend) for current key_ids.")
@click.option("--kms-socket", "kms_sockets", multiple=True, metavar="NAME=unix:///PATH",
              help="A running KMS v2 plugin for kms provider NAME (repeatable); its "
              "current key_id decides which kms values are stale.")
@click.option("--decrypt-check", is_flag=True,
              help="Decrypt every value to prove it is readable (plaintext is discarded). "
              "Gives this process the power to read every Secret: use only if needed.")
@click.option("--metrics-addr", default=DEFAULT_METRICS_ADDR, show_default=True,
              metavar="HOST:PORT",
              help="Serve /metrics, /healthz and /livez here; loopback only unless "
              "--metrics-addr-allow-remote; port 0 picks a free port.")
@click.option("--metrics-addr-allow-remote", is_flag=True,
              help="Allow a non-loopback --metrics-addr (exposes the metrics).")
@click.option("--max-rows", type=int, default=DEFAULT_MAX_ROWS, show_default=True,
              help="Most resource x provider x key rows exported; further rows are "
              "counted in resource=\"<other>\" (bounds the series: (rows + 1) x 5).")
@click.option("--history-every", metavar="DURATION",
              help="Also count older revisions etcd still holds (and, with --snapshot-dir, "
              "the newest snapshot) every DURATION, e.g. 1h. [default: off]")
@click.option("--snapshot-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of etcd snapshots (*.db); the newest is checked on the "
              "--history-every schedule.")
@click.option("--check-every", default="30s", show_default=True, metavar="DURATION",
              help="How often the config file and the plugins' key_ids are checked.")
@click.option("--rescan-every", metavar="DURATION",
              help="Also scan everything again every DURATION. [default: off]")
@click.option("--page-size", type=int, default=DEFAULT_PAGE_SIZE, show_default=True,
              help="Most keys per etcd range request of a full scan.")
def monitor(**params: Any) -> None:
    """Watch etcd and export its encryption coverage as Prometheus metrics.

    One full scan at start (the audit's reader and verdicts), then an etcd watch
    from that revision: each change moves one object between counts, so the cost
    after start-up follows the changes, not the size of etcd. Metrics, label bound
    and alerts: docs/monitor.md.

    \b
    Examples:
      secretkit monitor --endpoints https://127.0.0.1:2379 \\
          --cacert /etc/kubernetes/pki/etcd/ca.crt \\
          --cert /etc/kubernetes/pki/etcd/monitor.crt \\
          --key /etc/kubernetes/pki/etcd/monitor.key \\
          --config /etc/kubernetes/enc/encryption-config.yaml \\
          --kms-socket kms-prod=unix:///var/run/secretkit/kms-plugin.sock
      curl -s 127.0.0.1:8788/metrics | grep secretkit_monitor_objects

    \b
    Stops cleanly on SIGTERM or SIGINT (exit 0). Exit 2: bad flags or config.
    """
    from secretkit.etcd import EtcdClient
    from secretkit.kmsapi.services import parse_kms_sockets
    from secretkit.monitor.options import MonitorOptions, parse_listen_address
    from secretkit.monitor.run import Monitor

    resources = None
    if params["resources"] is not None:
        # an empty or blank --resources is refused (not "every resource") by the check
        resources = tuple(r.strip() for r in params["resources"].split(",") if r.strip())
    check_every = _duration(params["check_every"], "--check-every")
    options = MonitorOptions(
        prefix=params["etcd_prefix"],
        resources=resources,
        all_resources=params["all_resources"],
        config=params["config_path"],
        backends=params["backends"],
        kms_sockets=parse_kms_sockets(params["kms_sockets"]),
        decrypt_check=params["decrypt_check"],
        page_size=params["page_size"],
        max_rows=params["max_rows"],
        metrics_addr=parse_listen_address(
            params["metrics_addr"],
            allow_remote=params["metrics_addr_allow_remote"],
            where="--metrics-addr",
        ),
        check_every=check_every if check_every is not None else 30.0,
        history_every=_duration(params["history_every"], "--history-every"),
        snapshot_dir=params["snapshot_dir"],
        rescan_every=_duration(params["rescan_every"], "--rescan-every"),
    )
    options.check()
    with EtcdClient(etcd_config_from(params)) as client:
        try:
            instance = Monitor(options, client)
        except OSError as exc:
            from secretkit.errors import UsageError

            raise UsageError(
                f"cannot serve metrics on {options.metrics_addr}: {exc.strerror or exc}",
                where="--metrics-addr",
                hint="pick a free port (or 0 for any)",
            ) from None

        def on_signal(signum: int, frame: object) -> None:
            instance.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        address = instance.address
        host = f"[{address.host}]" if ":" in address.host else address.host
        click.echo(
            f"secretkit monitor: serving http://{host}:{address.port}/metrics "
            "(/healthz, /livez)",
            err=True,
        )
        sys.stderr.flush()
        instance.run()
        click.echo("secretkit monitor: stopped", err=True)
