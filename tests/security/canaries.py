"""Distinctive secret values the security tests plant and then search for.

Each secret is checked in every form it could leak in: raw bytes (as text when
printable), base64, hex and Python's ``repr`` of the bytes.
"""

from __future__ import annotations

import base64
import contextlib

#: a 32-byte local key whose raw form, base64 and hex are all easy to spot
KEY = b"CANARY-KEY-0123456789abcdefghij!"
KEY_B64 = base64.b64encode(KEY).decode()
#: a second key (rotation targets, read-only keys)
KEY2 = b"CANARY-KEY2-zyxwvutsrqponmlkji?!"
KEY2_B64 = base64.b64encode(KEY2).decode()
#: the plaintext of a Secret
PLAINTEXT = b"CANARY-PLAINTEXT-do-not-print-me"
#: a Vault token / bearer token / password
TOKEN = "CANARY-TOKEN-s3cr3t-7f9a2c"

assert len(KEY) == 32 and len(KEY2) == 32


#: a leak of this many consecutive characters of any encoding is a leak (a YAML error
#: snippet, a truncated log field or a prefix shows part of a key, not all of it)
WINDOW = 16


def forms(secret: bytes | str) -> list[str]:
    """Every textual form of ``secret`` worth searching output for, partial ones included."""
    raw = secret.encode() if isinstance(secret, str) else secret
    whole = [base64.b64encode(raw).decode(), raw.hex(), repr(raw)[2:-1]]
    with contextlib.suppress(UnicodeDecodeError):
        whole.append(raw.decode("ascii"))
    # inside a longer base64 stream (e.g. a whole object) the value starts at any of
    # three byte alignments; the characters that encode only its own bytes are fixed
    for shift in range(3):
        embedded = base64.b64encode(bytes(shift) + raw).decode()
        whole.append(embedded[4 if shift else 0 : -4])
    out = [f for f in whole if len(f) >= 8]
    for text in whole:
        out += [text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1)]
    return list(dict.fromkeys(out))


def leaks(text: str | bytes, *secrets: bytes | str) -> list[str]:
    """The forms of ``secrets`` that occur in ``text`` (empty when nothing leaked)."""
    haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [f for s in secrets for f in forms(s) if f in haystack]


ALL = (KEY, KEY2, PLAINTEXT, TOKEN)
