"""Network hygiene of the backends: clear-text transport to a remote host is called out.

Building a backend never connects, so these tests touch no network: a Vault or AWS
KMS address that is plain ``http://`` to a non-loopback host logs a warning (the token
and unwrapped DEK seeds would travel unencrypted); loopback and https do not.
"""

from __future__ import annotations

import logging

import pytest

from secretkit.backends import build_backend
from tests.security import canaries as c


def _vault(address: str) -> dict[str, object]:
    return {"type": "vault", "address": address, "key": "k",
            "auth": {"method": "token", "token": c.TOKEN}}


def _aws(endpoint: str) -> dict[str, object]:
    return {"type": "aws", "key": "alias/k", "region": "us-east-1", "endpoint_url": endpoint}


@pytest.mark.parametrize(
    ("definition", "warned"),
    [
        (_vault("http://10.0.0.5:8200"), True),
        (_vault("http://vault.example.internal:8200"), True),
        (_vault("http://127.0.0.1:8200"), False),
        (_vault("http://[::1]:8200"), False),
        (_vault("http://localhost:8200"), False),
        (_vault("https://vault.example.internal:8200"), False),
        (_aws("http://kms.example.internal"), True),
        (_aws("http://127.0.0.1:5000"), False),
        (_aws("https://kms.us-east-1.amazonaws.com"), False),
    ],
)
def test_plain_http_to_a_remote_backend_is_warned_about(
    definition: dict[str, object], warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="secretkit.backends"):
        backend = build_backend(definition, where="backends.yaml:p")
    backend.close()
    warnings = [r.getMessage() for r in caplog.records if "plain http" in r.getMessage()]
    assert bool(warnings) is warned, warnings
    assert not c.leaks("\n".join(r.getMessage() for r in caplog.records), c.TOKEN)
