"""The Vault / OpenBao transit key backend (via hvac).

key_id scheme (unique across clusters, keys, key versions and re-created keys)::

    vault:<cluster_id>:<mount>:<key>:v<N>:<created>

``<created>`` is the unix time transit reports for version N of the key: a key deleted
and created again under the same name starts at v1 again, and without it the new key
would report the key_id of the lost one, so apiservers would keep writing with a seed
the new key cannot unwrap (and values under the lost key would not look stale).
key_ids without ``:<created>`` (written by earlier versions) still decrypt.

``cluster_id`` is the first 12 hex digits of sha256(address + "\\n" + namespace), or
the configured ``cluster_id`` (set it to the old value when the address changes).
Encrypt writes with the latest key version (key metadata is cached for
``key_cache_seconds``); Decrypt takes mount and key *name* from the request's key_id,
so values written before a key switch keep decrypting, and transit picks the version
from the ciphertext (``vault:vN:...``).

Encryption context: when the transit key is derived (``derived: true``), every call
binds ``context`` (default: the transit key name) so a ciphertext only decrypts under
that key's derivation. Non-derived keys get no context.

Concurrent calls are coalesced into one transit ``batch_input`` call (see
:mod:`secretkit.backends._coalesce`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import hvac
import requests
from hvac import exceptions as hvac_exc
from requests.adapters import HTTPAdapter

from secretkit.backends._coalesce import Coalescer
from secretkit.backends._schema import Definition
from secretkit.backends.interface import BackendStatus, KeyBackend, WrapResult
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    SafetyError,
)
from secretkit.fileio import SECRET_FILE_MAX_BYTES, is_private_mode, read_file, read_text_file
from secretkit.loopback import is_loopback_url

log = logging.getLogger(__name__)
T = TypeVar("T")

AUTH_METHODS = ("token", "approle", "kubernetes", "jwt", "cert")
DEFAULT_SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_MAX_DETAIL = 200


@dataclass(frozen=True)
class VaultTLS:
    """TLS settings for the Vault connection."""

    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class VaultAuth:
    """How to obtain a token. Secret values are never part of the repr."""

    method: str = "token"
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    role_id: str | None = None
    secret_id: str | None = field(default=None, repr=False)
    secret_id_file: Path | None = None
    role: str | None = None
    mount: str | None = None


@dataclass(frozen=True)
class VaultConfig:
    """Everything the transit backend needs; see docs/backends.md."""

    address: str
    key: str
    auth: VaultAuth
    mount: str = "transit"
    namespace: str | None = None
    tls: VaultTLS = field(default_factory=VaultTLS)
    cluster_id: str | None = None
    context: str | None = None
    timeout_seconds: float = 2.5
    key_cache_seconds: float = 5.0
    renew_margin_seconds: float = 10.0
    batch_max_items: int = 64
    batch_max_inflight: int = 4


def _creation_times(data: Mapping[str, Any]) -> dict[int, int]:
    """Version -> creation time of a transit ``read key`` answer (``keys``: unix seconds
    for symmetric keys; RFC 3339 strings in some versions)."""
    out: dict[int, int] = {}
    keys = data.get("keys")
    if not isinstance(keys, Mapping):
        return out
    for version, value in keys.items():
        if not str(version).isdigit():
            continue
        created: int | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            created = int(value)
        elif isinstance(value, str):
            created = _rfc3339_seconds(value)
        elif isinstance(value, Mapping) and isinstance(value.get("creation_time"), str):
            created = _rfc3339_seconds(value["creation_time"])
        if created is not None:
            out[int(version)] = created
    return out


def _rfc3339_seconds(text: str) -> int | None:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def cluster_id_for(address: str, namespace: str | None) -> str:
    """The default cluster part of a key_id: sha256(address \\n namespace)[:12]."""
    raw = f"{address.rstrip('/')}\n{namespace or ''}".encode()
    return hashlib.sha256(raw).hexdigest()[:12]


@dataclass(frozen=True)
class TransitKeyRef:
    """A parsed transit key_id (``created`` is None in key_ids of earlier versions)."""

    cluster_id: str
    mount: str
    key: str
    version: int
    created: int | None = None

    def key_id(self) -> str:
        """Format back to ``vault:<cluster>:<mount>:<key>:v<N>[:<created>]``."""
        base = f"vault:{self.cluster_id}:{self.mount}:{self.key}:v{self.version}"
        return base if self.created is None else f"{base}:{self.created}"


def _version(part: str) -> int | None:
    return int(part[1:]) if part.startswith("v") and part[1:].isdigit() else None


def parse_key_id(key_id: str) -> TransitKeyRef | None:
    """Parse ``vault:<cluster>:<mount>:<key>:v<N>[:<created>]``; None when not ours."""
    if not key_id.startswith("vault:"):
        return None
    parts = key_id[len("vault:") :].split(":")
    created: int | None = None
    if len(parts) >= 5 and parts[-1].isdigit() and _version(parts[-2]) is not None:
        created = int(parts[-1])
        parts = parts[:-1]
    if len(parts) < 4:
        return None
    cluster, version = parts[0], _version(parts[-1])
    key = parts[-2]
    mount = ":".join(parts[1:-2])
    if not (cluster and mount and key and version is not None):
        return None
    return TransitKeyRef(cluster, mount, key, version, created)


# ---------------------------------------------------------------------------
# error mapping


def _vault_detail(exc: hvac_exc.VaultError) -> str:
    # exc.errors holds Vault's own messages; str(exc) may hold the whole response body
    # (batch results include plaintexts), so it is never used.
    errors = exc.errors if isinstance(exc.errors, list) else [exc.errors] if exc.errors else []
    text = "; ".join(str(e) for e in errors if e)
    return text[:_MAX_DETAIL]


def map_error(exc: BaseException, *, op: str, where: str, hint_path: str) -> BackendError:
    """Translate hvac/requests failures into secretkit backend errors."""
    if isinstance(exc, BackendError):
        return exc
    name = type(exc).__name__
    if isinstance(exc, hvac_exc.VaultError):
        detail = _vault_detail(exc)
        what = f"vault {op} failed ({name}{': ' + detail if detail else ''})"
        if isinstance(exc, hvac_exc.Forbidden | hvac_exc.Unauthorized):
            return BackendPermissionDenied(
                what,
                where=where,
                hint=f"the Vault token needs a policy allowing update on {hint_path}",
            )
        if isinstance(exc, hvac_exc.InvalidPath):
            return BackendInvalidRequest(
                what, where=where, hint=f"check that the transit mount and key exist: {hint_path}"
            )
        if isinstance(exc, hvac_exc.InvalidRequest | hvac_exc.PreconditionFailed):
            return BackendInvalidRequest(what, where=where)
        return BackendUnavailable(
            what, where=where, hint="Vault is sealed, overloaded or failing; retry later"
        )
    if isinstance(exc, requests.Timeout):
        return BackendTimeout(
            f"vault {op} timed out ({name})",
            where=where,
            hint="raise timeout_seconds or check the network path to Vault",
        )
    if isinstance(exc, requests.RequestException):
        return BackendUnavailable(
            f"vault {op}: cannot reach Vault ({name})",
            where=where,
            hint="check the address, TLS settings and that Vault is up",
        )
    return BackendError(f"vault {op} failed ({name})", where=where)


# ---------------------------------------------------------------------------
# HTTP session


class _ServerNameAdapter(HTTPAdapter):
    """Send a fixed TLS server name (SNI + hostname check), like Vault's tls_server_name."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


