"""inspect_tflite and the export / inspect / bench / targets commands."""

import json
import shutil

import numpy as np
import pytest

import tfgreen
from tfgreen.cli import main
from tfgreen.errors import TfliteFileError

_EXPORTS: dict = {}


@pytest.fixture
def mcu_file(flavor, logits_cnn, digits, tmp_path_factory):
    """An mcu (int8) export of the current flavour, made once per session."""
    if flavor not in _EXPORTS:
        (x_train, _), _ = digits
        path = tmp_path_factory.mktemp(f"mcu_{flavor}") / "digits.tflite"
        tfgreen.export_tflite(logits_cnn, path, target="mcu", calibration_data=x_train)
        _EXPORTS[flavor] = path
    return _EXPORTS[flavor]


def test_inspect_reads_and_runs_the_file(mcu_file):
    info = tfgreen.inspect_tflite(mcu_file)
    assert info["manifest"] == "ok" and info["size_bytes"] == mcu_file.stat().st_size
    assert [t["dtype"] for t in info["inputs"] + info["outputs"]] == ["int8", "int8"]
    assert info["inputs"][0]["shape"] == [1, 8, 8, 1]
    assert info["op_counts"]["CONV_2D"] == 2 and info["float_ops"] == []
    assert info["tensor_dtypes"]["int8"] > 5 and "float32" not in info["tensor_dtypes"]
    assert (
        info["run"]["ok"] and info["run"]["outputs"] == [[1, 10]] and info["run"]["latency_ms"] > 0
    )


def _damaged(mcu_file, tmp_path, keep_manifest):
    data = bytearray(mcu_file.read_bytes())
    files = {}
    files["truncated"] = bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10  # inside the weights: only the manifest can tell
    files["bitflip_weights"] = bytes(flipped)
    header = bytearray(data)
    header[5] ^= 0x01  # the TFL3 identifier
    files["bitflip_header"] = bytes(header)
    root = bytearray(data)
    root[1] ^= 0x40  # the root table offset
    files["bitflip_root"] = bytes(root)
    paths = {}
    for name, content in files.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(content)
        if keep_manifest:
            shutil.copy(str(mcu_file) + ".json", str(path) + ".json")
        paths[name] = path
    return paths


