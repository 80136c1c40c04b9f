"""Server processes we start ourselves: spawn, readiness, stop by PID, loopback probes.

Every process:

* runs in its own session (process group), so stopping it leaves no orphans;
* writes its output to a log file, never to our stdout (dev servers print tokens);
* is stopped by PID (:meth:`ManagedProcess.stop`), never by process name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from secretkit.errors import SecretkitError

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
T = TypeVar("T")


class ServerStartError(SecretkitError):
    """A helper server process could not be started or never became ready."""


# ---------------------------------------------------------------------------
# ports


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The port is released before returning, so another process may take it; the
    ``start_*`` helpers retry with a new port when the server fails to bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_tcp(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts TCP connections; ``ServerStartError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"nothing accepted TCP connections within {timeout:.0f}s",
                    where=f"{host}:{port}",
                    hint="check the server's log file for why it did not start",
                ) from None
            time.sleep(0.05)


# ---------------------------------------------------------------------------
# processes


def _cmdline(pid: int) -> list[str] | None:
    """Return the command line of ``pid`` from /proc, or None where unavailable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\x00") if part]


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (exited, waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: existence is all we can tell
    # the state letter follows the parenthesised command name, which may contain spaces
    state = stat.rpartition(")")[2].split()[:1]
    return state != ["Z"]


@dataclass
class ManagedProcess:
    """A server process we started, in its own session; stopped by PID."""

    name: str
    pid: int
    argv: list[str]
    log_path: Path | None
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def is_running(self) -> bool:
        """Return True while the process runs (an exited, unreaped child counts as stopped)."""
        if self._popen is not None:
            return not self._child_exited()
        return _pid_alive(self.pid) and self._is_ours()

    def _child_exited(self) -> bool:
        """For a child we spawned: has it exited? Does NOT reap it (WNOWAIT), so its PID,
        and with it the process group id, cannot be reused while we still signal it."""
        assert self._popen is not None
        if self._popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _is_ours(self) -> bool:
        """Guard against PID reuse when we did not spawn the process ourselves."""
        if not self.argv:
            return True
        expected = Path(self.argv[0]).name
        cmdline = _cmdline(self.pid)
        if cmdline:
            # the arguments, not just the program: for the plugin and the stand-in
            # argv[0] is "python", which any Python process that got the PID also has.
            # The program itself may differ (a wrapper script that execs the real binary,
            # like the pip-installed bao), so only the arguments must match exactly.
            args = [a for a in self.argv[1:] if a]
            if args:
                return cmdline[-len(args):] == args
            return Path(cmdline[0]).name == expected
        try:
            # cmdline can read empty for a moment after exec; comm is the name, cut at 15
            comm = Path(f"/proc/{self.pid}/comm").read_text().strip()
        except OSError:
            return True  # no /proc: trust the PID we recorded
        return comm == expected[:15]

    def _signal_group(self, sig: signal.Signals) -> None:
        # The child leads its own process group (start_new_session), so the group id
        # is its PID: signalling the group also reaches anything it forked.
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
        except PermissionError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, wait ``timeout`` s, then SIGKILL. Idempotent."""
        if self._popen is not None and self._popen.returncode is not None:
            return  # reaped earlier: its PID may belong to someone else by now
        if self.is_running():
            log.debug("stopping %s (pid %d)", self.name, self.pid)
            self._signal_group(signal.SIGTERM)
            if not self._wait(timeout):
                log.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, self.pid)
                self._signal_group(signal.SIGKILL)
                self._wait(5.0)
        if self._popen is not None:
            # The leader is an unreaped zombie, so the group id is still ours: make sure
            # nothing it forked outlives it, then reap.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(5.0)

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start ``argv`` in a new session with stdout+stderr appended to ``log_path``."""
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: dev servers print credentials (OpenBao's root token) to their log
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        out = os.fdopen(fd, "ab")
    else:
        out = open(os.devnull, "wb")  # noqa: SIM115 - handed to the child, closed below
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise ServerStartError(
            f"could not start {name}: {exc.strerror or exc}",
            where=str(argv[0]),
            hint="check that the binary exists and is executable",
        ) from None
    finally:
        out.close()
    log.info("started %s (pid %d), log %s", name, popen.pid, log_path)
    return ManagedProcess(
        name=name, pid=popen.pid, argv=list(argv), log_path=log_path, _popen=popen
    )


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child server: ours, minus proxies (everything is local)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy", "grpc_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if extra:
        env.update(extra)
    return env


def wait_ready(
    proc: ManagedProcess,
    probe: Callable[[], bool],
    *,
    timeout: float,
    where: str,
    what: str | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``probe`` until it returns True; stop ``proc`` when it never does.

    Fails early when the process exits. A probe that raises ``OSError`` or a
    secretkit error counts as "not yet" (the last one's type is named on timeout).
    Whatever ends the wait other than success (timeout, exit, Ctrl-C) stops the
    process: callers only learn of it once their start function returns, so one
    that fails here would otherwise outlive the command in its own session.
    """
    name = what or proc.name
    hint = f"see its log: {proc.log_path}" if proc.log_path else None
    deadline = time.monotonic() + timeout
    last = ""
    try:
        while True:
            if not proc.is_running():
                raise ServerStartError(f"{name} exited during start-up", where=where, hint=hint)
            try:
                if probe():
                    return
            except (OSError, SecretkitError) as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"{name} did not become ready within {timeout:.0f}s"
                    + (f" ({last})" if last else ""),
                    where=where,
                    hint=hint,
                )
            time.sleep(interval)
    except BaseException:
        proc.stop()
        raise


def start_with_retries(
    name: str, attempts: int, start: Callable[[], T], *, where: Callable[[], str]
) -> T:
    """Call ``start`` up to ``attempts`` times: a free port may be taken before the
    server binds it, so a start that fails is retried (``start`` picks new ports)."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except ServerStartError:
            if attempt == attempts:
                raise
            log.warning("%s failed to start (attempt %d, %s); retrying", name, attempt, where())
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------
# loopback HTTP


def loopback_get(
    url: str,
    *,
    token: str | None = None,
    ca_file: str | Path | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 2.0,
) -> tuple[int, bytes]:
    """GET ``url`` on a server we started; ``(status, body)`` for any HTTP status.

    Never through a proxy (every server probed here is on 127.0.0.1); HTTPS is
    verified against ``ca_file`` or ``context``. Raises ``OSError`` when nothing
    answers.
    """
    request = urllib.request.Request(url)  # noqa: S310 - always http(s)://127.0.0.1
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if context is None and ca_file is not None:
        context = ssl.create_default_context(cafile=str(ca_file))
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