def _make_client(cfg: VaultConfig) -> hvac.Client:
    session = requests.Session()
    # Never send loopback traffic through an HTTP(S)_PROXY from the environment.
    session.trust_env = not is_loopback_url(cfg.address)
    if cfg.tls.server_name:
        session.mount("https://", _ServerNameAdapter(cfg.tls.server_name))
    verify: bool | str = True
    if cfg.tls.insecure_skip_verify:
        verify = False
    elif cfg.tls.ca_file is not None:
        verify = str(_checked_pem(cfg.tls.ca_file, "tls.ca_file"))
    cert = None
    if cfg.tls.client_cert is not None and cfg.tls.client_key is not None:
        cert = (
            str(_checked_pem(cfg.tls.client_cert, "tls.client_cert")),
            str(_checked_pem(cfg.tls.client_key, "tls.client_key")),
        )
    # hvac ignores its verify/cert arguments when given a session: set them here
    session.verify = verify
    session.cert = cert
    return hvac.Client(
        url=cfg.address,
        verify=verify,
        cert=cert,
        timeout=cfg.timeout_seconds,  # type: ignore[arg-type]  # requests takes floats
        namespace=cfg.namespace,
        session=session,
    )


def _checked_pem(path: Path, what: str) -> Path:
    """``path`` once it is a readable, bounded, PEM-looking regular file.

    requests/OpenSSL read these files themselves, without a size limit and with
    errors that do not name the file; a device or a binary file fails here instead.
    """
    data = read_file(path, what=f"the Vault {what} file", error=ConfigError, max_bytes=1 << 20)
    if b"-----BEGIN " not in data:
        raise ConfigError(
            f"the Vault {what} file is not PEM", where=str(path), hint="pass a PEM file"
        )
    return path


