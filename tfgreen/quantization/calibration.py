"""Calibration and validation data, checked before any conversion.

Integer quantization measures the range of every activation on sample
inputs. Bad samples give a silently bad int8 file, so tfgreen checks them
first: empty data, NaN/Inf (naming the first bad sample), shapes or dtypes
that do not fit the model's inputs, and data without any variation (a single
sample, or samples that are all the same) raise `CalibrationError` with what
the model expects.

Accepted forms: a numpy array (one input), a list/tuple of arrays (one per
input), a `tf.data.Dataset`, a generator/iterator, or a callable returning one.
Streams may yield batches or single samples, and `(x, y)` pairs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from tfgreen import _metrics, _validate
from tfgreen.errors import CalibrationError, message

__all__ = [
    "DEFAULT_CALIBRATION_SAMPLES",
    "CalibrationSet",
    "model_inputs",
    "prepare_calibration",
    "prepare_validation",
]

DEFAULT_CALIBRATION_SAMPLES = 200
_SEED = 0


@dataclass
class CalibrationSet:
    """Checked samples: one float array per model input, samples on axis 0.

    Attributes:
        arrays: One array per model input, `(count, *input_shape)`.
        labels: Labels of the samples (validation data only), or `None`.
        indices: Positions of the samples in the data the user passed.
    """

    arrays: list[np.ndarray]
    labels: np.ndarray | None = None
    indices: np.ndarray | None = None

    @property
    def count(self) -> int:
        """Number of samples."""
        return int(len(self.arrays[0]))

    @property
    def sha256(self) -> str:
        """Fingerprint of the samples (shapes, dtypes and values)."""
        digest = hashlib.sha256()
        for array in self.arrays:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def fingerprint(self) -> dict:
        """`{"count": ..., "sha256": ...}` for the export manifest."""
        return {"count": self.count, "sha256": self.sha256}

    def representative(self) -> Callable[[], Iterator[list[np.ndarray]]]:
        """A `representative_dataset` for the TFLite converter (one sample per step)."""
        arrays = self.arrays

        def generate():
            for i in range(len(arrays[0])):
                yield [a[i : i + 1] for a in arrays]

        return generate


def model_inputs(model) -> list[tuple[str, tuple, np.dtype]]:
    """Returns `(name, shape with None batch, dtype)` for each input of a built model.

    Example:
    ```python
    model_inputs(tfgreen.models.small_cnn("keras3"))
    # [('input_layer', (None, 8, 8, 1), dtype('float32'))]
    ```
    """
    specs = []
    for tensor in model.inputs:
        name = getattr(tensor, "name", "input") or "input"
        shape = tuple(None if d is None else int(d) for d in tensor.shape)
        dtype = np.dtype(getattr(tensor.dtype, "name", tensor.dtype))
        specs.append((name.split(":")[0], shape, dtype))
    return specs


def _error(what: str, expected: str, fix: str, **received) -> CalibrationError:
    return CalibrationError(message(what, expected, fix, **received))


def _is_dataset(data) -> bool:
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "as_numpy_iterator")


def _split_x(element, n_inputs: int):
    """Drops labels from an element: `(x, y)` / `(x, y, w)` -> `x`."""
    if isinstance(element, dict):
        raise _error(
            "Dict elements are not supported in calibration/validation data",
            "arrays, one per model input, in order",
            "Yield a tuple of arrays in the order of model.inputs",
            element_keys=sorted(element),
        )
    if not isinstance(element, (tuple, list)):
        return [element]
    if n_inputs > 1 and len(element) in (2, 3) and isinstance(element[0], (tuple, list)):
        return list(element[0])
    if n_inputs == 1 and len(element) in (2, 3):
        return [element[0]]
    return list(element)


def _stream(data) -> Iterable:
    if _is_dataset(data):
        return data.as_numpy_iterator()
    if callable(data) and not isinstance(data, Iterator):
        return data()
    return data


def _check_array(array, spec, position: int, what: str) -> np.ndarray:
    """Checks dtype and shape of one input's array (samples on axis 0)."""
    name, shape, dtype = spec
    array = np.asarray(array)
    expected = f"shape {shape} and dtype {dtype.name} for model input '{name}'"
    if array.dtype.kind not in "fiu" or (dtype.kind == "f" and array.dtype.kind != "f"):
        raise _error(
            f"`{what}` has the wrong dtype for the model",
            f"{'floating point' if dtype.kind == 'f' else 'numeric'} values, {expected}",
            f"Cast and scale the data as in training, e.g. x.astype('{dtype.name}')",
            dtype=array.dtype.name,
            input=position,
        )
    if array.ndim == len(shape) - 1:
        array = array[None]
    if array.ndim != len(shape) or any(
        want is not None and want != got
        for want, got in zip(shape[1:], array.shape[1:], strict=True)
    ):
        raise _error(
            f"`{what}` does not fit the model's input shape",
            expected + " (axis 0 counts samples)",
            "Reshape the data to the model's input shape",
            shape=tuple(array.shape),
            input=position,
        )
    return array.astype(dtype.name, copy=False)


