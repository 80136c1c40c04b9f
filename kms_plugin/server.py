"""The daemon's process side: the unix socket, the gRPC server, signals and shutdown.

Socket rules: the parent directory is created 0700 when missing; an existing socket
is replaced only when nothing answers on it (a stale file from a crashed plugin);
a live socket or a non-socket file is never touched. The socket is bound under a
restrictive umask and then set to ``socket_mode`` (default 0600), so it is never
reachable with looser permissions, even for a moment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kms_plugin.config import ListenAddress, PluginConfig
from kms_plugin.health import HealthServer
from kms_plugin.metrics import PluginMetrics
from kms_plugin.service import PluginService
from kms_plugin.servicer import RequestTracker, V1beta1Servicer, V2Servicer
from secretkit._proto.kms.v1beta1 import api_pb2_grpc as v1beta1_grpc
from secretkit._proto.kms.v2 import api_pb2_grpc as v2_grpc
from secretkit.errors import UsageError

log = logging.getLogger("kms_plugin.server")

V2_SERVICE = "v2.KeyManagementService"
V1BETA1_SERVICE = "v1beta1.KeyManagementService"


def _connect_address(listen: ListenAddress) -> str:
    if listen.abstract is not None:
        return "\0" + listen.abstract
    return str(listen.path)


def socket_is_live(listen: ListenAddress, timeout: float = 1.0) -> bool:
    """True when some process accepts connections on the socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(_connect_address(listen))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            # e.g. EACCES: someone else's socket we cannot even probe; assume it is live
            return True
        return True


def prepare_socket(listen: ListenAddress) -> None:
    """Make room for our socket, refusing to take over a live one."""
    where = listen.endpoint
    if listen.abstract is not None:
        if socket_is_live(listen):
            raise UsageError(
                "another process already serves this abstract socket", where=where,
                hint="stop the other plugin or choose another --listen name",
            )
        return
    path = listen.path
    assert path is not None
    parent = path.parent
    if not parent.exists():
        try:
            parent.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the socket directory ({type(exc).__name__})", where=str(parent)
            ) from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise UsageError(
            "the listen path exists and is not a socket; refusing to replace it", where=where,
            hint="remove it yourself if it is garbage, or choose another --listen path",
        )
    if socket_is_live(listen):
        raise UsageError(
            "another process already serves this socket", where=where,
            hint="stop the other plugin first; two plugins on one socket would split traffic",
        )
    log.info("removing stale socket", extra={"socket": str(path)})
    path.unlink()


