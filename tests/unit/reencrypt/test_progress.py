"""Progress line rendering (bar, rate, ETA) and the non-TTY log mode."""

from __future__ import annotations

import io

from secretkit.reencrypt.progress import Progress, format_duration, render_line


def test_format_duration() -> None:
    assert format_duration(5) == "5s"
    assert format_duration(75) == "1m15s"
    assert format_duration(3725) == "1h02m"


def test_line_with_total_has_bar_percent_rate_and_eta() -> None:
    line = render_line(50, 200, 10.0, width=10)
    assert line.startswith("[##--------] 50/200")
    assert " 25.0% " in line
    assert "5 obj/s" in line
    assert "ETA 30s" in line


def test_line_without_total_has_count_and_rate() -> None:
    assert render_line(30, None, 3.0) == "30 objects 10 obj/s elapsed 3s"


def test_non_tty_writes_plain_log_lines() -> None:
    stream = io.StringIO()
    done = [0]
    p = Progress(stream, lambda: done[0], log_interval=0.01)
    p.set_label("secrets")
    p.start()
    done[0] = 7
    p.stop()
    lines = stream.getvalue().splitlines()
    assert lines
    assert all(line.startswith("reencrypt progress: secrets: ") for line in lines)
    assert "\r" not in stream.getvalue()
    assert lines[-1].startswith("reencrypt progress: secrets: 7 objects")


def test_disabled_progress_writes_nothing() -> None:
    stream = io.StringIO()
    p = Progress(stream, lambda: 1, enabled=False)
    p.start()
    p.stop()
    assert stream.getvalue() == ""


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tty_redraws_one_line_and_ends_it() -> None:
    stream = FakeTTY()
    p = Progress(stream, lambda: 40, tty_interval=0.01)
    p.set_total(80)
    p.start()
    p.stop()
    out = stream.getvalue()
    assert out.startswith("\r\x1b[K[")
    assert out.endswith("\n")
    assert out.count("\n") == 1  # redraws in place, one final newline
    assert "40/80" in out and "ETA" in out
