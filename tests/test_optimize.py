"""`tfgreen.optimize`: the search picks a cheap file that keeps the floor, re-measured here.

The searches run on a small budget (the full digits search and its timing
are in benchmarks/bench_optimize.py); every figure asserted is measured
again on the picked `.tflite` file, independently of the search.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TfgreenError

_RESULTS: dict = {}


def _digits_search(flavor, model, digits, out_dir):
    if flavor not in _RESULTS:
        (x_train, y_train), (x_test, y_test) = digits
        _RESULTS[flavor] = tfgreen.optimize(
            model,
            (x_train, y_train),
            validation_data=(x_test, y_test),
            target="edge-cpu",
            max_accuracy_drop=0.01,
            budget_minutes=0.5,
            out_dir=out_dir,
            epochs=1,
            verbose=False,
        )
    return _RESULTS[flavor]


def test_digits_search_picks_a_cheap_file_within_the_floor(flavor, trained_cnn, digits, tmp_path):
    (x_train, _), (x_test, y_test) = digits
    result = _digits_search(flavor, trained_cnn, digits, tmp_path / "search")
    tried = {c["name"] for c in result.candidates}
    assert len(tried) >= 4, tried
    best = result.best
    assert best is not None and best["status"] == "best"

    # The pick's file, re-measured here, next to the float32 reference file.
    measured = tfgreen.compare(
        {"reference": result.reference["path"], "pick": best["path"]},
        (x_test, y_test),
        runs=3,
        energy=False,
    )
    reference, pick = (row["accuracy"] for row in measured.rows[:2])
    keras_accuracy = float(
        np.mean(np.argmax(trained_cnn.predict(x_test, verbose=0), axis=1) == y_test)
    )
    assert reference == pytest.approx(keras_accuracy, abs=1 / len(y_test))
    assert pick >= reference - 0.01 - 1e-9
    assert pick == pytest.approx(best["accuracy"])

    # No more estimated energy than a plain int8 export of the same model.
    plain = tfgreen.export_tflite(
        trained_cnn, tmp_path / "plain_int8.tflite", target="edge-cpu", calibration_data=x_train
    )
    plain_joules = tfgreen.estimate_energy(plain.path, target="edge-cpu").joules_per_inference
    assert best["joules_per_inference"]["estimate"] <= plain_joules
    assert (
        best["joules_per_inference"]["estimate"]
        == tfgreen.estimate_energy(best["path"], "edge-cpu").joules_per_inference
    )
    assert best["joules_per_inference"]["measured"] > 0
    assert tfgreen.inspect_tflite(best["path"])  # a readable, checked export with a manifest


def test_digits_search_never_picks_below_the_floor(flavor, trained_cnn, digits, tmp_path):
    result = _digits_search(flavor, trained_cnn, digits, tmp_path / "search")
    floor = result.floor["min_accuracy"]
    assert floor == pytest.approx(result.reference["accuracy"] - 0.01)
    for record in result.candidates:
        assert record["status"] in ("best", "kept", "rejected"), record
        assert record["reason"], record
        if record.get("accuracy") is not None and record["accuracy"] < floor:
            assert record["status"] == "rejected" and "below the floor" in record["reason"]
    kept = [c for c in result.candidates if c["status"] in ("best", "kept")]
    cheapest = min(c["joules_per_inference"]["estimate"] for c in kept)
    assert result.best["joules_per_inference"]["estimate"] == cheapest
    assert result.best["name"] in result.pareto
    # Candidates respect the target: edge-cpu files are dynamic, float16 or int8.
    assert {c["quantization"] for c in kept} <= {"dynamic", "float16", "int8"}
    stages = [c["stage"] for c in result.candidates]
    assert stages == sorted(
        stages,
        key=[
            "post-training",
            "one-shot pruning",
            "fine-tuned pruning",
            "quantization-aware training",
        ].index,
    )


def test_report_writes_markdown_plots_and_json(flavor, trained_cnn, digits, tmp_path):
    result = _digits_search(flavor, trained_cnn, digits, tmp_path / "search")
    written = result.report(tmp_path / "report")
    text = written["optimize.md"].read_text()
    assert f"Pick: #{result.best['id']} {result.best['name']}" in text
    assert "accuracy_vs_energy.png" in written and written["accuracy_vs_energy.png"].stat().st_size
    saved = json.loads(written["search.json"].read_text())
    assert saved["best"]["path"] == result.best["path"]
    assert len(saved["candidates"]) == len(result.candidates)


@pytest.mark.slow
def test_language_model_search_keeps_perplexity(flavor, tiny_lm, text_data, tmp_path):
    val = text_data.val[:64]
    result = tfgreen.optimize(
        tiny_lm,
        text_data.train[:512],
        validation_data=val,
        max_perplexity_ratio=1.03,
        budget_minutes=0.5,
        out_dir=tmp_path,
        epochs=1,
        verbose=False,
    )
    best = result.best
    assert best is not None and best["perplexity_ratio"] <= 1.03
    reference = tfgreen.perplexity(tiny_lm, val)
    assert tfgreen.perplexity(best["path"], val) / reference <= 1.03
    assert result.floor["perplexity"] == pytest.approx(1.03 * result.reference["perplexity"])
    rejected = [c for c in result.candidates if c["status"] == "rejected"]
    assert all(c["reason"] for c in rejected)


def test_same_seed_same_candidates(digits, tmp_path):
    """Two searches with one seed try the same recipes, fine-tunes included, with the same figures."""
    from tfgreen.models import small_mlp

    (x_train, y_train), (x_test, y_test) = tfgreen.datasets.load_digits(flat=True)
    model = small_mlp(hidden=(16,), seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, verbose=0)
    runs = [
        tfgreen.optimize(
            model,
            (x_train, y_train),
            validation_data=(x_test, y_test),
            target="edge-gpu",
            max_accuracy_drop=0.0,
            out_dir=tmp_path / str(i),
            epochs=1,
            seed=3,
            verbose=False,
        )
        for i in range(2)
    ]
    figures = [[(c["name"], c["accuracy"], c["size_bytes"]) for c in r.candidates] for r in runs]
    assert figures[0] == figures[1]
    assert any(c["recipe"]["epochs"] for c in runs[0].candidates), figures[0]
    assert {c["quantization"] for c in runs[0].candidates} == {"float16"}  # edge-gpu: float16


# ---- bad input: refused before any work, with a TfgreenError naming the argument


@pytest.fixture
def small(flavor, digits):
    from tfgreen.models import small_cnn

    (x_train, y_train), (x_test, y_test) = digits
    return small_cnn(flavor, filters=2), (x_train[:64], y_train[:64]), (x_test[:32], y_test[:32])


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"target": "toaster"}, ValueError, "Unknown target"),
        ({"objective": "speed"}, ValueError, "objective"),
        ({"max_accuracy_drop": 1.5}, ValueError, "max_accuracy_drop"),
        ({"max_accuracy_drop": "1%"}, ValueError, "max_accuracy_drop"),
        ({"max_perplexity_ratio": 1.03}, ValueError, "perplexity ratio"),
        ({"budget_minutes": 0}, ValueError, "budget_minutes"),
        ({"seed": -1}, ValueError, "seed"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"verbose": "yes"}, TypeError, "verbose"),
        ({"validation_data": None}, ValueError, "validation_data"),
        ({"train_data": [1, 2, 3]}, TypeError, "train_data"),
        ({"out_dir": 3}, TypeError, "out_dir"),
    ],
)
def test_bad_arguments_are_refused(small, tmp_path, change, error, match):
    model, train, val = small
    kwargs = {"validation_data": val, "out_dir": tmp_path / "out", "verbose": False, **change}
    train = kwargs.pop("train_data", train)
    with pytest.raises(error, match=match) as raised:
        tfgreen.optimize(model, train, **kwargs)
    assert isinstance(raised.value, TfgreenError)
    assert not (tmp_path / "out").exists()


def test_bad_data_and_paths_are_refused(small, tmp_path):
    model, (x, y), val = small
    with pytest.raises(TypeError, match="not a Keras model"):
        tfgreen.optimize("model.keras", (x, y), validation_data=val, out_dir=tmp_path)
    with pytest.raises(ValueError, match="matching"):
        tfgreen.optimize(model, (x, y[:10]), validation_data=val, out_dir=tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        bad = x.copy()
        bad[5, 0, 0, 0] = np.nan
        tfgreen.optimize(model, (bad, y), validation_data=val, out_dir=tmp_path)
    with pytest.raises(ValueError, match="input"):
        tfgreen.optimize(model, (x[:, :4], y), validation_data=val, out_dir=tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        tfgreen.optimize(model, (x, y), validation_data=val, out_dir=a_file)


def test_language_model_bad_input(flavor, text_data, tmp_path):
    from tfgreen.models import tiny_gpt

    lm = tiny_gpt(flavor, vocab_size=300, seq_len=32, embed_dim=8, num_layers=1, ff_dim=16)
    ids = text_data.val[:8]  # a 512-token vocabulary: ids past 299
    with pytest.raises(ValueError, match="vocabulary"):
        tfgreen.optimize(lm, ids, validation_data=ids, out_dir=tmp_path)
    small_ids = ids % 300
    with pytest.raises(ValueError, match="perplexity ratio, not an accuracy drop"):
        tfgreen.optimize(
            lm, small_ids, validation_data=small_ids, max_accuracy_drop=0.01, out_dir=tmp_path
        )
    with pytest.raises(TypeError, match="token ids"):
        tfgreen.optimize(lm, (small_ids, small_ids), validation_data=small_ids, out_dir=tmp_path)
    with pytest.raises(ValueError, match="max_perplexity_ratio"):
        tfgreen.optimize(
            lm, small_ids, validation_data=small_ids, max_perplexity_ratio=0.9, out_dir=tmp_path
        )


# ---- the command line


@pytest.mark.slow
def test_cli_optimize_runs_and_writes_the_report(tmp_path, python_run):
    from tfgreen.models import small_mlp

    (x_train, y_train), _ = tfgreen.datasets.load_digits(flat=True)
    model = small_mlp(hidden=(16,), seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=3, verbose=0)
    model.save(tmp_path / "mlp.keras")
    out = tmp_path / "out"
    done = python_run(
        "-m", "tfgreen", "optimize", str(tmp_path / "mlp.keras"), "--data", "digits-flat",
        "--target", "mcu", "--budget-minutes", "0.1", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((out / "search.json").read_text())
    assert saved["target"] == "mcu" and saved["best"]["quantization"] == "int8"  # mcu: int8 only
    assert f"pick       {saved['best']['name']} -> {saved['best']['path']}" in done.stdout
    assert (out / "optimize.md").is_file() and (out / "accuracy_vs_energy.png").is_file()


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--target", "toaster"], "Unknown target"),
        (["--max-accuracy-drop", "2"], "max_accuracy_drop"),
        (["--train", "missing.npz"], "--train` and `--validation` go together"),
    ],
)
def test_cli_optimize_bad_input_exits_2_with_one_line(tmp_path, python_run, extra, match):
    from tfgreen.models import small_mlp

    small_mlp(hidden=(4,)).save(tmp_path / "m.keras")
    done = python_run(
        "-m", "tfgreen", "optimize", str(tmp_path / "m.keras"), "--data", "digits-flat",
        "--out", str(tmp_path / "out"), *extra,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("tfgreen optimize")]
    assert len(lines) == 1 and match in lines[0], done.stderr[-2000:]
