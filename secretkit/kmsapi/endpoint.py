"""KMS plugin endpoints as written in an EncryptionConfiguration, turned into gRPC targets."""

from __future__ import annotations

from secretkit.errors import ConfigError


def grpc_target(endpoint: str) -> str:
    """Map ``unix:///abs/path`` or ``unix:@abstract`` to a gRPC channel target.

    kube-apiserver only speaks to KMS plugins over unix sockets, so other schemes are
    refused rather than guessed.
    """
    if endpoint.startswith("unix:@"):
        name = endpoint[len("unix:@") :]
        if not name:
            raise ConfigError("empty abstract socket name", where=endpoint)
        return "unix-abstract:" + name
    if endpoint.startswith("unix://"):
        path = endpoint[len("unix://") :]
        if not path.startswith("/"):
            raise ConfigError(
                "a unix socket endpoint needs an absolute path",
                where=endpoint,
                hint="write unix:///abs/path/kms.sock (three slashes)",
            )
        return "unix://" + path
    raise ConfigError(
        "unsupported KMS endpoint",
        where=endpoint,
        hint="use unix:///abs/path/kms.sock or unix:@abstract-name",
    )
