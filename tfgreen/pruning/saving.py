"""Making pruned `.keras` files loadable (used by `tfgreen.load_model`).

Each pruning backend answers for its own Keras (`load_scope(path)` of
`tfgreen.pruning._protocol.PruningBackend`); this module keeps the call
`tfgreen.loading` makes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from tfgreen.flavor import backend

__all__ = ["load_scope"]


def load_scope(flavor: str, path: str | Path) -> contextlib.AbstractContextManager:
    """A context in which Keras can deserialize a pruned model saved at `path`.

    Same as `tfgreen.flavor.backend("tfgreen.pruning", flavor).load_scope(path)`.

    Args:
        flavor: `"keras3"` or `"tf_keras"`, the flavour of the file.
        path: The `.keras` file.

    Returns:
        A context manager; a no-op one for files without pruning wrappers.
    """
    return backend("tfgreen.pruning", flavor).load_scope(path)
