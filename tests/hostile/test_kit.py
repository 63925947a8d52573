"""The device kit: unverified files run in a child, odd paths are one line, nothing hangs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.hostile.test_isolation import _rank20, endless

_KIT = str(Path(__file__).resolve().parents[2] / "tflite_export" / "run_tflite.py")


def _kit(*args, timeout=60):
    return subprocess.run(
        [sys.executable, _KIT, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def rank20(tmp_path_factory):
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    folder = tmp_path_factory.mktemp("kit")
    path = folder / "rank20.tflite"
    path.write_bytes(_rank20(tf.lite.TFLiteConverter.from_keras_model(model).convert()))
    np.save(folder / "x.npy", np.zeros((2, 8), "float32"))
    return path


def test_kit_no_verify_runs_a_hostile_file_in_a_child(rank20):
    # The kit resizes the rank-20 input to the --input shape, so LiteRT survives here; what
    # must hold is that the kit's own process is never killed and never prints a traceback.
    done = _kit(rank20, "--input", rank20.parent / "x.npy", "--no-verify", "--runs", "2")
    assert done.returncode in (0, 2), (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    if done.returncode == 2:
        lines = [line for line in done.stderr.splitlines() if line.startswith("run_tflite:")]
        assert len(lines) == 1


@pytest.mark.parametrize("kind", ["fifo", "zero", "folder", "loop"])
def test_kit_odd_paths_one_line_without_hanging(tmp_path, kind):
    path = tmp_path / "m.tflite"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path = Path("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(path)
    np.save(tmp_path / "x.npy", np.zeros((1, 8), "float32"))
    for extra in (["--no-verify"], []):
        done = _kit(path, "--input", tmp_path / "x.npy", *extra, timeout=20)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert "not found" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_kit_no_verify_kills_a_file_that_never_finishes(tmp_path):
    path = tmp_path / "endless.tflite"
    path.write_bytes(endless())
    np.save(tmp_path / "x.npy", np.zeros((1, 4), "float32"))
    done = _kit(path, "--input", tmp_path / "x.npy", "--no-verify", "--timeout", "3")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("run_tflite:")]
    assert len(lines) == 1 and "longer than 3 s; killed" in lines[0], done.stderr
