import json

import numpy as np
import pytest

import tfgreen
from tfgreen.cli import main
from tfgreen.errors import TfgreenTypeError, TfgreenValueError
from tfgreen.plots import pareto_front
from tfgreen.quantization.ptq import convert

_INT8: dict = {}


@pytest.fixture
def int8_path(flavor, trained_cnn, digits, tmp_path):
    """The trained CNN as an int8 .tflite file."""
    if flavor not in _INT8:
        (x_train, _), _ = digits
        _INT8[flavor] = convert(
            trained_cnn, "int8", representative=lambda: ([x_train[i : i + 1]] for i in range(64))
        )
    path = tmp_path / "cnn_int8.tflite"
    path.write_bytes(_INT8[flavor])
    return path


def test_pareto_front_on_known_numbers():
    points = [
        (10.0, 0.90),  # 0: on the front
        (5.0, 0.80),  # 1: on the front (cheapest)
        (12.0, 0.85),  # 2: beaten by 0 (cheaper and better)
        (5.0, 0.70),  # 3: beaten by 1 (same cost, worse)
        (20.0, 0.95),  # 4: on the front (best)
        (None, 0.99),  # 5: unknown cost, left out
        (20.0, 0.95),  # 6: ties with 4: neither beats the other
    ]
    assert pareto_front(points) == [1, 0, 4, 6]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 0.5)]) == [0]


def test_compare_keras_and_tflite(flavor, trained_cnn, int8_path, digits, tmp_path):
    _, (x_test, y_test) = digits
    result = tfgreen.compare(
        {"float": trained_cnn, "int8": {"model": str(int8_path), "training_kwh": 2e-6}},
        (x_test, y_test),
        runs=10,
        energy_seconds=0.3,
    )
    base, exported, int8 = result.rows
    assert [base["kind"], exported["kind"], int8["kind"]] == ["keras", "tflite", "tflite"]
    # savings are against the float32 .tflite of the first model, exported on the fly
    assert result.baseline == exported["model"] == "float float32 .tflite"
    assert "exported for this comparison" in result.baseline_note
    assert exported["accuracy"] == pytest.approx(
        np.mean(np.argmax(trained_cnn.predict(x_test, verbose=0), 1) == y_test), abs=0.002
    )
    expected = np.mean(np.argmax(trained_cnn.predict(x_test, verbose=0), 1) == y_test)
    assert base["accuracy"] == pytest.approx(expected)
    assert abs(int8["accuracy"] - base["accuracy"]) < 0.03
    assert base["params"] == trained_cnn.count_params()
    assert abs(int8["params"] - base["params"]) < 20  # same weights, plus a few shape constants
    assert int8["size_kb"] == pytest.approx(int8_path.stat().st_size / 1024)
    assert int8["size_kb"] < 0.5 * base["size_kb"]  # int8 weights: about 4x smaller
    assert 0 < int8["gzip_kb"] <= int8["size_kb"] * 1.01
    assert 0 <= int8["sparsity"] < 0.2 and base["sparsity"] < 0.01
    assert int8["latency_ms"] > 0 and base["latency_ms"] > 0
    assert base["joules_per_inference"] > int8["joules_per_inference"] > 0
    for row in result.rows:
        assert row["joules_min"] <= row["joules_per_inference"] <= row["joules_max"]
        assert row["joules_spread"] == pytest.approx(row["joules_max"] - row["joules_min"])
    assert exported["energy_saving"] is None and base["energy_saving"] < 0  # Keras costs more
    assert int8["energy_saving"] == pytest.approx(
        1 - int8["joules_per_inference"] / exported["joules_per_inference"]
    )
    lower = exported["joules_min"] - int8["joules_max"]  # the saving's lower bound
    assert int8["saving_measurable"] is (lower > 0)
    if lower > 0:
        assert int8["break_even_inferences"] == pytest.approx(2e-6 * 3.6e6 / lower)
    else:  # inside the spread: no count, and the table says so
        assert int8["break_even_inferences"] is None
    assert base["saving_measurable"] is False and base["break_even_inferences"] is None
    assert "no measurable saving" in result.to_text()  # at least the Keras row's
    assert int8["end_to_end_ms"] > int8["latency_ms"] > 0 and base["end_to_end_ms"] is None
    assert result.energy_method in ("estimate", "measured")
    assert result.pareto("size_kb")[0] == "int8"

    text, markdown, data = result.to_text(), result.to_markdown(), result.to_dict()
    assert "int8" in text and "Energy figures are" in text
    assert "against 'float float32 .tflite' (the float32 .tflite of 'float', exported" in text
    assert markdown.startswith("| model") and "| int8" in markdown
    assert json.loads(json.dumps(data, default=str))["rows"][2]["model"] == "int8"
    # a named baseline is used as given, and the report says so
    named = tfgreen.compare(
        {"float": trained_cnn, "int8": str(int8_path)},
        (x_test, y_test),
        baseline="int8",
        runs=5,
        energy_seconds=0.1,
    )
    assert [row["model"] for row in named.rows] == ["float", "int8"]
    assert named.baseline == "int8" and named.baseline_note == "named by the user"


