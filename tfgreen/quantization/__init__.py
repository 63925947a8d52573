"""Quantization-aware training (int8) for Keras 3 and tf_keras models, and weight
quantization (int8/int4/GPTQ/AWQ) of Keras 3 models (`quantize`, in `weights`).

`quantize_aware(model)` returns a model to compile and fit; its `.tflite`
export is full-integer int8 without calibration data. The Keras 3 layers live
in `tfgreen.quantization.keras3_layers`, the tfmot path in
`tfgreen.quantization._tf_keras`; both load only when first used.
"""

from __future__ import annotations

from tfgreen.quantization.api import quantize_aware
from tfgreen.quantization.weights import WeightQuantization, quantize

__all__ = ["quantize_aware", "quantize", "WeightQuantization"]
