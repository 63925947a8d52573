"""What a distillation backend provides: one protocol, two implementations.

`tfgreen.flavor.backend("tfgreen.distillation", teacher)` returns
`tfgreen.distillation._keras3` (on `keras.distillation.Distiller`) or
`tfgreen.distillation._tf_keras` (a `tf_keras.Model` with the same
behaviour). Both satisfy `DistillationBackend`; `tfgreen.Distiller` uses them
with no flavour branch.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["DistillationBackend"]


@runtime_checkable
class DistillationBackend(Protocol):
    """The names `tfgreen.distillation._keras3` and `._tf_keras` both define.

    Attributes:
        DISTILLER: The flavour's distiller class: a subclass of
            `tfgreen.Distiller` and of the flavour's `Model`, whose `__init__`
            takes `tfgreen.Distiller`'s arguments.
        NATIVE_LOSSES: The flavour's own distillation-loss classes, accepted
            in `distillation_losses` and used as given (Keras 3:
            `keras.distillation.DistillationLoss`; tf_keras: none).
        NATIVE_LOSSES_NAME: How the error for a wrong loss names them
            (`""` when there are none).
    """

    DISTILLER: type
    NATIVE_LOSSES: tuple
    NATIVE_LOSSES_NAME: str