def _collect(model, data, max_samples: int | None, what: str) -> list[np.ndarray]:
    """Gathers one array per model input from any accepted form."""
    specs = model_inputs(model)
    n = len(specs)
    if _is_array_form(data):
        arrays = [data] if isinstance(data, np.ndarray) else list(data)
        if len(arrays) != n:
            raise _error(
                f"`{what}` has {len(arrays)} array(s) but the model has {n} input(s)",
                f"one array per model input: {[s[0] for s in specs]}",
                "Pass one array for a single-input model (x, not (x, y)), or a list of "
                "arrays in the order of model.inputs",
                arrays=len(arrays),
            )
        return [
            _check_array(a, s, i, what) for i, (a, s) in enumerate(zip(arrays, specs, strict=True))
        ]
    if isinstance(data, (str, bytes, dict)) or not (
        _is_dataset(data) or callable(data) or isinstance(data, Iterable)
    ):
        raise _error(
            f"`{what}` has an unsupported type",
            "a numpy array, a list/tuple of arrays (one per input), a tf.data.Dataset, "
            "a generator, or a callable returning one",
            "Pass for example x_train[:200]",
            type=type(data).__name__,
        )
    parts: list[list[np.ndarray]] = [[] for _ in specs]
    total = 0
    for element in _stream(data):
        inputs = _split_x(element, n)
        if len(inputs) != n:
            raise _error(
                f"An element of `{what}` has {len(inputs)} array(s) but the model has {n} input(s)",
                "one array per model input (optionally followed by labels)",
                "Yield x, (x, y), or a tuple of arrays in the order of model.inputs",
                element=total,
            )
        batch = [
            _check_array(a, s, i, what) for i, (a, s) in enumerate(zip(inputs, specs, strict=True))
        ]
        for store, array in zip(parts, batch, strict=True):
            store.append(array)
        total += len(batch[0])
        if max_samples is not None and total >= max_samples:
            break
    if total == 0:
        return [np.zeros((0, *[d or 1 for d in s[1][1:]]), s[2]) for s in specs]
    arrays = [np.concatenate(p)[:max_samples] if max_samples else np.concatenate(p) for p in parts]
    return arrays


def _check_values(arrays: list[np.ndarray], what: str, minimum: int) -> None:
    count = len(arrays[0])
    if count == 0:
        raise _error(
            f"`{what}` is empty",
            f"at least {max(minimum, 2)} samples (tfgreen uses up to {DEFAULT_CALIBRATION_SAMPLES})",
            "Pass samples drawn from the training data",
            samples=0,
        )
    if len({len(a) for a in arrays}) > 1:
        raise _error(
            f"The input arrays of `{what}` have different sample counts",
            "the same number of samples for every model input",
            "Pass aligned arrays",
            samples=[len(a) for a in arrays],
        )
    for position, array in enumerate(arrays):
        finite = np.isfinite(array.reshape(count, -1)).all(axis=1)
        if not finite.all():
            index = int(np.argmin(finite))
            raise _error(
                f"`{what}` holds NaN or Inf, first in sample {index}",
                "finite values only",
                "Clean or drop the bad samples (e.g. x[np.isfinite(x).all(axis=(1, 2, 3))])",
                sample_index=index,
                input=position,
            )
    if count < minimum:
        raise _error(
            f"`{what}` holds a single sample",
            f"at least {minimum} varied samples so value ranges can be measured",
            f"Pass {DEFAULT_CALIBRATION_SAMPLES} or so samples drawn from the training data",
            samples=count,
        )
    for position, array in enumerate(arrays):
        flat = array.reshape(count, -1)
        if minimum > 1 and (flat == flat[:1]).all():
            raise _error(
                f"All {count} samples of `{what}` are identical",
                "varied samples, so value ranges can be measured",
                "Pass different samples drawn from the training data",
                input=position,
                value_range=(float(flat.min()), float(flat.max())),
            )


