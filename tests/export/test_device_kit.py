"""The device-side kit runs with numpy + LiteRT only: importing tensorflow fails there."""

import re
from pathlib import Path

import numpy as np

import tfgreen
from tfgreen.tflite.runner import TfliteRunner

_KIT = str(Path(__file__).resolve().parents[2] / "tflite_export" / "run_tflite.py")


def test_kit_runs_without_tensorflow_and_checks_the_hash(
    python_run, flavor, logits_cnn, digits, tmp_path
):
    (x_train, _), (x_test, y_test) = digits
    path = tmp_path / "ecu.tflite"
    tfgreen.export_tflite(
        logits_cnn,
        path,
        target="vehicle-ecu",
        calibration_data=x_train,
        validation_data=(x_test, y_test),
    )
    np.save(tmp_path / "x.npy", x_test[:8])
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "tensorflow.py").write_text(
        "raise ImportError('tensorflow is not on this device')\n"
    )
    device = {"PYTHONPATH": str(blocker)}
    assert python_run("-c", "import tensorflow", env_extra=device).returncode != 0

    done = python_run(
        _KIT, str(path), "--input", str(tmp_path / "x.npy"), "--runs", "20", env_extra=device
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sha256 matches manifest" in done.stdout and "latency   p50" in done.stdout
    classes = [int(c) for c in re.findall(r"sample \d+: class (\d+)", done.stdout)]
    assert classes == list(TfliteRunner(path).predict(x_test[:8]).argmax(axis=1))

    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    path.write_bytes(bytes(tampered))
    done = python_run(_KIT, str(path), "--input", str(tmp_path / "x.npy"), env_extra=device)
    assert done.returncode == 2 and "does not match its manifest" in done.stderr
    assert "Traceback" not in done.stderr
