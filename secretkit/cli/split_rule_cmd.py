"""``secretkit config split-rule``: give resources a rule of their own, providers unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from secretkit.cli.output import emit_json, output_option, schema_id


@click.command("split-rule")
@click.option(
    "--config",
    "configs",
    multiple=True,
    required=True,
    help="EncryptionConfiguration of one control-plane node (repeat per node; the files "
    "must be identical).",
)
@click.option(
    "--resources",
    required=True,
    help="Comma-separated resources to move into their own rule, as named in the config.",
)
@click.option("--dry-run", is_flag=True, help="Show the diff; write nothing.")
@output_option()
def split_rule(configs: tuple[str, ...], resources: str, dry_run: bool, output: str) -> None:
    """Split a shared rule so a rotation can treat some of its resources apart.

    \b
    A rotation stage edits whole rules: with `resources: [secrets, configmaps]` it
    re-encrypts and proves both. To rotate only Secrets, split first:
      secretkit config split-rule --config enc.yaml --resources secrets
    gives `[secrets]` and `[configmaps]`, each with a copy of the same providers, so
    nothing about encryption changes. Every file is rewritten atomically (0600) with a
    .bak-split-* copy; restart (or let auto-reload pick up) the apiservers before the
    next stage, which waits for the new hash.
    """
    from secretkit.core.encryption_config import load_encryption_config
    from secretkit.rotation.config_edit import split_rule as split
    from secretkit.rotation.files import atomic_write, backup, file_hash, redacted_diff
    from secretkit.rotation.verify import load_identical_configs
    from secretkit.rotation.yamldoc import dump_document, load_document

    names = [r.strip() for r in resources.split(",") if r.strip()]
    raws, _ = load_identical_configs([Path(c) for c in configs])
    first, raw = next(iter(raws.items()))
    new_raw = dump_document(split(load_document(raw, source=first), names), like=raw)
    load_encryption_config(new_raw, source="split-rule result")
    written: list[str] = []
    backups: list[str] = []
    if not dry_run:
        for name in raws:
            backups.append(str(backup(Path(name), "split")))
            atomic_write(Path(name), new_raw)
            written.append(name)
    diff = redacted_diff(raw, new_raw, Path(first).name)
    result: dict[str, Any] = {
        "dry_run": dry_run,
        "resources": names,
        "changed_files": written,
        "backups": backups,
        "new_hash": file_hash(new_raw),
        "diff": diff,
    }
    if output == "json":
        emit_json(result, schema=schema_id("config.split-rule"))
        return
    click.echo(diff.rstrip("\n"))
    if dry_run:
        click.echo("split-rule: dry run, nothing written")
        return
    for name in written:
        click.echo(f"wrote {name} (0600); backup: {name}.bak-split-*")
    click.echo(
        f"split-rule: done ({file_hash(new_raw)}). Providers are unchanged; the next stage "
        "waits until every apiserver runs this file."
    )
