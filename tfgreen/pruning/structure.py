"""The `structure="m:n"` argument of `tfgreen.prune`: m zeros in every n weights."""

from __future__ import annotations

import re

from tfgreen.errors import TfgreenValueError, message

__all__ = ["parse_structure"]

_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def parse_structure(structure: str | None) -> tuple[int, int] | None:
    """Parses `"m:n"` (m zeros in every n consecutive input-channel weights).

    Args:
        structure: `None` for unstructured pruning, or a string such as `"2:4"`.

    Returns:
        `None` or the tuple `(m, n)` with `1 <= m < n`.

    Example:
    >>> parse_structure("2:4")
    (2, 4)
    """
    if structure is None:
        return None
    match = _PATTERN.match(structure) if isinstance(structure, str) else None
    m, n = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= m < n:
        raise TfgreenValueError(
            message(
                "`structure` is not a valid 'm:n' pattern",
                "a string 'm:n' with integers 1 <= m < n: m zeros in every n consecutive weights",
                "Pass structure='2:4' for 2:4 sparsity, or structure=None for unstructured",
                structure=structure,
            )
        )
    return m, n
