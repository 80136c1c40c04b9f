"""The one error family of secretkit, and the exit-code table every command follows.

Every error knows how to explain itself: *what* went wrong, *where* (a file, a
field path, an etcd key, an endpoint) and *how to fix it*, and which
:class:`ExitCode` the CLI ends with. The CLI has exactly one ``try/except`` boundary
that prints :meth:`SecretkitError.diagnostics` (or, with ``-o json``,
:meth:`SecretkitError.to_json`) and exits with :attr:`SecretkitError.exit_code`;
tracebacks only with ``-vv``.

Messages must never contain secret material (keys, plaintexts, tokens, ciphertexts).
Credentials inside URLs (``https://user:pass@host``) are redacted from every part
of every error by :func:`redact_urls`, so an error may quote an endpoint as given.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """How every ``secretkit`` command ends; scripts and CI gates rely on this table.

    The table is documented in docs/user-guide.md ("Exit codes"); keep both in step.
    """

    #: the command did what was asked and found nothing to report
    OK = 0
    #: the check ran and found problems (audit findings, invalid configs, failed checks)
    FINDINGS = 1
    #: bad usage or bad input: flags, files, values (nothing was done)
    USAGE = 2
    #: a safety gate refused the operation because it could lose data
    REFUSED = 3
    #: stored values no configured provider can read: data at risk, do not prune
    DATA_AT_RISK = 4
    #: could not check: a dependency (etcd, the Kubernetes API, a KMS plugin, Vault,
    #: AWS KMS, an apiserver's /metrics) was unreachable or failed
    UNAVAILABLE = 5

    @property
    def reason(self) -> str:
        """The lower-case name used in JSON error documents (``usage``, ``unavailable``)."""
        return self.name.lower()


#: ``scheme://userinfo@``: the userinfo part of a URL (a password or a token); up to
#: the authority's last ``@``, as Go's url.Parse reads it
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#]+)@")
#: ``user:password@host`` without a scheme, as gRPC and resolvers quote targets
_BARE_USERINFO = re.compile(r"(?<![^\s\[(<'\"=,])[^\s/@:'\"]+:[^\s/'\"]+@(?=[\w\[])")
#: what replaces a URL's userinfo
REDACTED = "REDACTED"


def redact_urls(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``REDACTED``.

    ``https://admin:s3cret@host`` becomes ``https://REDACTED@host``. The user name
    goes too: in ``https://TOKEN@host`` it is the credential. ``admin:s3cret@host``
    without a scheme (how gRPC and resolvers quote a target) is redacted as well; an
    e-mail address (no ``:``) is left alone. Anything that quotes an endpoint or URL
    in an error, a log line or a report uses this one helper.
    """
    if "@" not in text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return _BARE_USERINFO.sub(f"{REDACTED}@", text)


class SecretkitError(Exception):
    """Base class of every error secretkit raises on purpose.

    A bare ``SecretkitError`` means "the operation ran and reports a failure"
    (exit 1); subclasses pick their row of :class:`ExitCode`.
    """

    #: process exit code the CLI uses for this error class
    exit_code: ExitCode = ExitCode.FINDINGS

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.what = redact_urls(what)
        self.where = redact_urls(where) if where is not None else None
        self.hint = redact_urls(hint) if hint is not None else None
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return text

    def diagnostics(self) -> str:
        """Return a multi-line, human explanation (what, where, how to fix)."""
        lines = [f"error: {self.what}"]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The ``error`` object of a JSON error document (docs/schemas/secretkit.error.v1.json)."""
        return error_object(self.what, where=self.where, hint=self.hint, code=self.exit_code)


def error_object(
    what: str, *, where: str | None, hint: str | None, code: ExitCode
) -> dict[str, Any]:
    """One JSON error object: what, where, hint, exit code and its reason."""
    return {
        "what": redact_urls(what),
        "where": redact_urls(where) if where is not None else None,
        "hint": redact_urls(hint) if hint is not None else None,
        "exit_code": int(code),
        "reason": code.reason,
    }


class FindingsError(SecretkitError):
    """The check ran and found problems (the report says which)."""

    exit_code = ExitCode.FINDINGS


class UsageError(SecretkitError):
    """The caller asked for something that cannot work (bad flags, bad file, bad value)."""

    exit_code = ExitCode.USAGE


class ConfigError(SecretkitError):
    """An EncryptionConfiguration (or another input file or setting) is invalid."""

    exit_code = ExitCode.USAGE


class FormatError(SecretkitError):
    """Bytes do not have the layout they promise (a stored value, a snapshot file)."""

    exit_code = ExitCode.USAGE


class DecryptError(SecretkitError):
    """A value could not be decrypted (wrong key, tampered data, missing provider)."""

    exit_code = ExitCode.DATA_AT_RISK


class DependencyError(SecretkitError):
    """Something secretkit depends on was unreachable or failed: nothing could be checked."""

    exit_code = ExitCode.UNAVAILABLE


class BackendError(DependencyError):
    """A key backend (AWS KMS, Vault/OpenBao, local key) or a KMS plugin failed."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is overloaded; retrying later may work."""


class BackendPermissionDenied(BackendError):
    """The backend refused the credentials or the operation."""


class BackendInvalidRequest(BackendError):
    """The backend rejected the request itself (bad ciphertext, unknown key)."""


class BackendTimeout(BackendError):
    """The backend did not answer within the deadline."""


class EtcdError(DependencyError):
    """etcd could not be reached or refused a request."""


class KubeError(DependencyError):
    """The Kubernetes API could not be reached or refused a request."""


class SafetyError(SecretkitError):
    """An operation was refused because it could lose data (a safety gate)."""

    exit_code = ExitCode.REFUSED


class UndecryptableError(SecretkitError):
    """Stored values that no provider of the config can read: a data-loss risk.

    Its own exit code (4), so automation can tell it from findings (1), a run that
    could not check (5) or a refused safety gate (3).
    """

    exit_code = ExitCode.DATA_AT_RISK
