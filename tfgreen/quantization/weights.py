"""Weight quantization of Keras 3 models: `quantize(model, "int8" | "int4" | "gptq" | "awq")`.

Keras 3's `model.quantize` does the work, on a copy (the caller's model is
unchanged). tfgreen adds what a language model needs around it:

- `"int8"` quantizes the weights only (`Int8QuantizationConfig(
  activation_quantizer=None)`): Keras's default int8 also quantizes the
  activations, and such a model does not convert to TFLite.
- `"gptq"` and `"awq"` (4-bit, groups of 32 weights) take token-id windows as
  calibration data; tfgreen passes Keras the layer structure it needs (a
  KerasHub CausalLM gives its own; a `tfgreen.models.tiny_gpt`-style model is
  cut into its embeddings and `block{i}_*` transformer blocks) and the
  non-`None` tokenizer Keras 3.15 insists on.
- Checks before (Keras 3 only, something to quantize, calibration data for
  GPTQ/AWQ) and after: the result `model.tfgreen_quantization` gives the
  weight bytes and, with `validation_data`, the perplexity before and after.
- Keras 3.15.1 cannot reload most of these models from `.keras` (GPTQ/AWQ
  files fail, weight-only int8 comes back with int8 activations, a quantized
  plain `keras.layers.MultiHeadAttention` loses its variables), so `save()`
  on such a model refuses with the reason (`WeightQuantization.reloads`)
  instead of writing a file that does not load back as it was.

Exported with `tfgreen.export_tflite`, a weight-quantized model keeps int8
weights in the file (`export_quantization`).

Example:
>>> from tfgreen.datasets import load_text
>>> from tfgreen.models import tiny_gpt
>>> data = load_text(seq_len=16, vocab_size=300)
>>> lm = tiny_gpt(vocab_size=300, seq_len=16, embed_dim=16, num_layers=1)
>>> q = quantize(lm, "int8", validation_data=data.val[:8])
>>> q.tfgreen_quantization.bytes_ratio < 0.35
True
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from tfgreen import _lm, _validate
from tfgreen.errors import TargetError, TfgreenTypeError, TfgreenValueError, message
from tfgreen.flavor import flavor_of

__all__ = [
    "MODES",
    "WeightQuantization",
    "quantize",
    "is_weight_quantized",
    "export_quantization",
]

MODES = ("int8", "int4", "gptq", "awq")
_CALIBRATED = ("gptq", "awq")
_GROUP_SIZE = 32
_MAX_CALIBRATION = 128


@dataclass
class WeightQuantization:
    """What `quantize` did, attached to the returned model as `model.tfgreen_quantization`.

    Attributes:
        mode: `"int8"`, `"int4"`, `"gptq"` or `"awq"`.
        weight_bytes_before: Bytes of the float model's weights.
        weight_bytes_after: Bytes of the quantized model's weights (with scales).
        bytes_ratio: `weight_bytes_after / weight_bytes_before`.
        perplexity_before: Perplexity of the float model on `validation_data`,
            `None` without it.
        perplexity_after: The same for the quantized model.
        perplexity_ratio: `perplexity_after / perplexity_before`, or `None`.
        layers: Names of the layers Keras quantized.
        calibration_windows: Token windows used for GPTQ/AWQ (0 otherwise).
        seconds: Time `model.quantize` took.
        reloads: Whether a `.keras` file of the model reloads as it is. In
            Keras 3.15.1 only int4 on models without plain
            `keras.layers.MultiHeadAttention` (e.g. KerasHub) does (logits
            within ~1e-3, not bit-exact): GPTQ/AWQ
            files fail to load, weight-only int8 reloads with int8
            activations, a quantized plain MultiHeadAttention (as in
            tiny_gpt) loads without variables. `save()` otherwise refuses
            with the reason.
    """

    mode: str
    weight_bytes_before: int
    weight_bytes_after: int
    bytes_ratio: float
    perplexity_before: float | None
    perplexity_after: float | None
    perplexity_ratio: float | None
    layers: list[str]
    calibration_windows: int
    seconds: float
    reloads: bool

    def to_dict(self) -> dict:
        """The result as a JSON-ready dict."""
        return asdict(self)


def _keras():
    import keras

    return keras


def _check_keras3(model) -> None:
    if flavor_of(model) != "keras3":
        raise TfgreenTypeError(
            message(
                "tfgreen.quantize is Keras 3 only: it uses Keras 3's model.quantize, "
                "which tf_keras does not have",
                "a Keras 3 model",
                "Build the model with Keras 3 (flavor='keras3'), or for a tf_keras model "
                "use tfgreen.quantize_aware or export_tflite(quantization='dynamic')",
                model=type(model).__name__,
            )
        )


def _quantizable(model) -> list:
    """The layers Keras 3 can quantize: Dense, EinsumDense and Embedding (and subclasses)."""
    layers = _keras().layers
    kinds = (layers.Dense, layers.EinsumDense, layers.Embedding)
    return [layer for layer in model._flatten_layers() if isinstance(layer, kinds)]


def _weight_bytes(model) -> int:
    unique = {id(v): v for v in model.weights}
    return int(sum(np.asarray(v).nbytes for v in unique.values()))


def is_weight_quantized(model) -> bool:
    """Whether a Keras 3 model has layers quantized by `model.quantize` (int8/int4/GPTQ/AWQ).

    Args:
        model: A Keras 3 or tf_keras model.

    Returns:
        `True` when at least one layer has an int8, int4, GPTQ or AWQ dtype policy.

    Example:
    >>> from tfgreen.models import small_mlp
    >>> is_weight_quantized(small_mlp())
    False
    """
    return bool(_modes(model))


def _modes(model) -> set[str]:
    """The `model.quantize` modes of the model's layers."""
    modes = (
        getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None)
        for layer in model._flatten_layers()
    )
    return {mode for mode in modes if mode in MODES}


