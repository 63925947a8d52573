"""tfgreen: Green AI for Keras/TensorFlow.

Prune, quantize and distil Keras 3 or tf_keras models, export them as checked
`.tflite` files for edge and vehicle devices, and account the energy and CO2
of training and inference.

Heavy modules (TensorFlow, tfmot, LiteRT) load only when an entry point is
first used; `import tfgreen` sets no environment variable and never changes
which Keras `keras` or `tf.keras` gives you.
"""

from __future__ import annotations

import importlib

from tfgreen import errors
from tfgreen.errors import TfgreenError

__version__ = "0.1.0"

# Public name -> module that defines it; imported on first use.
_LAZY = {
    "load_model": "tfgreen.loading",
    "prune": "tfgreen.pruning",
    "strip": "tfgreen.pruning",
    "sparsity": "tfgreen.pruning",
    "PolynomialDecay": "tfgreen.pruning",
    "ConstantSparsity": "tfgreen.pruning",
    "PruningSchedule": "tfgreen.pruning",
    "compare": "tfgreen.comparison",
    "optimize": "tfgreen.search",
    "estimate_energy": "tfgreen.energy.estimate",
    "export_tflite": "tfgreen.export.exporter",
    "ExportReport": "tfgreen.export.exporter",
    "Target": "tfgreen.export.targets",
    "targets": "tfgreen.export.targets",
    "inspect_tflite": "tfgreen.tflite.inspection",
    "quantize_aware": "tfgreen.quantization",
    "quantize": "tfgreen.quantization",
    "Distiller": "tfgreen.distillation",
    "perplexity": "tfgreen.perplexity",
    "generate": "tfgreen.generation",
    "Comparison": "tfgreen.report",
}
_SUBMODULES = ("callbacks", "datasets", "distribute", "models")

__all__ = [
    "TfgreenError",
    "errors",
    "__version__",
    *_LAZY,
    *_SUBMODULES,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"tfgreen.{name}")
    else:
        raise AttributeError(f"module 'tfgreen' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
