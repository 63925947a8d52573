"""The Keras callbacks tfgreen offers, importable from one place.

Each callback works with both Kerases: pass it to `model.fit` of a Keras 3
or a tf_keras model.
"""

from __future__ import annotations

import importlib

# Public name -> module that defines it; imported on first use.
_LAZY: dict[str, str] = {
    "Pruning": "tfgreen.pruning.callback",
    "EnergyTracker": "tfgreen.energy.tracker",
    "EnergyBudget": "tfgreen.energy.budget",
    "GreenEarlyStopping": "tfgreen.energy.early_stopping",
    "EnergyToTarget": "tfgreen.energy.to_target",
}

__all__ = [*_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tfgreen.callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
