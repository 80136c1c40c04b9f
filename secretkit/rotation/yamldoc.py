"""Round-trip editing of EncryptionConfiguration files: a one-key change is a one-key diff.

Stages edit the document loaded here (ruamel.yaml's round-trip mode keeps comments,
key order, quoting and flow style, and the file's own indentation is detected and
reused), so the diff an operator reviews shows only what the stage changed. Parsing
is first done by the project's strict reader (:func:`secretkit.fileio.load_yaml`),
whose errors never quote the file; this module only re-reads a document that reader
accepted.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.util import load_yaml_guess_indent

from secretkit.errors import ConfigError


def _yaml(text: str) -> YAML:
    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line (a key) that was one line
    yaml.indent(mapping=2, sequence=indent or 2, offset=block_seq_indent or 0)
    return yaml


def load_document(raw: bytes, *, source: str) -> Any:
    """The round-trip document of ``raw`` (already validated YAML)."""
    text = raw.decode("utf-8")
    try:
        return _yaml(text).load(text)
    except Exception:  # ruamel raises many types, and its messages quote content
        raise ConfigError(
            "the config file cannot be edited as YAML",
            where=source,
            hint="`secretkit config validate FILE` explains it",
        ) from None


def dump_document(doc: Any, *, like: bytes) -> bytes:
    """``doc`` as YAML bytes, with the indentation style of the original ``like``."""
    stream = io.StringIO()
    _yaml(like.decode("utf-8")).dump(doc, stream)
    return stream.getvalue().encode("utf-8")
