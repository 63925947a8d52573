"""Evidence on real data: a distilled student beats the same student trained alone.

The teacher is trained once per flavour on the training split minus a small
labelled subset; each student (same architecture, same seed, same optimizer
and steps) then learns from that subset alone or with the teacher. The
averages over 3 seeds are compared on the held-out test split.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfgreen
from tfgreen.datasets import load_breast_cancer, load_digits
from tfgreen.flavor import keras_for
from tfgreen.models import small_mlp

SEEDS = (0, 1, 2)
_TEACHERS: dict = {}


def _split(x, y, n):
    order = np.random.default_rng(0).permutation(len(x))
    return (x[order[:n]], y[order[:n]]), (x[order[n:]], y[order[n:]])


def _fit(model, x, y, repeats, epochs, batch_size):
    # Repeating the small subset gives the same number of steps with fewer
    # (slow) epoch boundaries.
    model.fit(
        np.tile(x, (repeats,) + (1,) * (x.ndim - 1)),
        np.tile(y, repeats),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
    )


def _teacher(key, flavor, build, loss, x, y):
    if (key, flavor) not in _TEACHERS:
        keras = keras_for(flavor)
        teacher = build(flavor)
        teacher.compile(keras.optimizers.Adam(0.001), loss, metrics=["accuracy"])
        teacher.fit(x, y, epochs=20, batch_size=32, verbose=0)
        _TEACHERS[key, flavor] = teacher
    return _TEACHERS[key, flavor]


def _students(flavor, teacher, build, loss, data, weight, temperature, steps):
    keras = keras_for(flavor)
    (x, y) = data
    results = {"scratch": [], "distilled": []}
    for seed in SEEDS:
        for kind in results:
            student = build(flavor, seed)
            model = student
            if kind == "distilled":
                model = tfgreen.Distiller(
                    teacher, student, temperature=temperature, student_loss_weight=weight
                )
            model.compile(keras.optimizers.Adam(0.01), loss)
            _fit(model, x, y, *steps)
            results[kind].append(student)
    return results


@pytest.mark.slow
def test_distilled_student_beats_scratch_on_digits(flavor):
    (x_train, y_train), (x_test, y_test) = load_digits(flat=True)
    subset, rest = _split(x_train, y_train, 100)
    loss = "sparse_categorical_crossentropy"
    teacher = _teacher("digits", flavor, lambda f: small_mlp(f, hidden=(256, 256)), loss, *rest)

    def build(f, seed):
        return small_mlp(f, hidden=(64,), seed=seed)

    students = _students(flavor, teacher, build, loss, subset, 0.5, 4.0, (5, 6, 32))
    accuracy = {
        kind: [float(np.mean(s.predict(x_test, verbose=0).argmax(-1) == y_test)) for s in models]
        for kind, models in students.items()
    }
    teacher_accuracy = np.mean(teacher.predict(x_test, verbose=0).argmax(-1) == y_test)
    assert teacher_accuracy > 0.93
    assert teacher.count_params() > 15 * students["scratch"][0].count_params()
    assert np.mean(accuracy["distilled"]) > np.mean(accuracy["scratch"]) + 0.005, accuracy


@pytest.mark.slow
def test_distilled_binary_student_beats_scratch_on_breast_cancer(flavor):
    (x_train, y_train), (x_test, y_test) = load_breast_cancer()
    subset, rest = _split(x_train, y_train, 30)
    loss = "binary_crossentropy"
    teacher = _teacher(
        "cancer",
        flavor,
        lambda f: small_mlp(f, input_dim=30, hidden=(64, 64), num_classes=1),
        loss,
        *rest,
    )

    def build(f, seed):
        return small_mlp(f, input_dim=30, hidden=(32,), num_classes=1, seed=seed)

    students = _students(flavor, teacher, build, loss, subset, 0.2, 2.0, (10, 10, 16))
    log_loss, accuracy = {}, {}
    for kind, models in students.items():
        p = np.clip(np.stack([s.predict(x_test, verbose=0)[:, 0] for s in models]), 1e-7, 1 - 1e-7)
        log_loss[kind] = -np.mean(y_test * np.log(p) + (1 - y_test) * np.log(1 - p))
        accuracy[kind] = np.mean((p > 0.5) == y_test)
    assert log_loss["distilled"] < 0.8 * log_loss["scratch"], log_loss
    assert accuracy["distilled"] >= accuracy["scratch"], accuracy
