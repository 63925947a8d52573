"""Small reference models, built the same way in both Kerases.

The demo, the notebooks, the tests and the benchmarks use these so that a
Keras 3 and a tf_keras run compare like with like. `small_cnn`/`small_mlp`
are for the bundled digits; `tiny_gpt` (a causal language model) and
`tiny_encoder_classifier` are transformers for `tfgreen.datasets.load_text`.
The transformers use only stock layers plus `PositionEmbedding`, which is
registered as `"tfgreen>PositionEmbedding"` in each Keras, and write their
residuals with `Add()` (tfmot cannot handle `x + h`).
"""

from __future__ import annotations

import functools

from tfgreen import _validate
from tfgreen.errors import TfgreenValueError, message
from tfgreen.flavor import keras_for

__all__ = [
    "small_cnn",
    "small_mlp",
    "position_embedding_class",
    "tiny_gpt",
    "tiny_encoder_classifier",
]


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


# ---------------------------------------------------------------- transformers


@functools.cache
def position_embedding_class(flavor: str) -> type:
    """The `PositionEmbedding` layer class of a Keras flavour.

    `PositionEmbedding(sequence_length)` holds a learned
    `[sequence_length, dim]` table and, called on `[batch, seq, dim]`
    embeddings, returns the first `seq` rows broadcast to the same shape (to be
    added with `Add()`). It is registered as `"tfgreen>PositionEmbedding"`, so
    `.keras` files holding it load once this is called (`tiny_gpt` does).

    Args:
        flavor: `"keras3"` or `"tf_keras"`.

    Returns:
        The layer class for that Keras.

    Example:
    >>> layer = position_embedding_class("keras3")(8)
    >>> layer.get_config()["sequence_length"]
    8
    """
    keras = keras_for(flavor)
    if flavor == "keras3":
        from keras import ops

        shape_of, broadcast = ops.shape, ops.broadcast_to
    else:
        import tensorflow as tf

        shape_of, broadcast = tf.shape, tf.broadcast_to

    @keras.utils.register_keras_serializable(package="tfgreen")
    class PositionEmbedding(keras.layers.Layer):
        """A learned position embedding: `[batch, seq, dim]` in, its position table out."""

        def __init__(self, sequence_length: int, initializer="glorot_uniform", **kwargs):
            super().__init__(**kwargs)
            self.sequence_length = int(sequence_length)
            self.initializer = keras.initializers.get(initializer)

        def build(self, input_shape):
            self.embeddings = self.add_weight(
                name="embeddings",
                shape=(self.sequence_length, int(input_shape[-1])),
                initializer=self.initializer,
                trainable=True,
            )
            super().build(input_shape)

        def call(self, inputs):
            shape = shape_of(inputs)
            return broadcast(self.embeddings[: shape[1]], shape)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            config = super().get_config()
            config.update(
                sequence_length=self.sequence_length,
                initializer=keras.initializers.serialize(self.initializer),
            )
            return config

    return PositionEmbedding


def _check_transformer_args(vocab_size, seq_len, embed_dim, num_heads, num_layers, ff_dim) -> None:
    _validate.positive_int("vocab_size", vocab_size, minimum=2, example=512)
    _validate.positive_int("seq_len", seq_len, minimum=2, example=64)
    _validate.positive_int("embed_dim", embed_dim, example=64)
    _validate.positive_int("num_heads", num_heads, example=2)
    _validate.positive_int("num_layers", num_layers, example=2)
    _validate.positive_int("ff_dim", ff_dim, example=128)
    if embed_dim % num_heads:
        raise TfgreenValueError(
            message(
                "`embed_dim` must split evenly over the attention heads",
                "embed_dim divisible by num_heads",
                f"Pass for example num_heads={next(h for h in (2, 1) if embed_dim % h == 0)}",
                embed_dim=embed_dim,
                num_heads=num_heads,
            )
        )


def _transformer(
    keras, flavor, vocab_size, seq_len, embed_dim, num_heads, num_layers, ff_dim, causal
):
    """Token ids -> embeddings + positions -> pre-LayerNorm blocks -> final LayerNorm."""
    layers = keras.layers
    tokens = keras.Input((seq_len,), dtype="int32", name="token_ids")
    x = layers.Embedding(vocab_size, embed_dim, name="token_embedding")(tokens)
    positions = position_embedding_class(flavor)(seq_len, name="position_embedding")(x)
    x = layers.Add(name="embeddings")([x, positions])
    for i in range(num_layers):
        h = layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_ln1")(x)
        attention = layers.MultiHeadAttention(
            num_heads, embed_dim // num_heads, name=f"block{i}_attention"
        )
        h = attention(h, h, use_causal_mask=causal)
        x = layers.Add(name=f"block{i}_residual1")([x, h])
        h = layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_ln2")(x)
        h = layers.Dense(ff_dim, activation="gelu", name=f"block{i}_ffn_in")(h)
        h = layers.Dense(embed_dim, name=f"block{i}_ffn_out")(h)
        x = layers.Add(name=f"block{i}_residual2")([x, h])
    return tokens, layers.LayerNormalization(epsilon=1e-5, name="final_ln")(x)