def test_damaged_files_exit_2(python_run, mcu_file, tmp_path, capsys):
    with_manifest = (
        _damaged(mcu_file, tmp_path / "m", True) if (tmp_path / "m").mkdir() is None else None
    )
    without = (
        _damaged(mcu_file, tmp_path / "n", False) if (tmp_path / "n").mkdir() is None else None
    )
    for name, path in with_manifest.items():
        assert main(["inspect", str(path)]) == 2, name
        assert "does not match its manifest" in capsys.readouterr().err
    for name in ("truncated", "bitflip_header", "bitflip_root"):
        assert main(["inspect", str(without[name])]) == 2, name
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert "TFL3" in err or "corrupted or truncated" in err or "could not run" in err
    with pytest.raises(TfliteFileError, match="corrupted or truncated"):
        tfgreen.inspect_tflite(without["truncated"])
    # in a fresh process too: exit 2, one line, no traceback
    done = python_run("-m", "tfgreen", "inspect", str(without["truncated"]))
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_inspect_json_and_bench(mcu_file, capsys):
    assert main(["inspect", str(mcu_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"][0]["dtype"] == "int8"
    assert main(["bench", str(mcu_file), "--runs", "30"]) == 0
    captured = capsys.readouterr()
    # The file runs in a child process (tfgreen.tflite.isolated); the figures come back.
    assert "p50" in captured.out and "30 runs" in captured.out and "integrity: ok" in captured.out
    assert main(["bench", str(mcu_file), "--runs", "0"]) == 2
    assert "Received: runs=0" in capsys.readouterr().err


def test_targets_command(capsys):
    assert main(["targets"]) == 0
    table = capsys.readouterr().out
    assert "| vehicle-ecu" in table and "uint8/uint8" in table
    assert main(["targets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mcu"]["c_array"] is True


def test_export_command(python_run, flavor, softmax_cnn, digits, tmp_path):
    (x_train, _), (x_test, y_test) = digits
    softmax_cnn.save(tmp_path / "digits.keras")
    np.save(tmp_path / "calib.npy", x_train[:200])
    np.savez(tmp_path / "val.npz", x=x_test, y=y_test)
    out = tmp_path / "out" / "digits.tflite"
    done = python_run(
        "-m",
        "tfgreen",
        "export",
        str(tmp_path / "digits.keras"),
        "-o",
        str(out),
        "--target",
        "edge-tpu",
        "--calibration",
        str(tmp_path / "calib.npy"),
        "--validation",
        str(tmp_path / "val.npz"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Saved artifact" not in done.stdout and "checks     float_ops ok" in done.stdout
    manifest = json.loads((tmp_path / "out" / "digits.tflite.json").read_text())
    assert manifest["target"] == "edge-tpu" and manifest["inputs"][0]["dtype"] == "uint8"
    assert manifest["calibration"]["count"] == 200


def test_export_command_bad_input_exits_2(flavor, softmax_cnn, digits, tmp_path, capsys):
    (x_train, _), _ = digits
    softmax_cnn.save(tmp_path / "digits.h5")
    assert (
        main(
            [
                "export",
                str(tmp_path / "digits.h5"),
                "-o",
                str(tmp_path / "m.tflite"),
                "--target",
                "cpu",
            ]
        )
        == 2
    )
    assert "--trust-model" in capsys.readouterr().err
    softmax_cnn.save(tmp_path / "digits.keras")
    bad = x_train[:100].copy()
    bad[7] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    args = [
        "export",
        str(tmp_path / "digits.keras"),
        "-o",
        str(tmp_path / "m.tflite"),
        "--calibration",
    ]
    assert main([*args, str(tmp_path / "bad.npy")]) == 2
    assert "first in sample 7" in capsys.readouterr().err
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main([*args, str(tmp_path / "objects.npy")]) == 2
    assert "pickled objects are refused" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "missing.npy")]) == 2
    assert not (tmp_path / "m.tflite").exists()


def _rewrite(path, edit, out):
    """Re-packs a .tflite file after `edit(model_object)`: a well-formed but broken file."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(path.read_bytes(), 0))
    edit(model.subgraphs[0])
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out.write_bytes(bytes(builder.Output()))
    return out


def test_crafted_files_are_refused_without_crashing(mcu_file, tmp_path):
    def dangling_input(graph):
        graph.operators[1].inputs = np.array([9999, *graph.operators[1].inputs[1:]], dtype=np.int32)

    def wrong_channels(graph):
        tensor = graph.tensors[graph.inputs[0]]
        tensor.shape = tensor.shapeSignature = np.array([1, 8, 8, 3], dtype=np.int32)

    dangling = _rewrite(mcu_file, dangling_input, tmp_path / "dangling.tflite")
    with pytest.raises(TfliteFileError, match="tensors that do not exist.*tensor_index=9999"):
        tfgreen.inspect_tflite(dangling)
    # parses fine in Python; LiteRT refuses it in the child process, the caller lives on
    channels = _rewrite(mcu_file, wrong_channels, tmp_path / "channels.tflite")
    assert tfgreen.inspect_tflite(channels, run=False)["inputs"][0]["shape"] == [1, 8, 8, 3]
    with pytest.raises(
        TfliteFileError, match="could not run the .tflite file \\(in an isolated process\\)"
    ):
        tfgreen.inspect_tflite(channels)


def test_bench_energy_reports_joules_and_method(mcu_file, capsys):
    assert main(["bench", str(mcu_file), "--runs", "10", "--energy"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("energy:")][0]
    joules = float(line.split()[1])
    assert joules > 0
    assert "estimate" in line or "measured" in line
