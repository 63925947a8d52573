"""tf_keras students wrapped by real tfmot: pruned (with its callback) and quantization-aware.

tfmot exists only for tf_keras; the Keras 3 pruning and QAT students come
from `tfgreen.prune` / `tfgreen.quantize_aware` and are covered where those
are tested. Layer names given to `FeatureDistillation` are the original
ones: the distiller finds them through tfmot's wrappers.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfgreen
from tfgreen.distillation import FeatureDistillation, LogitsDistillation
from tfgreen.flavor import keras_for, tfmot
from tfgreen.models import small_mlp


@pytest.fixture(scope="module")
def tf_keras_teacher(digits_flat):
    (x_train, y_train), _ = digits_flat
    teacher = small_mlp("tf_keras", hidden=(64,), seed=0)
    teacher.compile("adam", "sparse_categorical_crossentropy")
    teacher.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)
    return teacher


def _distil(teacher, student, x, y, callbacks=()):
    d = tfgreen.Distiller(
        teacher,
        student,
        distillation_losses=[LogitsDistillation(), FeatureDistillation("dense1", "dense1")],
    )
    d.compile(keras_for("tf_keras").optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    d.fit(x, y, epochs=2, batch_size=64, callbacks=list(callbacks), verbose=0)
    assert d.student is student
    return d


def test_pruned_student_reaches_its_sparsity(tf_keras_teacher, digits_flat, seed):
    (x_train, y_train), (x_test, y_test) = digits_flat
    sparsity = tfmot().sparsity.keras
    student = sparsity.prune_low_magnitude(
        small_mlp("tf_keras", hidden=(32,), seed=1),
        pruning_schedule=sparsity.ConstantSparsity(0.6, begin_step=0, frequency=1),
    )
    d = _distil(tf_keras_teacher, student, x_train, y_train, [sparsity.UpdatePruningStep()])
    assert d.projections[0].weights[0].shape == (32, 64)
    stripped = sparsity.strip_pruning(d.student)
    kernels = [w for w in stripped.get_weights() if w.ndim == 2]
    assert [float(np.mean(k == 0)) for k in kernels] == pytest.approx([0.6, 0.6], abs=0.01)
    assert np.mean(stripped.predict(x_test, verbose=0).argmax(-1) == y_test) > 0.6


def test_quantization_aware_student_exports_int8(
    tf_keras_teacher, digits_flat, seed, int8_student_accuracies
):
    (x_train, y_train), (x_test, y_test) = digits_flat
    student = tfmot().quantization.keras.quantize_model(small_mlp("tf_keras", hidden=(32,), seed=2))
    _distil(tf_keras_teacher, student, x_train, y_train)
    keras_accuracy, tflite_accuracy = int8_student_accuracies(student, x_train, x_test, y_test)
    assert keras_accuracy > 0.7
    assert tflite_accuracy >= keras_accuracy - 0.02