def _read_secret_file(path: Path, what: str, *, private: bool = False) -> str:
    # bounded and regular files only: a token_file of /dev/zero must fail, not read
    # until the kernel kills the process; binary content is an error, never quoted
    text = read_text_file(
        path, what=f"the {what} file", error=ConfigError, max_bytes=SECRET_FILE_MAX_BYTES
    )
    value = text.strip()
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file ({exc.strerror})", where=str(path)) from None
    if private and not is_private_mode(mode):
        # a long-lived credential others can read; (SA/JWT token files are mounted 0644
        # by the kubelet and short-lived, so they are not checked)
        log.warning("vault: the %s file %s is readable by group or others (mode %04o); "
                    "chmod 600 it", what, path, mode)
    if not value:
        raise ConfigError(f"{what} file is empty", where=str(path))
    return value


# ---------------------------------------------------------------------------
# authentication


class _Auth:
    """Holds the token: logs in, renews before expiry, re-logs in when renewal fails."""

    def __init__(self, client: hvac.Client, cfg: VaultConfig) -> None:
        self._client = client
        self._cfg = cfg
        self._lock = threading.Lock()
        self._expires_at: float | None = None  # None: no expiry (or unknown)
        self._ttl = 0.0
        self._renewable = False
        self._generation = 0
        self.logins = 0
        self.renewals = 0

    @property
    def generation(self) -> int:
        """Bumps on every (re)login, so a 403 retry knows whether a login happened."""
        return self._generation

    def ensure(self) -> None:
        """Log in if needed; renew or re-login when the token is close to expiry."""
        with self._lock:
            if self._generation == 0:
                self._login()
                return
            if self._expires_at is None:
                return
            remaining = self._expires_at - time.monotonic()
            margin = max(self._cfg.renew_margin_seconds, self._ttl / 3)
            if remaining > margin:
                return
            if self._renewable and self._renew():
                return
            self._login()

    def relogin_after_denied(self, seen_generation: int) -> bool:
        """After a 403: log in again once (unless another thread already did)."""
        with self._lock:
            if self._generation != seen_generation:
                return True
            if self._cfg.auth.method == "token" and self._cfg.auth.token_file is None:
                return False  # a literal token cannot be refreshed
            self._login()
            return True

    def _where(self) -> str:
        return self._cfg.address

    def _login(self) -> None:
        auth = self._cfg.auth
        c = self._client
        mount = auth.mount
        try:
            if auth.method == "token":
                if auth.token_file is not None:
                    c.token = _read_secret_file(auth.token_file, "Vault token", private=True)
                else:
                    c.token = auth.token or ""
            elif auth.method == "approle":
                secret_id = auth.secret_id
                if auth.secret_id_file is not None:
                    secret_id = _read_secret_file(
                        auth.secret_id_file, "AppRole secret_id", private=True)
                c.auth.approle.login(
                    role_id=auth.role_id, secret_id=secret_id, mount_point=mount or "approle"
                )
            elif auth.method == "kubernetes":
                jwt = _read_secret_file(auth.token_file or DEFAULT_SA_TOKEN, "SA token")
                c.auth.kubernetes.login(role=auth.role, jwt=jwt, mount_point=mount or "kubernetes")
            elif auth.method == "jwt":
                jwt = _read_secret_file(auth.token_file or DEFAULT_SA_TOKEN, "JWT")
                c.auth.jwt.jwt_login(role=auth.role, jwt=jwt, path=mount or "jwt")
            elif auth.method == "cert":
                # hvac's cert.login second-guesses verify/cert; the session already
                # presents the client certificate, so post the login directly
                c.adapter.login(
                    url=f"/v1/auth/{mount or 'cert'}/login",
                    json={"name": auth.role} if auth.role else {},
                )
            else:  # pragma: no cover - validated at config time
                raise ConfigError(f"unknown auth method {auth.method!r}")
            self._load_token_info()
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise map_error(
                exc,
                op=f"login ({auth.method})",
                where=self._where(),
                hint_path=f"auth/{mount or auth.method}/login",
            ) from None
        self._generation += 1
        self.logins += 1
        log.info("vault: logged in with %s auth at %s", auth.method, self._cfg.address)

    def _load_token_info(self) -> None:
        info = self._client.auth.token.lookup_self()["data"]
        ttl = float(info.get("ttl") or 0)
        self._renewable = bool(info.get("renewable"))
        self._ttl = float(info.get("creation_ttl") or ttl)
        self._expires_at = time.monotonic() + ttl if ttl > 0 else None

    def _renew(self) -> bool:
        try:
            resp = self._client.auth.token.renew_self(increment=int(self._ttl) or None)
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            log.warning("vault: token renewal failed (%s); logging in again", type(exc).__name__)
            return False
        ttl = float((resp.get("auth") or {}).get("lease_duration") or 0)
        remaining_before = (self._expires_at or 0) - time.monotonic()
        if ttl <= 0 or ttl <= remaining_before + 1:
            # capped by max TTL: renewal no longer extends the token
            log.info("vault: token renewal hit its max TTL; logging in again")
            return False
        self._expires_at = time.monotonic() + ttl
        self.renewals += 1
        return True


