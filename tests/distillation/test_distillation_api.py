"""tfgreen.Distiller on both Kerases: training, loss values, heads, features, export."""

from __future__ import annotations

import numpy as np
import pytest

import tfgreen
from tfgreen.distillation import FeatureDistillation, LogitsDistillation
from tfgreen.models import small_mlp

_TEACHERS: dict = {}


@pytest.fixture
def teacher(flavor, digits_flat):
    """A softmax MLP teacher trained 3 epochs on digits (once per flavour)."""
    if flavor not in _TEACHERS:
        (x_train, y_train), _ = digits_flat
        model = small_mlp(flavor, hidden=(64,), seed=0)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x_train, y_train, epochs=3, batch_size=32, verbose=0)
        _TEACHERS[flavor] = model
    return _TEACHERS[flavor]


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _kl_t2(teacher_log_probs, student_log_probs, temperature):
    t = _log_softmax(teacher_log_probs / temperature)
    s = _log_softmax(student_log_probs / temperature)
    return float(np.mean(np.sum(np.exp(t) * (t - s), -1)) * temperature**2)


def _evaluate(distiller, x, y):
    distiller.compile("adam", loss="sparse_categorical_crossentropy")
    return distiller.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)


def test_fit_trains_student_in_place_with_teacher_frozen(flavor, keras, teacher, digits_flat):
    (x_train, y_train), (x_test, y_test) = digits_flat
    student = small_mlp(flavor, hidden=(16,), seed=1)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    student_weights = [w.copy() for w in student.get_weights()]
    d = tfgreen.Distiller(teacher, student, temperature=3.0, student_loss_weight=0.3)
    assert isinstance(d, keras.Model) and isinstance(d, tfgreen.Distiller)
    assert d.student is student and not teacher.trainable
    d.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = d.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0)
    logs = history.history
    assert {"loss", "student_loss", "distillation_loss", "total_loss", "accuracy"} <= set(logs)
    assert logs["total_loss"][-1] < logs["total_loss"][0]
    assert all(
        np.array_equal(a, b) for a, b in zip(teacher_weights, teacher.get_weights(), strict=True)
    )
    assert not np.allclose(student_weights[0], student.get_weights()[0])
    result = d.evaluate(x_test, y_test, batch_size=128, verbose=0, return_dict=True)
    expected = 0.3 * result["student_loss"] + 0.7 * result["distillation_loss"]
    assert result["total_loss"] == pytest.approx(expected, rel=1e-5)
    assert result["accuracy"] > 0.5
    student_accuracy = np.mean(student.predict(x_test, verbose=0).argmax(-1) == y_test)
    assert student_accuracy == pytest.approx(result["accuracy"], abs=1e-6)


def test_distillation_loss_is_t2_scaled_kl_of_softened_outputs(flavor, teacher, digits_flat):
    (x_train, y_train), _ = digits_flat
    x, y = x_train[:128], y_train[:128]
    student = small_mlp(flavor, hidden=(16,), seed=2)
    d = tfgreen.Distiller(teacher, student, temperature=2.5, student_loss_weight=0.0)
    result = _evaluate(d, x, y)
    p_teacher = teacher.predict(x, verbose=0)
    p_student = student.predict(x, verbose=0)
    expected = _kl_t2(np.log(p_teacher), np.log(p_student), 2.5)
    assert result["distillation_loss"] == pytest.approx(expected, rel=1e-3)
    assert result["loss"] == pytest.approx(expected, rel=1e-3)
    assert result["student_loss"] == 0.0


def test_softmax_teacher_gives_the_same_loss_as_its_logits(flavor, digits_flat):
    (x_train, y_train), _ = digits_flat
    x, y = x_train[:128], y_train[:128]
    logits_teacher = small_mlp(flavor, hidden=(32,), seed=3, logits=True)
    softmax_teacher = small_mlp(flavor, hidden=(32,), seed=3)
    softmax_teacher.set_weights(logits_teacher.get_weights())
    losses = []
    for teacher in (logits_teacher, softmax_teacher):
        student = small_mlp(flavor, hidden=(8,), seed=4, logits=True)
        d = tfgreen.Distiller(teacher, student, temperature=4.0, student_loss_weight=0.0)
        losses.append(_evaluate(d, x, y)["distillation_loss"])
    assert losses[0] > 0.01
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    # Declaring the softmax teacher's probabilities as logits is a different loss.
    wrong = tfgreen.Distiller(
        softmax_teacher,
        small_mlp(flavor, hidden=(8,), seed=4, logits=True),
        student_loss_weight=0.0,
        distillation_losses=LogitsDistillation(teacher_output="logits"),
    )
    assert abs(_evaluate(wrong, x, y)["distillation_loss"] - losses[0]) > 0.1 * losses[0]