def export_quantization(model, quantization: str | None) -> str | None:
    """The `.tflite` quantization that keeps a weight-quantized model's low-bit weights.

    The converter folds a quantized Keras model's weights back into float32
    constants (int4, GPTQ and AWQ files would come out larger than float32).
    Dynamic-range conversion stores them as int8 again (per output channel)
    with float activations; for 4-bit models (int4, GPTQ, AWQ) the Dense
    kernels are then packed as int4 (`"int4"`, see `tfgreen.tflite.int4`).
    Other models keep the quantization asked for.

    Args:
        model: A Keras 3 or tf_keras model.
        quantization: What the caller asked `export_tflite` for (`None` for
            the target's default).

    Returns:
        `"int4"` for a 4-bit model, `"dynamic"` for an int8 one (or what was
        asked of those two), else `quantization`.

    Raises:
        TargetError: A weight-quantized model with another quantization than
            `None`, `"dynamic"` or `"int4"`.

    Example:
    >>> from tfgreen.models import small_mlp
    >>> export_quantization(small_mlp(), "int8")
    'int8'
    """
    modes = _modes(model)
    if not modes:
        return quantization
    if quantization not in (None, "dynamic", "int4"):
        raise TargetError(
            message(
                f"A model quantized by tfgreen.quantize exports with low-bit weights and float "
                f"activations only, not quantization='{quantization}'",
                "quantization=None, 'dynamic' (int8 weights) or 'int4'",
                "Pass quantization=None, or export the float model with "
                f"quantization='{quantization}'",
                quantization=quantization,
            )
        )
    if quantization is not None:
        return quantization
    return "dynamic" if modes == {"int8"} else "int4"


def _copy(model):
    """A float copy with the same class (KerasHub models rebuild from their config)."""
    keras = _keras()
    if type(model) in (keras.Model, keras.Sequential) or type(model).__name__ == "Functional":
        twin = keras.models.clone_model(model)
    else:
        twin = type(model).from_config(model.get_config())
    twin.set_weights(model.get_weights())
    return twin


