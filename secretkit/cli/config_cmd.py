"""``secretkit config``: generate, validate and show EncryptionConfiguration files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from secretkit.cli.output import emit_json, output_option, schema_id
from secretkit.cli.params import Duration
from secretkit.errors import FindingsError, UsageError

#: the ``schema`` of each subcommand's ``-o json`` document (docs/schemas/)
GENERATE_SCHEMA = schema_id("config.generate")
VALIDATE_SCHEMA = schema_id("config.validate")
SHOW_SCHEMA = schema_id("config.show")


@click.group(short_help="Generate, validate and show EncryptionConfiguration files.")
def config() -> None:
    """Write, check and explain kube-apiserver EncryptionConfiguration files.

    \b
    Typical use:
      secretkit config generate --provider secretbox -f enc.yaml  # new key, mode 0600
      secretkit config validate enc.yaml                          # the apiserver's rules
      secretkit config show enc.yaml                              # providers, fingerprints
    """


@config.command("generate", short_help="Write a new config with a fresh key.")
@click.option(
    "--provider",
    type=click.Choice(["aescbc", "aesgcm", "secretbox", "kms"]),
    default="secretbox",
    show_default=True,
    help="Provider that writes. kms means KMS v2 (needs --kms-name and --kms-endpoint). "
    "kms v2 or secretbox are recommended; aesgcm keys must be rotated often (random "
    "nonces, ~200k writes per key); aescbc has no integrity protection.",
)
@click.option(
    "--resources",
    multiple=True,
    default=("secrets",),
    show_default=True,
    help="Resources, comma-separated or repeated: secrets, configmaps, deployments.apps, "
    "*.apps, *. (core), *.*. Unknown names are errors.",
)
@click.option(
    "--identity-fallback",
    is_flag=True,
    help="Add identity as a read-only second provider, so values still stored in plaintext "
    "stay readable during a first migration (drop it once everything is re-encrypted).",
)
@click.option("--key-name", help="Name of the new key [default: key-<UTC timestamp>].")
@click.option("--kms-name", help="kms provider name (unique, no ':'; part of every stored value).")
@click.option("--kms-endpoint", help="Plugin socket, unix:///path/to/plugin.sock.")
@click.option(
    "--kms-timeout",
    type=Duration(as_text=True),
    default="3s",
    show_default=True,
    help="kms call timeout (Go duration).",
)
@click.option(
    "-f",
    "--file",
    "file_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the config here (mode 0600, atomically).",
)
@click.option("--force", is_flag=True, help="Replace an existing --file.")
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Allow printing the config, key included, to stdout when no --file is given "
    "(with -o json: the config as JSON in the document's \"config\" field).",
)
@output_option()
def generate(**params: Any) -> None:
    """Generate a new EncryptionConfiguration (a fresh 32-byte key, or a kms v2 provider).

    The key comes from the OS CSPRNG. The file is validated before it is written.
    Nothing secret is printed unless you pass --show-secrets (stdout mode); with
    --file only the key's name and fingerprint are shown.

    \b
    Examples:
      secretkit config generate --provider secretbox -f /etc/kubernetes/enc.yaml
      secretkit config generate --provider aesgcm --resources secrets,configmaps \\
          --identity-fallback -f enc.yaml
      secretkit config generate --provider kms --kms-name kms-prod \\
          --kms-endpoint unix:///var/run/kmsplugin/socket.sock -f enc.yaml
    """
    from secretkit.config_files import write_private_file
    from secretkit.core.encryption_config import load_encryption_config
    from secretkit.core.encryption_config.describe import describe_encryption_config
    from secretkit.core.encryption_config.generate import (
        GenerateOptions,
        generate_encryption_config,
        split_resources,
    )
    from secretkit.core.resources import check_resource_names
    from secretkit.fileio import parse_yaml

    if params["provider"] == "kms" and not (params["kms_name"] and params["kms_endpoint"]):
        raise UsageError(
            "--provider kms needs --kms-name and --kms-endpoint",
            where="--kms-name/--kms-endpoint",
            hint="e.g. --kms-name kms-prod --kms-endpoint unix:///var/run/kms/plugin.sock",
        )
    resources = split_resources(params["resources"])
    check_resource_names(resources, where="--resources", wildcards=True, bare_means_core=True)
    options = GenerateOptions(
        provider=params["provider"],
        resources=resources,
        key_name=params["key_name"],
        identity_fallback=params["identity_fallback"],
        kms_name=params["kms_name"],
        kms_endpoint=params["kms_endpoint"],
        kms_timeout=params["kms_timeout"],
    )
    data = generate_encryption_config(options)
    file_path: Path | None = params["file_path"]
    # self-check: never hand out a file the apiserver would refuse
    cfg = load_encryption_config(data, source=str(file_path or "<generated>"))
    holds_key = options.provider != "kms"
    summary = describe_encryption_config(cfg)
    if file_path is None:
        if holds_key and not params["show_secrets"]:
            raise UsageError(
                "refusing to print a new key to stdout",
                hint="write it to a file with -f PATH (mode 0600), or pass --show-secrets "
                "to print it anyway",
            )
        if params["output"] == "json":
            # the apiserver reads JSON configs too: the document itself, key included
            emit_json(
                {**summary, "written": None, "config": parse_yaml(data)},
                schema=GENERATE_SCHEMA,
            )
            return
        click.echo(data.decode(), nl=False)
        return
    write_private_file(file_path, data, force=params["force"])
    summary["written"] = str(file_path)
    if params["output"] == "json":
        emit_json({**summary, "config": None}, schema=GENERATE_SCHEMA)
        return
    provider = summary["rules"][0]["providers"][0]
    click.echo(f"wrote {file_path} (mode 0600)")
    if holds_key:
        key = provider["keys"][0]
        click.echo(f"  {provider['type']} key {key['name']!r} fingerprint {key['fingerprint']}")
    else:
        click.echo(f"  kms v2 provider {provider['name']!r} at {provider['endpoint']}")
    click.echo(f"  resources: {', '.join(options.resources)}")
    click.echo(f"  config hash: {cfg.hash}")


def _loose_key_file_warnings(path: Path, cfg: Any) -> list[Any]:
    """A warning when a file holding local keys is readable by group or others."""
    from secretkit.core.encryption_config import ConfigProblem, LocalKeyProvider
    from secretkit.fileio import is_private_mode

    if cfg is None or not any(
        isinstance(p, LocalKeyProvider) and p.keys for rule in cfg.rules for p in rule.providers
    ):
        return []
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return []
    if is_private_mode(mode):
        return []
    return [
        ConfigProblem(
            "(file)",
            f"holds keys but is readable by group or others (mode {mode:04o})",
            f"run: chmod 600 {path}",
        )
    ]


@config.command("validate", short_help="Check configs against the apiserver's rules.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option()
def validate(files: tuple[Path, ...], output: str) -> None:
    """Check EncryptionConfiguration FILES against the apiserver's rules.

    Every problem is listed with its field path (e.g.
    resources[0].providers[1].aesgcm.keys[0].secret) and a hint. Warnings (a
    resource no kube-apiserver serves, a key file others can read) do not make a
    file invalid. Exit status 0 when every file is valid, 1 when one is not, 2 on
    usage errors. Key values are never printed.
    """
    from secretkit.core.encryption_config import ConfigProblem, check_encryption_config
    from secretkit.core.encryption_config.validate import unserved_resource_warnings
    from secretkit.errors import SecretkitError
    from secretkit.fileio import read_file

    reports: list[dict[str, Any]] = []
    for path in files:
        try:
            data = read_file(path, what="the file")
        except SecretkitError as exc:
            problems = [ConfigProblem("(file)", exc.what, exc.hint)]
            reports.append(
                {"path": str(path), "valid": False, "hash": None, "problems": problems,
                 "warnings": []}
            )
            continue
        cfg, problems = check_encryption_config(data, source=str(path))
        warnings = _loose_key_file_warnings(path, cfg)
        if cfg is not None:
            warnings += unserved_resource_warnings(cfg)
        reports.append(
            {
                "path": str(path),
                "valid": not problems,
                "hash": cfg.hash if cfg is not None else None,
                "problems": problems,
                "warnings": warnings,
            }
        )
    all_valid = all(r["valid"] for r in reports)
    if output == "json":
        emit_json(
            {
                "valid": all_valid,
                "files": [
                    {
                        **r,
                        "problems": [_problem_json(p) for p in r["problems"]],
                        "warnings": [_problem_json(p) for p in r["warnings"]],
                    }
                    for r in reports
                ],
            },
            schema=VALIDATE_SCHEMA,
        )
    else:
        for r in reports:
            if r["valid"]:
                click.echo(f"OK       {r['path']}  ({r['hash']})")
            else:
                count = len(r["problems"])
                click.echo(f"INVALID  {r['path']}: {count} problem{'s' if count != 1 else ''}")
                for p in r["problems"]:
                    click.echo(f"  - {p.path}: {p.message}")
                    if p.hint:
                        click.echo(f"      fix: {p.hint}")
            for w in r["warnings"]:
                click.echo(f"  warning: {w.path}: {w.message}")
                if w.hint:
                    click.echo(f"      fix: {w.hint}")
    if not all_valid:
        # an error (not ctx.exit) so the one CLI boundary sets the exit status
        bad = sum(1 for r in reports if not r["valid"])
        raise FindingsError(
            f"{bad} of {len(reports)} file{'s' if len(reports) != 1 else ''} invalid",
            hint="fix the problems listed above",
        )


def _problem_json(problem: Any) -> dict[str, Any]:
    return {"path": problem.path, "message": problem.message, "hint": problem.hint}


@config.command("show", short_help="Explain a config (never shows keys).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@output_option()
def show(file: Path, output: str) -> None:
    """Explain FILE: per rule, the providers in order, key fingerprints, kms settings.

    The first provider of a rule writes; the others only read. Keys are shown by
    name and fingerprint (sha256 prefix of the key), never by value. The hash is
    what the apiserver reports in apiserver_encryption_config_controller_last_config_info.
    """
    from secretkit.config_files import load_encryption_config_file
    from secretkit.core.encryption_config.describe import (
        describe_encryption_config,
        provider_summary,
    )

    cfg = load_encryption_config_file(file)
    if output == "json":
        emit_json(describe_encryption_config(cfg), schema=SHOW_SCHEMA)
        return
    click.echo(f"config: {cfg.source}")
    click.echo(f"hash:   {cfg.hash}")
    for i, rule in enumerate(cfg.rules):
        click.echo(f"rule {i}: {', '.join(rule.resources)}")
        for j, provider in enumerate(rule.providers):
            role = "writes + reads" if j == 0 else "reads"
            click.echo(f"  {j + 1}. {provider_summary(provider)}  [{role}]")


def _register_split_rule() -> None:
    from secretkit.cli.split_rule_cmd import split_rule

    config.add_command(split_rule)


_register_split_rule()