def test_sigmoid_teacher_is_a_two_class_distribution(flavor, keras):
    from tfgreen.datasets import load_breast_cancer

    (x_train, y_train), _ = load_breast_cancer()
    x, y = x_train[:100], y_train[:100]
    logit_teacher = small_mlp(
        flavor, input_dim=30, hidden=(16,), num_classes=1, seed=5, logits=True
    )
    sigmoid_teacher = small_mlp(flavor, input_dim=30, hidden=(16,), num_classes=1, seed=5)
    sigmoid_teacher.set_weights(logit_teacher.get_weights())
    losses = []
    for teacher in (logit_teacher, sigmoid_teacher):
        student = small_mlp(flavor, input_dim=30, hidden=(4,), num_classes=1, seed=6)
        d = tfgreen.Distiller(teacher, student, temperature=2.0, student_loss_weight=0.0)
        d.compile("adam", loss="binary_crossentropy")
        losses.append(d.evaluate(x, y, batch_size=100, verbose=0, return_dict=True))
    z = logit_teacher.predict(x, verbose=0)
    p = student.predict(x, verbose=0)
    expected = _kl_t2(
        np.concatenate([np.zeros_like(z), z], -1),
        np.log(np.concatenate([1 - p, p], -1)),
        2.0,
    )
    assert losses[0]["distillation_loss"] == pytest.approx(expected, rel=1e-3)
    assert losses[1]["distillation_loss"] == pytest.approx(expected, rel=1e-3)


def test_feature_distillation_learns_a_projection(flavor, teacher, digits_flat):
    (x_train, y_train), _ = digits_flat
    student = small_mlp(flavor, hidden=(16,), seed=7)
    params = student.count_params()
    d = tfgreen.Distiller(
        teacher,
        student,
        student_loss_weight=0.5,
        distillation_losses=[LogitsDistillation(), FeatureDistillation("dense1", "dense1")],
        distillation_loss_weights=[1.0, 0.5],
    )
    assert [tuple(w.shape) for w in d.projections[0].weights] == [(16, 64), (64,)]
    kernel = np.array(d.projections[0].weights[0])
    d.compile("adam", loss="sparse_categorical_crossentropy")
    history = d.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0).history
    assert history["distillation_loss"][-1] < 0.8 * history["distillation_loss"][0]
    assert not np.allclose(kernel, np.array(d.projections[0].weights[0]))
    assert student.count_params() == params
    same_width = tfgreen.Distiller(
        teacher,
        small_mlp(flavor, hidden=(64,), seed=8),
        distillation_losses=FeatureDistillation("dense1", "dense1", loss="mae"),
    )
    assert same_width.projections == []


