"""A kernel as a matrix product `X @ W`: its input rows `X` and its matrix `W`.

Wanda and SparseGPT score a weight by the inputs it multiplies, so each
prunable layer must say how its input becomes rows of features `X`
`[tokens, k]` and its kernel a matrix `W` `[k, outputs]` with `X @ W` its
output (bias and activation aside):

- Dense: the kernel is `W`; `X` is the input with every axis but the last flattened.
- EinsumDense (and so the query/key/value/output projections of a
  MultiHeadAttention, in both Kerases, and KerasHub's attention): the
  kernel's contracted axes, in kernel order, become `W`'s rows; the input's
  matching axes, moved last, become `X`'s features. The last contracted axis
  varies fastest, so `m:n` groups of consecutive features are groups along
  the kernel's reduction axis (`tfgreen.pruning._kernels`).
- Conv2D (channels last, no groups): im2col, `X` holds every
  `kernel_h x kernel_w x in_channels` patch the convolution sees
  (`tf.image.extract_patches`, same padding, strides and dilation) and `W`
  the kernel flattened the same way.

Other layers (Conv1D/Conv3D, grouped or channels-first convolutions,
embedding tables) get a reason instead, which `tfgreen.prune` reports.

Example:
>>> import numpy as np
>>> layout = einsum_layout("abc,cde->abde", 3)
>>> layout.rows(np.ones((2, 5, 4))).shape  # 10 tokens of width 4
(10, 4)
>>> layout.matrix(np.ones((4, 2, 3))).shape  # width x (heads * head size)
(4, 6)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from tfgreen.pruning._kernels import Kernel

__all__ = ["Layout", "layout_of", "einsum_layout"]


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one layer's kernel acts on its input as `X @ W`.

    Attributes:
        order: The kernel axes, contracted ones first (in kernel order).
        contracted: How many of `order` are contracted.
        rows: `rows(layer_input) -> X` `[tokens, k]`, float64.
        key: Equal for layers whose equal inputs give equal `X` (the
            query/key/value projections of one attention share statistics).
    """

    order: tuple[int, ...]
    contracted: int
    rows: Callable[[np.ndarray], np.ndarray]
    key: tuple

    def matrix(self, kernel: np.ndarray) -> np.ndarray:
        """The kernel as `W` `[k, outputs]`."""
        moved = np.transpose(kernel, self.order)
        return moved.reshape(int(np.prod(moved.shape[: self.contracted])), -1)

    def kernel(self, matrix: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """`W` back in the kernel's own shape."""
        moved = matrix.reshape([shape[axis] for axis in self.order])
        return np.transpose(moved, np.argsort(self.order))


def _flat_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype="float64").reshape(-1, np.shape(x)[-1])


def einsum_layout(equation: str, rank: int) -> Layout | str:
    """The layout of an EinsumDense kernel of `rank` axes, or why it has none.

    Args:
        equation: The layer's equation, for example `"abc,cde->abde"`.
        rank: The kernel's number of axes.

    Returns:
        A `Layout`, or a sentence saying why the equation is not a matrix product.
    """
    inputs, output = equation.replace(" ", "").split("->")
    operand, kernel = inputs.split(",")
    contracted = [i for i, c in enumerate(kernel) if c in operand and c not in output]
    outputs = [i for i, c in enumerate(kernel) if c not in operand and c in output]
    if "." in kernel or len(contracted) + len(outputs) != rank or not contracted:
        return (
            f"has the equation '{equation}', whose kernel axes are not only contracted "
            "inputs and outputs (no matrix product for Wanda/SparseGPT)"
        )
    letters = [kernel[i] for i in contracted]
    head, _, tail = operand.partition("...")
    explicit = "..." in operand

    def rows(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype="float64")
        labels = list(head) + [None] * (x.ndim - len(head) - len(tail)) + list(tail)
        if not explicit:
            labels = list(operand)
        features = [labels.index(c) for c in letters]
        kept = [axis for axis in range(x.ndim) if axis not in features]
        moved = np.transpose(x, kept + features)
        return moved.reshape(-1, int(np.prod([x.shape[a] for a in features])))

    return Layout(tuple(contracted + outputs), len(contracted), rows, ("einsum", operand, *letters))


def _conv2d_layout(layer) -> Layout | str:
    import tensorflow as tf

    if getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last":
        return (
            "is a grouped or channels-first Conv2D; Wanda/SparseGPT read Conv2D inputs "
            "only as channels-last patches of an ungrouped convolution"
        )
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation_rate
    padding = layer.padding.upper()

    def rows(x: np.ndarray) -> np.ndarray:
        patches = tf.image.extract_patches(
            tf.convert_to_tensor(np.asarray(x, dtype="float32")),
            sizes=[1, kh, kw, 1],
            strides=[1, sh, sw, 1],
            rates=[1, dh, dw, 1],
            padding=padding,
        )
        return _flat_rows(patches.numpy())

    return Layout((0, 1, 2, 3), 3, rows, ("conv2d", kh, kw, sh, sw, dh, dw, padding))


def layout_of(kernel: Kernel, keras) -> Layout | str:
    """The `Layout` of a kernel, or a sentence saying why it has none.

    Args:
        kernel: A prunable kernel (`tfgreen.pruning._kernels.find_kernels`).
        keras: Its layer's Keras module.

    Returns:
        A `Layout` for Dense, EinsumDense and Conv2D kernels, else the reason.
    """
    layers, layer = keras.layers, kernel.layer
    if isinstance(layer, layers.Embedding):
        return (
            "is an embedding table: it is looked up, not multiplied with inputs, so "
            "Wanda/SparseGPT have no activations to weigh it by (use method='magnitude')"
        )
    if isinstance(layer, layers.EinsumDense):
        return einsum_layout(layer.equation, len(kernel.variable.shape))
    if isinstance(layer, layers.Dense):
        return Layout((0, 1), 1, _flat_rows, ("dense",))
    if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.Conv2DTranspose):
        return _conv2d_layout(layer)
    return (
        f"is a {type(layer).__name__}; Wanda and SparseGPT prune Dense, EinsumDense "
        "(attention projections) and Conv2D kernels"
    )
