"""Which weights one-shot pruning zeroes: magnitude, Wanda and SparseGPT masks, in numpy.

A kernel is seen as a matrix product `X @ W` (`tfgreen.pruning._layout`);
these functions work on `W` transposed, one row per output (the layout of the
papers' `nn.Linear.weight`), with the input features along each row in the
kernel's order, so `m:n` groups of consecutive columns are groups along the
kernel's reduction axis.

- Magnitude: the `sparsity` smallest `|w|` of the whole kernel.
- Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large
  Language Models"): score `|W_ij| * ||X_j||_2`, the smallest scores of each
  output row (or of each `m:n` group of a row) pruned; no weight update.
- SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models
  Can Be Accurately Pruned in One-Shot"): with `H = 2 X^T X / tokens` (plus 1%
  of its mean diagonal), the upper Cholesky factor `U` of `H^-1`, and blocks
  of 128 columns: the mask of a block is the smallest `w^2 / U_jj^2`, and each
  pruned column's error is spread over the columns not yet visited (the OBS
  update), so the kept weights compensate.

Example:
>>> import numpy as np
>>> w = np.array([[1.0, -2.0, 0.5, 4.0]])
>>> magnitude(w, 0.5, None).tolist()
[[0.0, -2.0, 0.0, 4.0]]
>>> wanda(w, np.array([10.0, 0.1, 1.0, 1.0]), 0.5, None).tolist()  # norms move the choice
[[1.0, 0.0, 0.0, 4.0]]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["magnitude", "magnitude_along", "wanda", "sparsegpt"]

BLOCK = 128  # SparseGPT columns per block (the paper's choice)
DAMPENING = 0.01  # of the Hessian's mean diagonal, added to its diagonal


def _count(sparsity: float, size: int) -> int:
    """How many of `size` weights to prune: `sparsity * size` rounded half up (as tfmot)."""
    return min(size, int(math.floor(sparsity * size + 0.5)))


def _smallest(scores: np.ndarray, counts) -> np.ndarray:
    """A mask of the `counts[r]` smallest scores of each row `r` (ties: the first ones)."""
    ranks = np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1, kind="stable")
    return ranks < np.broadcast_to(np.asarray(counts), (len(scores),))[:, None]


def _row_counts(sparsity: float, rows: int, columns: int) -> np.ndarray:
    """Per-row prune counts, as equal as can be, summing to the layer's count.

    Row `r` gets `count(r + 1) - count(r)` of the running total, so a row of
    9 weights at 70% prunes 6 or 7 and the layer holds 70% (not 6/9).
    """
    return np.diff([_count(sparsity, columns * r) for r in range(rows + 1)])


def _in_groups(scores: np.ndarray, m: int, n: int) -> np.ndarray:
    """A mask of the `m` smallest scores in every `n` consecutive columns of each row."""
    rows, columns = scores.shape
    groups = scores.reshape(rows, columns // n, n)
    ranks = np.argsort(np.argsort(groups, axis=-1, kind="stable"), axis=-1, kind="stable")
    return (ranks < m).reshape(rows, columns)


def _mask(scores: np.ndarray, sparsity: float, m_by_n: tuple[int, int] | None) -> np.ndarray:
    """Per-row mask: `sparsity` of each row, or `m` in every `n` columns."""
    if m_by_n is not None:
        return _in_groups(scores, *m_by_n)
    return _smallest(scores, _row_counts(sparsity, *scores.shape))


def magnitude(rows: np.ndarray, sparsity: float, m_by_n: tuple[int, int] | None) -> np.ndarray:
    """Magnitude pruning of `[outputs, inputs]` weights: the whole matrix, or `m:n` per row.

    Args:
        rows: The weights, one row per output.
        sparsity: Fraction to prune (ignored with `m_by_n`).
        m_by_n: `None`, or `(m, n)`: `m` zeros in every `n` consecutive inputs.

    Returns:
        The weights with the pruned ones zeroed.
    """
    if m_by_n is not None:
        return np.where(_in_groups(np.abs(rows), *m_by_n), 0.0, rows)
    flat = np.abs(rows).reshape(1, -1)
    return np.where(_smallest(flat, _count(sparsity, flat.size)).reshape(rows.shape), 0.0, rows)


def magnitude_along(weights: np.ndarray, axis: int, sparsity: float, m_by_n) -> np.ndarray:
    """`magnitude` of any kernel, `m:n` groups along `axis` (its reduction axis).

    Args:
        weights: The kernel (any rank).
        axis: The axis `m:n` groups run along.
        sparsity: Fraction to prune (ignored with `m_by_n`).
        m_by_n: `None` or `(m, n)`.

    Returns:
        The kernel with the pruned weights zeroed.
    """
    moved = np.moveaxis(weights, axis, -1)
    pruned = magnitude(moved.reshape(-1, moved.shape[-1]), sparsity, m_by_n)
    return np.moveaxis(pruned.reshape(moved.shape), -1, axis)


def wanda(
    rows: np.ndarray, norms: np.ndarray, sparsity: float, m_by_n: tuple[int, int] | None
) -> np.ndarray:
    """Wanda: prunes the smallest `|W_ij| * ||X_j||` of each output row.

    Args:
        rows: `[outputs, inputs]` weights.
        norms: `[inputs]` L2 norm of each input feature over the calibration tokens.
        sparsity: Fraction of each row to prune (ignored with `m_by_n`).
        m_by_n: `None` or `(m, n)`: `m` zeros in every `n` consecutive inputs.

    Returns:
        The weights with the pruned ones zeroed (the others unchanged).
    """
    return np.where(_mask(np.abs(rows) * norms[None, :], sparsity, m_by_n), 0.0, rows)


def _inverse_factor(hessian: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor `U` of the dampened `H^-1` (`H^-1 = U^T U`)."""
    mean_diagonal = float(np.mean(np.diag(hessian)))
    for dampening in (DAMPENING, 10 * DAMPENING, 100 * DAMPENING):
        damped = hessian + dampening * mean_diagonal * np.eye(len(hessian))
        try:
            inverse = np.linalg.inv(np.linalg.cholesky(damped))
            return np.linalg.cholesky(inverse.T @ inverse).T
        except np.linalg.LinAlgError:
            continue  # too few calibration tokens for this width: dampen more
    raise np.linalg.LinAlgError("the Hessian stays singular with 100% dampening")


