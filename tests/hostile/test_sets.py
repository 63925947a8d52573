"""Export sets under kills and concurrency: a reader only ever sees one whole set."""

import os
import signal
import subprocess
import sys
import time

from tfgreen.tflite.verify import check_manifest

_WRITER = r"""
import hashlib, json, os, sys, time
from pathlib import Path
from tfgreen import _io

folder, tag, count, pause = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "pause"
real_replace = os.replace
def replace(src, dst):
    real_replace(src, dst)
    if pause and str(dst).endswith(".tflite"):  # between the renames: tell the parent, wait
        (folder / "ready").write_text("1")
        time.sleep(60)
os.replace = replace
for i in range(count):
    model = f"{tag}-{i}-".encode() * 1000
    cc = f"array-{tag}-{i}".encode()
    manifest = {
        "sha256": hashlib.sha256(model).hexdigest(),
        "size_bytes": len(model),
        "extra_files": {"m.cc": hashlib.sha256(cc).hexdigest()},
    }
    _io.write_set({folder / "m.tflite": model, folder / "m.cc": cc},
                  folder / "m.tflite.json", json.dumps(manifest).encode())
"""


def _writer(folder, tag, count, pause=False):
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(folder), tag, str(count), "pause" if pause else "go"],
        env=dict(os.environ),
    )


def _state(folder):
    model = folder / "m.tflite"
    try:
        return check_manifest(model, model.read_bytes())
    except Exception as error:  # noqa: BLE001 - the test reports what a reader saw
        return type(error).__name__


def test_kill_between_renames_leaves_no_set_that_verifies(tmp_path):
    assert _writer(tmp_path, "old", 1).wait(timeout=30) == 0
    assert _state(tmp_path) == "ok"
    child = _writer(tmp_path, "new", 1, pause=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    # new .tflite beside the old .cc: the old manifest was removed first, so "missing"
    assert _state(tmp_path) == "missing"
    assert any(p.name.startswith(".tfgreen-staging") for p in tmp_path.iterdir())
    assert _writer(tmp_path, "next", 1).wait(timeout=30) == 0
    assert _state(tmp_path) == "ok"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "ready")
    assert left == ["m.cc", "m.tflite", "m.tflite.json"]  # staging cleaned, no lock file


def test_two_concurrent_exports_end_with_one_consistent_set(tmp_path):
    writers = [_writer(tmp_path, tag, 15) for tag in ("a", "b")]
    seen = set()
    while any(w.poll() is None for w in writers):
        seen.add(_state(tmp_path))
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    assert _state(tmp_path) == "ok"
    # before the first set exists the read itself fails; a mixed set is refused, never "ok"
    refusals = {"TfliteFileError", "TfgreenFileNotFoundError", "FileNotFoundError"}
    assert seen <= {"ok", "missing"} | refusals
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["m.cc", "m.tflite", "m.tflite.json"]
