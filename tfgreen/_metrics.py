"""The one top-1 rule: classes from logits, probabilities or a single sigmoid/logit column.

Export checks, `compare` and the notebooks all call these, so the same model
gets the same accuracy everywhere. A single-column output is a binary
classifier: a probability (all values in [0, 1]) is thresholded at 0.5, a
logit at 0. The kind is decided once from the reference outputs (the Keras
model's) and applied to every output compared against them, never per batch.

Example:
>>> import numpy as np
>>> predicted_classes(np.array([[0.2, 0.8], [0.9, 0.1]]))
array([1, 0])
>>> predicted_classes(np.array([[-1.5], [0.3]]))
array([0, 1])
>>> accuracy(np.array([[0.7], [0.2]]), np.array([1, 1]))
0.5
"""

from __future__ import annotations

import numpy as np

from tfgreen.errors import TfgreenValueError, message

__all__ = [
    "class_labels",
    "LOGITS",
    "PROBABILITIES",
    "output_kind",
    "predicted_classes",
    "accuracy",
    "top1_agreement",
    "float_list",
]

LOGITS = "logits"
PROBABILITIES = "probabilities"


def float_list(outputs) -> list[np.ndarray]:
    """A model's output (one array, or a list/tuple of them) as a list of float64 arrays."""
    return [
        np.asarray(o, dtype="float64")
        for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])
    ]


def _flat(values) -> np.ndarray:
    several = isinstance(values, (list, tuple)) and len(values) > 1
    if several and all(isinstance(v, np.ndarray) and v.ndim >= 2 for v in values):
        raise TfgreenValueError(
            message(
                "Top-1 accuracy needs a model with one output; this one gives several",
                "one output tensor of class scores, [n, classes]",
                "Compare or check a classifier with a single output",
                outputs=[tuple(v.shape) for v in values],
            )
        )
    try:
        values = np.asarray(values)
    except (ValueError, TypeError) as error:
        raise TfgreenValueError(
            message(
                "The model outputs are not one numeric array",
                "one output tensor of class scores, [n, classes]",
                "Compare or check a classifier with a single output",
                error=str(error).splitlines()[0][:200],
            )
        ) from None
    return values.reshape(len(values), -1)


def output_kind(values) -> str:
    """Tells whether outputs are probabilities (all in [0, 1]) or logits.

    Args:
        values: Model outputs, `[n, ...]`.

    Returns:
        `"probabilities"` or `"logits"`.

    Example:
    >>> output_kind([[0.1], [0.9]]), output_kind([[-2.0], [3.0]])
    ('probabilities', 'logits')
    """
    flat = _flat(values)
    if flat.size and np.nanmin(flat) >= 0 and np.nanmax(flat) <= 1:
        return PROBABILITIES
    return LOGITS


def predicted_classes(values, kind: str | None = None) -> np.ndarray:
    """Top-1 class per sample.

    Args:
        values: Model outputs, `[n, classes]` (or `[n, 1]` for a binary model).
        kind: `"logits"` or `"probabilities"`; only matters for one column.
            `None` decides from the values. Defaults to `None`.

    Returns:
        An int64 array of class indices, `[n]`.
    """
    flat = _flat(values)
    if flat.shape[1] > 1:
        return flat.argmax(axis=1)
    kind = kind or output_kind(flat)
    threshold = 0.5 if kind == PROBABILITIES else 0.0
    return (flat[:, 0] > threshold).astype("int64")


def _bad_labels(why: str, expected: str, **received) -> TfgreenValueError:
    return TfgreenValueError(
        message(
            f"The labels {why}",
            expected,
            "Pass class indices 0..classes-1 or one-hot rows",
            **received,
        )
    )


def class_labels(labels, classes: int | None = None) -> np.ndarray:
    """Checks labels and gives class indices: finite, whole, in range, one-hot of the right width.

    Args:
        labels: Class indices `[n]` (or `[n, 1]`), or one-hot rows `[n, classes]`.
        classes: The model's number of classes (`2` for a one-column binary
            output), or `None` when unknown (no width or range check).

    Returns:
        An int64 array of class indices, `[n]`.

    Example:
    >>> class_labels(np.array([[0, 1], [1, 0]])).tolist()
    [1, 0]
    """
    values = np.asarray(labels)
    if values.dtype.kind not in "biuf":
        raise _bad_labels("are not numbers", "numeric labels", dtype=str(values.dtype))
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise _bad_labels(
            "hold NaN or infinite values", "finite labels", count=int((~np.isfinite(values)).sum())
        )
    if values.ndim > 1 and values.shape[-1] > 1:
        if classes is not None and values.shape[-1] != classes:
            raise _bad_labels(
                "are one-hot rows of the wrong width", f"{classes} columns", width=values.shape[-1]
            )
        values = values.argmax(axis=-1)
    values = values.reshape(len(values))
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        raise _bad_labels("are not whole numbers", "class indices such as 0, 1, 2")
    values = values.astype("int64")
    if classes is not None and values.size and (values.min() < 0 or values.max() >= classes):
        raise _bad_labels(
            "lie outside the model's classes",
            f"indices in [0, {classes})",
            min=int(values.min()),
            max=int(values.max()),
        )
    return values


def accuracy(outputs, labels, kind: str | None = None) -> float:
    """Top-1 accuracy against class-index labels.

    Args:
        outputs: Model outputs, `[n, classes]` or `[n, 1]`.
        labels: Class indices, `[n]`.
        kind: As in `predicted_classes`. Defaults to `None`.

    Returns:
        The fraction of samples whose top-1 class equals the label.
    """
    flat = _flat(outputs)
    labels = class_labels(labels, max(flat.shape[1], 2))
    return float(np.mean(predicted_classes(flat, kind) == labels))


def top1_agreement(reference, candidate) -> float:
    """Fraction of samples where two models pick the same class.

    The kind of a single-column output is decided from `reference` and used
    for both, so a logit model and its quantized copy are judged alike.

    Args:
        reference: Outputs of the reference model (the Keras model).
        candidate: Outputs of the candidate (the `.tflite` file) on the same inputs.

    Returns:
        The agreement, in [0, 1].

    Example:
    >>> top1_agreement([[0.2], [0.7]], [[0.4], [0.6]])
    1.0
    """
    kind = output_kind(reference)
    return float(np.mean(predicted_classes(reference, kind) == predicted_classes(candidate, kind)))
