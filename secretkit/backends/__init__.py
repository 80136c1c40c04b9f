"""Key backends (local KEK files, Vault/OpenBao transit, AWS KMS) and their loader."""

from secretkit.backends.interface import BackendKMSService, BackendStatus, KeyBackend, WrapResult
from secretkit.backends.local import LocalBackend, LocalKey, read_kek_file, write_kek_file
from secretkit.backends.registry import build_backend, load_backends_file

__all__ = [
    "BackendKMSService",
    "BackendStatus",
    "KeyBackend",
    "LocalBackend",
    "LocalKey",
    "WrapResult",
    "build_backend",
    "load_backends_file",
    "read_kek_file",
    "write_kek_file",
]
