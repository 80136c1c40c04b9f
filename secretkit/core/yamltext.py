"""Parse YAML text without ever quoting it: errors by position and kind only (pure).

Every YAML document secretkit reads (plugin config, backends files, static-pod
manifests, EncryptionConfigurations) may hold key material or tokens. PyYAML's own
``str(exc)`` quotes the offending source line, and some of its problem texts quote
document content (an unknown tag such as ``!Passw0rd`` is the value an operator forgot
to quote): those fragments are redacted, only single characters and token names are
kept. Reading the files is :mod:`secretkit.fileio`'s job.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from secretkit.errors import SecretkitError, UsageError

#: a quoted fragment in a PyYAML problem text (repr of document content)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
#: fragments that cannot carry a secret: one (possibly escaped) character, a token name
_HARMLESS = re.compile(r"^.$|^\\(?:[abfnrtv0\\'\"]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})$|^<[a-z ]+>$")


class YAMLSyntaxError(ValueError):
    """A YAML document could not be parsed; the message holds no document content.

    ``problem`` says what is wrong, ``line`` and ``column`` (1-based, None when
    unknown) where. ``str()`` is ``"problem (line L, column C)"``.
    """

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        position = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{problem}{position}")

    def at(self, source: str) -> str:
        """``source:line:column`` (just ``source`` when the position is unknown)."""
        if self.line is None:
            return source
        return f"{source}:{self.line}:{self.column}"


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping repeats a key (raised only by :class:`_UniqueKeyLoader`)."""


#: the problem text for a value its tag's constructor rejects; PyYAML's own
#: exceptions there are plain ValueError/KeyError/... whose text quotes the value
_BAD_VALUE = "a value does not fit its tag/type"


class _ValueError(yaml.constructor.ConstructorError):
    """A constructor rejected a value; carries its position and nothing of its text."""


#: what PyYAML's value constructors raise besides YAMLError (``!!int x``, ``!!bool x``,
#: ``2020-13-01``, ``!!timestamp x``, ...); all of them may quote the value
_CONSTRUCTOR_FAILURES = (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError)


class _SafeLoader(yaml.SafeLoader):
    """The safe loader, with constructor failures turned into content-free YAML errors."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Construct ``node``; a constructor's own exception becomes :class:`_ValueError`.

        The innermost node that fails is reported, so the position is the value's.
        """
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except _CONSTRUCTOR_FAILURES:
            pass
        # raised outside the except block so the original (which quotes the value)
        # is neither chained nor kept as __context__
        raise _ValueError(None, None, _BAD_VALUE, node.start_mark)


class _UniqueKeyLoader(_SafeLoader):
    """A safe loader that rejects duplicate mapping keys, as the apiserver's strict decoder does."""


#: a repeated key longer than this is shortened in the message: a document
#: fragment in an error should stay short, even a key
_KEY_SHOWN = 20


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not _hashable(key):
            # SafeLoader reports this as a ConstructorError too; a bare dict lookup
            # would raise TypeError
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found unhashable key",
                key_node.start_mark,
            )
        if key in result:
            shown = str(key)
            if len(shown) > _KEY_SHOWN:
                shown = shown[:_KEY_SHOWN] + "\u2026"
            raise _DuplicateKeyError(None, None, f"duplicate field {shown!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _hashable(value: object) -> bool:
    # isinstance(value, Hashable) is True for a tuple that holds a list
    try:
        hash(value)
    except TypeError:
        return False
    return True


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _redact_quoted(problem: str) -> str:
    def replace(match: re.Match[str]) -> str:
        inner = match.group(0)[1:-1]
        return match.group(0) if _HARMLESS.match(inner) else "(redacted)"

    return _QUOTED.sub(replace, problem)


def _syntax_error(exc: yaml.YAMLError, text: str) -> YAMLSyntaxError:
    if isinstance(exc, yaml.reader.ReaderError):
        # a non-printable character: report its code point and position, nothing else
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return YAMLSyntaxError(f"unacceptable character #x{exc.character:04x}", line, column)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    if isinstance(exc, _DuplicateKeyError):
        # our own message: it names a field, as every other config error does
        problem = problem if len(problem) <= 80 else "duplicate field"
    else:
        problem = _redact_quoted(problem)
    if mark is None:
        return YAMLSyntaxError(problem)
    return YAMLSyntaxError(problem, mark.line + 1, mark.column + 1)


def parse_yaml(data: bytes | str, *, unique_keys: bool = False) -> object:
    """Parse one YAML document with the safe loader.

    ``bytes`` must be UTF-8. With ``unique_keys`` a repeated mapping key is an error.
    Raises :class:`YAMLSyntaxError` (a ``ValueError``) whose message holds no content,
    also for a value its tag's constructor rejects (``!!int <token>``, ``2020-13-01``)
    and for a document nested too deeply; nothing else.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            raise YAMLSyntaxError("not UTF-8 text", line, column) from None
    else:
        text = data
    loader = _UniqueKeyLoader if unique_keys else _SafeLoader
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - both loaders are SafeLoader
    except yaml.YAMLError as exc:
        # not chained: the original's str() quotes the offending line
        raise _syntax_error(exc, text) from None
    except RecursionError:
        # the composer recurses per nesting level ("[" * 5000)
        problem = "the document is nested too deeply"
    except _CONSTRUCTOR_FAILURES:
        # a constructor failure outside _SafeLoader.construct_object (belt and braces)
        problem = _BAD_VALUE
    # raised outside the except block: the original is neither cause nor context
    raise YAMLSyntaxError(problem)


def load_yaml(
    data: bytes | str,
    *,
    source: str,
    what: str,
    error: type[SecretkitError] = UsageError,
    hint: str | None = None,
    unique_keys: bool = False,
) -> object:
    """Parse ``data``; a syntax error becomes ``error("<what> is not valid YAML: ...")``.

    ``source`` names the data (a file path) and becomes ``source:line:column``.
    """
    try:
        return parse_yaml(data, unique_keys=unique_keys)
    except YAMLSyntaxError as exc:
        raise error(
            f"{what} is not valid YAML: {exc.problem}", where=exc.at(source), hint=hint
        ) from None
