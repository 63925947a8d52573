"""What a quantization backend provides: one protocol, two implementations.

`tfgreen.flavor.backend("tfgreen.quantization", model)` returns
`tfgreen.quantization._keras3` (tfgreen's own fake-quant layers) or
`tfgreen.quantization._tf_keras` (tfmot). Both modules satisfy
`QuantizationBackend`; `api.py` calls them the same way, with no flavour
branch, and `tfgreen.load_model` asks them for their load scope.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["QuantizationBackend"]


@runtime_checkable
class QuantizationBackend(Protocol):
    """The functions `tfgreen.quantization._keras3` and `._tf_keras` both define."""

    def is_graph_model(self, model) -> bool:
        """Whether the model is a Sequential or Functional graph QAT can rebuild."""

    def is_quantize_aware(self, model) -> bool:
        """Whether the model came from `quantize_aware` (it carries fake-quant layers)."""

    def float_layers(self, model, quantized: set[str], preserve_sparsity: bool) -> dict[str, str]:
        """Of the layers named in `quantized`, those QAT can't make int8, with the reason."""

    def quantize_aware(self, model, quantized: set[str], preserve_sparsity: bool):
        """Returns the QAT model: the layers named in `quantized` get int8
        fake-quant, the others stay float; `preserve_sparsity` keeps zero
        kernel weights at zero."""

    def load_scope(self, path: Path) -> contextlib.AbstractContextManager:
        """A context in which a model file with this backend's QAT layers loads
        (a no-op context for files without them)."""
