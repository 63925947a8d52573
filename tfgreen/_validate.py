"""Argument checks shared by every public entry point.

Each check returns the value in its canonical form (a float, an int, a list of
names) or raises a tfgreen error in the three-question form of
`tfgreen.errors.message`. A `bool` is never accepted as a number.

Example:
>>> fraction("sparsity", 0.8)
0.8
>>> positive_int("runs", 3)
3
>>> choice("schedule", "polynomial", ("polynomial", "constant"))
'polynomial'
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = [
    "is_number",
    "fraction",
    "number",
    "positive_int",
    "boolean",
    "choice",
    "names",
]


def is_number(value) -> bool:
    """True for an int or float that is not a bool.

    Example:
    >>> is_number(1.5), is_number(True), is_number("1")
    (True, False, False)
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fraction(
    name: str, value, *, closed: bool = False, example: float = 0.5, fix: str = ""
) -> float:
    """Checks a fraction in [0, 1) (or [0, 1] with `closed=True`).

    Args:
        name: The argument name shown in the error.
        value: The value to check.
        closed: Whether 1.0 is allowed. Defaults to `False`.
        example: A valid value the error suggests. Defaults to `0.5`.
        fix: How to fix it, if more specific than the default. Defaults to `""`.

    Returns:
        The value as a float.

    Example:
    >>> fraction("sparsity", 1, closed=True)
    1.0
    """
    high_ok = closed and is_number(value) and value == 1
    if not is_number(value) or not (0 <= value < 1 or high_ok):
        raise TfgreenValueError(
            message(
                f"`{name}` must be a fraction in [0, {'1]' if closed else '1)'}",
                f"a float such as {example}",
                fix or f"Pass for example {name}={example}",
                **{name: value},
            )
        )
    return float(value)


def number(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    allow_none: bool = False,
    example: float = 1.0,
    fix: str = "",
) -> float | None:
    """Checks a finite real number within optional bounds.

    Args:
        name: The argument name shown in the error.
        value: The value to check.
        minimum: The lowest allowed value, or `None` for no bound. Defaults to `None`.
        maximum: The highest allowed value, or `None` for no bound. Defaults to `None`.
        exclusive_minimum: Whether `minimum` itself is refused (for "> 0").
            Defaults to `False`.
        allow_none: Whether `None` is accepted (and returned). Defaults to `False`.
        example: A valid value the error suggests. Defaults to `1.0`.
        fix: How to fix it, if more specific than the default. Defaults to `""`.

    Returns:
        The value as a float, or `None`.

    Example:
    >>> number("temperature", 4, minimum=0, exclusive_minimum=True)
    4.0
    """
    if value is None and allow_none:
        return None
    valid = is_number(value) and math.isfinite(value)  # NaN and infinities fail
    if valid and minimum is not None:
        valid = value > minimum if exclusive_minimum else value >= minimum
    if valid and maximum is not None:
        valid = value <= maximum
    if not valid:
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum}")
        if maximum is not None:
            bounds.append(f"<= {maximum}")
        expected = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
        raise TfgreenValueError(
            message(
                f"`{name}` is not a valid number",
                expected + (" (or None)" if allow_none else ""),
                fix or f"Pass for example {name}={example}",
                **{name: value},
            )
        )
    return float(value)


def positive_int(
    name: str,
    value,
    *,
    minimum: int = 1,
    allow_none: bool = False,
    example: int = 10,
    fix: str = "",
) -> int | None:
    """Checks an int >= `minimum` (a bool is refused).

    Args:
        name: The argument name shown in the error.
        value: The value to check.
        minimum: The lowest allowed value. Defaults to `1`.
        allow_none: Whether `None` is accepted (and returned). Defaults to `False`.
        example: A valid value the error suggests. Defaults to `10`.
        fix: How to fix it, if more specific than the default. Defaults to `""`.

    Returns:
        The value as an int, or `None`.

    Example:
    >>> positive_int("batch_size", 0, minimum=0)
    0
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TfgreenValueError(
            message(
                f"`{name}` must be an int >= {minimum}",
                f"a whole number such as {example}" + (" (or None)" if allow_none else ""),
                fix or f"Pass for example {name}={example}",
                **{name: value},
            )
        )
    return int(value)


def boolean(name: str, value, *, fix: str = "") -> bool:
    """Checks a bool (0 and 1 are refused: they are usually a mistake).

    Args:
        name: The argument name shown in the error.
        value: The value to check.
        fix: How to fix it, if more specific than the default. Defaults to `""`.

    Returns:
        The value.

    Example:
    >>> boolean("trusted", False)
    False
    """
    if not isinstance(value, bool):
        raise TfgreenTypeError(
            message(
                f"`{name}` must be a bool",
                "True or False",
                fix or f"Pass {name}=True or {name}=False",
                **{name: value},
            )
        )
    return value


def choice(name: str, value, choices: Iterable, *, fix: str = ""):
    """Checks that a value is one of a fixed set of choices.

    Args:
        name: The argument name shown in the error.
        value: The value to check.
        choices: The allowed values, in the order the error lists them.
        fix: How to fix it, if more specific than the default. Defaults to `""`.

    Returns:
        The value.

    Example:
    >>> choice("objective", "energy", ("energy", "latency", "size"))
    'energy'
    """
    options = tuple(choices)
    try:
        known = value in options
    except TypeError:  # unhashable or incomparable values
        known = False
    if not known:
        raise TfgreenValueError(
            message(
                f"Unknown `{name}`",
                f"one of {', '.join(repr(c) for c in options)}",
                fix or f"Pass for example {name}={options[0]!r}",
                **{name: value},
            )
        )
    return value


def names(name: str, value, known: Iterable[str], *, what: str = "layer") -> list[str] | None:
    """Checks a name or a list of names against the names that exist.

    Args:
        name: The argument name shown in the error.
        value: `None`, one name, or a list/tuple/set of names.
        known: The names that exist (for example the model's layer names).
        what: What the names name, for the error text. Defaults to `"layer"`.

    Returns:
        The names as a list in the given order, or `None` for `None`.

    Example:
    >>> names("keep_float", "dense", ["dense", "conv"])
    ['dense']
    """
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not all(
        isinstance(item, str) for item in items
    ):
        raise TfgreenTypeError(
            message(
                f"`{name}` must be {what} names",
                f"a {what} name or a list of {what} names (strings)",
                f"Pass for example {name}=['dense_1']",
                **{name: value},
            )
        )
    known = list(known)
    missing = [item for item in items if item not in known]
    if missing:
        raise TfgreenValueError(
            message(
                f"`{name}` names {what}s that do not exist: {missing}",
                f"names among {known[:20]}" + (" ..." if len(known) > 20 else ""),
                f"Check the spelling, or list the {what} names first",
                **{name: value},
            )
        )
    return list(items)
