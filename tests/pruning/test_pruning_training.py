"""Pruning in `fit()` of both Kerases: target reached, 2:4 pattern, accuracy, export, save/load, resume."""

import numpy as np
import pytest

import tfgreen
from tfgreen.errors import TfgreenValueError
from tfgreen.models import small_cnn, small_mlp
from tfgreen.pruning.api import pruned_layers
from tfgreen.quantization.ptq import convert
from tfgreen.tflite.read import read_tflite


def _overall(model) -> float:
    kernels = [layer.get_weights()[0] for layer in model.layers]
    return sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)


def test_reaches_target_and_logs_sparsity(flavor, pruned80):
    pruned, history = pruned80
    per_layer = tfgreen.sparsity(pruned)
    assert sorted(per_layer) == ["dense1", "dense2", "output"]
    for value in per_layer.values():
        assert abs(value - 0.8) < 1e-3
    logged = history.history["sparsity"]
    assert len(logged) == 4
    assert 0.3 < logged[0] < logged[1] < logged[2] <= logged[3]
    assert abs(logged[-1] - 0.8) < 1e-3


def test_accuracy_within_1_5_points_of_dense(flavor, dense_mlp, pruned80, digits_flat):
    _, dense_accuracy = dense_mlp
    pruned, _ = pruned80
    _, (x_test, y_test) = digits_flat
    accuracy = pruned.evaluate(x_test, y_test, verbose=0)[1]
    assert dense_accuracy > 0.9
    assert accuracy >= dense_accuracy - 0.015


def test_strip_save_load_round_trip(flavor, keras, pruned80, digits_flat, tmp_path):
    pruned, _ = pruned80
    _, (x_test, _) = digits_flat
    slim = tfgreen.strip(pruned)
    assert isinstance(slim, keras.Model)
    assert not pruned_layers(slim)
    assert [layer.name for layer in slim.layers] == ["dense1", "dense2", "output"]
    assert tfgreen.sparsity(slim) == tfgreen.sparsity(pruned)
    np.testing.assert_allclose(
        slim.predict(x_test, verbose=0), pruned.predict(x_test, verbose=0), atol=1e-5
    )
    path = tmp_path / "slim.keras"
    slim.save(path)
    again = tfgreen.load_model(path)
    assert isinstance(again, keras.Model)
    assert tfgreen.sparsity(again) == tfgreen.sparsity(slim)
    np.testing.assert_allclose(
        again.predict(x_test, verbose=0), slim.predict(x_test, verbose=0), atol=1e-6
    )


@pytest.mark.parametrize("quantization", ["float32", "int8"])
def test_sparsity_survives_export(flavor, pruned80, digits_flat, quantization):
    pruned, _ = pruned80
    (x_train, _), _ = digits_flat
    calib = x_train[:100]
    data = convert(
        tfgreen.strip(pruned),
        quantization,
        representative=lambda: ([calib[i : i + 1]] for i in range(len(calib))),
    )
    info = read_tflite(data)
    assert len(info.weight_sparsity) == 3
    assert abs(info.total_weight_sparsity() - 0.8) <= 0.005
    if quantization == "int8":
        kernels = [info.tensors[op.inputs[1]] for op in info.ops if op.name == "FULLY_CONNECTED"]
        assert [t.dtype for t in kernels] == ["int8"] * 3


def test_2_4_pattern_is_exact(compiled, flavor, dense_mlp, digits_flat):
    model, _ = dense_mlp
    (x_train, y_train), _ = digits_flat
    pruned = compiled(tfgreen.prune(model, structure="2:4"))
    pruned.fit(
        x_train[:320], y_train[:320], epochs=1, verbose=0, callbacks=[tfgreen.callbacks.Pruning()]
    )
    slim = tfgreen.strip(pruned)
    for layer in slim.layers:
        kernel = layer.get_weights()[0]  # (in, out): groups of 4 consecutive inputs per output
        groups = np.moveaxis(kernel, -1, 0).reshape(-1, 4)
        np.testing.assert_array_equal((groups == 0).sum(axis=1), 2)
    assert tfgreen.sparsity(slim) == {"dense1": 0.5, "dense2": 0.5, "output": 0.5}


def test_missing_callback_fails_on_first_step(compiled, flavor, digits_flat):
    (x_train, y_train), _ = digits_flat
    pruned = compiled(tfgreen.prune(small_mlp(flavor, hidden=(16,))))
    with pytest.raises(
        Exception, match=r"without the pruning callback.*tfgreen\.callbacks\.Pruning"
    ):
        pruned.fit(x_train[:64], y_train[:64], epochs=1, verbose=0)


def test_callback_on_unpruned_model(compiled, flavor, digits_flat):
    (x_train, y_train), _ = digits_flat
    model = compiled(small_mlp(flavor, hidden=(16,)))
    with pytest.raises(TfgreenValueError, match="no pruned layers"):
        model.fit(
            x_train[:64], y_train[:64], epochs=1, verbose=0, callbacks=[tfgreen.callbacks.Pruning()]
        )