# ---------------------------------------------------------------------------
# the backend


@dataclass
class _KeyInfo:
    latest_version: int
    derived: bool
    fetched_at: float
    #: version -> creation time (unix seconds) as transit reports it
    created: dict[int, int] = field(default_factory=dict)

    def ref(self, cluster_id: str, mount: str, key: str, version: int) -> TransitKeyRef:
        """The key_id of ``version`` of this key."""
        return TransitKeyRef(cluster_id, mount, key, version, self.created.get(version))


@dataclass(frozen=True)
class _Op:
    """One queued transit item."""

    data: str = field(repr=False)  # base64 plaintext or a vault:vN: ciphertext


class VaultTransitBackend(KeyBackend):
    """Wraps with a Vault/OpenBao transit key; see the module docstring for key_ids."""

    kind = "vault"

    def __init__(self, cfg: VaultConfig, *, client: hvac.Client | None = None) -> None:
        self.cfg = cfg
        self.cluster_id = cfg.cluster_id or cluster_id_for(cfg.address, cfg.namespace)
        self._client = client or _make_client(cfg)
        self._auth = _Auth(self._client, cfg)
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], _KeyInfo] = {}
        self._coalescers: dict[tuple[str, str, str, int], Coalescer[_Op, str]] = {}

    # -- helpers ---------------------------------------------------------------

    @property
    def where(self) -> str:
        """Where errors point: the address, mount and key (never the token)."""
        ns = f" namespace={self.cfg.namespace}" if self.cfg.namespace else ""
        return f"{self.cfg.address}{ns} {self.cfg.mount}/keys/{self.cfg.key}"

    def _call(self, op: str, hint_path: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with a valid token; on 403 log in again once and retry."""
        self._auth.ensure()
        generation = self._auth.generation
        try:
            return fn()
        except hvac_exc.Forbidden as exc:
            if not self._auth.relogin_after_denied(generation):
                raise map_error(exc, op=op, where=self.where, hint_path=hint_path) from None
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise map_error(exc, op=op, where=self.where, hint_path=hint_path) from None
        try:
            return fn()
        except (hvac_exc.VaultError, requests.RequestException) as exc:
            raise map_error(exc, op=op, where=self.where, hint_path=hint_path) from None

    def _key_info(self, mount: str, key: str, *, fresh: bool = False) -> _KeyInfo:
        now = time.monotonic()
        with self._lock:
            info = self._keys.get((mount, key))
        if info is not None and not fresh and now - info.fetched_at < self.cfg.key_cache_seconds:
            return info
        data = self._call(
            "read key",
            f"{mount}/keys/{key}",
            lambda: self._client.secrets.transit.read_key(  # type: ignore[no-untyped-call]
                name=key, mount_point=mount
            ),
        )["data"]
        info = _KeyInfo(
            int(data["latest_version"]), bool(data.get("derived")), now, _creation_times(data)
        )
        with self._lock:
            self._keys[(mount, key)] = info
        return info

    def _context(self, key: str, derived: bool) -> str | None:
        if not derived:
            return None
        return base64.b64encode((self.cfg.context or key).encode()).decode()

    def _coalescer(self, op: str, mount: str, key: str, version: int) -> Coalescer[_Op, str]:
        ident = (op, mount, key, version)
        with self._lock:
            co = self._coalescers.get(ident)
            if co is None:
                co = Coalescer(
                    lambda item: self._run_one(op, mount, key, version, item),
                    lambda items: self._run_batch(op, mount, key, version, items),
                    max_items=self.cfg.batch_max_items,
                    max_inflight=self.cfg.batch_max_inflight,
                )
                self._coalescers[ident] = co
            return co

    def _transit(
        self, op: str, mount: str, key: str, version: int, **kwargs: Any
    ) -> dict[str, Any]:
        info = self._key_info(mount, key)
        context = self._context(key, info.derived)
        transit = self._client.secrets.transit
        if op == "encrypt":
            fn: Callable[[], dict[str, Any]] = lambda: transit.encrypt_data(  # noqa: E731
                name=key, key_version=version, context=context, mount_point=mount, **kwargs
            )
        else:
            fn = lambda: transit.decrypt_data(  # noqa: E731
                name=key, context=context, mount_point=mount, **kwargs
            )
        return self._call(op, f"{mount}/{op}/{key}", fn)

    def _run_one(self, op: str, mount: str, key: str, version: int, item: _Op) -> str:
        field_in = "plaintext" if op == "encrypt" else "ciphertext"
        field_out = "ciphertext" if op == "encrypt" else "plaintext"
        resp = self._transit(op, mount, key, version, **{field_in: item.data})
        return str(resp["data"][field_out])

    def _run_batch(
        self, op: str, mount: str, key: str, version: int, items: Sequence[_Op]
    ) -> list[str | BaseException]:
        field_in = "plaintext" if op == "encrypt" else "ciphertext"
        field_out = "ciphertext" if op == "encrypt" else "plaintext"
        info = self._key_info(mount, key)
        context = self._context(key, info.derived)
        batch: list[dict[str, str]] = []
        for it in items:
            entry = {field_in: it.data}
            if context is not None:
                entry["context"] = context
            batch.append(entry)
        try:
            resp = self._transit(op, mount, key, version, batch_input=batch)
            results = resp["data"]["batch_results"]
        except BackendInvalidRequest as exc:
            # Vault answers 400 when any item failed; the per-item results are in the body.
            cause = exc.__cause__ or exc.__context__
            body = getattr(cause, "json", None)
            results = (body or {}).get("data", {}).get("batch_results") if body else None
            if not isinstance(results, list) or len(results) != len(items):
                raise
        out: list[str | BaseException] = []
        for res in results:
            err = res.get("error")
            if err:
                out.append(
                    BackendInvalidRequest(
                        f"vault {op} failed: {str(err)[:_MAX_DETAIL]}", where=self.where
                    )
                )
            else:
                out.append(str(res.get(field_out, "")))
        return out

    # -- KeyBackend --------------------------------------------------------------

    def _encrypt(self, plaintext: bytes, *, uid: str) -> WrapResult:
        mount, key = self.cfg.mount, self.cfg.key
        info = self._key_info(mount, key)
        item = _Op(base64.b64encode(plaintext).decode())
        ciphertext = self._coalescer("encrypt", mount, key, info.latest_version).submit(item)
        version = _ciphertext_version(ciphertext) or info.latest_version
        if version not in info.created:
            info = self._key_info(mount, key, fresh=True)  # rotated meanwhile
        ref = info.ref(self.cluster_id, mount, key, version)
        return WrapResult(ciphertext=ciphertext.encode(), key_id=ref.key_id())

    def _decrypt(
        self, ciphertext: bytes, *, key_id: str, annotations: Mapping[str, bytes], uid: str
    ) -> bytes:
        ref = parse_key_id(key_id)
        if ref is None:
            raise BackendInvalidRequest(
                f"key_id {key_id!r} is not a Vault transit key_id",
                where=self.where,
                hint="expected vault:<cluster>:<mount>:<key>:v<N>; was this value written by "
                "another backend?",
            )
        if ref.cluster_id != self.cluster_id:
            raise BackendInvalidRequest(
                f"key_id {key_id!r} belongs to another Vault cluster or namespace "
                f"(this backend is {self.cluster_id})",
                where=self.where,
                hint="if only the address changed, set cluster_id to the old value",
            )
        try:
            text = ciphertext.decode("ascii")
        except UnicodeDecodeError:
            raise BackendInvalidRequest(
                "wrapped key is not a transit ciphertext", where=self.where
            ) from None
        if not text.startswith("vault:v"):
            raise BackendInvalidRequest(
                "wrapped key is not a transit ciphertext (no vault:vN: prefix)", where=self.where
            )
        if ref.created is not None:
            known = self._key_info(ref.mount, ref.key).created.get(ref.version)
            if known is not None and known != ref.created:
                raise BackendInvalidRequest(
                    f"key_id {key_id!r} names version {ref.version} of a transit key that was "
                    f"deleted and created again (that version now dates from {known})",
                    where=self.where,
                    hint="the key that wrote this value is gone; restore it from a Vault "
                    "backup (transit keys can be backed up and restored), or restore the "
                    "object from a backup",
                )
        item = _Op(text)
        plaintext_b64 = self._coalescer("decrypt", ref.mount, ref.key, 0).submit(item)
        return base64.b64decode(plaintext_b64)

    def _status(self) -> BackendStatus:
        info = self._key_info(self.cfg.mount, self.cfg.key)
        ref = info.ref(self.cluster_id, self.cfg.mount, self.cfg.key, info.latest_version)
        return BackendStatus(key_id=ref.key_id(), healthy=True)

    def key_created(self, key_id: str) -> float | None:
        """The creation time transit reports for the key_id's version."""
        ref = parse_key_id(key_id)
        if ref is None:
            return None
        if ref.created is not None:
            return float(ref.created)
        created = self._key_info(ref.mount, ref.key).created.get(ref.version)
        return float(created) if created is not None else None

    def rotate(self) -> str:
        """Rotate the transit key (transit/keys/<key>/rotate) and return the new key_id."""
        mount, key = self.cfg.mount, self.cfg.key
        self._call(
            "rotate",
            f"{mount}/keys/{key}/rotate",
            lambda: self._client.secrets.transit.rotate_key(  # type: ignore[no-untyped-call]
                name=key, mount_point=mount
            ),
        )
        info = self._key_info(mount, key, fresh=True)
        return info.ref(self.cluster_id, mount, key, info.latest_version).key_id()

    can_retire = True

    def owns_key_id(self, key_id: str) -> bool:
        """True for ``vault:<this cluster>:<this mount>:<this key>:v<N>[...]``."""
        ref = parse_key_id(key_id)
        return ref is not None and (ref.cluster_id, ref.mount, ref.key) == (
            self.cluster_id, self.cfg.mount, self.cfg.key)

    def retire_old_versions(self, keep: str) -> int:
        """Make every version older than ``keep``'s undecryptable (min_decryption_version).

        ``keep`` is the key_id the caller proved every stored value can do with; the
        minimum is set to its version, not to whatever is latest now, so a rotation
        between the proof and this call retires nothing the proof did not cover.
        Irreversible for the data. Returns the minimum version that still decrypts.
        """
        mount, key = self.cfg.mount, self.cfg.key
        ref = parse_key_id(keep)
        info = self._key_info(mount, key, fresh=True)
        if (
            ref is None
            or not self.owns_key_id(keep)
            or ref.version > info.latest_version
            or (ref.created is not None and info.created.get(ref.version) not in
                (None, ref.created))
        ):
            raise SafetyError(
                f"refusing to retire versions of {mount}/{key}: the kept key_id {keep!r} is "
                "not a version of this key as it exists now",
                where=f"{mount}/keys/{key}",
                hint="the key may have been re-created or another backend is configured; "
                "check `secretkit kms status` and the backends file",
            )
        self._call(
            "retire old versions",
            f"{mount}/keys/{key}/config",
            lambda: self._client.secrets.transit.update_key_configuration(  # type: ignore[no-untyped-call]
                name=key, min_decryption_version=ref.version, mount_point=mount
            ),
        )
        log.info("vault: %s/%s now decrypts only v%d and later", mount, key, ref.version)
        return ref.version

    def close(self) -> None:
        """Close the HTTP session."""
        session = getattr(self._client.adapter, "session", None)
        if session is not None:
            session.close()

    @property
    def auth_stats(self) -> tuple[int, int]:
        """(logins, renewals) so far; for tests and metrics."""
        return self._auth.logins, self._auth.renewals

    def batch_count(self) -> int:
        """How many coalesced batch calls were made; for tests and metrics."""
        with self._lock:
            return sum(c.batches for c in self._coalescers.values())


def _ciphertext_version(ciphertext: str) -> int | None:
    parts = ciphertext.split(":", 2)
    if len(parts) == 3 and parts[0] == "vault" and parts[1][1:].isdigit():
        return int(parts[1][1:])
    return None


# ---------------------------------------------------------------------------
# config


def _parse_auth(d: Definition, tls: VaultTLS) -> VaultAuth:
    method = d.req_str("method")
    common = {"method", "mount"}
    if method == "token":
        d.allow({"method", "token", "token_file"})
        if d.has("token") == d.has("token_file"):
            raise ConfigError("set exactly one of token or token_file", where=d.where)
        return VaultAuth(method, token=d.str_("token"), token_file=d.file("token_file"))
    if method == "approle":
        d.allow(common | {"role_id", "secret_id", "secret_id_file"})
        if d.has("secret_id") and d.has("secret_id_file"):
            raise ConfigError("set at most one of secret_id or secret_id_file", where=d.where)
        return VaultAuth(
            method,
            role_id=d.req_str("role_id"),
            secret_id=d.str_("secret_id"),
            secret_id_file=d.file("secret_id_file"),
            mount=d.str_("mount"),
        )
    if method in ("kubernetes", "jwt"):
        d.allow(common | {"role", "token_file"})
        token_file = d.file("token_file")
        if method == "jwt" and token_file is None:
            raise ConfigError("missing required field 'token_file'", where=d.path_of("token_file"))
        return VaultAuth(
            method, role=d.req_str("role"), token_file=token_file, mount=d.str_("mount")
        )
    if method == "cert":
        d.allow(common | {"role"})
        if tls.client_cert is None:
            raise ConfigError(
                "cert auth needs tls.client_cert and tls.client_key", where=d.where
            )
        return VaultAuth(method, role=d.str_("role"), mount=d.str_("mount"))
    raise ConfigError(
        f"unknown auth method {method!r}",
        where=d.path_of("method"),
        hint=f"use one of: {', '.join(AUTH_METHODS)}",
    )


def parse_vault_config(d: Definition) -> VaultConfig:
    """Validate a ``type: vault`` definition."""
    d.allow(
        {
            "type", "address", "namespace", "mount", "key", "tls", "auth", "cluster_id",
            "context", "timeout_seconds", "key_cache_seconds", "renew_margin_seconds", "batch",
        }
    )
    address = d.req_str("address")
    if urlsplit(address).scheme not in ("http", "https") or not urlsplit(address).hostname:
        raise ConfigError("address must be an http(s) URL", where=d.path_of("address"))
    if urlsplit(address).scheme == "http" and not is_loopback_url(address):
        # the token and every unwrapped DEK seed would cross the network in clear text
        log.warning("vault: %s uses plain http to a non-loopback host; the token and the "
                    "unwrapped DEK seeds travel unencrypted (use https)", d.path_of("address"))
    tls = VaultTLS()
    tls_def = d.sub("tls")
    if tls_def is not None:
        tls_def.allow(
            {"ca_file", "client_cert", "client_key", "server_name", "insecure_skip_verify"}
        )
        tls = VaultTLS(
            ca_file=tls_def.file("ca_file"),
            client_cert=tls_def.file("client_cert"),
            client_key=tls_def.file("client_key"),
            server_name=tls_def.str_("server_name"),
            insecure_skip_verify=tls_def.boolean("insecure_skip_verify", False),
        )
        if (tls.client_cert is None) != (tls.client_key is None):
            raise ConfigError("set both client_cert and client_key", where=tls_def.where)
    auth_def = d.sub("auth", required=True)
    if auth_def is None:  # pragma: no cover - required=True raises
        raise ConfigError("missing auth", where=d.where)
    auth = _parse_auth(auth_def, tls)
    batch = d.sub("batch")
    max_items, max_inflight = 64, 4
    if batch is not None:
        batch.allow({"max_items", "max_inflight"})
        max_items = batch.integer("max_items", 64, minimum=1)
        max_inflight = batch.integer("max_inflight", 4, minimum=1)
    mount = d.str_("mount", "transit") or "transit"
    key = d.req_str("key")
    for name, value in (("mount", mount), ("key", key)):
        if value.startswith("/") or value.endswith("/") or (name == "key" and ":" in value):
            raise ConfigError(f"invalid {name} {value!r}", where=d.path_of(name))
    return VaultConfig(
        address=address.rstrip("/"),
        key=key,
        auth=auth,
        mount=mount,
        namespace=d.str_("namespace"),
        tls=tls,
        cluster_id=d.str_("cluster_id"),
        context=d.str_("context"),
        timeout_seconds=d.number("timeout_seconds", 2.5),
        key_cache_seconds=d.number("key_cache_seconds", 5.0, minimum=-1e-9),
        renew_margin_seconds=d.number("renew_margin_seconds", 10.0, minimum=-1e-9),
        batch_max_items=max_items,
        batch_max_inflight=max_inflight,
    )


def build_vault_backend(d: Definition) -> KeyBackend:
    """Build a transit backend from a definition (no network call until first use)."""
    return VaultTransitBackend(parse_vault_config(d))
