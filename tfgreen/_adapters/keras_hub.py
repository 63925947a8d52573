"""The one module that touches KerasHub internals.

A KV-cache export needs the shape of a CausalLM's cache before tracing
`call_with_cache` (public), and KerasHub only builds one in the private
`_build_cache`. It is read here, so a KerasHub release that moves it breaks
one place; `tests/export/test_generate.py` names the pinned version.

Written against keras-hub 0.32.0 (`PINNED`). Nothing here imports KerasHub.
"""

from __future__ import annotations

__all__ = ["PINNED", "has_cache", "cache_shape"]

PINNED = {"keras_hub": "0.32.0"}


def has_cache(model) -> bool:
    """Whether a model is a KerasHub CausalLM with `call_with_cache` and `_build_cache`."""
    return callable(getattr(model, "call_with_cache", None)) and callable(
        getattr(model, "_build_cache", None)
    )


def cache_shape(model, length: int) -> tuple[int, ...]:
    """The shape of a batch-1 cache of `length` positions (KerasHub's own `_build_cache`).

    Args:
        model: A KerasHub CausalLM (`has_cache`).
        length: Positions in the cache.

    Returns:
        The cache shape, e.g. `(1, layers, 2, length, heads, head_dim)` for GPT-2.
    """
    import numpy as np

    _, cache = model._build_cache(np.zeros((1, length), dtype="int32"))
    return tuple(int(d) for d in cache.shape)