def test_save_writes_report_and_plots(flavor, trained_cnn, int8_path, digits, tmp_path):
    import matplotlib.image

    _, (x_test, y_test) = digits
    result = tfgreen.compare(
        [trained_cnn, {"model": int8_path, "training_kwh": 1e-6}],
        (x_test[:100], y_test[:100]),
        baseline="small_cnn",  # a Keras call: the int8 file's saving is sure to be measurable
        runs=5,
        energy_seconds=0.2,
    )
    assert [row["model"] for row in result.rows] == ["small_cnn", "cnn_int8.tflite"]
    assert isinstance(result.rows[1]["break_even_inferences"], float)
    written = result.save(tmp_path / "report")
    names = {
        "accuracy_vs_size.png",
        "accuracy_vs_latency.png",
        "accuracy_vs_energy.png",
        "break_even.png",
        "report.md",
        "comparison.json",
    }
    assert set(written) == names
    for name in names - {"report.md", "comparison.json"}:
        image = matplotlib.image.imread(written[name])
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
        assert image.std() > 0.01  # something was drawn
    report = written["report.md"].read_text()
    assert "![break_even.png](break_even.png)" in report and "Pareto front" in report
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(names)
    with pytest.raises(TfgreenValueError, match="output path is a file"):
        result.save(written["report.md"])


def test_training_energy_from_a_tracked_fit(flavor, digits_flat):
    from tfgreen.callbacks import EnergyTracker
    from tfgreen.models import small_mlp

    (x, y), (x_test, y_test) = digits_flat
    model = small_mlp(flavor, hidden=(16,))
    model.compile("adam", "sparse_categorical_crossentropy")
    tracker = EnergyTracker()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[tracker])
    other = small_mlp(flavor, hidden=(8,))
    result = tfgreen.compare(
        {"history": model, "tracker": {"model": other, "tracker": tracker}},
        (x_test, y_test),
        runs=3,
        energy=False,
    )
    assert result.rows[0]["training_kwh"] == pytest.approx(tracker.energy_kwh)  # model.history
    assert result.rows[1]["training_kwh"] == tracker.energy_kwh
    assert result.rows[1]["training_co2_kg"] == tracker.co2_kg
    assert result.rows[0]["joules_per_inference"] is None and result.energy_method == "estimate"


def test_model_that_does_not_fit_the_data(flavor, trained_cnn, int8_path, digits, digits_flat):
    _, (x_flat, y_flat) = digits_flat
    with pytest.raises(TfgreenValueError, match="'cnn' does not fit the data: its input shape"):
        tfgreen.compare({"cnn": trained_cnn}, (x_flat, y_flat), energy=False)
    with pytest.raises(TfgreenValueError, match="'int8' does not fit the data: its input shape"):
        tfgreen.compare({"int8": int8_path}, (x_flat, y_flat), energy=False)
    _, (x_test, y_test) = digits
    with pytest.raises(TfgreenValueError, match="too few outputs for the labels"):
        tfgreen.compare({"cnn": trained_cnn}, (x_test, y_test + 10), energy=False)


@pytest.mark.parametrize(
    "candidates, data, error, match",
    [
        ({"a": "model.tflite"}, "digits", TfgreenTypeError, "`data` must be an \\(x, y\\) pair"),
        ({}, None, TfgreenValueError, "`candidates` is empty"),
        ({"a": 3}, None, TfgreenTypeError, "Candidate 'a' cannot be compared"),
        ({"a": "missing.tflite"}, None, FileNotFoundError, "does not exist"),
        ("model.tflite", None, TfgreenTypeError, "`candidates` must be a dict or a list"),
    ],
)
def test_bad_input(candidates, data, error, match, digits):
    _, (x_test, y_test) = digits
    with pytest.raises(error, match=match):
        tfgreen.compare(candidates, (x_test, y_test) if data is None else data)