def _block_structure(model) -> dict | None:
    """`quantization_layer_structure` of a tiny_gpt-style functional model, or `None`.

    The pre-block part is the model up to the layer `embeddings`; block `i`
    runs from the previous block's output to the layer `block{i}_residual2`.
    Each part is a functional sub-model sharing the model's layers, so Keras
    quantizes the model's own Dense/EinsumDense layers.
    """
    keras = _keras()
    names = {layer.name for layer in model.layers}
    if "embeddings" not in names or "block0_residual2" not in names or len(model.inputs) != 1:
        return None
    x = model.get_layer("embeddings").output
    pre = keras.Model(model.inputs[0], x)
    blocks = []
    while f"block{len(blocks)}_residual2" in names:
        y = model.get_layer(f"block{len(blocks)}_residual2").output
        blocks.append(keras.Model(x, y))
        x = y
    return {"pre_block_layers": [pre], "sequential_blocks": blocks}


def _structure(model, mode: str) -> dict:
    own = getattr(model, "get_quantization_layer_structure", None)
    structure = own(mode) if own is not None else None
    structure = structure or _block_structure(model)
    if structure is None:
        raise TfgreenValueError(
            message(
                f"Mode '{mode}' quantizes transformer blocks one by one, and tfgreen cannot "
                "find this model's blocks",
                "a KerasHub CausalLM (it names its blocks) or a functional model with an "
                "'embeddings' layer and blocks ending in layers 'block0_residual2', "
                "'block1_residual2', ... (as tfgreen.models.tiny_gpt)",
                "Use mode='int8' or 'int4' (no blocks needed), or name the layers that way",
                model=model.name,
            )
        )
    return structure


def _calibration(model, calibration_data, mode: str) -> np.ndarray:
    if calibration_data is None:
        raise TfgreenValueError(
            message(
                f"Mode '{mode}' needs calibration data",
                "calibration_data: token-id windows [n, seq_len], e.g. 32-128 training windows",
                "Pass calibration_data=data.train[:64], or use mode='int4' (no data)",
                calibration_data=None,
            )
        )
    if not _lm.is_language_model(model):
        raise TfgreenValueError(
            message(
                f"Mode '{mode}' calibrates on token ids, and the model is not a language model",
                "a model taking token ids and giving [batch, seq_len, vocab] logits",
                "Use mode='int8' or 'int4' for this model",
                model=model.name,
            )
        )
    vocab_size = int(model.outputs[0].shape[-1])
    token_input, _ = _lm.token_feed(model)
    ids = _lm.check_token_ids(
        calibration_data, vocab_size, token_input.shape[1], name="calibration_data"
    )
    return ids[:_MAX_CALIBRATION]


def _config(model, mode: str, ids: np.ndarray | None):
    keras = _keras()
    if mode == "int8":
        return keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
    if mode == "int4":
        return None
    kind = keras.quantizers.GPTQConfig if mode == "gptq" else keras.quantizers.AWQConfig
    extra = {"weight_bits": 4} if mode == "gptq" else {}
    return kind(
        dataset=list(ids),
        # Keras 3.15 requires a tokenizer even for token ids; it never calls it then.
        tokenizer=object(),
        num_samples=len(ids),
        sequence_length=int(ids.shape[1]),
        group_size=_GROUP_SIZE,
        quantization_layer_structure=_structure(model, mode),
        **extra,
    )


def _reload_problem(model, mode: str) -> str | None:
    """Why a `.keras` file of the quantized model would not load back in Keras 3.15.1, or `None`."""
    if mode in _CALIBRATED:
        return (
            f"Keras 3.15.1 writes a {mode.upper()} model's .keras file but cannot load it "
            "back (its layers expect variables the file does not hold)"
        )
    if mode == "int8":
        return (
            "Keras 3.15.1 does not save the weight-only int8 config, so the file reloads "
            "with int8 activations (other outputs, and no TFLite conversion)"
        )
    attention = _keras().layers.MultiHeadAttention
    if any(type(layer) is attention for layer in model._flatten_layers()):
        return (
            "Keras 3.15.1 cannot load a quantized keras.layers.MultiHeadAttention back from "
            "a .keras file (its query/key/value/output layers get no variables)"
        )
    return None


