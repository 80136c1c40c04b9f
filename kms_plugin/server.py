"""The daemon's process side: the unix socket, the gRPC server, signals and shutdown.

Socket rules:

- Missing directories on the way to the socket are created 0700, each of them (not
  just the last): whoever can reach the socket can have every Secret's DEK seed
  unwrapped, and a directory the plugin had to invent has no policy yet, so only its
  owner gets in. kube-apiserver runs as root and traverses it anyway; for a non-root
  apiserver the installer prepares the directory (group and setgid bit, see
  docs/deploy/README.md), and an existing directory is never changed.
- An existing socket is replaced only when nothing answers on it (a stale file from a
  crashed plugin); a live socket or a non-socket file is never touched.
- gRPC binds under a private name next to the socket, under a restrictive umask; the
  private name gets ``socket_mode`` and ``socket_group`` and only then is hard-linked
  to the public path (which fails if someone created it meanwhile) and unlinked. So
  the public path never exists with looser permissions, even for a moment, and gRPC,
  which unlinks the path it bound when it stops, never removes a socket that a
  successor created on the public path.
- On exit the public path is removed only if it is still our socket: an ``O_PATH``
  descriptor keeps our inode alive, so its number cannot be reused by a successor's
  socket, and the path is compared with it (device and inode).
- ``socket_group`` needs no capability when the socket is born with that group: in a
  setgid directory of that group, or with that group as the plugin's primary group.
  Otherwise changing the group needs CAP_CHOWN, and the error says so.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import secrets
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kms_plugin.admission import Admission, CallTracker, PluginExecutor
from kms_plugin.config import ListenAddress, PluginConfig
from kms_plugin.health import HealthServer
from kms_plugin.metrics import PluginMetrics
from kms_plugin.service import PluginService
from kms_plugin.servicer import V1beta1Servicer, V2Servicer, v1beta1_handler, v2_handler
from secretkit.core.encryption_config.endpoint import UnixEndpoint
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
    make_private_dirs(path.parent)
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


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and every missing parent with mode 0700 (existing ones untouched)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for item in reversed(missing):
        try:
            os.mkdir(item, 0o700)
            os.chmod(item, 0o700)  # exactly 0700, whatever the umask
        except FileExistsError:
            continue  # created by someone else meanwhile: theirs, leave it alone
        except OSError as exc:
            raise UsageError(
                f"cannot create the socket directory ({exc.strerror or type(exc).__name__})",
                where=str(item),
            ) from None


#: Linux capability number of CAP_CHOWN
CAP_CHOWN = 0


def has_capability(bit: int) -> bool:
    """True when the effective capability set holds capability number ``bit`` (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def resolve_group(group: str) -> int:
    """A group name or numeric gid as a gid; :class:`UsageError` for an unknown name."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise UsageError(
            f"unknown group {group!r}", where="--socket-group",
            hint="give a group name that exists on this node (getent group) or a numeric gid",
        ) from None


def give_to_group(path: Path, group: str, public: Path) -> None:
    """Make ``group`` own ``path``, needing no capability when it already does."""
    gid = resolve_group(group)
    if os.lstat(path).st_gid == gid:
        return  # born with it: setgid directory or our primary group, no chown needed
    try:
        os.chown(path, -1, gid, follow_symlinks=False)
    except PermissionError:
        missing = "" if has_capability(CAP_CHOWN) else (
            ": giving a file to a group this process is not a member of needs the "
            "CAP_CHOWN capability, which this process does not have"
        )
        raise UsageError(
            f"cannot give the socket to group {group!r}{missing}",
            where="--socket-group",
            hint="let the socket be born with that group instead: have the installer run "
            f"'install -d -m 2750 -g {group} {public.parent}' (a setgid directory gives new "
            f"files its group), or run the plugin with {group} as its primary group "
            "(systemd Group=, pod securityContext.runAsGroup)",
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot give the socket to group {group!r} ({exc.strerror})", where="--socket-group"
        ) from None


def _private_name(public: Path) -> Path:
    """A fresh name next to ``public`` for gRPC to bind, no longer than the public one.

    Unix socket paths are limited to 107 bytes, so the private name reuses the length
    of the public file name where it can (at least 8 characters, for randomness).
    """
    length = max(len(public.name.encode()), 8)
    return public.with_name("." + secrets.token_hex(length)[: length - 1])


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
        self._socket_fd: int | None = None
        self._stopping = threading.Event()
        self._stop_requested = threading.Event()
        self._tracker = CallTracker()
        self._executor: PluginExecutor | None = None

    @property
    def health_port(self) -> int | None:
        """The HTTP port actually bound, or None when health is off."""
        return self._http.port if self._http is not None else None

    def start(self) -> None:
        """Bind the socket, start gRPC and the health server."""
        cfg = self._config
        prepare_socket(cfg.listen)
        executor = PluginExecutor(cfg.max_workers, self._tracker)
        self._executor = executor
        self._metrics.track_pending(lambda: self._tracker.pending)
        server = grpc.server(
            executor,
            interceptors=[Admission(executor, self._tracker, cfg.max_pending, self._metrics)],
            options=[
                ("grpc.max_receive_message_length", 256 * 1024),
                # past 1,000 calls waiting for the Python layer grpc core answers
                # CANCELLED, silently; Admission enforces --max-pending instead, visibly
                ("grpc.server.max_pending_requests", 1 << 20),
                ("grpc.server.max_pending_requests_hard_limit", 1 << 20),
            ],
        )
        server.add_generic_rpc_handlers(
            (v2_handler(V2Servicer(self._service, self._metrics, self._tracker)),)
        )
        services = [V2_SERVICE]
        if not cfg.disable_v1beta1:
            server.add_generic_rpc_handlers(
                (v1beta1_handler(V1beta1Servicer(self._service, self._metrics, self._tracker)),)
            )
            services.append(V1BETA1_SERVICE)
        health_pb2_grpc.add_HealthServicer_to_server(self._health_grpc, server)
        for name in ["", *services]:
            self._health_grpc.set(name, health_pb2.HealthCheckResponse.SERVING)
        public = cfg.listen.path
        bind = cfg.listen if public is None else UnixEndpoint(path=_private_name(public))
        # bind under a umask that leaves at most socket_mode, then chmod exactly
        old_umask = os.umask(0o777 & ~cfg.socket_mode)
        try:
            server.add_insecure_port(bind.grpc_target)
        except RuntimeError as exc:
            raise UsageError(
                f"cannot listen on the socket ({exc})", where=cfg.listen.endpoint
            ) from None
        finally:
            os.umask(old_umask)
        server.start()
        self._grpc = server
        if public is not None:
            assert bind.path is not None
            try:
                self._publish_socket(bind.path, public)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    bind.path.unlink()
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
                   "health_port": self.health_port, "pid": os.getpid(),
                   "max_workers": cfg.max_workers, "max_pending": cfg.max_pending},
        )

    def _publish_socket(self, private: Path, public: Path) -> None:
        """Give the privately bound socket its mode and group, then link it into place."""
        cfg = self._config
        try:
            os.chmod(private, cfg.socket_mode)
            if cfg.socket_group is not None:
                give_to_group(private, cfg.socket_group, public)
            try:
                os.link(private, public)
            except FileExistsError:
                raise UsageError(
                    "another process created the socket while this plugin was starting",
                    where=cfg.listen.endpoint, hint="run one plugin per socket",
                ) from None
            except OSError as exc:
                raise UsageError(
                    f"cannot create the socket ({exc.strerror})", where=cfg.listen.endpoint
                ) from None
            # pin our inode: while this descriptor is open no other socket can get its
            # number, so the comparison at exit cannot be fooled by inode reuse
            self._socket_fd = os.open(public, os.O_PATH | os.O_NOFOLLOW)
        except BaseException:
            self.stop(0)
            raise

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

    def serve_until_signal(self, on_signal: Callable[[], object] | None = None) -> None:
        """Block until SIGTERM/SIGINT, call ``on_signal``, then shut down gracefully."""
        # a short wait keeps the main thread responsive to signals
        while not self._stop_requested.wait(timeout=0.2):
            pass
        if on_signal is not None:
            on_signal()
        self.stop(self._config.grace_period)

    def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight calls finish within ``grace``, remove the socket."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        started = time.monotonic()
        in_flight = self._tracker.signal()
        self._health_grpc.enter_graceful_shutdown()
        if self._grpc is not None:
            # refuses new calls at once; running handlers get `grace` seconds, then are
            # cancelled. Calls still queued for a handler thread then are cancelled
            # unprocessed: safe for the caller to retry.
            self._grpc.stop(grace).wait()
        self._remove_socket()
        if self._http is not None:
            self._http.stop()
        report = self._tracker.report()
        log.log(
            logging.WARNING if report.abandoned else logging.INFO,
            "stopped",
            extra={"seconds": round(time.monotonic() - started, 3),
                   "in_flight_at_signal": in_flight,
                   "handled": report.handled,
                   "abandoned": report.abandoned},
        )
        if self._executor is not None:
            # handlers cut off by the grace period may still wait on the backend; their
            # answers can no longer be delivered, so the process does not wait for them
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _remove_socket(self) -> None:
        path = self._config.listen.path
        fd = self._socket_fd
        if path is None or fd is None:
            return
        self._socket_fd = None
        try:
            ours = os.fstat(fd)
            with contextlib.suppress(FileNotFoundError):
                current = os.lstat(path)
                # only remove the file we created: a successor may already have replaced it
                if (current.st_dev, current.st_ino) == (ours.st_dev, ours.st_ino):
                    path.unlink()
        finally:
            os.close(fd)
