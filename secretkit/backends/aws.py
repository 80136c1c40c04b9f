"""The AWS KMS key backend (via boto3).

key_id: the key's full ARN (``arn:aws:kms:<region>:<account>:key/<id>``), unique across
accounts and regions. A configured alias is resolved to its key ARN with DescribeKey
and cached for ``alias_cache_seconds``, so moving the alias to another key shows up
as a new key_id (and the apiserver re-wraps its DEK). Decrypt passes the request's
key_id as ``KeyId``, so values written under the previous key keep decrypting as long
as that key is enabled and allowed.

Encryption context: every Encrypt and Decrypt sends the same context, the configured
``encryption_context`` (default ``{"purpose": "kubernetes-kms-v2-dek"}``). KMS binds
it to the ciphertext (a different context fails to decrypt), logs it in CloudTrail
and IAM policies can require it (``kms:EncryptionContext:purpose``). Changing it
makes existing values undecryptable: it is part of the key, not a label.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bexc
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.session import get_session

from secretkit.backends._schema import Definition
from secretkit.backends.interface import BackendStatus, KeyBackend, WrapResult
from secretkit.errors import (
    BackendError,
    BackendInvalidRequest,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
)
from secretkit.loopback import is_loopback_url
from secretkit.sdk_logging import cap_sdk_loggers

log = logging.getLogger(__name__)


def quiet_sdk_debug_logging() -> None:
    """Cap the SDK loggers at INFO unless the application set their level itself.

    A ``-vv`` run turns the root logger to DEBUG; botocore then logs every KMS
    Decrypt response, DEK seed included (see :mod:`secretkit.sdk_logging`).
    """
    cap_sdk_loggers(logging.INFO, only_unset=True)


DEFAULT_CONTEXT = {"purpose": "kubernetes-kms-v2-dek"}
_MAX_DETAIL = 200

_UNAVAILABLE = {
    "ThrottlingException",
    "LimitExceededException",
    "KMSInternalException",
    "KeyUnavailableException",
    "ServiceUnavailableException",
    "InternalFailure",
    "RequestLimitExceeded",
}
_TIMEOUT = {"DependencyTimeoutException", "RequestTimeout", "RequestTimeoutException"}
_DENIED = {
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
}
_INVALID = {
    "InvalidCiphertextException",
    "NotFoundException",
    "DisabledException",
    "KMSInvalidStateException",
    "IncorrectKeyException",
    "InvalidKeyUsageException",
    "InvalidGrantTokenException",
    "ValidationException",
    "InvalidArnException",
}


@dataclass(frozen=True)
class AssumeRole:
    """STS AssumeRole settings."""

    role_arn: str
    session_name: str = "secretkit-kms"
    external_id: str | None = field(default=None, repr=False)
    duration_seconds: int = 3600


@dataclass(frozen=True)
class AwsConfig:
    """Everything the AWS KMS backend needs; see docs/backends.md."""

    key: str
    region: str
    endpoint_url: str | None = None
    sts_endpoint_url: str | None = None
    profile: str | None = None
    assume_role: AssumeRole | None = None
    encryption_context: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CONTEXT))
    deadline_seconds: float = 2.5
    max_attempts: int = 2
    alias_cache_seconds: float = 10.0


def is_key_arn(value: str) -> bool:
    """True for ``arn:<partition>:kms:<region>:<account>:key/<id>``."""
    parts = value.split(":", 5)
    return (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[2] == "kms"
        and parts[5].startswith("key/")
        and len(parts[5]) > 4
    )


def map_error(exc: BaseException, *, op: str, where: str) -> BackendError:
    """Translate botocore failures into secretkit backend errors."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, bexc.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        message = str(err.get("Message", ""))[:_MAX_DETAIL]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        what = f"aws kms {op} failed: {code}{': ' + message if message else ''}"
        if code in _DENIED:
            return BackendPermissionDenied(
                what,
                where=where,
                hint=f"the credentials need kms:{op} on this key (and a matching encryption "
                "context condition, if the key policy has one)",
            )
        if code in _TIMEOUT:
            return BackendTimeout(what, where=where, hint="KMS or its key store is slow")
        if code in _UNAVAILABLE or status >= 500:
            return BackendUnavailable(
                what, where=where, hint="retry later; KMS is throttling or failing"
            )
        if code in _INVALID:
            return BackendInvalidRequest(what, where=where)
        return BackendError(what, where=where)
    name = type(exc).__name__
    if isinstance(exc, bexc.ConnectTimeoutError | bexc.ReadTimeoutError):
        return BackendTimeout(
            f"aws kms {op} timed out ({name})",
            where=where,
            hint="raise deadline_seconds or check the network path to KMS",
        )
    if isinstance(exc, bexc.EndpointConnectionError | bexc.ConnectionError):
        return BackendUnavailable(
            f"aws kms {op}: cannot reach the endpoint ({name})",
            where=where,
            hint="check region / endpoint_url and network access",
        )
    if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return BackendPermissionDenied(
            f"aws kms {op}: no AWS credentials found ({name})",
            where=where,
            hint="provide credentials (environment, profile, instance role or assume_role)",
        )
    if isinstance(exc, bexc.BotoCoreError):
        return BackendUnavailable(f"aws kms {op} failed ({name})", where=where)
    return BackendError(f"aws kms {op} failed ({name})", where=where)


