"""The magnitude mask both backends update their masks with: exact counts, ties on one side."""

from __future__ import annotations

import numpy as np
import pytest

from tfgreen._magnitude import magnitude_mask


@pytest.mark.parametrize("shape", [(7,), (64, 256), (3, 3, 16, 32), (2, 32, 4, 8)])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.8, 0.97, 1.0])
def test_zeros_the_rounded_count_of_smallest_magnitudes(shape, sparsity):
    rng = np.random.default_rng(len(shape))
    weights = rng.standard_normal(shape).astype("float32")
    mask = magnitude_mask(weights, sparsity)
    count = int(np.floor(sparsity * weights.size + 0.5))
    assert mask.dtype == np.float32 and mask.shape == shape
    assert int((mask == 0).sum()) == count
    order = np.argsort(np.abs(weights), axis=None)  # a full sort as the reference
    np.testing.assert_array_equal(mask.reshape(-1)[order[:count]], 0)
    np.testing.assert_array_equal(mask.reshape(-1)[order[count:]], 1)


@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.8, 0.97])
def test_zeros_of_an_earlier_update_count_first(sparsity):
    rng = np.random.default_rng(1)
    weights = rng.standard_normal((64, 256)).astype("float32")
    zeros = rng.random(weights.shape) < 0.3
    weights[zeros] = 0.0
    mask = magnitude_mask(weights, sparsity)
    count = int(np.floor(sparsity * weights.size + 0.5))
    if count >= zeros.sum():  # the zeros, then the smallest non-zero magnitudes
        order = np.argsort(np.abs(weights), axis=None, kind="stable")
        np.testing.assert_array_equal(mask.reshape(-1)[order[:count]], 0)
        np.testing.assert_array_equal(mask.reshape(-1)[order[count:]], 1)
    else:  # fewer to prune than zeros there: only zeros are pruned, every non-zero stays
        assert (mask[zeros] == 0).all() and (mask[~zeros] == 1).all()


def test_ties_fall_on_one_side_and_half_precision_is_kept():
    weights = np.random.default_rng(0).standard_normal((300, 301)).astype("float16")
    for sparsity in (0.25, 0.8):
        mask = magnitude_mask(weights, sparsity)
        assert mask.dtype == np.float16
        kept = np.abs(weights[mask == 1]).min()
        assert np.abs(weights[mask == 0]).max() <= kept
        ties = int((np.abs(weights) == kept).sum())
        assert abs(int((mask == 0).sum()) - round(sparsity * weights.size)) <= ties