def test_schedule_longer_than_run_warns_with_figures(compiled, flavor, digits_flat):
    (x_train, y_train), _ = digits_flat
    schedule = tfgreen.PolynomialDecay(0.8, end=100)
    pruned = compiled(tfgreen.prune(small_mlp(flavor, hidden=(16,)), schedule=schedule))
    with pytest.warns(UserWarning) as caught:
        pruned.fit(
            x_train[:320],
            y_train[:320],
            epochs=2,
            batch_size=32,
            verbose=0,
            callbacks=[tfgreen.callbacks.Pruning()],
        )
    texts = [str(w.message) for w in caught]
    # Updates every 3 steps (about 40 per schedule): the last one in the run is at step 18.
    reachable = 0.8 * (1 - (1 - 18 / 100) ** 3)
    assert any(
        f"ends at step 100 but this fit() run has only 20 steps; sparsity will reach {reachable:.3f}"
        in t
        for t in texts
    )
    assert any("did not reach its target" in t and "target is 0.8000" in t for t in texts)
    assert abs(_overall(tfgreen.strip(pruned)) - reachable) < 2e-3


def test_resume_from_saved_file_with_initial_epoch(
    compiled, flavor, keras, dense_mlp, digits_flat, tmp_path
):
    model, _ = dense_mlp
    (x_train, y_train), _ = digits_flat
    x, y = x_train[:640], y_train[:640]  # 20 steps per epoch, 80 steps in 4 epochs
    pruned = compiled(tfgreen.prune(model, sparsity=0.8))

    def stop_after_two(epoch, logs):
        pruned.stop_training = epoch == 1

    stop = keras.callbacks.LambdaCallback(on_epoch_end=stop_after_two)
    with pytest.warns(UserWarning, match="did not reach its target"):
        first = pruned.fit(x, y, epochs=4, verbose=0, callbacks=[tfgreen.callbacks.Pruning(), stop])
    middle = first.history["sparsity"][-1]
    # Step 40 of 80, schedule ends at step 64, masks update every 2 steps:
    # the last update before the stop is at step 38.
    assert abs(middle - 0.8 * (1 - (1 - 38 / 64) ** 3)) < 2e-3

    path = tmp_path / "mid.keras"
    pruned.save(path)
    resumed = compiled(tfgreen.load_model(path))
    assert tfgreen.sparsity(resumed) == tfgreen.sparsity(pruned)
    second = resumed.fit(
        x, y, epochs=4, initial_epoch=2, verbose=0, callbacks=[tfgreen.callbacks.Pruning()]
    )
    logged = second.history["sparsity"]
    assert middle < logged[0] < logged[1]
    assert abs(logged[1] - 0.8) < 1e-3


def test_conv_kernels_pruned_unstructured_and_2_4(compiled, flavor, digits):
    (x_train, y_train), _ = digits
    schedule = tfgreen.ConstantSparsity(0.5)
    unstructured = compiled(tfgreen.prune(small_cnn(flavor), schedule=schedule))
    structured = compiled(tfgreen.prune(small_cnn(flavor), structure="2:4"))
    for model in (unstructured, structured):
        model.fit(
            x_train[:256],
            y_train[:256],
            epochs=1,
            verbose=0,
            callbacks=[tfgreen.callbacks.Pruning()],
        )
    assert tfgreen.sparsity(unstructured) == {
        "conv1": 0.5,
        "conv2": 0.5,
        "dense1": 0.5,
        "output": 0.5,
    }
    # conv2's kernel is (3, 3, 16, 32): 2 zeros in every 4 consecutive input channels.
    kernel = tfgreen.strip(structured).get_layer("conv2").get_weights()[0]
    groups = np.moveaxis(kernel, -1, 0).reshape(-1, 4)
    np.testing.assert_array_equal((groups == 0).sum(axis=1), 2)
    assert sorted(tfgreen.sparsity(structured)) == ["conv2", "dense1", "output"]


def test_unknown_steps_per_epoch_is_refused(compiled, flavor, digits_flat):
    import tensorflow as tf

    (x_train, y_train), _ = digits_flat
    data = tf.data.Dataset.from_generator(
        lambda: iter(zip(x_train[:64], y_train[:64], strict=True)),
        output_signature=(tf.TensorSpec((64,), tf.float32), tf.TensorSpec((), tf.int64)),
    ).batch(32)
    pruned = compiled(tfgreen.prune(small_mlp(flavor, hidden=(16,))))
    with pytest.raises(TfgreenValueError, match="steps per epoch is unknown.*steps_per_epoch"):
        pruned.fit(data, epochs=1, verbose=0, callbacks=[tfgreen.callbacks.Pruning()])


def test_steps_per_execution_still_reaches_target(flavor, digits_flat):
    (x_train, y_train), _ = digits_flat
    pruned = tfgreen.prune(small_mlp(flavor, hidden=(32,)), sparsity=0.7)
    pruned.compile("adam", "sparse_categorical_crossentropy", steps_per_execution=6)
    # 20 steps in calls of 6: the schedule's last update (step 16) falls inside a call.
    history = pruned.fit(
        x_train[:640],
        y_train[:640],
        epochs=1,
        batch_size=32,
        verbose=0,
        callbacks=[tfgreen.callbacks.Pruning()],
    )
    assert abs(history.history["sparsity"][-1] - 0.7) < 1e-3
    for value in tfgreen.sparsity(pruned).values():
        assert abs(value - 0.7) < 1e-3
