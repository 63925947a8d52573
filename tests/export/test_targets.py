"""Built-in and user-defined device targets."""

import dataclasses
import json

import pytest

import tfgreen
from tfgreen.errors import TfgreenFileNotFoundError, TfgreenValueError
from tfgreen.export.targets import get_target


def test_builtin_targets_say_what_each_device_needs():
    targets = tfgreen.targets()
    assert sorted(targets) == ["cpu", "edge-cpu", "edge-gpu", "edge-tpu", "mcu", "vehicle-ecu"]
    assert [targets[n].quantization for n in ("cpu", "edge-cpu", "edge-gpu")] == [
        "float32",
        "int8",
        "float16",
    ]
    tpu, mcu, ecu = targets["edge-tpu"], targets["mcu"], targets["vehicle-ecu"]
    assert (tpu.input_dtype, tpu.output_dtype, tpu.allow_float_ops) == ("uint8", "uint8", False)
    assert (mcu.input_dtype, mcu.static_shapes, mcu.c_array) == ("int8", True, True)
    assert ecu.static_shapes and ecu.deterministic and ecu.max_reference_lsb == 1.0
    assert {"parity", "reference_kernels", "deterministic", "float_ops"} <= set(ecu.strict)
    assert targets["edge-cpu"].allow_float_ops and "float_ops" not in targets["edge-cpu"].strict


def test_target_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        tfgreen.targets()["mcu"].quantization = "float32"


def test_target_from_json_round_trip(tmp_path):
    path = tmp_path / "board.json"
    mine = dataclasses.replace(tfgreen.targets()["mcu"], name="my-board", size_budget_bytes=64_000)
    path.write_text(json.dumps(mine.to_dict()))
    loaded = tfgreen.Target.from_json(path)
    assert loaded == mine
    assert get_target(str(path)) == mine
    assert get_target(mine) is mine


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"name": "b", "quantization": "int3"}, "Received: quantization='int3'"),
        ({"name": "b", "input_dtype": "int8"}, "Invalid target field `input_dtype`"),
        ({"name": "b", "min_cosine": 1.5}, "min_cosine=1.5"),
        ({"name": "b", "strict": ["speed"]}, r"names checks that do not exist: \['speed'\]"),
        ({"name": "b", "budget": 10}, r"unknown=\['budget'\]"),
        ({"quantization": "int8"}, "name=None"),
    ],
)
def test_bad_target_json_is_refused(tmp_path, data, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TfgreenValueError, match=match):
        tfgreen.Target.from_json(path)


def test_unknown_target_names_the_builtins(tmp_path):
    with pytest.raises(TfgreenValueError, match=r"Received: target='tpu'"):
        get_target("tpu")
    with pytest.raises(TfgreenFileNotFoundError, match="does not exist"):
        get_target(str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{name: ")
    with pytest.raises(TfgreenValueError, match="not valid JSON"):
        get_target(str(tmp_path / "broken.json"))


def _weights_in_file(context):
    """The file holds at least one weight tensor."""
    count = len(context.info.weight_counts)
    return {"passed": count > 0, "weight_tensors": count}


def test_a_new_check_is_one_function_and_one_registry_line(softmax_cnn, tmp_path, monkeypatch):
    from tfgreen.export import checks

    monkeypatch.setitem(checks.CHECKS, "weights_in_file", _weights_in_file)  # removed after
    strict = dataclasses.replace(
        tfgreen.targets()["cpu"], name="strict-cpu", strict=("io_dtypes", "weights_in_file")
    )
    report = tfgreen.export_tflite(softmax_cnn, tmp_path / "m.tflite", target=strict)
    figures = report.checks["weights_in_file"]
    assert figures == {"passed": True, "strict": True, "weight_tensors": figures["weight_tensors"]}
    assert figures["weight_tensors"] >= 4  # two kernels and two biases at least
    manifest = json.loads((tmp_path / "m.tflite.json").read_text())
    assert manifest["checks"]["weights_in_file"] == figures

    # strict and failing: refused, named, with the check's own docstring as the reason
    monkeypatch.setitem(
        checks.CHECKS, "weights_in_file", lambda context: {"passed": False, "weight_tensors": 0}
    )
    with pytest.raises(tfgreen.errors.TargetError, match=r"check\(s\) weights_in_file failed"):
        tfgreen.export_tflite(softmax_cnn, tmp_path / "n.tflite", target=strict)
    assert not (tmp_path / "n.tflite").exists()


def test_an_unregistered_check_cannot_be_strict():
    with pytest.raises(TfgreenValueError, match=r"weights_in_file"):
        dataclasses.replace(tfgreen.targets()["cpu"], strict=("weights_in_file",))