def _subset(arrays: list[np.ndarray], max_samples: int | None) -> np.ndarray:
    count = len(arrays[0])
    if max_samples is None or count <= max_samples:
        return np.arange(count)
    return np.sort(np.random.default_rng(_SEED).choice(count, max_samples, replace=False))


def prepare_calibration(
    model,
    data,
    max_samples: int | None = DEFAULT_CALIBRATION_SAMPLES,
    what: str = "calibration_data",
) -> CalibrationSet:
    """Checks calibration data against a model and takes a reproducible subset.

    Args:
        model: The built Keras 3 or tf_keras model the data is for.
        data: A numpy array, a list/tuple of arrays (one per input), a
            `tf.data.Dataset`, a generator/iterator, or a callable returning one.
            Streams may yield batches, single samples or `(x, y)` pairs.
        max_samples: Samples kept; arrays longer than this are subsampled with a
            fixed seed, streams are read until this many. `None` keeps all.
            Defaults to `200`.
        what: The argument name used in error messages. Defaults to
            `"calibration_data"`.

    Returns:
        A `CalibrationSet`.

    Example:
    ```python
    calibration = prepare_calibration(model, x_train)
    calibration.count, calibration.fingerprint()["sha256"][:8]  # (200, '3f1c...')
    ```
    """
    _validate.positive_int("max_samples", max_samples, minimum=2, allow_none=True, example=200)
    arrays = _collect(model, data, None if _is_array_form(data) else max_samples, what)
    _check_values(arrays, what, minimum=2)
    indices = _subset(arrays, max_samples)
    return CalibrationSet([a[indices] for a in arrays], indices=indices)


def _is_array_form(data) -> bool:
    return isinstance(data, np.ndarray) or (
        isinstance(data, (list, tuple))
        and bool(data)
        and all(isinstance(a, np.ndarray) for a in data)
    )


def _split_stream(data, n_inputs: int) -> tuple[list, np.ndarray | None]:
    """Reads a stream of `x` or `(x, y)` elements into x elements and labels."""
    xs, ys = [], []
    for element in _stream(data):
        paired = isinstance(element, (tuple, list)) and len(element) in (2, 3)
        if paired and (n_inputs == 1 or isinstance(element[0], (tuple, list))):
            xs.append(element[0])
            ys.append(np.atleast_1d(np.asarray(element[1])))
        else:
            xs.append(element)
    if ys and len(ys) != len(xs):
        raise _error(
            "Some elements of `validation_data` have labels and some do not",
            "every element as (x, y), or every element as x",
            "Yield the same structure for every element",
            with_labels=len(ys),
            elements=len(xs),
        )
    return iter(xs), (np.concatenate(ys) if ys else None)


def prepare_validation(model, data, max_samples: int | None = 1000) -> CalibrationSet:
    """Checks validation data `(x, y)` or `x` against a model.

    Args:
        model: The built model.
        data: `(x, y)`, or `x` alone (then only parity, no accuracy, is
            measured), or a `tf.data.Dataset` / iterator of `x` or `(x, y)`
            batches or samples; `x` as `prepare_calibration` accepts it.
        max_samples: Samples kept (fixed-seed subset). Defaults to `1000`.

    Returns:
        A `CalibrationSet` whose `labels` are class indices, or `None`.

    Example:
    ```python
    validation = prepare_validation(model, (x_test, y_test))
    validation.count, validation.labels[:3]  # (360, array([3, 1, 7]))
    ```
    """
    _validate.positive_int("max_samples", max_samples, allow_none=True, example=1000)
    n = len(model.inputs)
    labels = None
    if isinstance(data, tuple) and len(data) == 2:
        first_is_x = (
            isinstance(data[0], np.ndarray) if n == 1 else isinstance(data[0], (list, tuple))
        )
        if first_is_x:
            data, labels = data
    elif not _is_array_form(data) and (_is_dataset(data) or isinstance(data, Iterator)):
        data, labels = _split_stream(data, n)
    arrays = _collect(model, data, None, "validation_data")
    _check_values(arrays, "validation_data", minimum=1)
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != len(arrays[0]):
            raise _error(
                "`validation_data` has different numbers of inputs and labels",
                "(x, y) with len(x) == len(y)",
                "Pass aligned x and y",
                x=len(arrays[0]),
                y=len(labels),
            )
        labels = _metrics.class_labels(labels)
    indices = _subset(arrays, max_samples)
    return CalibrationSet(
        [a[indices] for a in arrays], None if labels is None else labels[indices], indices
    )