def sparsegpt(
    rows: np.ndarray, hessian: np.ndarray, sparsity: float, m_by_n: tuple[int, int] | None
) -> np.ndarray:
    """SparseGPT: masks chosen block by block, the kept weights updated (OBS).

    Args:
        rows: `[outputs, inputs]` weights.
        hessian: `[inputs, inputs]` Hessian of the layer's reconstruction
            error, `2 X^T X / tokens`.
        sparsity: Fraction to prune; the mask of each block holds that
            fraction of the block (not of each row). Ignored with `m_by_n`.
        m_by_n: `None` or `(m, n)`: `m` zeros in every `n` consecutive inputs.

    Returns:
        The new weights: the pruned ones zero, the others updated.
    """
    weights = np.array(rows, dtype="float64")
    hessian = np.array(hessian, dtype="float64")
    outputs, inputs = weights.shape
    dead = np.diag(hessian) == 0  # inputs that are always zero: their weights do nothing
    hessian[dead, dead] = 1.0
    weights[:, dead] = 0.0
    factor = _inverse_factor(hessian)
    step = BLOCK if m_by_n is None else max(m_by_n[1], BLOCK - BLOCK % m_by_n[1])
    for first in range(0, inputs, step):
        last = min(first + step, inputs)
        block = weights[:, first:last].copy()
        inner = factor[first:last, first:last]
        diagonal = np.diag(inner)
        errors = np.zeros_like(block)
        if m_by_n is None:
            # The block's share of the layer's count, so the layer totals `sparsity`.
            count = _count(sparsity, outputs * last) - _count(sparsity, outputs * first)
            scores = (block**2 / diagonal**2).reshape(1, -1)
            pruned = _smallest(scores, count).reshape(block.shape)
        else:
            pruned = np.zeros(block.shape, dtype=bool)
        for i in range(last - first):
            if m_by_n is not None and i % m_by_n[1] == 0:
                group = slice(i, i + m_by_n[1])
                pruned[:, group] = _in_groups(block[:, group] ** 2 / diagonal[group] ** 2, *m_by_n)
            column = block[:, i]
            error = np.where(pruned[:, i], column, 0.0) / diagonal[i]
            block[:, i:] -= np.outer(error, inner[i, i:])
            block[:, i] = np.where(pruned[:, i], 0.0, block[:, i])
            errors[:, i] = error
        weights[:, first:last] = block
        weights[:, last:] -= errors @ factor[first:last, last:]
    return weights
