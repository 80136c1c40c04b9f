"""The sandbox state file (``<dir>/sandbox.json``): PIDs, ports and paths, no secrets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from secretkit.errors import UsageError
from secretkit.sandbox.files import write_private

STATE_FILE = "sandbox.json"


@dataclass
class ProcessInfo:
    """One process the sandbox started: what, PID, argv (to guard PID reuse), log."""

    name: str
    pid: int
    argv: list[str]
    log: str


@dataclass
class SandboxState:
    """Everything ``down``/``status``/``seed`` need to find a running sandbox.

    Tokens live in their own 0600 files (``token_file``, ``openbao_token_file``),
    never in this file.
    """

    dir: str
    encryption: str
    etcd_endpoint: str
    api_url: str
    api_port: int
    kubeconfig: str
    token_file: str
    encryption_config: str
    backends_file: str
    plugin_socket: str
    openbao_address: str
    openbao_token_file: str
    transit_mount: str
    transit_key: str
    #: CA of the API stand-in's serving certificate
    ca_file: str = ""
    socket_dir_is_temp: bool = False
    processes: dict[str, ProcessInfo] = field(default_factory=dict)
    apiserver_options: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """Where this state is saved."""
        return Path(self.dir) / STATE_FILE

    def save(self) -> None:
        """Write the state file atomically (0600)."""
        write_private(self.path, json.dumps(asdict(self), indent=2, sort_keys=True).encode())

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy (for ``-o json``)."""
        return asdict(self)

    @classmethod
    def load(cls, directory: Path) -> SandboxState:
        """Read ``<directory>/sandbox.json``; UsageError when there is no sandbox there."""
        path = directory / STATE_FILE
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError("no sandbox here", where=str(directory),
                             hint="start one with `secretkit sandbox up --dir DIR`") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the sandbox state: {exc}", where=str(path)) from exc
        procs = {k: ProcessInfo(**v) for k, v in doc.pop("processes", {}).items()}
        return cls(**doc, processes=procs)
