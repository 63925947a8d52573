"""Making pruned `.keras` files loadable (used by `tfgreen.load_model`)."""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path

from tfgreen.flavor import KERAS3

__all__ = ["load_scope"]


def _config_text(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read("config.json").decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError):
        return ""


def load_scope(flavor: str, path: str | Path) -> contextlib.AbstractContextManager:
    """A context in which Keras can deserialize a pruned model saved at `path`.

    Args:
        flavor: `"keras3"` or `"tf_keras"`, the flavour of the file.
        path: The `.keras` file.

    Returns:
        A context manager; a no-op one for files without pruning wrappers.
    """
    if "PruneLowMagnitude" not in _config_text(Path(path)):
        return contextlib.nullcontext()
    if flavor == KERAS3:
        import tfgreen.pruning._keras3  # noqa: F401  (registers tfgreen>PruneLowMagnitude)

        return contextlib.nullcontext()
    from tfgreen.pruning import _tf_keras as tfmot_backend

    return tfmot_backend.load_scope()