def test_bad_data_and_options(digits):
    from tfgreen.callbacks import EnergyTracker

    _, (x_test, y_test) = digits
    unused = {"model": np.zeros(8, "uint8").tobytes(), "tracker": EnergyTracker()}
    with pytest.raises(TfgreenValueError, match="`tracker` has no figures"):
        tfgreen.compare({"a": unused}, (x_test, y_test))
    with pytest.raises(TfgreenValueError, match="matching samples and labels"):
        tfgreen.compare({"a": "m.tflite"}, (x_test, y_test[:10]))
    with pytest.raises(TfgreenValueError, match="`runs` must be an int >= 1"):
        tfgreen.compare({"a": "m.tflite"}, (x_test, y_test), runs=0)
    with pytest.raises(TfgreenValueError, match="Unknown country code"):
        tfgreen.compare({"a": "m.tflite"}, (x_test, y_test), country_iso_code="Germany")


def test_cli_compare(flavor, trained_cnn, int8_path, tmp_path, capsys):
    keras_path = tmp_path / "cnn.keras"
    trained_cnn.save(keras_path)
    out = tmp_path / "out"
    code = main(
        ["compare", str(int8_path), str(keras_path), "--data", "digits", "--out", str(out)]
        + ["--runs", "5", "--energy-seconds", "0.2"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "cnn_int8.tflite" in printed and "cnn.keras" in printed
    assert (out / "report.md").exists() and (out / "accuracy_vs_energy.png").exists()
    # the CNN does not take flat vectors: one clear line, exit code 2
    assert main(["compare", str(int8_path), "--data", "digits-flat", "--no-energy"]) == 2
    assert "does not fit the data" in capsys.readouterr().err


@pytest.mark.parametrize("head", ["binary_logits", "sigmoid", "softmax"])
def test_compare_and_export_agree_on_accuracy(flavor, keras, seed, head, tmp_path):
    """One top-1 rule (tfgreen._metrics): same accuracy in compare and export_tflite."""
    from tfgreen import _metrics
    from tfgreen.datasets import load_breast_cancer

    (x_train, y_train), (x_test, y_test) = load_breast_cancer()
    units, activation, loss = {
        "binary_logits": (1, None, keras.losses.BinaryCrossentropy(from_logits=True)),
        "sigmoid": (1, "sigmoid", "binary_crossentropy"),
        "softmax": (2, "softmax", "sparse_categorical_crossentropy"),
    }[head]
    model = keras.Sequential(
        [
            keras.Input((30,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    model.compile(keras.optimizers.Adam(0.003), loss)
    model.fit(x_train, y_train, epochs=4, batch_size=32, verbose=0)
    report = tfgreen.export_tflite(
        model, tmp_path / "m.tflite", target="cpu", validation_data=(x_test, y_test)
    )
    result = tfgreen.compare(
        {"keras": model, "tflite": report.path}, (x_test, y_test), runs=3, energy=False
    )
    keras_row, tflite_row = result.rows
    outputs = model.predict(x_test, verbose=0)
    assert _metrics.output_kind(outputs) == (
        "logits" if head == "binary_logits" else "probabilities"
    )
    assert keras_row["accuracy"] == pytest.approx(_metrics.accuracy(outputs, y_test))
    assert keras_row["accuracy"] == pytest.approx(report.keras_accuracy)
    assert tflite_row["accuracy"] == pytest.approx(report.accuracy)
    if head == "binary_logits":  # a logit is thresholded at 0, not at 0.5
        assert keras_row["accuracy"] == pytest.approx(np.mean((outputs[:, 0] > 0) == y_test))
        # and this model is one where the old 0.5 threshold gave another figure
        assert keras_row["accuracy"] != pytest.approx(np.mean((outputs[:, 0] > 0.5) == y_test))


_LM_FILES: dict = {}


@pytest.fixture
def lm_files(flavor, tiny_lm):
    """The trained tiny LM as float32 and dynamic-range int8 .tflite bytes (once per flavour)."""
    if flavor not in _LM_FILES:
        _LM_FILES[flavor] = {kind: convert(tiny_lm, kind) for kind in ("float32", "dynamic")}
    return _LM_FILES[flavor]


def test_compare_language_models_on_token_ids(flavor, tiny_lm, lm_files, text_data, tmp_path):
    from tfgreen.perplexity import next_token_agreement, perplexity

    ids = text_data.val[:48]
    seq_len = ids.shape[1]
    result = tfgreen.compare(
        {"keras": tiny_lm, "float32": lm_files["float32"], "dynamic": lm_files["dynamic"]},
        ids,
        runs=10,
        energy_seconds=0.3,
    )
    rows = {row["model"]: row for row in result.rows}
    keras_ppl = perplexity(tiny_lm, ids)
    assert rows["keras"]["perplexity"] == pytest.approx(keras_ppl)
    assert 1 < keras_ppl < 300  # trained: well below the vocabulary of 512
    assert rows["float32"]["perplexity"] == pytest.approx(keras_ppl, rel=1e-4)
    assert rows["dynamic"]["perplexity"] == pytest.approx(keras_ppl, rel=0.03)
    assert rows["keras"]["next_token_agreement"] == 1.0
    assert rows["float32"]["next_token_agreement"] >= 0.999
    assert rows["dynamic"]["next_token_agreement"] == pytest.approx(
        next_token_agreement(tiny_lm, lm_files["dynamic"], ids)
    )
    assert rows["dynamic"]["next_token_agreement"] >= 0.95
    assert rows["dynamic"]["size_kb"] < 0.5 * rows["float32"]["size_kb"]
    for row in rows.values():
        assert row["tokens_per_second"] == pytest.approx(seq_len * 1000 / row["latency_ms"])
        assert row["joules_per_token"] == pytest.approx(row["joules_per_inference"] / seq_len)
        assert row["joules_per_token"] > 0 and "accuracy" not in row
    assert rows["keras"]["joules_per_inference"] > rows["float32"]["joules_per_inference"]
    assert result.quality == "perplexity" and result.columns[2:4] == (
        "perplexity",
        "next_token_agreement",
    )
    assert "joules_per_token" in result.to_text() and "48 windows of 32 token ids" in (
        result.data_description
    )
    written = result.save(tmp_path / "report")
    assert {"perplexity_vs_size.png", "perplexity_vs_energy.png", "report.md"} <= set(written)
    report = written["report.md"].read_text()
    assert "Pareto front, perplexity vs size (kB): dynamic" in report
    assert json.loads(written["comparison.json"].read_text())["quality"] == "perplexity"


def test_token_data_that_does_not_fit(flavor, tiny_lm, trained_cnn, text_data):
    ids = text_data.val[:4]
    with pytest.raises(TfgreenValueError, match="'cnn' does not fit the data: its input shape"):
        tfgreen.compare({"cnn": trained_cnn}, ids, energy=False)
    with pytest.raises(TfgreenValueError, match="'lm' does not fit the data: its input shape"):
        tfgreen.compare({"lm": tiny_lm}, ids[:, :16], energy=False)
    with pytest.raises(TfgreenValueError, match="token ids out of its vocabulary.*vocab_size=512"):
        tfgreen.compare({"lm": tiny_lm}, ids + 512, energy=False)
    with pytest.raises(TfgreenValueError, match="at least 2 ids, none negative"):
        tfgreen.compare({"lm": tiny_lm}, ids - 1000, energy=False)
    with pytest.raises(TfgreenValueError, match="at least 2 ids"):
        tfgreen.compare({"lm": tiny_lm}, ids[0], energy=False)


def test_cli_compare_token_data(flavor, tiny_lm, lm_files, tmp_path, capsys):
    path = tmp_path / "lm_dynamic.tflite"
    path.write_bytes(lm_files["dynamic"])
    args = ["compare", str(path), "--data", "text", "--seq-len", "32", "--vocab-size", "512"]
    assert main([*args, "--runs", "5", "--no-energy"]) == 0
    printed = capsys.readouterr().out
    assert "perplexity" in printed and "tokens_per_second" in printed and "windows of 32" in printed
    assert main([*args[:-4], "--no-energy"]) == 2  # seq_len 64 windows for a 32-token model
    assert "does not fit the data: its input shape" in capsys.readouterr().err


def test_compare_a_kerashub_causal_lm(text_data, make_gpt2):
    """A KerasHub GPT2CausalLM built from its config (token_ids + padding_mask inputs)."""
    lm = make_gpt2(num_layers=1)
    result = tfgreen.compare({"gpt2": lm}, text_data.val[:8], runs=5, energy_seconds=0.2)
    (row,) = result.rows
    assert 300 < row["perplexity"] < 900  # untrained: about the vocabulary of 512
    assert row["params"] == lm.count_params() and row["tokens_per_second"] > 0
    assert row["joules_per_token"] > 0
