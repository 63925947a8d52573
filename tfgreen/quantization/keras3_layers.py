"""Keras 3 layers for quantization-aware training with fake-quant ops.

tfmot refuses Keras 3 models, so tfgreen's Keras 3 QAT is built here from
`keras.quantizers.fake_quant_with_min_max_vars`, which the TFLite converter
turns into real int8 kernels:

- `ActivationQuantizer` fake-quantizes a tensor to int8 with a range learned
  in training (moving min/max, the first batch sets it).
- `QuantDense`, `QuantConv2D`, `QuantDepthwiseConv2D` are the Keras layers with
  symmetric int8 fake-quant on the kernel (per output channel for `Conv2D`,
  per tensor otherwise), an `ActivationQuantizer` on the output, and optional
  zero masks (`keep_zeros=True`) so a pruned kernel's zeros stay zero while
  fine-tuning.
- For transformers: `QuantEinsumDense` (an `EinsumDense` that also quantizes
  its input), `QuantMultiHeadAttention` (its query/key/value/output
  projections are `QuantEinsumDense`; the scores, the causal mask and the
  softmax stay float, since one int8 scale can't hold the mask's fill value
  next to the scores) and `QuantEmbedding` (an int8 table, so the lookup
  gives int8 values).

Every layer is registered as serializable (package `"tfgreen"`), so a QAT model
saves to `.keras` and loads back once this module is imported (
`tfgreen.load_model` imports it).
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = [
    "ActivationQuantizer",
    "QuantDense",
    "QuantConv2D",
    "QuantDepthwiseConv2D",
    "QuantEinsumDense",
    "QuantMultiHeadAttention",
    "QuantEmbedding",
]

# Activations the converter fuses into the kernel op: fake-quant goes after them.
FUSED_ACTIVATIONS = ("linear", "relu", "relu6")
# Activations with a fixed int8 output range (the converter sets it): fake-quant
# goes before them, on the kernel op's output.
FIXED_RANGE_ACTIVATIONS = ("softmax", "sigmoid", "tanh")
# Activations with int8 kernels whose output range is learned: fake-quant goes after them.
REQUANTIZED_ACTIVATIONS = ("gelu", "silu", "swish")
_EPSILON = 1e-6


def activation_name(activation) -> str:
    """The plain name of a Keras activation (function or string)."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", repr(activation))


@keras.saving.register_keras_serializable(package="tfgreen")
class ActivationQuantizer(keras.layers.Layer):
    """Fake-quantizes its input to int8 with a range learned during training.

    In training, the range follows the batch min/max with a moving average
    (the first batch sets it); in inference the stored range is used. The
    range always includes zero, so zero is exact in int8.

    Args:
        decay: Weight of the old range in the moving average. Defaults to `0.99`.
        **kwargs: Base `Layer` arguments (`name`, ...).

    Example:
    >>> q = ActivationQuantizer(name="input_quant")
    >>> y = q(x, training=True)
    """

    def __init__(self, decay: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.decay = float(decay)

    def build(self, input_shape):
        def scalar(name):
            return self.add_weight(
                shape=(),
                initializer="zeros",
                trainable=False,
                name=name,
                aggregation="mean",
                autocast=False,
            )

        self.range_min = scalar("range_min")
        self.range_max = scalar("range_max")
        self.steps = scalar("steps")
        self.built = True

    def call(self, inputs, training=None):
        if training:
            batch_min = ops.cast(ops.min(inputs), "float32")
            batch_max = ops.cast(ops.max(inputs), "float32")
            first = ops.equal(self.steps, 0.0)
            self.range_min.assign(
                ops.where(
                    first, batch_min, self.decay * self.range_min + (1 - self.decay) * batch_min
                )
            )
            self.range_max.assign(
                ops.where(
                    first, batch_max, self.decay * self.range_max + (1 - self.decay) * batch_max
                )
            )
            self.steps.assign(self.steps + 1.0)
        low = ops.minimum(self.range_min, 0.0)
        high = ops.maximum(ops.maximum(self.range_max, 0.0), low + _EPSILON)
        return keras.quantizers.fake_quant_with_min_max_vars(inputs, low, high, num_bits=8)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "decay": self.decay}


def _symmetric_fake_quant(kernel, axes):
    """Symmetric int8 fake-quant (narrow range, zero exact) of a kernel."""
    if axes is None:
        bound = ops.max(ops.abs(kernel))
        axis = None
    else:
        bound = ops.max(ops.abs(kernel), axis=axes)
        axis = -1
    bound = ops.maximum(bound, _EPSILON)
    return keras.quantizers.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=8, narrow_range=True, axis=axis
    )


