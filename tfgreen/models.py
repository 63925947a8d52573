"""Small reference models, built the same way in both Kerases.

The demo, the notebooks, the tests and the benchmarks use these so that a
Keras 3 and a tf_keras run compare like with like.
"""

from __future__ import annotations

from tfgreen.flavor import keras_for

__all__ = ["small_cnn", "small_mlp"]


def _head(keras, num_classes: int, logits: bool):
    if num_classes == 1:
        return keras.layers.Dense(1, activation=None if logits else "sigmoid", name="output")
    return keras.layers.Dense(num_classes, activation=None if logits else "softmax", name="output")


def small_cnn(
    flavor: str = "keras3",
    input_shape: tuple[int, ...] = (8, 8, 1),
    num_classes: int = 10,
    filters: int = 16,
    seed: int = 0,
    logits: bool = False,
):
    """Builds a two-conv CNN for 8x8 digits.

    Args:
        flavor: `"keras3"` or `"tf_keras"`. Defaults to `"keras3"`.
        input_shape: Image shape without the batch axis. Defaults to `(8, 8, 1)`.
        num_classes: Output classes; 1 gives a sigmoid unit. Defaults to `10`.
        filters: Filters of the first conv (the second has twice as many).
            Defaults to `16`.
        seed: Seed of the initial weights. Defaults to `0`.
        logits: End in raw logits instead of softmax/sigmoid. Defaults to `False`.

    Returns:
        An uncompiled model of the given flavour.

    Example:
    >>> model = small_cnn("tf_keras")
    >>> model.output_shape
    (None, 10)
    """
    keras = keras_for(flavor)
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(2 * filters, 3, padding="same", activation="relu", name="conv2"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense1"),
            _head(keras, num_classes, logits),
        ],
        name="small_cnn",
    )


def small_mlp(
    flavor: str = "keras3",
    input_dim: int = 64,
    hidden: tuple[int, ...] = (256, 256),
    num_classes: int = 10,
    seed: int = 0,
    logits: bool = False,
):
    """Builds a weight-dominated MLP (for example 64-256-256-10 on flat digits).

    Args:
        flavor: `"keras3"` or `"tf_keras"`. Defaults to `"keras3"`.
        input_dim: Input features. Defaults to `64`.
        hidden: Units of each hidden Dense layer. Defaults to `(256, 256)`.
        num_classes: Output classes; 1 gives a sigmoid unit. Defaults to `10`.
        seed: Seed of the initial weights. Defaults to `0`.
        logits: End in raw logits instead of softmax/sigmoid. Defaults to `False`.

    Returns:
        An uncompiled model of the given flavour.

    Example:
    >>> small_mlp(hidden=(32,)).count_params()
    2410
    """
    keras = keras_for(flavor)
    keras.utils.set_random_seed(seed)
    stack = [keras.Input((input_dim,))]
    stack += [
        keras.layers.Dense(units, activation="relu", name=f"dense{i + 1}")
        for i, units in enumerate(hidden)
    ]
    return keras.Sequential([*stack, _head(keras, num_classes, logits)], name="small_mlp")
