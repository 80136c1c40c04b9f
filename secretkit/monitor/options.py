"""The monitor's settings (frozen; built by the CLI from flags) and the listen address rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from secretkit.audit.model import DEFAULT_PAGE_SIZE
from secretkit.errors import UsageError
from secretkit.loopback import parse_host_port
from secretkit.monitor.labels import DEFAULT_MAX_ROWS

#: where /metrics, /healthz and /livez are served unless --metrics-addr says otherwise
DEFAULT_METRICS_ADDR = "127.0.0.1:8788"


@dataclass(frozen=True)
class ListenAddress:
    """Host and port of the HTTP server (port 0: any free port)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen_address(value: str, *, allow_remote: bool, where: str) -> ListenAddress:
    """Parse ``HOST:PORT`` (``[v6]:PORT``); non-loopback hosts only with ``allow_remote``.

    Same rule as the plugin's health server: metrics say which keys protect the
    cluster's Secrets and where plaintext is, so they stay on loopback unless the
    operator opts in.
    """
    host, port = parse_host_port(value, allow_remote=allow_remote, where=where,
                              serves="metrics", allow_flag="--metrics-addr-allow-remote")
    return ListenAddress(host, port)


@dataclass(frozen=True)
class MonitorOptions:
    """Everything ``secretkit monitor`` needs besides the etcd connection.

    Durations are seconds; None turns a schedule off.
    """

    prefix: str = "/registry"
    resources: tuple[str, ...] | None = None
    all_resources: bool = False
    config: Path | None = None
    backends: Path | None = None
    kms_sockets: Mapping[str, str] = field(default_factory=dict)
    decrypt_check: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    max_rows: int = DEFAULT_MAX_ROWS
    metrics_addr: ListenAddress = field(default_factory=lambda: ListenAddress("127.0.0.1", 8788))
    #: how often the config file and the plugins' key_ids are checked
    check_every: float = 30.0
    #: how often etcd's revision is read for the lag
    lag_every: float = 2.0
    history_every: float | None = None
    snapshot_dir: Path | None = None
    rescan_every: float | None = None

    def check(self) -> None:
        """Reject settings that cannot work (usage errors, before anything starts)."""
        from secretkit.audit.run import check_reading_inputs

        check_reading_inputs(
            page_size=self.page_size,
            decrypt_check=self.decrypt_check,
            has_config=self.config is not None,
            kms_inputs=bool(self.backends or self.kms_sockets),
            resources=self.resources,
        )
        if self.max_rows < 1:
            raise UsageError("--max-rows must be at least 1", where="--max-rows")
        if self.snapshot_dir is not None and self.history_every is None:
            raise UsageError(
                "--snapshot-dir needs --history-every",
                where="--snapshot-dir",
                hint="snapshots are checked on the --history-every schedule",
            )
        for name, value in (
            ("--history-every", self.history_every),
            ("--rescan-every", self.rescan_every),
        ):
            if value is not None and value < 1:
                raise UsageError(f"{name} must be at least 1s", where=name)
