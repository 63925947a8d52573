"""Loading model files safely.

A `.keras` file loads with `safe_mode=True`, which refuses Python lambdas.
Formats that can run arbitrary code when loaded (a `Lambda` layer, legacy
`.h5`, a TensorFlow SavedModel) are refused unless the caller passes
`trusted=True`. The Keras flavour is read from the file itself; each
technique's backend for that flavour (`tfgreen.flavor.backend(package,
flavor)`) then supplies the scope its layers load in (`load_scope(path)`).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from os import PathLike
from pathlib import Path

from tfgreen._validate import boolean
from tfgreen.errors import (
    TfgreenError,
    TfgreenFileNotFoundError,
    TfgreenTypeError,
    TfgreenValueError,
    UntrustedModelError,
    message,
)
from tfgreen.flavor import KERAS3, TF_KERAS, backend, keras_for

__all__ = ["load_model"]

_MAX_CONFIG_BYTES = 64 * 2**20  # config.json / metadata.json of a `.keras` archive


def _untrusted(kind: str, path: Path) -> UntrustedModelError:
    return UntrustedModelError(
        message(
            f"Refusing to load {kind}: it can run arbitrary code when loaded",
            "a `.keras` file without Lambda layers, or an explicit trust flag",
            "Load it only if you trust its source: pass trusted=True "
            "(CLI: --trust-model), or re-save it as `.keras` without Lambda layers",
            path=str(path),
        )
    )


def _keras_file_flavor(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            for name in ("metadata.json", "config.json"):
                size = archive.getinfo(name).file_size
                if size > _MAX_CONFIG_BYTES:
                    raise TfgreenValueError(
                        message(
                            f"The `.keras` file's {name} is too large",
                            f"at most {_MAX_CONFIG_BYTES // 2**20} MiB",
                            "Check the file's origin; a model's config is a few MB at most",
                            path=str(path),
                            size_bytes=size,
                        )
                    )
            metadata = json.loads(archive.read("metadata.json"))
        if not isinstance(metadata, dict):
            raise TypeError("metadata.json is not a JSON object")
    except (zipfile.BadZipFile, KeyError, TypeError, RecursionError, ValueError, OSError) as error:
        if isinstance(error, TfgreenError):
            raise
        raise TfgreenValueError(
            message(
                "The `.keras` file is not a valid Keras archive",
                "a zip with metadata.json, as written by `model.save('m.keras')`",
                "Re-save the model, or check the file was fully copied",
                path=str(path),
            )
        ) from error
    return TF_KERAS if str(metadata.get("keras_version", "3")).startswith("2.") else KERAS3


def _h5_flavor(path: Path) -> str:
    import h5py

    with h5py.File(path, "r") as handle:
        version = handle.attrs.get("keras_version", b"3")
    version = version.decode() if isinstance(version, bytes) else str(version)
    return TF_KERAS if version.startswith("2.") else KERAS3


@contextlib.contextmanager
def _layer_scope(flavor: str, path: Path):
    """Makes tiny_gpt's layers and the pruning and QAT layers of the flavour's backends known."""
    from tfgreen.models import position_embedding_class

    # `pruning.saving.load_scope` is `backend("tfgreen.pruning", flavor).load_scope(path)`.
    from tfgreen.pruning.saving import load_scope as pruning_scope

    position_embedding_class(flavor)  # registers tfgreen>PositionEmbedding (tiny_gpt & co.)

    with pruning_scope(flavor, path), backend("tfgreen.quantization", flavor).load_scope(path):
        yield


def load_model(path: str | Path, trusted: bool = False, compile: bool = True):
    """Loads a Keras 3 or tf_keras model file, refusing code-running formats unless trusted.

    Args:
        path: A `.keras` file, a legacy `.h5`/`.hdf5` file, or a SavedModel folder.
        trusted: Allow formats and layers that can run arbitrary code on load
            (`Lambda` layers, `.h5`, SavedModel). Defaults to `False`.
        compile: Restore the training configuration too. Defaults to `True`.

    Returns:
        The model, of the flavour that saved it (SavedModel folders load as tf_keras).

    Example:
    >>> model.save("digits.keras")
    >>> model = tfgreen.load_model("digits.keras")
    """
    if not isinstance(path, (str, PathLike)):
        raise TfgreenTypeError(
            message(
                "load_model takes a path",
                "a str or pathlib.Path to a `.keras`, `.h5` file or a SavedModel folder",
                "Pass the file's path, for example 'model.keras'",
                path=repr(path)[:80],
            )
        )
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not (path.is_dir() or path.is_file()):
        from tfgreen._io import read_regular_file

        read_regular_file(path, "model file", limit=0)  # names a FIFO, device, loop in one line
    if not path.exists():
        raise TfgreenFileNotFoundError(
            message(
                "The model file does not exist",
                "a path to a `.keras`, `.h5` file or a SavedModel folder",
                "Check the path and the working folder",
                path=str(path),
            )
        )
    boolean("trusted", trusted, fix="Pass trusted=True or leave it out")
    suffix = path.suffix.lower()
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise TfgreenValueError(
                message(
                    "The folder is not a SavedModel",
                    "a folder holding saved_model.pb",
                    "Pass the SavedModel folder itself",
                    path=str(path),
                )
            )
        if not trusted:
            raise _untrusted("a SavedModel folder", path)
        return keras_for(TF_KERAS).models.load_model(str(path), compile=compile)
    if suffix in (".h5", ".hdf5"):
        if not trusted:
            raise _untrusted("a legacy HDF5 (.h5) model", path)
        flavor = _h5_flavor(path)
        with _layer_scope(flavor, path):
            return keras_for(flavor).models.load_model(str(path), compile=compile)
    if suffix != ".keras":
        raise TfgreenValueError(
            message(
                "Unknown model file type",
                "a `.keras` file, a `.h5`/`.hdf5` file or a SavedModel folder",
                "Save the model with `model.save('model.keras')`",
                path=str(path),
            )
        )
    flavor = _keras_file_flavor(path)
    keras = keras_for(flavor)
    try:
        with _layer_scope(flavor, path):
            return keras.models.load_model(str(path), compile=compile, safe_mode=not trusted)
    except TfgreenError:
        raise
    except Exception as error:  # noqa: BLE001 - a hostile config can raise anything from Keras
        text = str(error)
        if not trusted and ("safe_mode" in text or "unsafe" in text.lower()):
            raise _untrusted("a model with a Lambda layer", path) from error
        raise TfgreenValueError(
            message(
                "Keras could not rebuild the model from the `.keras` file",
                "a `.keras` file saved by Keras, with layers Keras or tfgreen knows",
                "Re-save the model, or register its custom layers before loading",
                path=str(path),
                error=(text.splitlines() or [type(error).__name__])[0][:300],
            )
        ) from error
