"""Structured logging for the daemon: one JSON object per line (or plain text).

Callers pass context through ``extra={...}``; every value logged anywhere in the
plugin is a class name, a key_id, a count or one of our own secret-free messages.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from secretkit.sdk_logging import cap_sdk_loggers

# attributes every LogRecord has; anything else came from ``extra=``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line: time, level, logger, msg, then extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record``; exception tracebacks are reduced to their class name."""
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info and record.exc_info[0] is not None:
            # tracebacks can carry SDK messages that echo input: keep the type only
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str, sort_keys=False)


class TextFormatter(logging.Formatter):
    """Human text: ``time level logger: msg key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` on one line."""
        stamp = time.strftime("%H:%M:%S", time.gmtime(record.created))
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{stamp} {record.levelname.lower()} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            extras += f" exc_type={record.exc_info[0].__name__}"
        return f"{line} {extras}".rstrip()


def configure_logging(fmt: str, level: str) -> None:
    """Send every log record to stderr in ``fmt`` (json|text) at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # SDK loggers print request and response bodies at debug level
    cap_sdk_loggers(logging.WARNING)


class RateLimitedLog:
    """At most ``burst`` log lines per ``period`` seconds for each key; the rest are counted.

    A client that sends garbage (or a flood the plugin refuses) must not turn the log
    into a denial of service: the first lines of a burst are logged as usual, the
    following ones are only counted, and the next line logged for that key carries
    ``suppressed``: how many were dropped since. Thread-safe.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        period: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._period = period
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [window start, lines logged in the window, lines suppressed since last]
        self._state: dict[Hashable, list[float]] = {}

    def log(self, level: int, key: Hashable, msg: str, extra: dict[str, Any]) -> bool:
        """Log ``msg`` unless ``key`` used up its burst; True when a line was written."""
        now = self._clock()
        with self._lock:
            state = self._state.get(key)
            if state is None or now - state[0] >= self._period:
                suppressed = int(state[2]) if state is not None else 0
                state = [now, 0.0, float(suppressed)]
                self._state[key] = state
            if state[1] >= self._burst:
                state[2] += 1
                return False
            state[1] += 1
            suppressed = int(state[2])
            state[2] = 0
        if suppressed:
            extra = {**extra, "suppressed": suppressed}
        self._logger.log(level, msg, extra=extra)
        return True