class _QuantKernelMixin:
    """Shared parts of the QAT kernel layers (mask, output quantizer, config)."""

    # Reduction axes of the per-channel kernel range; `None` is per tensor.
    _channel_axes = None

    def _init_quant(self, keep_zeros: bool, decay: float):
        self.keep_zeros = bool(keep_zeros)
        self.decay = float(decay)
        self.output_quantizer = ActivationQuantizer(decay=self.decay, name="output_quantizer")
        self._activation_name = activation_name(self.activation)

    def _build_quant(self, output_shape):
        if self.keep_zeros:
            self.kernel_mask = self.add_weight(
                shape=self.kernel.shape,
                initializer="ones",
                trainable=False,
                name="kernel_mask",
                autocast=False,
            )
        self.output_quantizer.build(output_shape)

    def quantized_kernel(self):
        """The kernel as the int8 model will hold it (masked, fake-quantized)."""
        kernel = self.kernel
        if self.keep_zeros:
            kernel = kernel * self.kernel_mask
        return _symmetric_fake_quant(kernel, self._channel_axes)

    def _finish(self, outputs, training):
        if self._activation_name in FIXED_RANGE_ACTIVATIONS:
            return self.activation(self.output_quantizer(outputs, training=training))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return self.output_quantizer(outputs, training=training)

    def _add_bias(self, outputs):
        if not self.use_bias:
            return outputs
        return ops.add(outputs, ops.reshape(self.bias, (1,) * (len(outputs.shape) - 1) + (-1,)))

    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def _quant_config(self):
        return {"keep_zeros": self.keep_zeros, "decay": self.decay}


