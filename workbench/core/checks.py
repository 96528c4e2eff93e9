"""The few checks every config dataclass needs, written once.

A field declares its check with :func:`workbench.core.options.option` (``check=POSITIVE_INT``) and
the dataclass's ``__post_init__`` calls :func:`check_fields`, so validation happens in one place, and
the error names the class, the field, what was expected and what was given.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Check:
    """A named test of one value: ``expected`` completes "must be ...", ``test`` says whether it holds."""

    expected: str
    test: Callable[[Any], bool]

    def __call__(self, value: Any, name: str) -> Any:
        """``value`` if it passes, else a ``ValueError`` naming ``name``, the expectation and the value."""
        if not self.test(value):
            raise ValueError(f"{name} must be {self.expected}, got {excerpt(value)}")
        return value


_EXCERPT = reprlib.Repr()  # keyword arguments need Python 3.12
_EXCERPT.maxlevel, _EXCERPT.maxstring, _EXCERPT.maxother = 3, 80, 80
_EXCERPT.maxlist = _EXCERPT.maxtuple = _EXCERPT.maxdict = _EXCERPT.maxset = 6


def excerpt(value: Any) -> str:
    """``repr(value)`` cut to a few lines at most: an error names a bad value without printing all of a
    200,000-item list or a nested structure that YAML aliases repeat."""
    return _EXCERPT.repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


POSITIVE_INT = Check("a positive integer", lambda v: _is_int(v) and v > 0)
NON_NEGATIVE_INT = Check("an integer >= 0", lambda v: _is_int(v) and v >= 0)
POSITIVE_NUMBER = Check("a positive number", lambda v: _is_number(v) and v > 0)
NON_NEGATIVE_NUMBER = Check("a number >= 0", lambda v: _is_number(v) and v >= 0)
NON_EMPTY_STRING = Check("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()))


def one_of(choices: Iterable[Any]) -> Check:
    choices = tuple(choices)
    return Check(f"one of {list(choices)}", lambda v: isinstance(v, (str, int, float)) and v in choices)


def in_range(low: float, high: float, *, closed: bool = False) -> Check:
    """``low <= value < high`` (``<= high`` when ``closed``)."""
    bracket = "]" if closed else ")"
    return Check(
        f"a number in [{low}, {high}{bracket}",
        lambda v: _is_number(v) and low <= v and (v <= high if closed else v < high),
    )


def optional(check: Check) -> Check:
    return Check(f"None or {check.expected}", lambda v: v is None or check.test(v))


def sequence_of(check: Check, *, non_empty: bool = True) -> Check:
    """A list or tuple whose every item passes ``check``."""
    what = "a non-empty list" if non_empty else "a list"
    return Check(
        f"{what} of items each {check.expected}",
        lambda v: isinstance(v, (list, tuple)) and (bool(v) or not non_empty) and all(check.test(item) for item in v),
    )


def distinct(values: Any) -> Any:
    """A list, tuple or range as a tuple without repeats, in order; anything else as it is, for a check
    such as :func:`sequence_of` to name."""
    return tuple(dict.fromkeys(values)) if isinstance(values, (list, tuple, range)) else values


def check_fields(instance: Any) -> None:
    """Run the check each field of a dataclass declared (``metadata["check"]``)."""
    owner = type(instance).__name__
    for f in fields(instance):
        check = f.metadata.get("check")
        if check is not None:
            check(getattr(instance, f.name), f"{owner}.{f.name}")
