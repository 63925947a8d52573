"""The weight matrices pruning works on: where they sit in a layer, and their reduction axis.

A kernel is found in the layer itself or in any layer nested inside it (the
query/key/value/output projections of a MultiHeadAttention, the feed-forward
Dense layers of a KerasHub TransformerDecoder, a whole nested backbone).
Its `path` names it from the top-level layer down (`"mha/query"`), and its
`axis` is the axis a matrix product sums over, along which `"m:n"` groups run:
the input axis of a Dense or Conv kernel, the last contracted axis of an
EinsumDense equation, the feature axis of an embedding table (the axis a tied
language-model head sums over).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Kernel", "find_kernels", "weight_name", "zero_fraction"]


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A prunable weight of a layer.

    Attributes:
        path: Layer names from the top-level layer down, joined by "/".
        layer: The (possibly nested) layer that owns the weight.
        variable: The weight variable.
        axis: The reduction axis of the weight.
    """

    path: str
    layer: Any
    variable: Any
    axis: int


def weight_name(variable) -> str:
    """The short name of a weight variable (`"kernel"` for `"dense/kernel:0"`)."""
    return variable.name.split("/")[-1].split(":")[0]


def zero_fraction(array) -> float:
    """Fraction of exact zeros in an array."""
    return float(np.mean(np.asarray(array) == 0))


def _children(layer) -> list:
    # Keras private, in both Kerases: the layers a layer tracks directly.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _variable(layer, name: str):
    # Keras 3 keeps the variable in `_<name>` behind a property (which may
    # return a LoRA or quantized view); tf_keras has the attribute itself.
    value = getattr(layer, f"_{name}", None)
    return value if value is not None else getattr(layer, name, None)


def _einsum_axis(equation: str, rank: int) -> int:
    """The last kernel axis an EinsumDense equation contracts ("abc,cde->abde": 0)."""
    inputs, output = equation.replace(" ", "").split("->")
    operand, kernel = inputs.split(",")
    contracted = [i for i, c in enumerate(kernel) if c in operand and c not in output]
    return contracted[-1] if contracted else rank - 2


def _own(layer, keras, embeddings: bool) -> list[tuple[str, Any, int]]:
    """The prunable weights a layer owns itself: `(suffix, variable, axis)`."""
    layers = keras.layers
    if isinstance(layer, layers.EinsumDense):
        kernel = _variable(layer, "kernel")
        return [("", kernel, _einsum_axis(layer.equation, len(kernel.shape)))]
    if isinstance(layer, (layers.Dense, layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        kernel = _variable(layer, "kernel")
        return [] if kernel is None else [("", kernel, len(kernel.shape) - 2)]
    if embeddings and isinstance(layer, layers.Embedding):
        found = [("", _variable(layer, "embeddings"), 1)]
        # KerasHub's ReversibleEmbedding(tie_weights=False): a separate (d, vocab) head.
        reverse = getattr(layer, "reverse_embeddings", None)
        if reverse is not None:
            found.append(("/reverse_embeddings", reverse, 0))
        return found
    return []


def find_kernels(layer, keras, embeddings: bool = False) -> list[Kernel]:
    """The prunable kernels of a layer and of every layer nested inside it.

    Args:
        layer: A built Keras 3 or tf_keras layer (or a nested model).
        keras: The Keras module of the layer's flavour.
        embeddings: Whether embedding tables count. Defaults to `False`.

    Returns:
        One `Kernel` per weight (a weight shared by two layers once).
    """
    found: list[Kernel] = []
    seen: set[int] = set()

    def visit(node, path: str) -> None:
        for suffix, variable, axis in _own(node, keras, embeddings):
            if variable is not None and id(variable) not in seen:
                seen.add(id(variable))
                found.append(Kernel(path + suffix, node, variable, axis))
        for child in _children(node):
            visit(child, f"{path}/{child.name}")

    visit(layer, layer.name)
    return found
