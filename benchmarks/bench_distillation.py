"""Knowledge distillation: teacher, scratch student and distilled student, side by side.

For each Keras flavour and each bundled data set (digits, 10 classes; breast
cancer, binary), a large MLP teacher is trained on the training split minus a
small labelled subset. The same small student (same seed, optimizer and
steps) is then trained on that subset alone ("scratch") and with
`tfgreen.Distiller` ("distilled"). Rows give test accuracy (mean and spread
over seeds), test log-loss, parameter count and the size of the float32 and
int8 `.tflite` files, plus the distilled student's gain over scratch and its
size relative to the teacher.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

__all__ = ["run"]

# name -> (teacher hidden, student hidden, labelled subset size,
#          student_loss_weight, temperature, (repeats, epochs, batch size))
_TASKS = {
    "digits": ((256, 256), (64,), 100, 0.5, 4.0, (5, 6, 32)),
    "breast_cancer": ((64, 64), (32,), 30, 0.2, 2.0, (10, 10, 16)),
}


def _data(name: str):
    from tfgreen.datasets import load_breast_cancer, load_digits

    if name == "digits":
        return load_digits(flat=True), "sparse_categorical_crossentropy", 10
    return load_breast_cancer(), "binary_crossentropy", 1


def _probabilities(model, x) -> np.ndarray:
    p = model.predict(x, verbose=0)
    return np.concatenate([1 - p, p], -1) if p.shape[-1] == 1 else p


def _scores(model, x, y) -> tuple[float, float]:
    p = np.clip(_probabilities(model, x), 1e-7, 1.0)
    return float(np.mean(p.argmax(-1) == y)), float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _tflite_sizes(model, x_calib) -> tuple[int, int]:
    from tfgreen.quantization.ptq import convert

    def representative():
        return ([x_calib[i : i + 1]] for i in range(len(x_calib)))

    return len(convert(model, "float32")), len(convert(model, "int8", representative))


def _row(flavor, task, kind, models, x, y, x_calib, seconds) -> dict:
    scores = [_scores(m, x, y) for m in models]
    accuracy = [s[0] for s in scores]
    float_bytes, int8_bytes = _tflite_sizes(models[0], x_calib)
    return {
        "flavor": flavor,
        "dataset": task,
        "model": kind,
        "seeds": len(models),
        "accuracy": round(statistics.mean(accuracy), 4),
        "accuracy_std": round(statistics.pstdev(accuracy), 4),
        "log_loss": round(statistics.mean(s[1] for s in scores), 4),
        "params": int(models[0].count_params()),
        "tflite_float32_bytes": float_bytes,
        "tflite_int8_bytes": int8_bytes,
        "train_seconds": round(seconds, 2),
    }


def _task(flavor: str, task: str, seeds: tuple[int, ...]) -> list[dict]:
    import tfgreen
    from tfgreen.flavor import keras_for
    from tfgreen.models import small_mlp

    keras = keras_for(flavor)
    teacher_hidden, student_hidden, n, weight, temperature, (repeats, epochs, batch) = _TASKS[task]
    ((x_train, y_train), (x_test, y_test)), loss, classes = _data(task)
    order = np.random.default_rng(0).permutation(len(x_train))
    x_small, y_small = x_train[order[:n]], y_train[order[:n]]
    x_rest, y_rest = x_train[order[n:]], y_train[order[n:]]
    x_calib = x_train[:100]
    dims = {"input_dim": x_train.shape[-1], "num_classes": classes}

    start = time.perf_counter()
    teacher = small_mlp(flavor, hidden=teacher_hidden, seed=0, **dims)
    teacher.compile(keras.optimizers.Adam(0.001), loss)
    teacher.fit(x_rest, y_rest, epochs=20, batch_size=32, verbose=0)
    rows = [_row(flavor, task, "teacher", [teacher], x_test, y_test, x_calib, 0.0)]
    rows[0]["train_seconds"] = round(time.perf_counter() - start, 2)

    x_fit = np.tile(x_small, (repeats, 1))
    y_fit = np.tile(y_small, repeats)
    for kind in ("student_scratch", "student_distilled"):
        students, start = [], time.perf_counter()
        for seed in seeds:
            student = small_mlp(flavor, hidden=student_hidden, seed=seed, **dims)
            model = student
            if kind == "student_distilled":
                model = tfgreen.Distiller(
                    teacher, student, temperature=temperature, student_loss_weight=weight
                )
            model.compile(keras.optimizers.Adam(0.01), loss)
            model.fit(x_fit, y_fit, epochs=epochs, batch_size=batch, verbose=0)
            students.append(student)
        seconds = (time.perf_counter() - start) / len(seeds)
        rows.append(_row(flavor, task, kind, students, x_test, y_test, x_calib, seconds))
    scratch, distilled = rows[1], rows[2]
    for row in rows[1:]:
        row["params_vs_teacher"] = round(row["params"] / rows[0]["params"], 4)
    distilled["accuracy_gain_vs_scratch"] = round(distilled["accuracy"] - scratch["accuracy"], 4)
    distilled["log_loss_ratio_vs_scratch"] = round(distilled["log_loss"] / scratch["log_loss"], 4)
    return rows


def run(quick: bool = False) -> list[dict]:
    """Measures teacher, scratch and distilled students on digits and breast cancer.

    Args:
        quick: One seed instead of five. Defaults to `False`.

    Returns:
        One row per flavour, data set and model (`teacher`, `student_scratch`,
        `student_distilled`).
    """
    seeds = (0,) if quick else (0, 1, 2, 3, 4)
    rows = []
    for flavor in ("keras3", "tf_keras"):
        for task in _TASKS:
            rows += _task(flavor, task, seeds)
    return rows


if __name__ == "__main__":
    for line in run(quick=True):
        print(line)
