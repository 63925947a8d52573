import numpy as np
import pytest

import tfgreen
from tfgreen.energy.estimate import TABLES, count_macs, estimate_energy
from tfgreen.errors import TfgreenTypeError, TfgreenValueError
from tfgreen.quantization.ptq import convert

# 64-256-256-10: the MACs of each Dense layer are inputs x units
MLP_MACS = 64 * 256 + 256 * 256 + 256 * 10


@pytest.fixture
def digits_mlp(flavor, digits_flat):
    from tfgreen.models import small_mlp

    (x, y), _ = digits_flat
    model = small_mlp(flavor, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    return model


def test_mlp_macs_are_exact_and_int8_is_cheaper_on_an_mcu(flavor, digits_mlp, digits_flat):
    (x, _), _ = digits_flat
    float32 = convert(digits_mlp)
    int8 = convert(
        digits_mlp,
        "int8",
        representative=lambda: ([x[i : i + 1]] for i in range(32)),
        io_dtype="int8",
    )
    from_model = estimate_energy(digits_mlp, target="mcu")
    estimates = {
        name: estimate_energy(data, target="mcu")
        for name, data in (("float32", float32), ("int8", int8))
    }
    for estimate in (from_model, *estimates.values()):
        assert estimate.macs == estimate.dense_macs == MLP_MACS
        assert [op["op"] for op in estimate.ops] == ["FULLY_CONNECTED"] * 3
        assert estimate.method.startswith("model estimate (Horowitz 2014")
        assert "not a measurement" in estimate.method and estimate.joules_per_token is None
    assert from_model.joules_per_inference == pytest.approx(
        estimates["float32"].joules_per_inference
    )
    weights = 4 * MLP_MACS + 4 * (256 + 256 + 10)  # float32 kernels and biases
    assert estimates["float32"].weight_bytes == weights
    assert estimates["int8"].weight_bytes == MLP_MACS + 4 * (256 + 256 + 10)  # int32 biases
    assert [op["dtype"] for op in estimates["int8"].ops] == ["int8"] * 3
    assert estimates["float32"].joules_per_inference >= 3 * estimates["int8"].joules_per_inference
    # the parts add up, each priced from the table
    table = TABLES["mcu"]
    int8_estimate = estimates["int8"]
    assert int8_estimate.breakdown["macs"] == pytest.approx(
        MLP_MACS * table["mac_pj"]["int8"] * 1e-12
    )
    assert int8_estimate.breakdown["weights"] == pytest.approx(
        int8_estimate.weight_bytes * table["sram_pj_per_byte"] * 1e-12
    )
    assert sum(int8_estimate.breakdown.values()) == pytest.approx(
        int8_estimate.joules_per_inference
    )


def test_conv_and_depthwise_macs_are_exact(flavor, keras):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, padding="same"),  # 8x8x4 outputs x 3x3x1
            keras.layers.DepthwiseConv2D(3),  # 6x6x4 outputs x 3x3
            keras.layers.Flatten(),
            keras.layers.Dense(10),  # 144 x 10
        ]
    )
    ops = count_macs(convert(model))
    assert [(op["op"], op["macs"]) for op in ops] == [
        ("CONV_2D", 8 * 8 * 4 * 9),
        ("DEPTHWISE_CONV_2D", 6 * 6 * 4 * 9),
        ("FULLY_CONNECTED", 144 * 10),
    ]
    assert estimate_energy(model, "edge-cpu").macs == 2304 + 1296 + 1440


def test_batch_matmul_and_joules_per_token(keras):
    """A token-id model: Embedding, a self-similarity x @ x^T (BATCH_MATMUL), a Dense head."""
    ids = keras.Input((16,), dtype="int32")
    h = keras.layers.Embedding(50, 8)(ids)
    scores = keras.layers.Dot(axes=2)([h, h])  # [16, 16] from [16, 8] x [8, 16]
    logits = keras.layers.Dense(50)(keras.layers.Concatenate()([h, scores]))
    model = keras.Model(ids, logits)
    estimate = estimate_energy(convert(model), target="edge-cpu")
    macs = {op["op"]: op["macs"] for op in estimate.ops}
    assert macs == {"BATCH_MATMUL": 16 * 16 * 8, "FULLY_CONNECTED": 16 * 24 * 50}
    assert estimate.joules_per_token == pytest.approx(estimate.joules_per_inference / 16)


def test_own_table_and_errors(digits_mlp):
    data = convert(digits_mlp)
    table = {
        "mac_pj": {"float32": 1.0},
        "sram_pj_per_byte": 0.0,
        "dram_pj_per_byte": 0.0,
        "sram_bytes": 1 << 30,
    }
    estimate = tfgreen.estimate_energy(data, target="my-board", table=table)
    assert estimate.joules_per_inference == pytest.approx(MLP_MACS * 1e-12)
    assert estimate.to_dict()["target"] == "my-board"
    assert "user table" in estimate.method
    with pytest.raises(TfgreenValueError, match="No energy table for this target.*target='board'"):
        estimate_energy(data, target="board")
    with pytest.raises(TfgreenValueError, match="misses fields"):
        estimate_energy(data, table={"mac_pj": {}})
    with pytest.raises(TfgreenValueError, match="no MAC price.*float32"):
        estimate_energy(data, table={**table, "mac_pj": {"int8": 0.3}})
    with pytest.raises(TfgreenTypeError, match="needs a model or a .tflite file"):
        estimate_energy(np.zeros(3))


def test_compare_gives_the_estimate_beside_the_measured_figure(digits_mlp, digits_flat, tmp_path):
    (x, _), (x_test, y_test) = digits_flat
    path = tmp_path / "mlp_mcu.tflite"
    tfgreen.export_tflite(digits_mlp, path, target="mcu", calibration_data=x[:64])
    result = tfgreen.compare({"keras": digits_mlp, "mcu": path}, (x_test, y_test), energy=False)
    keras_row, mcu_row = result.rows
    assert mcu_row["estimate_target"] == "mcu"
    assert mcu_row["estimate_joules"] == estimate_energy(path, "mcu").joules_per_inference
    assert keras_row["estimate_joules"] is None and mcu_row["joules_per_inference"] is None
    assert "estimate_joules" in result.to_text()
