"""Errors raised by tfgreen.

Every error is a `TfgreenError` and also subclasses the matching built-in
(`ValueError`, `TypeError`, `FileNotFoundError`, ...), so existing `except`
clauses keep working. Messages answer three questions: what happened, what
was expected, how to fix it, and end with `Received: name=value`.
"""

from __future__ import annotations

__all__ = [
    "TfgreenError",
    "TfgreenValueError",
    "TfgreenTypeError",
    "TfgreenFileNotFoundError",
    "TfgreenOSError",
    "TfgreenPermissionError",
    "UntrustedModelError",
    "CalibrationError",
    "UnsupportedLayerError",
    "TargetError",
    "TfliteFileError",
    "message",
]


class TfgreenError(Exception):
    """Base class of every error tfgreen raises."""


class TfgreenValueError(TfgreenError, ValueError):
    """An argument has the right type but a wrong value."""


class TfgreenTypeError(TfgreenError, TypeError):
    """An argument has the wrong type (for example not a Keras model)."""


class TfgreenFileNotFoundError(TfgreenError, FileNotFoundError):
    """A path given to tfgreen does not exist."""


class TfgreenOSError(TfgreenError, OSError):
    """A path cannot be read or written: not a regular file, a loop, a name too long, disk full."""


class TfgreenPermissionError(TfgreenOSError, PermissionError):
    """A file or folder cannot be read or written with the current permissions."""


class UntrustedModelError(TfgreenError, PermissionError):
    """A model file could run arbitrary code and was not marked as trusted."""


class CalibrationError(TfgreenValueError):
    """Calibration or validation data is empty, non-finite or mis-shaped."""


class UnsupportedLayerError(TfgreenValueError):
    """A layer cannot be handled (pruned, quantized, distilled) as asked."""


class TargetError(TfgreenValueError):
    """A model or exported file does not meet its device target."""


class TfliteFileError(TfgreenValueError):
    """A `.tflite` file is truncated, corrupted or cannot be run."""


def _fmt(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def message(what: str, expected: str, fix: str, **received) -> str:
    """Builds an error message in tfgreen's three-question form.

    Args:
        what: What happened, as a sentence.
        expected: What was expected instead.
        fix: How the user can fix it.
        **received: The offending values, shown as `Received: name=value`.

    Returns:
        The message text.

    Example:
    >>> message("`sparsity` is out of range.", "a float in [0, 1)",
    ...         "Pass for example sparsity=0.8.", sparsity=1.5)
    '`sparsity` is out of range. Expected a float in [0, 1). Pass for example sparsity=0.8. Received: sparsity=1.5'
    """
    text = f"{what.rstrip('.')}. Expected {expected.rstrip('.')}. {fix.rstrip('.')}."
    if received:
        text += " Received: " + ", ".join(f"{k}={_fmt(v)}" for k, v in received.items())
    return text
