"""Real data bundled with scikit-learn: nothing is downloaded.

`load_digits` gives the 8x8 handwritten digits (1,797 images, 10 classes) as
images for CNNs; `load_breast_cancer` gives the Wisconsin breast-cancer set
(569 samples, 30 features, 2 classes) for binary tasks like the seed example.
Splits are stratified and reproducible.
"""

from __future__ import annotations

import numpy as np

from tfgreen.errors import TfgreenValueError, message

__all__ = ["load_digits", "load_breast_cancer"]


def _check_split(test_fraction: float) -> None:
    if not 0.0 < float(test_fraction) < 1.0:
        raise TfgreenValueError(
            message(
                "`test_fraction` must leave samples on both sides of the split",
                "a float strictly between 0 and 1",
                "Pass for example test_fraction=0.2",
                test_fraction=test_fraction,
            )
        )


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return (x_train, y_train), (x_test, y_test)


def load_digits(test_fraction: float = 0.25, seed: int = 0, flat: bool = False):
    """Loads scikit-learn's bundled 8x8 digits as float32 images in [0, 1].

    Args:
        test_fraction: Fraction of samples held out for testing. Defaults to `0.25`.
        seed: Seed of the stratified split. Defaults to `0`.
        flat: Return `(n, 64)` vectors instead of `(n, 8, 8, 1)` images.
            Defaults to `False`.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with `x` float32 and `y` int32
        class indices 0-9.

    Example:
    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape
    ((1347, 8, 8, 1), (450, 8, 8, 1))
    """
    from sklearn.datasets import load_digits as _sk_digits

    _check_split(test_fraction)
    bunch = _sk_digits()
    x = (bunch.images / 16.0).astype("float32")
    x = x.reshape(len(x), 64) if flat else x[..., None]
    return _split(x, bunch.target.astype("int32"), test_fraction, seed)


def load_breast_cancer(test_fraction: float = 0.25, seed: int = 0):
    """Loads scikit-learn's bundled breast-cancer set, standardized on the training part.

    Args:
        test_fraction: Fraction of samples held out for testing. Defaults to `0.25`.
        seed: Seed of the stratified split. Defaults to `0`.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with `x` float32 of shape
        `(n, 30)` and `y` int32 labels 0 (malignant) or 1 (benign).

    Example:
    >>> (x_train, y_train), _ = load_breast_cancer()
    >>> x_train.shape
    (426, 30)
    """
    from sklearn.datasets import load_breast_cancer as _sk_cancer

    _check_split(test_fraction)
    bunch = _sk_cancer()
    (x_train, y_train), (x_test, y_test) = _split(
        bunch.data, bunch.target.astype("int32"), test_fraction, seed
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    x_train = ((x_train - mean) / std).astype("float32")
    x_test = ((x_test - mean) / std).astype("float32")
    return (x_train, y_train), (x_test, y_test)
