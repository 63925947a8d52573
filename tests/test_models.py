import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TfgreenValueError
from tfgreen.models import position_embedding_class, tiny_encoder_classifier, tiny_gpt
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.read import read_tflite
from tfgreen.tflite.runner import TfliteRunner


def _ids(n, seq_len, vocab, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, (n, seq_len)).astype("int32")


def test_tiny_gpt_is_causal(flavor):
    model = tiny_gpt(flavor, vocab_size=300, seq_len=16, embed_dim=16)
    ids = _ids(2, 16, 300)
    changed = ids.copy()
    changed[:, 10] = (changed[:, 10] + 1) % 300
    a, b = np.asarray(model(ids)), np.asarray(model(changed))
    assert a.shape == (2, 16, 300)
    np.testing.assert_allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert np.abs(a[:, 10:] - b[:, 10:]).max() > 1e-4


def test_tiny_gpt_layers_and_seed(flavor):
    model = tiny_gpt(flavor, vocab_size=300, seq_len=16, embed_dim=16, num_layers=2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("MultiHeadAttention") == 2 and kinds.count("Add") == 5
    assert "TFOpLambda" not in kinds and "Lambda" not in kinds
    again = tiny_gpt(flavor, vocab_size=300, seq_len=16, embed_dim=16, num_layers=2)
    ids = _ids(1, 16, 300)
    np.testing.assert_array_equal(np.asarray(model(ids)), np.asarray(again(ids)))


def test_tiny_gpt_keras_file_round_trip(flavor, tmp_path):
    model = tiny_gpt(flavor, vocab_size=300, seq_len=16, embed_dim=16)
    path = tmp_path / "lm.keras"
    model.save(path)
    loaded = tfgreen.load_model(path)  # safe_mode: the registered layer, no Lambda
    ids = _ids(3, 16, 300)
    np.testing.assert_allclose(np.asarray(loaded(ids)), np.asarray(model(ids)), atol=1e-6)
    layer = loaded.get_layer("position_embedding")
    assert layer.get_config()["sequence_length"] == 16
    assert type(layer) is position_embedding_class(flavor)


def test_tiny_gpt_converts_with_builtin_ops_only(flavor):
    model = tiny_gpt(flavor, vocab_size=300, seq_len=16, embed_dim=16)
    data = convert(model)
    ops = {op.name for op in read_tflite(data).ops}
    assert not any("FLEX" in op or "CUSTOM" in op for op in ops), ops
    assert {"BATCH_MATMUL", "SOFTMAX", "GELU", "GATHER"} <= ops
    runner = TfliteRunner(data)
    assert np.dtype(runner.inputs[0]["dtype"]) == np.int32
    ids = _ids(4, 16, 300)
    np.testing.assert_allclose(runner.predict(ids, batch_size=4), np.asarray(model(ids)), atol=1e-4)


def test_encoder_classifier_trains_and_converts(flavor, tmp_path):
    from tfgreen.flavor import keras_for

    keras = keras_for(flavor)
    model = tiny_encoder_classifier(flavor, vocab_size=50, seq_len=8, num_classes=2, embed_dim=16)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, (256, 8)).astype("int32")
    y = (x == 7).any(axis=1).astype("int32")  # does the window hold token 7?
    model.compile(
        keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    accuracy = model.evaluate(x, y, verbose=0)[1]
    assert model.output_shape == (None, 2) and accuracy > 0.9
    model.save(tmp_path / "enc.keras")
    ids = x[:4]
    np.testing.assert_allclose(
        np.asarray(tfgreen.load_model(tmp_path / "enc.keras")(ids)),
        np.asarray(model(ids)),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        TfliteRunner(convert(model)).predict(ids), np.asarray(model(ids)), atol=1e-5
    )


def test_bad_model_arguments():
    with pytest.raises(TfgreenValueError, match="split evenly.*embed_dim=30, num_heads=4"):
        tiny_gpt(vocab_size=300, embed_dim=30, num_heads=4)
    with pytest.raises(TfgreenValueError, match="vocab_size=1"):
        tiny_gpt(vocab_size=1)
    with pytest.raises(TfgreenValueError, match="num_classes=0"):
        tiny_encoder_classifier(num_classes=0)
    with pytest.raises(TfgreenValueError, match="Unknown Keras flavour"):
        tiny_gpt("torch")


def test_keras_file_loads_in_a_fresh_process(flavor, tmp_path, python_run):
    path = tmp_path / "lm.keras"
    tiny_gpt(flavor, vocab_size=300, seq_len=16, embed_dim=16).save(path)
    done = python_run(
        "-c",
        f"import tfgreen; m = tfgreen.load_model({str(path)!r}); print(m.output_shape)",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "(None, 16, 300)"