@dataclass
class _Resolved:
    arn: str
    enabled: bool
    state: str
    fetched_at: float


class AwsKmsBackend(KeyBackend):
    """Wraps with an AWS KMS symmetric key; key_id is the key ARN."""

    kind = "aws"

    def __init__(self, cfg: AwsConfig, *, session: boto3.Session | None = None) -> None:
        quiet_sdk_debug_logging()
        self.cfg = cfg
        self._session = session
        self._client: Any = None
        self._lock = threading.Lock()
        self._resolved: _Resolved | None = None

    @property
    def where(self) -> str:
        """Where errors point: region, endpoint and configured key (no credentials)."""
        endpoint = f" {self.cfg.endpoint_url}" if self.cfg.endpoint_url else ""
        return f"aws kms {self.cfg.region}{endpoint} {self.cfg.key}"

    # -- clients -----------------------------------------------------------------

    def _botocore_config(self) -> Config:
        # per-attempt timeouts sized so every attempt fits in the apiserver's deadline
        per_attempt = self.cfg.deadline_seconds / (2 * self.cfg.max_attempts)
        return Config(
            region_name=self.cfg.region,
            connect_timeout=per_attempt,
            read_timeout=per_attempt,
            retries={"mode": "adaptive", "max_attempts": self.cfg.max_attempts},
            user_agent_extra="secretkit-kms",
        )

    def _make_session(self) -> boto3.Session:
        if self._session is not None:
            return self._session
        base = boto3.Session(profile_name=self.cfg.profile, region_name=self.cfg.region)
        role = self.cfg.assume_role
        if role is None:
            return base
        sts = base.client(
            "sts", endpoint_url=self.cfg.sts_endpoint_url, config=self._botocore_config()
        )

        def refresh() -> dict[str, str]:
            kwargs: dict[str, Any] = {
                "RoleArn": role.role_arn,
                "RoleSessionName": role.session_name,
                "DurationSeconds": role.duration_seconds,
            }
            if role.external_id:
                kwargs["ExternalId"] = role.external_id
            creds = sts.assume_role(**kwargs)["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        credentials = RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        botocore_session = get_session()
        # botocore has no public setter for refreshable credentials; this is the
        # widely used hook (boto3's own AssumeRole provider does the same internally)
        botocore_session._credentials = credentials  # type: ignore[attr-defined]
        return boto3.Session(botocore_session=botocore_session, region_name=self.cfg.region)

    def _kms(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    session = self._make_session()
                except (bexc.BotoCoreError, bexc.ClientError) as exc:
                    raise map_error(exc, op="AssumeRole", where=self.where) from None
                self._client = session.client(
                    "kms", endpoint_url=self.cfg.endpoint_url, config=self._botocore_config()
                )
            return self._client

    def _call(self, op: str, **kwargs: Any) -> Any:
        client = self._kms()
        method = "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")
        try:
            return getattr(client, method)(**kwargs)
        except (bexc.BotoCoreError, bexc.ClientError) as exc:
            raise map_error(exc, op=op, where=self.where) from None

    # -- key resolution ------------------------------------------------------------

    def _resolve(self, *, fresh: bool = False) -> _Resolved:
        now = time.monotonic()
        with self._lock:
            cached = self._resolved
        ttl = self.cfg.alias_cache_seconds
        if cached is not None and not fresh and now - cached.fetched_at < ttl:
            return cached
        meta = self._call("DescribeKey", KeyId=self.cfg.key)["KeyMetadata"]
        resolved = _Resolved(
            arn=str(meta["Arn"]),
            enabled=bool(meta.get("Enabled", True)),
            state=str(meta.get("KeyState", "Enabled")),
            fetched_at=now,
        )
        with self._lock:
            if self._resolved is not None and self._resolved.arn != resolved.arn:
                log.info("aws kms: %s now points at a new key", self.cfg.key)
            self._resolved = resolved
        return resolved

    # -- KeyBackend ------------------------------------------------------------------

    def _encrypt(self, plaintext: bytes, *, uid: str) -> WrapResult:
        arn = self._resolve().arn
        resp = self._call(
            "Encrypt",
            KeyId=arn,
            Plaintext=plaintext,
            EncryptionContext=dict(self.cfg.encryption_context),
        )
        # KMS reports the key that actually encrypted; it is the key_id we announce
        key_id = str(resp.get("KeyId") or arn)
        return WrapResult(ciphertext=bytes(resp["CiphertextBlob"]), key_id=key_id)

    def _decrypt(
        self, ciphertext: bytes, *, key_id: str, annotations: Mapping[str, bytes], uid: str
    ) -> bytes:
        if not is_key_arn(key_id):
            raise BackendInvalidRequest(
                f"key_id {key_id!r} is not an AWS KMS key ARN",
                where=self.where,
                hint="was this value written by another backend?",
            )
        if not ciphertext:
            raise BackendInvalidRequest("wrapped key is empty", where=self.where)
        resp = self._call(
            "Decrypt",
            KeyId=key_id,
            CiphertextBlob=ciphertext,
            EncryptionContext=dict(self.cfg.encryption_context),
        )
        return bytes(resp["Plaintext"])

    def _status(self) -> BackendStatus:
        resolved = self._resolve()
        if not resolved.enabled or resolved.state != "Enabled":
            return BackendStatus(
                key_id=resolved.arn, healthy=False, detail=f"key state is {resolved.state}"
            )
        return BackendStatus(key_id=resolved.arn, healthy=True)

    def rotate(self) -> str:
        """Start on-demand rotation of the key's material (RotateKeyOnDemand).

        The ARN, hence the key_id, does not change: KMS keeps every backing key and
        decrypts old ciphertexts transparently. To make the apiserver re-wrap its
        DEKs under a new key_id, point the alias at a new key with :meth:`move_alias`.
        """
        arn = self._resolve(fresh=True).arn
        try:
            self._call("RotateKeyOnDemand", KeyId=arn)
        except BackendError as exc:
            raise BackendError(
                f"on-demand rotation failed: {exc.what}",
                where=self.where,
                hint="on-demand rotation needs a symmetric key with AWS-generated material "
                "and kms:RotateKeyOnDemand; alternatively create a new key and move the "
                "alias to it (move_alias), which also changes the key_id",
            ) from None
        return arn

    def key_created(self, key_id: str) -> float | None:
        """The key's CreationDate (an ARN key_id; in-place material rotation keeps it)."""
        meta = self._call("DescribeKey", KeyId=key_id)["KeyMetadata"]
        created = meta.get("CreationDate")
        return float(created.timestamp()) if hasattr(created, "timestamp") else None

    def move_alias(self, target_key: str) -> str:
        """Point the configured alias at ``target_key`` (ARN or id); return the new key_id."""
        if not self.cfg.key.startswith("alias/"):
            raise BackendInvalidRequest(
                "move_alias needs a backend configured with an alias",
                where=self.where,
                hint="set key: alias/<name>",
            )
        move_alias(self._kms(), self.cfg.key, target_key, where=self.where)
        return self._resolve(fresh=True).arn

    def close(self) -> None:
        """Drop the client (boto3 pools close with it)."""
        with self._lock:
            self._client = None


def move_alias(client: Any, alias: str, target_key: str, *, where: str = "aws kms") -> None:
    """UpdateAlias: point ``alias`` at ``target_key``; errors mapped like the backend's."""
    try:
        client.update_alias(AliasName=alias, TargetKeyId=target_key)
    except (bexc.BotoCoreError, bexc.ClientError) as exc:
        raise map_error(exc, op="UpdateAlias", where=where) from None


def _warn_plain_http(url: str | None, where: str) -> None:
    # KMS Decrypt responses carry DEK seeds: over plain http anyone on the path reads them
    if not url or urlsplit(url).scheme != "http":
        return
    if not is_loopback_url(url):
        log.warning("aws kms: %s uses plain http to a non-loopback host; unwrapped DEK "
                    "seeds travel unencrypted (use https)", where)


def parse_aws_config(d: Definition) -> AwsConfig:
    """Validate a ``type: aws`` definition."""
    d.allow(
        {
            "type", "key", "region", "endpoint_url", "sts_endpoint_url", "profile",
            "assume_role", "encryption_context", "deadline_seconds", "max_attempts",
            "alias_cache_seconds",
        }
    )
    key = d.req_str("key")
    region = d.str_("region")
    if is_key_arn(key):
        arn_region = key.split(":")[3]
        if region is not None and region != arn_region:
            raise ConfigError(
                f"region {region!r} differs from the key ARN's region {arn_region!r}",
                where=d.path_of("region"),
            )
        region = arn_region
    elif key.startswith("arn:") and ":alias/" not in key:
        raise ConfigError("not a KMS key or alias ARN", where=d.path_of("key"))
    if region is None:
        raise ConfigError(
            "missing required field 'region'",
            where=d.path_of("region"),
            hint="set region (it is only optional when key is a key ARN)",
        )
    role = None
    role_def = d.sub("assume_role")
    if role_def is not None:
        role_def.allow({"role_arn", "session_name", "external_id", "duration_seconds"})
        role = AssumeRole(
            role_arn=role_def.req_str("role_arn"),
            session_name=role_def.str_("session_name", "secretkit-kms") or "secretkit-kms",
            external_id=role_def.str_("external_id"),
            duration_seconds=role_def.integer("duration_seconds", 3600, minimum=900, maximum=43200),
        )
    context = d.str_map("encryption_context") if d.has("encryption_context") else DEFAULT_CONTEXT
    deadline = d.number("deadline_seconds", 2.5)
    for field_name in ("endpoint_url", "sts_endpoint_url"):
        _warn_plain_http(d.str_(field_name), d.path_of(field_name))
    return AwsConfig(
        key=key,
        region=region,
        endpoint_url=d.str_("endpoint_url"),
        sts_endpoint_url=d.str_("sts_endpoint_url"),
        profile=d.str_("profile"),
        assume_role=role,
        encryption_context=dict(context),
        deadline_seconds=deadline,
        max_attempts=d.integer("max_attempts", 2, minimum=1),
        alias_cache_seconds=d.number("alias_cache_seconds", 10.0, minimum=-1e-9),
    )


def build_aws_backend(d: Definition) -> KeyBackend:
    """Build an AWS KMS backend from a definition (no network call until first use)."""
    return AwsKmsBackend(parse_aws_config(d))
