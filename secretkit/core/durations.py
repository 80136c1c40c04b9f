"""Go durations (``5s``, ``500ms``, ``1m30s``): one parser and one set of bounds.

kube-apiserver reads the EncryptionConfiguration's kms ``timeout`` with Go's
``time.ParseDuration``, and etcdctl its ``--dial-timeout`` the same way, so every
duration secretkit takes (config files, flags, environment variables) goes through
:func:`parse_duration`: what Go refuses, secretkit refuses. Pure: no I/O.
"""

from __future__ import annotations

import math
import re

#: Go's time unit table, in nanoseconds (``time.unitMap``)
_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 micro sign
    "\u03bcs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
#: one ``<number><unit>`` part of a Go duration; the unit is checked against the table
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
#: Go's ``time.Duration`` is an int64 count of nanoseconds
_MAX_DURATION_NS = (1 << 63) - 1
#: how much of a rejected text an error message quotes
_SHOWN = 40


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "\u2026")


def parse_duration(text: str) -> float:
    """Parse a Go duration (``3s``, ``100ms``, ``1m30s``, ``-1s``, ``0``) into seconds.

    Exactly Go's ``time.ParseDuration``, which kube-apiserver uses: a unit on every
    number, no spaces, and the result must fit an int64 count of nanoseconds (about
    292 years), so ``99999999999999999999999h`` is refused as the apiserver refuses
    it. Raises ``ValueError`` ("invalid duration ...") otherwise.
    """
    return parse_duration_ns(text) / 1e9


def parse_duration_ns(text: str) -> int:
    """:func:`parse_duration` in integer nanoseconds, as Go computes them."""
    invalid = f"invalid duration {_shown(text)}"
    body = text
    negative = False
    if body[:1] in ("+", "-") and body:
        negative = body[0] == "-"
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise ValueError(invalid)
    total = 0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None or match.end() == pos:  # pragma: no cover - the pattern always matches
            raise ValueError(invalid)
        whole, fraction, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not fraction:
            raise ValueError(invalid)  # no digits: ".s", "s", "-.s"
        if unit not in _DURATION_UNITS_NS:
            raise ValueError(invalid)  # missing or unknown unit
        scale = _DURATION_UNITS_NS[unit]
        whole = whole.lstrip("0")
        # 20 digits already exceed int64: checked before int() sees a huge string
        if len(whole) > 20 or int(whole or "0") > (1 << 63) // scale:
            raise ValueError(invalid + " (out of range)")
        value = int(whole or "0") * scale
        if fraction:
            # digits past the 20th cannot change a nanosecond count; Go truncates too
            digits = fraction[:20]
            value += int(digits) * scale // 10 ** len(digits)
        total += value
        if total > 1 << 63:
            raise ValueError(invalid + " (out of range)")
        pos = match.end()
    if not negative and total > _MAX_DURATION_NS:
        raise ValueError(invalid + " (out of range)")
    return -total if negative else total


def parse_seconds(text: str, *, minimum: float = 0.0, allow_minimum: bool = False) -> float:
    """A CLI/environment duration: a Go duration, or a bare number of seconds.

    Surrounding spaces are ignored. The value must be finite and above ``minimum``
    (or equal to it with ``allow_minimum``); ``nan``, ``inf`` and values beyond Go's
    range are refused. Raises ``ValueError`` with a message fit for the user.
    """
    raw = text.strip()
    try:
        seconds = float(raw)
    except ValueError:
        seconds = parse_duration(raw)
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{_shown(raw)} is not a finite number")
        if abs(seconds) * 1e9 > _MAX_DURATION_NS:
            raise ValueError(f"invalid duration {_shown(raw)} (out of range)")
    if seconds < minimum or (seconds == minimum and not allow_minimum):
        bound = "at least" if allow_minimum else "more than"
        raise ValueError(f"duration {_shown(raw)} must be {bound} {minimum:g}s")
    return seconds