@keras.saving.register_keras_serializable(package="tfgreen")
class QuantDense(_QuantKernelMixin, keras.layers.Dense):
    """`Dense` with int8 fake-quant on its kernel (per tensor) and output.

    Args:
        units: Output units, as in `keras.layers.Dense`.
        keep_zeros: Keep the kernel's zero weights at zero while training
            (sparsity-preserving QAT). Defaults to `False`.
        decay: Moving-average decay of the output range. Defaults to `0.99`.
        **kwargs: Other `keras.layers.Dense` arguments.

    Example:
    >>> layer = QuantDense(10, activation="relu")
    """

    def __init__(self, units, keep_zeros: bool = False, decay: float = 0.99, **kwargs):
        super().__init__(units, **kwargs)
        self._init_quant(keep_zeros, decay)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_quant(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        kernel = self.quantized_kernel()
        if len(inputs.shape) > 2:
            # A transformer's [batch, seq, features] input: the converter turns an einsum
            # (not a broadcast matmul) with a fake-quant kernel into an int8 FULLY_CONNECTED.
            outputs = ops.einsum("...i,ij->...j", inputs, kernel)
        else:
            outputs = ops.matmul(inputs, kernel)
        return self._finish(self._add_bias(outputs), training)

    def get_config(self):
        return {**super().get_config(), **self._quant_config()}


@keras.saving.register_keras_serializable(package="tfgreen")
class QuantConv2D(_QuantKernelMixin, keras.layers.Conv2D):
    """`Conv2D` with int8 fake-quant on its kernel (per output channel) and output.

    Args:
        filters: Output channels, as in `keras.layers.Conv2D`.
        kernel_size: Kernel size, as in `keras.layers.Conv2D`.
        keep_zeros: Keep the kernel's zero weights at zero while training.
            Defaults to `False`.
        decay: Moving-average decay of the output range. Defaults to `0.99`.
        **kwargs: Other `keras.layers.Conv2D` arguments (channels-last only).

    Example:
    >>> layer = QuantConv2D(16, 3, padding="same", activation="relu")
    """

    _channel_axes = (0, 1, 2)

    def __init__(
        self, filters, kernel_size, keep_zeros: bool = False, decay: float = 0.99, **kwargs
    ):
        super().__init__(filters, kernel_size, **kwargs)
        self._init_quant(keep_zeros, decay)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_quant(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        outputs = self._add_bias(self.convolution_op(inputs, self.quantized_kernel()))
        return self._finish(outputs, training)

    def get_config(self):
        return {**super().get_config(), **self._quant_config()}


@keras.saving.register_keras_serializable(package="tfgreen")
class QuantDepthwiseConv2D(_QuantKernelMixin, keras.layers.DepthwiseConv2D):
    """`DepthwiseConv2D` with int8 fake-quant on its kernel (per tensor) and output.

    Args:
        kernel_size: Kernel size, as in `keras.layers.DepthwiseConv2D`.
        keep_zeros: Keep the kernel's zero weights at zero while training.
            Defaults to `False`.
        decay: Moving-average decay of the output range. Defaults to `0.99`.
        **kwargs: Other `keras.layers.DepthwiseConv2D` arguments (channels-last only).

    Example:
    >>> layer = QuantDepthwiseConv2D(3, padding="same", activation="relu6")
    """

    def __init__(self, kernel_size, keep_zeros: bool = False, decay: float = 0.99, **kwargs):
        super().__init__(kernel_size, **kwargs)
        self._init_quant(keep_zeros, decay)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_quant(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        outputs = ops.depthwise_conv(
            inputs,
            self.quantized_kernel(),
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        return self._finish(self._add_bias(outputs), training)

    def get_config(self):
        return {**super().get_config(), **self._quant_config()}


@keras.saving.register_keras_serializable(package="tfgreen")
class QuantEinsumDense(_QuantKernelMixin, keras.layers.EinsumDense):
    """`EinsumDense` with int8 fake-quant on its input, kernel (per tensor) and output.

    Args:
        equation: The einsum equation, as in `keras.layers.EinsumDense`.
        output_shape: The output shape, as in `keras.layers.EinsumDense`.
        keep_zeros: Keep the kernel's zero weights at zero while training.
            Defaults to `False`.
        decay: Moving-average decay of the input and output ranges.
            Defaults to `0.99`.
        **kwargs: Other `keras.layers.EinsumDense` arguments.

    Example:
    >>> layer = QuantEinsumDense("abc,cde->abde", output_shape=(None, 2, 8))
    """

    def __init__(
        self, equation, output_shape, keep_zeros: bool = False, decay: float = 0.99, **kwargs
    ):
        super().__init__(equation, output_shape, **kwargs)
        self._init_quant(keep_zeros, decay)
        self.input_quantizer = ActivationQuantizer(decay=self.decay, name="input_quantizer")

    def build(self, input_shape):
        super().build(input_shape)
        self.input_quantizer.build(input_shape)
        self._build_quant(self.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        inputs = self.input_quantizer(inputs, training=training)
        outputs = ops.einsum(self.equation, inputs, self.quantized_kernel())
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        return self._finish(outputs, training)

    def get_config(self):
        return {**super().get_config(), **self._quant_config()}


@keras.saving.register_keras_serializable(package="tfgreen")
class QuantMultiHeadAttention(keras.layers.MultiHeadAttention):
    """`MultiHeadAttention` whose four projections are `QuantEinsumDense`.

    The attention scores, the mask and the softmax stay float.

    Args:
        num_heads: Attention heads, as in `keras.layers.MultiHeadAttention`.
        key_dim: Size of each head, as in `keras.layers.MultiHeadAttention`.
        keep_zeros: Keep the projections' zero weights at zero while
            training. Defaults to `False`.
        decay: Moving-average decay of the ranges. Defaults to `0.99`.
        **kwargs: Other `keras.layers.MultiHeadAttention` arguments.

    Example:
    >>> layer = QuantMultiHeadAttention(num_heads=2, key_dim=8)
    """

    def __init__(self, num_heads, key_dim, keep_zeros: bool = False, decay: float = 0.99, **kwargs):
        super().__init__(num_heads, key_dim, **kwargs)
        self.keep_zeros = bool(keep_zeros)
        self.decay = float(decay)

    def build(self, query_shape, value_shape, key_shape=None):
        from tfgreen._adapters.keras import keras3_attention_projections

        def projection(equation, output_shape, **kwargs):
            return QuantEinsumDense(
                equation, output_shape, keep_zeros=self.keep_zeros, decay=self.decay, **kwargs
            )

        with keras3_attention_projections(projection):
            super().build(query_shape, value_shape, key_shape)

    def projections(self) -> list:
        """The built projection layers (query, key, value, output)."""
        return [self._query_dense, self._key_dense, self._value_dense, self._output_dense]

    def get_config(self):
        return {**super().get_config(), "keep_zeros": self.keep_zeros, "decay": self.decay}


@keras.saving.register_keras_serializable(package="tfgreen")
class QuantEmbedding(keras.layers.Embedding):
    """`Embedding` with a symmetric int8 fake-quantized table (per tensor).

    The looked-up values are table values, so they are already int8: the
    layer needs no output range.

    Args:
        input_dim: Vocabulary size, as in `keras.layers.Embedding`.
        output_dim: Embedding width, as in `keras.layers.Embedding`.
        **kwargs: Other `keras.layers.Embedding` arguments.

    Example:
    >>> layer = QuantEmbedding(512, 32)
    """

    def call(self, inputs):
        if inputs.dtype != "int32" and inputs.dtype != "int64":
            inputs = ops.cast(inputs, "int32")
        return ops.take(_symmetric_fake_quant(self.embeddings, None), inputs, axis=0)
