"""Option types and option shapes shared by every command (one of each concept).

* :class:`Duration`: every duration flag takes a Go duration (``5s``, ``500ms``,
  ``1m30s``) or a bare number of seconds, finite and within Go's range.
* :class:`FiniteFloat`: a number that must be finite (``nan``/``inf`` refused) and
  within bounds; click's ``FloatRange`` lets ``nan`` through.
* :class:`AliasedOption`: one canonical flag name in ``--help``, old spellings still
  accepted (hidden) for one release.
* :func:`secret_from`: a secret flag that can also come from a file or an
  environment variable, so it need not appear in ``ps`` or shell history.

Bad values are click usage errors, so they exit 2 through the one error boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in some click versions
    """A Go duration or bare seconds -> float seconds (``as_text``: the Go text).

    ``minimum`` is exclusive unless ``allow_minimum``; values beyond Go's int64
    nanoseconds (about 292 years), ``nan`` and ``inf`` are refused.
    """

    name = "duration"

    def __init__(
        self, *, minimum: float = 0.0, allow_minimum: bool = False, as_text: bool = False
    ) -> None:
        self.minimum = minimum
        self.allow_minimum = allow_minimum
        self.as_text = as_text

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """``DURATION`` in usage lines."""
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ``value``; a bad one fails with the parser's message (exit 2)."""
        from secretkit.core.durations import parse_seconds

        if isinstance(value, int | float) and not isinstance(value, bool):
            value = repr(float(value))
        text = str(value).strip()
        try:
            seconds = parse_seconds(
                text, minimum=self.minimum, allow_minimum=self.allow_minimum
            )
        except ValueError as exc:
            self.fail(f"{exc}; use a Go duration such as 5s, 500ms or 1m30s", param, ctx)
        if not self.as_text:
            return seconds
        # a bare number means seconds; Go (and the apiserver) need the unit
        try:
            float(text)
        except ValueError:
            return text
        return f"{text}s"


class FiniteFloat(click.ParamType):  # type: ignore[type-arg]
    """A finite float within ``[minimum, maximum]`` (``min_open``: minimum excluded)."""

    name = "number"

    def __init__(
        self,
        minimum: float | None = None,
        maximum: float | None = None,
        *,
        min_open: bool = False,
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.min_open = min_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse ``value`` as a float and check it is finite and in range."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        low = self.minimum
        if low is not None and (number < low or (self.min_open and number == low)):
            self.fail(f"{number:g} must be {'>' if self.min_open else '>='} {low:g}", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"{number:g} must be <= {self.maximum:g}", param, ctx)
        return number


class AliasedOption(click.Option):
    """An option whose old spellings still parse but are not shown in ``--help``.

    ``click.option("--etcd-prefix", "etcd_prefix", cls=AliasedOption,
    hidden_aliases=("--prefix",))``: the canonical name is documented, the alias
    keeps old scripts working for one release.
    """

    def __init__(
        self,
        param_decls: Sequence[str] | None = None,
        *,
        hidden_aliases: Sequence[str] = (),
        **attrs: Any,
    ) -> None:
        super().__init__([*(param_decls or ()), *hidden_aliases], **attrs)
        self.hidden_aliases = tuple(hidden_aliases)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """The help line, without the hidden aliases."""
        shown = [o for o in self.opts if o not in self.hidden_aliases]
        saved, self.opts = self.opts, shown
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = saved


def aliased_option(
    *param_decls: str, hidden_aliases: Sequence[str], **attrs: Any
) -> Callable[[F], F]:
    """``click.option`` for an :class:`AliasedOption`."""
    return click.option(*param_decls, cls=AliasedOption, hidden_aliases=hidden_aliases, **attrs)


def read_secret_file(path: Path, *, what: str) -> str:
    """The first line of a secret file (bounded read), without its line ending.

    A missing, special, oversized or non-UTF-8 file is a usage error naming it;
    the content is never quoted.
    """
    from secretkit.errors import UsageError
    from secretkit.fileio import read_text_file

    text = read_text_file(path, what=what, max_bytes=64 * 1024, error=UsageError)
    value = text.splitlines()[0] if text else ""
    if not value:
        raise UsageError(f"{what} is empty", where=str(path), hint="write the secret on line 1")
    return value


def etcd_prefix_option(**attrs: Any) -> Callable[[F], F]:
    """``--etcd-prefix`` (kube-apiserver's name; ``--prefix`` still accepted)."""
    return aliased_option(
        "--etcd-prefix",
        "etcd_prefix",
        hidden_aliases=("--prefix",),
        default="/registry",
        show_default=True,
        help=attrs.pop("help", "The apiserver's --etcd-prefix (where it keeps objects in etcd)."),
        **attrs,
    )
