"""``secretkit audit``: prove what etcd really holds (thin parser over secretkit.audit)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from secretkit.audit.model import DEFAULT_PAGE_SIZE
from secretkit.cli.etcd_options import etcd_config_from, etcd_options
from secretkit.cli.output import output_option
from secretkit.cli.params import Duration, aliased_option, etcd_prefix_option
from secretkit.core.resources import split_resource_flags
from secretkit.errors import DependencyError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

_SCAN_OPTIONS = [
    etcd_prefix_option(),
    click.option(
        "--resources",
        multiple=True,
        help="Resources to audit, comma-separated or repeated, e.g. "
        "secrets,configmaps,deployments.apps (default: secrets, or with --config every "
        "resource the config encrypts). Unknown names are errors.",
    ),
    click.option(
        "--all-resources",
        is_flag=True,
        help="Count every key under the prefix (plaintext is still only a finding for the "
        "protected resources).",
    ),
    click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The apiserver's EncryptionConfiguration: enables stale/undecryptable verdicts.",
    ),
    click.option(
        "--backends",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Backends file (kms provider name -> key backend) to ask for current key_ids "
        "and, with --decrypt-check, to unwrap DEKs.",
    ),
    click.option(
        "--kms-socket",
        "kms_sockets",
        multiple=True,
        metavar="NAME=unix:///PATH",
        help="A running KMS v2 plugin for kms provider NAME (repeatable).",
    ),
    click.option(
        "--decrypt-check",
        is_flag=True,
        help="Decrypt every value through the config's provider chain to prove it is "
        "readable (plaintext is discarded, never printed).",
    ),
    click.option(
        "--history",
        is_flag=True,
        help="Also check older revisions etcd still holds (not yet compacted).",
    ),
    click.option(
        "--snapshot",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Audit an etcd snapshot file (etcdctl snapshot save) instead of a live etcd.",
    ),
    click.option(
        "--page-size",
        type=click.IntRange(1, 1_000_000),
        default=DEFAULT_PAGE_SIZE,
        show_default=True,
        help="Most keys per etcd range request; pages of large values hold fewer "
        "(about 6 MiB each), so memory stays flat.",
    ),
    click.option(
        "--fail-on",
        default="plaintext,undecryptable",
        show_default=True,
        help="Exit 1 when any of these findings is seen: plaintext, stale, undecryptable, "
        "unknown (or none); a misspelt kind is a usage error (exit 2).",
    ),
    click.option(
        "--show-all",
        is_flag=True,
        help="List every offending object (default: the first 20 per finding in text, "
        "1,000 in JSON; --show-all keeps up to 100,000).",
    ),
    click.option(
        "--allow-empty",
        is_flag=True,
        help="Pass when no object is found (a cluster known to be empty). Without it an "
        "audit that read nothing fails (exit 1): a wrong --etcd-prefix proves nothing.",
    ),
    output_option("junit"),
]


def scan_options(func: F) -> F:
    """Add the scan flags (etcd connection + audit options)."""
    for option in reversed(_SCAN_OPTIONS):
        func = option(func)
    return etcd_options(func)


def _run_scan(params: dict[str, Any]) -> None:
    from secretkit.audit.model import DEFAULT_FINDINGS_LIMIT, SHOW_ALL_FINDINGS_LIMIT
    from secretkit.audit.render import report_to_json, report_to_junit, report_to_text
    from secretkit.audit.run import AuditFailed, AuditRequest, fail_on_kinds, run_audit
    from secretkit.cli.output import emit_json
    from secretkit.kmsapi.services import parse_kms_sockets

    fail_on = fail_on_kinds(params["fail_on"])
    resources = None
    if params["resources"]:
        resources = tuple(r.strip() for r in split_resource_flags(params["resources"]))
        resources = tuple(r for r in resources if r)
    request = AuditRequest(
        prefix=params["etcd_prefix"],
        page_size=params["page_size"],
        resources=resources,
        all_resources=params["all_resources"],
        config=params["config_path"],
        backends=params["backends"],
        kms_sockets=parse_kms_sockets(params["kms_sockets"]),
        decrypt_check=params["decrypt_check"],
        history=params["history"],
        snapshot=params["snapshot"],
        findings_limit=SHOW_ALL_FINDINGS_LIMIT if params["show_all"] else DEFAULT_FINDINGS_LIMIT,
        allow_empty=params["allow_empty"],
    )
    request.check()
    etcd_config = None if request.snapshot else etcd_config_from(params)
    progress = _progress()
    try:
        report = run_audit(request, etcd_config=etcd_config, progress=progress)
    finally:
        if progress is not None:
            sys.stderr.write("\n")
    if params["output"] == "json":
        emit_json(report_to_json(report, fail_on))  # carries its own "schema"
    elif params["output"] == "junit":
        click.echo(report_to_junit(report, fail_on))
    else:
        click.echo(report_to_text(report, fail_on, show_all=params["show_all"]))
    failed = [f"{report.count(k)} {k.value}" for k in fail_on if report.count(k)]
    if report.nothing_checked:
        failed.append(f"no object under {report.prefix!r} (nothing was checked; "
                      "--allow-empty accepts that)")
    if failed:
        raise AuditFailed(
            "audit found " + ", ".join(failed),
            hint="see the report above; --fail-on chooses which findings fail the run",
        )


def _progress() -> Callable[[int], None] | None:
    stream = sys.stderr
    if not stream.isatty():
        return None

    def report(count: int) -> None:
        stream.write(f"\r{count} keys read")
        stream.flush()

    return report


@click.group(
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@scan_options
@click.pass_context
def audit(ctx: click.Context, /, **params: Any) -> None:
    """Prove what etcd really holds: plaintext, stale, undecryptable values.

    Without a subcommand this runs the scan (same as `secretkit audit scan`).

    \b
    Examples:
      secretkit audit --endpoints https://10.0.0.5:2379 --cacert ca.crt \\
          --cert etcd-client.crt --key etcd-client.key
      secretkit audit --config /etc/kubernetes/enc.yaml --kms-socket \\
          kms-prod=unix:///run/kms.sock --decrypt-check --history
      secretkit audit --snapshot backup.db --config enc.yaml -o json
      secretkit audit etcd-access --endpoints https://10.0.0.5:2379 \\
          --manifest /etc/kubernetes/manifests/etcd.yaml
      secretkit audit config --apiserver-manifest \\
          /etc/kubernetes/manifests/kube-apiserver.yaml

    \b
    Exit codes: 0 nothing listed in --fail-on was found; 1 findings (undecryptable
    values included); 2 usage or bad input; 5 could not check (etcd, a KMS plugin,
    Vault or AWS KMS unreachable or failing).
    With -o json every outcome is one JSON document on stdout
    (docs/schemas/secretkit.audit.report.v1.json, or secretkit.error.v1.json).
    """
    if ctx.invoked_subcommand is None:
        _run_scan(params)


@audit.command("scan")
@scan_options
def scan(**params: Any) -> None:
    """Classify every value under the prefix (the default `secretkit audit`)."""
    _run_scan(params)


@audit.command("etcd-access")
@click.option("--endpoints", help="Comma-separated etcd client URLs to probe without credentials.")
@click.option(
    "--cacert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CA to verify etcd's server certificate (the probe never sends a client cert).",
)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="etcd static pod manifest to check flags in (e.g. /etc/kubernetes/manifests/etcd.yaml).",
)
@click.option("--etcd-flags", help='etcd\'s flags as one string, e.g. "--client-cert-auth=true".')
@click.option(
    "--dial-timeout",
    type=Duration(),
    default="5s",
    show_default=True,
    help="How long to wait for each endpoint (Go duration: 5s, 500ms).",
)
@etcd_prefix_option()
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low", "info", "none"]),
    default="high",
    show_default=True,
    help="Exit 1 when a failed check is at least this severe.",
)
@output_option()
def etcd_access(
    endpoints: str | None,
    cacert: Path | None,
    manifest: Path | None,
    etcd_flags: str | None,
    dial_timeout: float,
    etcd_prefix: str,
    fail_on: str,
    output: str,
) -> None:
    """Can someone read or write Secrets in etcd without the apiserver?

    Probes each endpoint like an attacker would (plain HTTP, TLS without a client
    certificate; a count-only range, no values are fetched) and checks etcd's own
    flags: client-cert auth, peer TLS, auto-tls.

    \b
    Exit codes: 0 no failed check at --fail-on or worse; 1 such a failed check;
    2 usage or bad input; 5 an endpoint did not answer (nothing was proven for it)
    and nothing else failed at --fail-on.
    """
    from secretkit.audit.etcd_access import audit_etcd_access
    from secretkit.audit.flags import load_manifest_flags, parse_flag_string

    if not endpoints and manifest is None and etcd_flags is None:
        raise UsageError(
            "nothing to check",
            where="secretkit audit etcd-access",
            hint="pass --endpoints, --manifest or --etcd-flags",
        )
    if manifest is not None and etcd_flags is not None:
        raise UsageError("pass either --manifest or --etcd-flags", where="--etcd-flags")
    flags = None
    if manifest is not None:
        flags = load_manifest_flags(manifest, "etcd")
    elif etcd_flags is not None:
        flags = parse_flag_string(etcd_flags)
    if cacert is not None:
        from secretkit.cli.etcd_options import check_pem_file

        check_pem_file(cacert, what="the --cacert file")  # a clear error before any probe
    endpoint_list = [e.strip() for e in (endpoints or "").split(",") if e.strip()]
    report = audit_etcd_access(
        endpoint_list, flags=flags, cacert=cacert, timeout=dial_timeout, prefix=etcd_prefix
    )
    _emit_checks(report, output, fail_on)
    unreachable = [f.where for f in report.failed if f.check == "etcd.reachable"]
    if unreachable:
        raise DependencyError(
            f"{len(unreachable)} endpoint(s) did not answer: nothing was proven for them",
            where=", ".join(unreachable),
            hint="check the address and --dial-timeout, or run this from a control-plane node",
        )


@audit.command("config")
@click.option(
    "--apiserver-manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="kube-apiserver static pod manifest.",
)
@click.option(
    "--apiserver-flags", help="kube-apiserver flags as one string (instead of a manifest)."
)
@aliased_option(
    "--config",
    "encryption_config",
    hidden_aliases=("--encryption-config",),
    type=click.Path(dir_okay=False, path_type=Path),
    help="The EncryptionConfiguration (default: the file the manifest names, if readable).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["critical", "high", "medium", "low", "info", "none"]),
    default="high",
    show_default=True,
    help="Exit 1 when a failed check is at least this severe.",
)
@output_option()
def config_check(
    apiserver_manifest: Path | None,
    apiserver_flags: str | None,
    encryption_config: Path | None,
    fail_on: str,
    output: str,
) -> None:
    """CIS-style checks of encryption at rest, each with severity and a fix.

    Checks: encryption flag present, automatic reload, identity not first for secrets,
    secrets covered, kms v1 deprecated, aescbc discouraged, config file mode 0600,
    apiserver->etcd TLS, custom --etcd-prefix noted.
    """
    from secretkit.audit.config_check import audit_config
    from secretkit.audit.flags import load_manifest_flags, parse_flag_string

    if apiserver_manifest is None and apiserver_flags is None and encryption_config is None:
        raise UsageError(
            "nothing to check",
            where="secretkit audit config",
            hint="pass --apiserver-manifest FILE and/or --config FILE",
        )
    if apiserver_manifest is not None and apiserver_flags is not None:
        raise UsageError(
            "pass either --apiserver-manifest or --apiserver-flags", where="--apiserver-flags"
        )
    if encryption_config is not None:
        from secretkit.fileio import read_text_file

        # a file that cannot be read as text at all is bad input (2); one that reads
        # but does not load is a finding the report lists (1)
        read_text_file(encryption_config, what="the --config file")
    flags = None
    if apiserver_manifest is not None:
        flags = load_manifest_flags(apiserver_manifest, "kube-apiserver")
    elif apiserver_flags is not None:
        flags = parse_flag_string(apiserver_flags, "--apiserver-flags")
    report = audit_config(flags, encryption_config)
    _emit_checks(report, output, fail_on)


def _emit_checks(report: Any, output: str, fail_on: str) -> None:
    from secretkit.audit.checks import Severity
    from secretkit.audit.run import AuditFailed
    from secretkit.cli.output import emit_json

    if output == "json":
        emit_json(report.to_json())  # carries its own "schema"
    else:
        click.echo(report.to_text())
    if fail_on != "none" and report.fails_at(Severity(fail_on)):
        worst = report.failed[0]
        raise AuditFailed(
            f"{len(report.failed)} check(s) failed, worst: {worst.severity.value}: {worst.title}",
            hint=f"--fail-on {fail_on} decides which severities fail the run",
        )
