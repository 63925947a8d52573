import numpy as np
import pytest

from tfgreen.datasets import load_breast_cancer, load_digits
from tfgreen.errors import TfgreenValueError


def test_digits_images_and_split(digits):
    (x_train, y_train), (x_test, y_test) = digits
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert x_train.dtype == np.float32 and x_train.min() >= 0.0 and x_train.max() <= 1.0
    assert set(np.unique(y_test)) == set(range(10))


def test_digits_flat_is_reproducible():
    a = load_digits(flat=True, seed=3)
    b = load_digits(flat=True, seed=3)
    assert a[0][0].shape == (1347, 64)
    np.testing.assert_array_equal(a[0][0], b[0][0])


def test_breast_cancer_is_standardized():
    (x_train, y_train), (x_test, _) = load_breast_cancer()
    assert x_train.shape == (426, 30) and x_test.shape == (143, 30)
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    assert set(np.unique(y_train)) == {0, 1}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_split(fraction):
    with pytest.raises(TfgreenValueError, match=f"test_fraction={fraction}"):
        load_digits(test_fraction=fraction)
