"""The `structure=` argument of `tfgreen.prune`: what pruning removes together.

`"m:n"`: m zeros in every n consecutive weights (`parse_structure`).
`"channels"`: whole output filters of Conv layers and units of Dense layers,
scored by the L2 norm of their kernel slice (`"channels:l1"` for the L1
norm). `"heads"`: whole MultiHeadAttention heads, scored by the norm of their
query/key/value/output projection slices. The last two remove work:
`tfgreen.strip` returns a physically smaller model (`tfgreen.pruning.surgery`).
"""

from __future__ import annotations

import math
import re

from tfgreen.errors import TfgreenValueError, message

__all__ = ["GROUPS", "parse_structure", "group_of", "pruned_count"]

_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
_GROUP = re.compile(r"^(channels|heads)(?::(l1|l2))?$")
# The structures that remove whole groups (channels, heads).
GROUPS = ("channels", "heads")


def _invalid(structure) -> TfgreenValueError:
    return TfgreenValueError(
        message(
            "`structure` is not a valid 'm:n' pattern nor a known group structure",
            "None (unstructured), 'm:n' with integers 1 <= m < n (m zeros in every n "
            "consecutive weights), 'channels' (whole Conv filters / Dense units; "
            "'channels:l1' scores them by L1 norm) or 'heads' (whole attention heads)",
            "Pass structure='channels', structure='heads', structure='2:4' or structure=None",
            structure=structure,
        )
    )


def group_of(structure: str | None) -> tuple[str, str] | None:
    """The `(kind, norm)` of a group structure (`"channels"`, `"heads"`), else `None`.

    Args:
        structure: A `structure=` value of `tfgreen.prune`.

    Returns:
        `("channels" | "heads", "l2" | "l1")`, or `None` for `None` and `"m:n"`.

    Example:
    >>> group_of("channels"), group_of("channels:l1"), group_of("2:4")
    (('channels', 'l2'), ('channels', 'l1'), None)
    """
    if structure is None or not isinstance(structure, str):
        return None
    match = _GROUP.match(structure.strip().lower())
    return (match.group(1), match.group(2) or "l2") if match else None


def parse_structure(structure: str | None, groups: bool = False) -> tuple[int, int] | None:
    """Parses `"m:n"` (m zeros in every n consecutive input-channel weights).

    Args:
        structure: `None` for unstructured pruning, a string such as `"2:4"`,
            or a group structure (`"channels"`, `"heads"`).
        groups: Whether the caller handles group structures (the gradual,
            `fit()`-driven pruning does; one-shot pruning does not): then a
            group structure gives `None`, else it is refused. Defaults to `False`.

    Returns:
        `None` (unstructured, or a group structure the caller handles) or the
        tuple `(m, n)` with `1 <= m < n`.

    Example:
    >>> parse_structure("2:4"), parse_structure("channels", groups=True)
    ((2, 4), None)
    """
    if structure is None:
        return None
    if group_of(structure) is not None:
        if groups:
            return None
        raise TfgreenValueError(
            message(
                f"structure={structure!r} removes whole channels or heads during fit(), which "
                "this kind of pruning does not do",
                "structure=None or an 'm:n' pattern here",
                "Use the gradual pruning (method=None, fit() with tfgreen.callbacks.Pruning) for "
                "'channels'/'heads', or pass structure='2:4' or None",
                structure=structure,
            )
        )
    match = _PATTERN.match(structure) if isinstance(structure, str) else None
    m, n = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= m < n:
        raise _invalid(structure)
    return m, n


def pruned_count(sparsity: float, groups: int) -> int:
    """How many of `groups` channels/heads a sparsity removes (rounded half up).

    Example:
    >>> pruned_count(0.5, 16), pruned_count(0.55, 10)
    (8, 6)
    """
    return int(math.floor(float(sparsity) * groups + 0.5))
