"""Vault / OpenBao administration the sandbox and the tests need: transit set-up.

Not part of the key backend (a plugin only encrypts and decrypts with keys that
exist); it sits next to it so that both build their hvac client, and translate hvac
errors, the same way (:func:`secretkit.backends.vault.map_error`).
"""

from __future__ import annotations

import hvac
from hvac import exceptions as hvac_exc

from secretkit.backends.vault import VaultAuth, VaultConfig, _make_client, map_error


def _client(address: str, token: str, key: str = "") -> hvac.Client:
    client = _make_client(
        VaultConfig(address=address, key=key, auth=VaultAuth(method="token", token=token))
    )
    client.token = token
    return client


def enable_transit(address: str, token: str, mount: str = "transit") -> None:
    """Enable the transit secrets engine at ``mount`` (no-op if already enabled).

    Raises a :class:`~secretkit.errors.BackendError` (with a hint) when the server
    refuses or cannot be reached; the token is never part of the message.
    """
    client = _client(address, token)
    try:
        client.sys.enable_secrets_engine("transit", path=mount)
    except hvac_exc.InvalidRequest as exc:
        if "already in use" not in str(exc):
            raise map_error(exc, op="enable transit", where=address,
                            hint_path=f"sys/mounts/{mount}") from None
    except Exception as exc:
        raise map_error(exc, op="enable transit", where=address,
                        hint_path=f"sys/mounts/{mount}") from None
    finally:
        client.adapter.close()


def create_transit_key(
    address: str,
    token: str,
    name: str,
    *,
    mount: str = "transit",
    key_type: str = "aes256-gcm96",
) -> None:
    """Create the transit key ``name`` (kept as is when it already exists)."""
    client = _client(address, token, name)
    try:
        client.secrets.transit.create_key(  # type: ignore[no-untyped-call]
            name=name, key_type=key_type, mount_point=mount
        )
    except Exception as exc:
        raise map_error(exc, op=f"create transit key {name!r}", where=f"{address} ({mount})",
                        hint_path=f"{mount}/keys/{name}") from None
    finally:
        client.adapter.close()
