"""``secretkit encryption enable|disable``: turn encryption at rest on or off, in stages."""

from __future__ import annotations

from typing import Any

import click

from secretkit.cli.stages import make_stage_group
from secretkit.errors import UsageError
from secretkit.rotation.plans import DisableEncryption, EnableEncryption, new_key_name, new_secret


def _provider_entry(params: dict[str, Any]) -> dict[str, Any]:
    ptype = params.get("provider")
    if not ptype:
        return {}
    if ptype == "kms":
        if not params.get("kms_name") or not params.get("kms_endpoint"):
            raise UsageError(
                "--provider kms needs --kms-name and --kms-endpoint",
                hint="e.g. --kms-name vault --kms-endpoint unix:///var/run/kms/plugin.sock",
            )
        return {
            "kms": {
                "apiVersion": "v2",
                "name": params["kms_name"],
                "endpoint": params["kms_endpoint"],
                "timeout": params["kms_timeout"],
            }
        }
    name = params.get("key_name") or new_key_name()
    return {ptype: {"keys": [{"name": name, "secret": new_secret(ptype)}]}}


def _enable_plan(params: dict[str, Any]) -> EnableEncryption:
    return EnableEncryption(provider=_provider_entry(params))


def _disable_plan(_params: dict[str, Any]) -> DisableEncryption:
    return DisableEncryption()


@click.group()
def encryption() -> None:
    """Enable or disable encryption at rest, with the same stages and gates as rotation."""


encryption.add_command(
    make_stage_group(
        "enable",
        """Encrypt resources that are stored in plaintext today.

        \b
        1. prepare    add the provider after identity (read-only) on every node
        2. promote    make it the writer; identity stays as a read fallback
        3. reencrypt  rewrite every object (they are now encrypted)
        4. prune      drop identity, refused while etcd holds any plaintext value
        """,
        _enable_plan,
        [
            click.option(
                "--provider",
                type=click.Choice(["aesgcm", "aescbc", "secretbox", "kms"]),
                help="Provider to enable (needed by prepare). kms means KMS v2.",
            ),
            click.option("--key-name", help="Local key name (default: key-<UTC timestamp>)."),
            click.option("--kms-name", help="KMS v2 provider name (no ':')."),
            click.option("--kms-endpoint", help="Plugin socket, unix:///path."),
            click.option("--kms-timeout", default="3s", show_default=True),
        ],
        check_plugin=True,
    )
)
encryption.add_command(
    make_stage_group(
        "disable",
        """Store resources in plaintext again (e.g. before a migration).

        \b
        1. prepare    add identity as a read fallback on every node
        2. promote    make identity the writer
        3. reencrypt  rewrite every object (they are now plaintext)
        4. prune      drop the old providers, refused while etcd holds an encrypted value
        """,
        _disable_plan,
        [],
    )
)
