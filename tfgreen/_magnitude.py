"""The magnitude mask both pruning backends update their masks with, on the host.

A mask update is one of the few (tens) a schedule makes in a run, so the
kernel is read once and the threshold found by a linear-time selection
(`np.partition`, 0.3 ms on a 400k-weight kernel), not a sort: tfmot's own
update is a full `tf.math.top_k` of the kernel in the training graph (44 ms
on the same kernel, and a conditional in the graph that tf_keras traces for
every pruned layer). A top-level module: the pruning backends and
`tfgreen._adapters.tfmot` (whose wrapper takes its masks from it) import it,
and it imports neither.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["magnitude_mask"]


def magnitude_mask(weights, sparsity: float) -> np.ndarray:
    """A 0/1 mask zeroing the `sparsity * size` (rounded) smallest-magnitude weights.

    The count is rounded to the nearest integer, as tfmot does, so each
    kernel's sparsity is the closest its size allows to the target. The
    threshold is the count-th smallest magnitude, found by `np.partition`
    among the non-zero magnitudes. Weights tied at the threshold (improbable
    for float weights other than the zeros already pruned) all fall on the
    same side of it.

    Args:
        weights: The kernel, as an array (a float16/bfloat16 one too).
        sparsity: Fraction of weights to zero, in [0, 1].

    Returns:
        The mask, of `weights`' shape and dtype.

    Example:
    >>> magnitude_mask(np.array([0.3, -0.1, 2.0, 0.05], "float32"), 0.5)
    array([1., 0., 1., 0.], dtype=float32)
    """
    weights = np.asarray(weights)
    magnitudes = np.abs(weights.astype("float32"))
    size = magnitudes.size
    count = min(size, int(math.floor(sparsity * size + 0.5)))
    if count <= 0 or count >= size:
        return np.full(weights.shape, float(count <= 0), weights.dtype)
    flat = magnitudes.reshape(-1)
    # Zeros an earlier update left tie, and np.partition slows down 25-40x on ties:
    # select among the non-zero magnitudes, ranks shifted past the zeros.
    nonzero = flat[flat != 0]
    zeros = size - nonzero.size

    def ranked(rank: int) -> float:
        """The `rank`-th smallest magnitude (0-based)."""
        return 0.0 if rank < zeros else np.partition(nonzero, rank - zeros)[rank - zeros]

    # Fewer to prune: everything above the largest pruned magnitude stays; else
    # everything from the smallest kept magnitude up.
    if count <= size - count:
        return (magnitudes > ranked(count - 1)).astype(weights.dtype)
    return (magnitudes >= ranked(count)).astype(weights.dtype)