class PluginServer:
    """One gRPC server on one unix socket, plus the optional HTTP health server."""

    def __init__(
        self, config: PluginConfig, service: PluginService, metrics: PluginMetrics
    ) -> None:
        self._config = config
        self._service = service
        self._metrics = metrics
        self._grpc: grpc.Server | None = None
        self._health_grpc = health.HealthServicer()
        self._http: HealthServer | None = None
        self._socket_inode: int | None = None
        self._stopping = threading.Event()
        self._stop_requested = threading.Event()
        self._tracker = RequestTracker()

    @property
    def health_port(self) -> int | None:
        """The HTTP port actually bound, or None when health is off."""
        return self._http.port if self._http is not None else None

    def start(self) -> None:
        """Bind the socket, start gRPC and the health server."""
        cfg = self._config
        prepare_socket(cfg.listen)
        server = grpc.server(
            ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="kms-rpc"),
            options=[("grpc.max_receive_message_length", 256 * 1024)],
        )
        v2_grpc.add_KeyManagementServiceServicer_to_server(
            V2Servicer(self._service, self._metrics, self._tracker), server
        )
        services = [V2_SERVICE]
        if not cfg.disable_v1beta1:
            v1beta1_grpc.add_KeyManagementServiceServicer_to_server(
                V1beta1Servicer(self._service, self._metrics, self._tracker), server
            )
            services.append(V1BETA1_SERVICE)
        health_pb2_grpc.add_HealthServicer_to_server(self._health_grpc, server)
        for name in ["", *services]:
            self._health_grpc.set(name, health_pb2.HealthCheckResponse.SERVING)
        # bind under a umask that leaves at most socket_mode, then chmod exactly
        old_umask = os.umask(0o777 & ~cfg.socket_mode)
        try:
            server.add_insecure_port(cfg.listen.grpc_target)
        except RuntimeError as exc:
            raise UsageError(
                f"cannot listen on the socket ({exc})", where=cfg.listen.endpoint
            ) from None
        finally:
            os.umask(old_umask)
        server.start()
        self._grpc = server
        if cfg.listen.path is not None:
            self._secure_socket(cfg.listen.path)
        if cfg.health_addr is not None:
            try:
                self._http = HealthServer(
                    cfg.health_addr, service=self._service, metrics=self._metrics,
                    alive=self.alive,
                )
            except OSError as exc:
                self.stop(0)
                raise UsageError(
                    f"cannot serve health on {cfg.health_addr.host}:{cfg.health_addr.port} "
                    f"({exc.strerror or type(exc).__name__})", where="--health-addr",
                ) from None
            self._http.start()
        log.info(
            "serving",
            extra={"listen": cfg.listen.endpoint, "services": services,
                   "backend": self._service.backend_kind,
                   "health_port": self.health_port, "pid": os.getpid()},
        )

    def _secure_socket(self, path: Path) -> None:
        cfg = self._config
        os.chmod(path, cfg.socket_mode)
        if cfg.socket_group is not None:
            group: str | int = int(cfg.socket_group) if cfg.socket_group.isdigit() \
                else cfg.socket_group
            try:
                shutil.chown(path, group=group)
            except (LookupError, PermissionError, OSError) as exc:
                self.stop(0)
                raise UsageError(
                    f"cannot give the socket to group {cfg.socket_group!r} "
                    f"({type(exc).__name__})", where="--socket-group",
                ) from None
        self._socket_inode = os.lstat(path).st_ino

    def alive(self) -> bool:
        """True while we serve and our socket still accepts connections."""
        if self._stopping.is_set() or self._grpc is None:
            return False
        return socket_is_live(self._config.listen, timeout=1.0)

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: ask the main loop to shut down."""
        log.info("signal received, shutting down", extra={"signal": signal.Signals(signum).name})
        self._stop_requested.set()

    def install_signal_handlers(self) -> None:
        """Route SIGTERM/SIGINT to a graceful stop (call before :meth:`start`)."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def serve_until_signal(self) -> None:
        """Block until SIGTERM/SIGINT, then shut down gracefully."""
        # a short wait keeps the main thread responsive to signals
        while not self._stop_requested.wait(timeout=0.2):
            pass
        self.stop(self._config.grace_period)

    def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight calls finish within ``grace``, remove the socket."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        started = time.monotonic()
        in_flight = self._tracker.in_flight
        self._health_grpc.enter_graceful_shutdown()
        if self._grpc is not None:
            # refuses new calls at once; running handlers get `grace` seconds, then are
            # cancelled. Calls that reached the socket but no handler yet are refused
            # unprocessed by gRPC (UNAVAILABLE or CANCELLED): safe for the caller to retry.
            self._grpc.stop(grace).wait()
        self._remove_socket()
        if self._http is not None:
            self._http.stop()
        log.info(
            "stopped",
            extra={"seconds": round(time.monotonic() - started, 3),
                   "in_flight_at_signal": in_flight,
                   "handled": self._tracker.finished,
                   "abandoned": self._tracker.in_flight},
        )

    def _remove_socket(self) -> None:
        path = self._config.listen.path
        if path is None or self._socket_inode is None:
            return
        # only remove the file we created: a successor may already have replaced it
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_ino == self._socket_inode:
                path.unlink()