def _refuse_save(mode: str, problem: str):
    def save(*args, **kwargs):
        raise TfgreenValueError(
            message(
                f"This {mode}-quantized model cannot be saved as .keras: {problem}",
                "a model whose .keras file reloads (WeightQuantization.reloads is True)",
                "Export it with tfgreen.export_tflite, or save the float model and call "
                f"tfgreen.quantize(model, '{mode}', ...) after loading",
                mode=mode,
            )
        )

    return save


def quantize(model, mode: str, calibration_data=None, validation_data=None):
    """Quantizes a Keras 3 model's weights (a copy) with Keras 3's `model.quantize`.

    Args:
        model: A built Keras 3 model: a language model (`tfgreen.models.tiny_gpt`,
            a KerasHub CausalLM) or any model with Dense, EinsumDense or
            Embedding layers. It is not changed.
        mode: `"int8"` (weight-only int8, per output channel), `"int4"`
            (round-to-nearest int4), `"gptq"` (GPTQ 4-bit) or `"awq"` (AWQ 4-bit).
        calibration_data: For `"gptq"`/`"awq"`: token-id windows `[n, seq_len]`
            (up to 128 are used). Defaults to `None`.
        validation_data: Token-id windows of a language model for the
            perplexity before and after. Defaults to `None`.

    Returns:
        The quantized copy (same class), with `tfgreen_quantization`: a
        `WeightQuantization` with the figures.

    Raises:
        TfgreenTypeError: A tf_keras model (Keras 3 only).
        TfgreenValueError: A bad mode, nothing to quantize, GPTQ/AWQ without
            calibration data, or a model whose blocks can't be found.

    Example:
    ```python
    q = tfgreen.quantize(lm, "gptq", calibration_data=data.train[:64],
                         validation_data=data.val)
    q.tfgreen_quantization.bytes_ratio, q.tfgreen_quantization.perplexity_ratio
    ```
    """
    from tfgreen.perplexity import perplexity

    _check_keras3(model)
    _validate.choice(
        "mode", mode, MODES, fix="Pass mode='int8' for int8 weights, 'int4', 'gptq' or 'awq'"
    )
    if not _quantizable(model):
        raise TfgreenValueError(
            message(
                "The model has nothing tfgreen.quantize can quantize",
                "Dense, EinsumDense or Embedding layers (Keras 3)",
                "Quantize a model with such layers, or use tfgreen.export_tflite("
                "quantization='dynamic') for other layers",
                layers=sorted({type(layer).__name__ for layer in model._flatten_layers()}),
            )
        )
    ids = _calibration(model, calibration_data, mode) if mode in _CALIBRATED else None
    before = perplexity(model, validation_data) if validation_data is not None else None
    twin = _copy(model)
    config = _config(twin, mode, ids)
    started = time.perf_counter()
    if config is None:
        twin.quantize(mode)
    else:
        twin.quantize(config=config)
    seconds = time.perf_counter() - started
    after = perplexity(twin, validation_data) if validation_data is not None else None
    bytes_before, bytes_after = _weight_bytes(model), _weight_bytes(twin)
    problem = _reload_problem(twin, mode)
    layers = [
        layer.name
        for layer in twin._flatten_layers()
        if getattr(layer.dtype_policy, "quantization_mode", None) in MODES
    ]
    twin.tfgreen_quantization = WeightQuantization(
        mode=mode,
        weight_bytes_before=bytes_before,
        weight_bytes_after=bytes_after,
        bytes_ratio=bytes_after / bytes_before,
        perplexity_before=before,
        perplexity_after=after,
        perplexity_ratio=None if before is None else after / before,
        layers=layers,
        calibration_windows=0 if ids is None else len(ids),
        seconds=seconds,
        reloads=problem is None,
    )
    if problem is not None:
        twin.save = _refuse_save(mode, problem)
    return twin
