"""``secretkit rotate``: staged rotation of a local key (aescbc, aesgcm, secretbox)."""

from __future__ import annotations

from typing import Any

import click

from secretkit.cli.stages import make_stage_group
from secretkit.rotation.plans import LocalKeyRotation


def _plan(_params: dict[str, Any]) -> LocalKeyRotation:
    return LocalKeyRotation()


rotate = make_stage_group(
    "rotate",
    """Rotate the local key of an aescbc, aesgcm or secretbox provider, in safe stages.

    \b
    1. prepare    add a new key as a read-only key on every node's config
    2. promote    make it the write key (after every apiserver runs stage 1)
    3. reencrypt  rewrite every object with it (runs `secretkit reencrypt`)
    4. prune      remove the old keys, refused while etcd holds a value that needs them

    Every stage edits all the given config files (--config per node) atomically, 0600,
    with a backup, prints a redacted diff, and records progress in a state file;
    `secretkit rotate status` says what comes next.
    """,
    _plan,
    [click.option("--key-name", help="Name of the new key (default: key-<UTC timestamp>).")],
)
