"""The one error family of secretkit.

Every error knows how to explain itself: *what* went wrong, *where* (a file, a
field path, an etcd key, an endpoint) and *how to fix it*. The CLI has exactly one
``try/except`` boundary that prints :meth:`SecretkitError.diagnostics` and exits
non-zero; tracebacks only with ``-vv``.

Messages must never contain secret material (keys, plaintexts, tokens, ciphertexts).
"""

from __future__ import annotations


class SecretkitError(Exception):
    """Base class of every error secretkit raises on purpose."""

    #: process exit code the CLI uses for this error class
    exit_code: int = 1

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.what = what
        self.where = where
        self.hint = hint
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


class UsageError(SecretkitError):
    """The caller asked for something that cannot work (bad flags, bad file)."""

    exit_code = 2


class ConfigError(SecretkitError):
    """An EncryptionConfiguration (or another config file) is invalid."""


class FormatError(SecretkitError):
    """A stored value does not have the layout its prefix promises."""


class DecryptError(SecretkitError):
    """A value could not be decrypted (wrong key, tampered data, missing provider)."""


class BackendError(SecretkitError):
    """A key backend (AWS KMS, Vault/OpenBao, local key) failed."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or is overloaded; retrying later may work."""


class BackendPermissionDenied(BackendError):
    """The backend refused the credentials or the operation."""


class BackendInvalidRequest(BackendError):
    """The backend rejected the request itself (bad ciphertext, unknown key)."""


class BackendTimeout(BackendError):
    """The backend did not answer within the deadline."""


class EtcdError(SecretkitError):
    """etcd could not be reached or refused a request."""


class KubeError(SecretkitError):
    """The Kubernetes API could not be reached or refused a request."""


class SafetyError(SecretkitError):
    """An operation was refused because it could lose data (a safety gate)."""

    exit_code = 3


class UndecryptableError(SecretkitError):
    """Stored values that no provider of the config can read: a data-loss risk.

    Its own exit code (4), so automation can tell it from a run that merely has to be
    repeated (1) or a refused safety gate (3).
    """

    exit_code = 4