def tiny_gpt(
    flavor: str = "keras3",
    vocab_size: int = 512,
    seq_len: int = 64,
    embed_dim: int = 64,
    num_heads: int = 2,
    num_layers: int = 2,
    ff_dim: int = 128,
    seed: int = 0,
):
    """Builds a small GPT-style causal language model.

    int32 token ids `[batch, seq_len]` in, next-token logits
    `[batch, seq_len, vocab_size]` out (position `t` sees positions `<= t`).
    Layers: Embedding + `PositionEmbedding`, then `num_layers` pre-LayerNorm
    blocks (causal MultiHeadAttention, GELU feed-forward, `Add()` residuals),
    a final LayerNormalization and a Dense head. It saves to `.keras` and
    converts to TFLite with builtin ops only.

    Args:
        flavor: `"keras3"` or `"tf_keras"`. Defaults to `"keras3"`.
        vocab_size: Token ids `0..vocab_size-1`. Defaults to `512`.
        seq_len: Tokens per input (fixed). Defaults to `64`.
        embed_dim: Width of the residual stream. Defaults to `64`.
        num_heads: Attention heads; must divide `embed_dim`. Defaults to `2`.
        num_layers: Transformer blocks. Defaults to `2`.
        ff_dim: Units of the feed-forward layer. Defaults to `128`.
        seed: Seed of the initial weights. Defaults to `0`.

    Returns:
        An uncompiled model of the given flavour; train it with
        `SparseCategoricalCrossentropy(from_logits=True)` on
        `tfgreen.datasets.next_token_targets(ids)`.

    Example:
    >>> model = tiny_gpt("tf_keras", vocab_size=300, seq_len=16)
    >>> model.output_shape
    (None, 16, 300)
    """
    keras = keras_for(flavor)
    _check_transformer_args(vocab_size, seq_len, embed_dim, num_heads, num_layers, ff_dim)
    keras.utils.set_random_seed(seed)
    tokens, x = _transformer(
        keras, flavor, vocab_size, seq_len, embed_dim, num_heads, num_layers, ff_dim, causal=True
    )
    logits = keras.layers.Dense(vocab_size, name="logits")(x)
    return keras.Model(tokens, logits, name="tiny_gpt")


def tiny_encoder_classifier(
    flavor: str = "keras3",
    vocab_size: int = 512,
    seq_len: int = 64,
    num_classes: int = 2,
    embed_dim: int = 64,
    num_heads: int = 2,
    num_layers: int = 1,
    seed: int = 0,
    logits: bool = False,
):
    """Builds a small transformer encoder that classifies token-id sequences.

    The same blocks as `tiny_gpt` without the causal mask (feed-forward width
    `2 * embed_dim`), then global average pooling and a Dense head.

    Args:
        flavor: `"keras3"` or `"tf_keras"`. Defaults to `"keras3"`.
        vocab_size: Token ids `0..vocab_size-1`. Defaults to `512`.
        seq_len: Tokens per input (fixed). Defaults to `64`.
        num_classes: Output classes; 1 gives a sigmoid unit. Defaults to `2`.
        embed_dim: Width of the residual stream. Defaults to `64`.
        num_heads: Attention heads; must divide `embed_dim`. Defaults to `2`.
        num_layers: Transformer blocks. Defaults to `1`.
        seed: Seed of the initial weights. Defaults to `0`.
        logits: End in raw logits instead of softmax/sigmoid. Defaults to `False`.

    Returns:
        An uncompiled model of the given flavour: int32 `[batch, seq_len]` in,
        `[batch, num_classes]` out.

    Example:
    >>> tiny_encoder_classifier(vocab_size=300, seq_len=16, num_classes=5).output_shape
    (None, 5)
    """
    keras = keras_for(flavor)
    _check_transformer_args(vocab_size, seq_len, embed_dim, num_heads, num_layers, 2 * embed_dim)
    _validate.positive_int("num_classes", num_classes, example=2)
    keras.utils.set_random_seed(seed)
    tokens, x = _transformer(
        keras,
        flavor,
        vocab_size,
        seq_len,
        embed_dim,
        num_heads,
        num_layers,
        2 * embed_dim,
        causal=False,
    )
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(tokens, _head(keras, num_classes, logits)(x), name="tiny_encoder_classifier")
