"""Knowledge distillation for Keras 3 and tf_keras.

`Distiller` trains a student from a teacher; `LogitsDistillation` and
`FeatureDistillation` describe what the student matches. Keras and
TensorFlow load only when a `Distiller` is built.
"""

from __future__ import annotations

from tfgreen.distillation.distiller import Distiller
from tfgreen.distillation.losses import FeatureDistillation, LogitsDistillation

__all__ = ["Distiller", "FeatureDistillation", "LogitsDistillation"]
