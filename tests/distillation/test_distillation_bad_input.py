"""tfgreen.Distiller refuses bad input with clear errors, before any work."""

from __future__ import annotations

import math
import warnings

import pytest

import tfgreen
from tfgreen.distillation import FeatureDistillation, LogitsDistillation
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, UnsupportedLayerError
from tfgreen.flavor import FLAVORS
from tfgreen.models import small_cnn, small_mlp


@pytest.fixture
def pair(flavor):
    """An (untrained but built, uncompiled) teacher and student of the flavour."""
    return small_mlp(flavor, hidden=(32,), seed=0), small_mlp(flavor, hidden=(8,), seed=1)


def test_teacher_and_student_of_different_kerases(flavor):
    other = next(f for f in FLAVORS if f != flavor)
    with pytest.raises(TfgreenTypeError, match="different Kerases.*Received: teacher="):
        tfgreen.Distiller(small_mlp(flavor), small_mlp(other, hidden=(8,)))


def test_not_a_model(pair):
    with pytest.raises(TfgreenTypeError, match="not a Keras model"):
        tfgreen.Distiller("teacher.keras", pair[1])


def test_output_shapes_that_differ(flavor, pair):
    student = small_mlp(flavor, hidden=(8,), num_classes=5)
    with pytest.raises(
        TfgreenValueError,
        match=r"output shapes differ.*teacher_output_shape=\(None, 10\), student_output_shape=\(None, 5\)",
    ):
        tfgreen.Distiller(pair[0], student)


def test_input_shapes_that_differ(flavor, pair):
    with pytest.raises(TfgreenValueError, match="input shapes differ"):
        tfgreen.Distiller(pair[0], small_mlp(flavor, input_dim=30, hidden=(8,)))


@pytest.mark.parametrize("temperature", [0, -1.0, math.nan, "4", True])
def test_temperature_must_be_positive(pair, temperature):
    with pytest.raises(TfgreenValueError, match="`temperature` is not a valid number.*> 0"):
        tfgreen.Distiller(*pair, temperature=temperature)
    with pytest.raises(TfgreenValueError, match="`temperature` is not a valid number.*> 0"):
        LogitsDistillation(temperature=temperature)


@pytest.mark.parametrize("weight", [-0.1, 1.5, math.inf, None])
def test_student_loss_weight_outside_unit_interval(pair, weight):
    with pytest.raises(
        TfgreenValueError, match=r"`student_loss_weight` is not a valid number.*>= 0 and <= 1"
    ):
        tfgreen.Distiller(*pair, student_loss_weight=weight)


def test_unbuilt_teacher(keras, pair):
    unbuilt = keras.Sequential([keras.layers.Dense(10)])
    with pytest.raises(TfgreenValueError, match="teacher model is not built"):
        tfgreen.Distiller(unbuilt, pair[1])


def test_compiled_but_untrained_teacher_warns(pair):
    teacher, student = pair
    teacher.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="compiled but never trained"):
        tfgreen.Distiller(teacher, student)


def test_trained_teacher_does_not_warn(pair, digits_flat):
    (x_train, y_train), _ = digits_flat
    teacher, student = pair
    teacher.compile("adam", "sparse_categorical_crossentropy")
    teacher.fit(x_train[:64], y_train[:64], epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        tfgreen.Distiller(teacher, student)


def test_feature_layers_that_do_not_exist(pair):
    with pytest.raises(
        UnsupportedLayerError, match="teacher has no layer named 'dense9'.*'dense1'.*Received"
    ):
        tfgreen.Distiller(*pair, distillation_losses=FeatureDistillation("dense9", "dense1"))
    with pytest.raises(UnsupportedLayerError, match="student has no layer named 'nope'"):
        tfgreen.Distiller(*pair, distillation_losses=FeatureDistillation("dense1", "nope"))


def test_feature_layers_of_different_resolution(flavor):
    teacher, student = small_cnn(flavor), small_cnn(flavor, filters=4)
    with pytest.raises(UnsupportedLayerError, match="cannot be matched.*teacher_feature_shape"):
        tfgreen.Distiller(
            teacher, student, distillation_losses=FeatureDistillation("conv1", "conv2")
        )


def test_head_that_is_neither_logits_nor_probabilities(keras, pair):
    relu_head = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="relu")])
    with pytest.raises(UnsupportedLayerError, match="Cannot tell whether the teacher outputs"):
        tfgreen.Distiller(relu_head, pair[1])
    declared = LogitsDistillation(teacher_output="logits")
    assert tfgreen.Distiller(relu_head, pair[1], distillation_losses=declared).student is pair[1]


def test_sigmoid_teacher_with_softmax_student(keras, pair):
    sigmoid = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="sigmoid")])
    with pytest.raises(UnsupportedLayerError, match="heads differ"):
        tfgreen.Distiller(sigmoid, pair[1])


def test_bad_distillation_losses(pair):
    with pytest.raises(TfgreenTypeError, match="not a distillation loss"):
        tfgreen.Distiller(*pair, distillation_losses=["kl_divergence"])
    with pytest.raises(TfgreenValueError, match="`distillation_losses` is empty"):
        tfgreen.Distiller(*pair, distillation_losses=[])
    with pytest.raises(TfgreenValueError, match="does not match `distillation_losses`"):
        tfgreen.Distiller(*pair, distillation_loss_weights=[1.0, 2.0])
    with pytest.raises(
        TfgreenValueError, match="`distillation_loss_weights` is not a valid number"
    ):
        tfgreen.Distiller(*pair, distillation_loss_weights=[-1.0])
    with pytest.raises(TfgreenValueError, match="Unknown `teacher_output`"):
        LogitsDistillation(teacher_output="softmax")
    with pytest.raises(TfgreenValueError, match="Unknown `loss`"):
        FeatureDistillation("dense1", "dense1", loss="kl")
    with pytest.raises(TfgreenTypeError, match="`student_layer_name` must name a layer"):
        FeatureDistillation("dense1", None)


def test_compile_without_hard_label_loss(pair):
    d = tfgreen.Distiller(*pair)
    with pytest.raises(TfgreenValueError, match="hard-label loss in compile"):
        d.compile("adam")