def test_callbacks_reach_fit_and_student_exports_int8(
    flavor, keras, teacher, digits_flat, int8_student_accuracies
):
    (x_train, y_train), (x_test, y_test) = digits_flat
    student = small_mlp(flavor, hidden=(16,), seed=9)
    steps = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(1))
    d = tfgreen.Distiller(teacher, student)
    d.compile(keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    d.fit(x_train, y_train, epochs=2, batch_size=128, callbacks=[counter], verbose=0)
    assert len(steps) == 2 * int(np.ceil(len(x_train) / 128))
    keras_accuracy, tflite_accuracy = int8_student_accuracies(d.student, x_train, x_test, y_test)
    assert keras_accuracy > 0.6
    assert tflite_accuracy >= keras_accuracy - 0.02


@pytest.mark.parametrize("binary", [False, True])
def test_kl_matches_keras3_reference_with_both_op_sets(binary):
    import keras

    from tfgreen.distillation._tf_keras import _OPS
    from tfgreen.distillation.losses import soft_kl

    rng = np.random.default_rng(0)
    width = 1 if binary else 10
    teacher, student = (rng.normal(size=(32, width)).astype("float32") * 3 for _ in range(2))
    # Keras 3's own LogitsDistillation, with a KLDivergence instance (its string
    # default 'kl_divergence' skips the softmax and compares raw logits).
    reference = keras.distillation.LogitsDistillation(3.0, loss=keras.losses.KLDivergence())
    if binary:  # a sigmoid logit z is the two-class logits [0, z]
        pad = np.zeros_like(teacher)
        expected = reference.compute_loss(
            np.concatenate([pad, teacher], -1), np.concatenate([pad, student], -1)
        )
    else:
        expected = reference.compute_loss(teacher, student)
    for ops in (keras.ops, _OPS):
        value = soft_kl(ops, teacher, student, 3.0, "logits", "logits", binary)
        assert float(value) == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) > 0.1


def test_trained_student_and_keras3_distiller_round_trip(
    flavor, keras, teacher, digits_flat, tmp_path
):
    (x_train, y_train), (x_test, _) = digits_flat
    student = small_mlp(flavor, hidden=(16,), seed=10)
    d = tfgreen.Distiller(
        teacher,
        student,
        distillation_losses=[LogitsDistillation(), FeatureDistillation("dense1", "dense1")],
    )
    d.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    d.fit(x_train[:256], y_train[:256], epochs=1, verbose=0)
    d.student.save(tmp_path / "student.keras")
    loaded = tfgreen.load_model(tmp_path / "student.keras")
    np.testing.assert_allclose(
        loaded.predict(x_test[:32], verbose=0), student.predict(x_test[:32], verbose=0), atol=1e-6
    )
    if flavor == "keras3":  # Keras 3 distillers are serializable, projection included
        d.save(tmp_path / "distiller.keras")
        with pytest.warns(UserWarning, match="compile"):
            again = keras.saving.load_model(tmp_path / "distiller.keras")
        assert isinstance(again, tfgreen.Distiller)
        for a, b in zip(
            again.projections[0].get_weights(), d.projections[0].get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)
        assert [type(loss).__name__ for loss in again.distillation_losses] == [
            "_LogitsLoss",
            "_FeatureLoss",
        ]


def test_subclass_methods_are_used_on_both_kerases(flavor, keras, teacher, digits_flat):
    (x_train, y_train), _ = digits_flat

    class Frozen(tfgreen.Distiller):
        """A distiller whose loss has no gradient: the student must not move."""

        def compute_loss(self, *args, **kwargs):
            return super().compute_loss(*args, **kwargs) * 0.0

    student = small_mlp(flavor, hidden=(16,), seed=11)
    before = [w.copy() for w in student.get_weights()]
    d = Frozen(teacher, student, temperature=2.0)
    assert isinstance(d, Frozen) and isinstance(d, tfgreen.Distiller)
    assert isinstance(d, keras.Model) and type(d).__name__ == "Frozen"
    d.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    d.fit(x_train[:128], y_train[:128], epochs=1, batch_size=32, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, student.get_weights(), strict=True))
    # The same subclass, unchanged, on the other path moves the student (control).
    plain = tfgreen.Distiller(teacher, student, temperature=2.0)
    plain.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
    plain.fit(x_train[:128], y_train[:128], epochs=1, batch_size=32, verbose=0)
    assert not np.allclose(before[0], student.get_weights()[0])


def test_flavour_class_of_the_other_keras_is_refused(teacher):
    from tfgreen.flavor import FLAVORS, backend

    flavor = "keras3" if isinstance(teacher, __import__("keras").Model) else "tf_keras"
    other = backend("tfgreen.distillation", next(f for f in FLAVORS if f != flavor)).DISTILLER

    class Mine(other):
        pass

    with pytest.raises(
        tfgreen.errors.TfgreenTypeError, match=r"other Keras.*Subclass tfgreen.Distiller"
    ):
        Mine(teacher, small_mlp(flavor, hidden=(8,), seed=2))
