"""Progress on stderr: a redrawn bar with rate and ETA on a TTY, log lines otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``."""
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def render_line(done: int, total: int | None, elapsed: float, *, width: int = 30) -> str:
    """One progress line: bar (when the total is known), count, rate and ETA."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if total:
        frac = min(done / total, 1.0)
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        eta = format_duration((total - done) / rate) if rate > 0 and done < total else "-"
        return f"[{bar}] {done}/{total} {frac * 100:5.1f}% {rate:,.0f} obj/s ETA {eta}"
    return f"{done} objects {rate:,.0f} obj/s elapsed {format_duration(elapsed)}"


class Progress:
    """Reports ``done()`` periodically until stopped.

    On a TTY the line is redrawn every ``tty_interval`` seconds; otherwise one line is
    written every ``log_interval`` seconds, so CI logs stay readable.
    """

    def __init__(
        self,
        stream: TextIO,
        done: Callable[[], int],
        *,
        enabled: bool = True,
        tty_interval: float = 0.25,
        log_interval: float = 10.0,
    ) -> None:
        self._stream = stream
        self._done = done
        self._enabled = enabled
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._interval = tty_interval if self._tty else log_interval
        self._total: int | None = None
        self._label = ""
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_total(self, total: int | None) -> None:
        """Set (or clear) the expected object count used for the bar and ETA."""
        self._total = total

    def set_label(self, label: str) -> None:
        """Name what is being processed (the current resource)."""
        self._label = label

    def start(self) -> None:
        """Start the reporting thread."""
        if not self._enabled:
            return
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="reencrypt-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reporting and finish the line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._emit(final=True)

    def _run(self) -> None:
        # a log shows within a second that the run is alive (and its total, once the
        # first list page said it), then every interval
        wait = min(1.0, self._interval)
        while not self._stop.wait(wait):
            self._emit(final=False)
            wait = self._interval

    def _emit(self, *, final: bool) -> None:
        line = render_line(self._done(), self._total, time.monotonic() - self._start)
        if self._label:
            line = f"{self._label}: {line}"
        if self._tty:
            self._stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        else:
            self._stream.write("reencrypt progress: " + line + "\n")
        self._stream.flush()
