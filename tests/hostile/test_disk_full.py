"""Disk full during an export: one line, exit 2, and the previous export set intact.

A real file size limit (`RLIMIT_FSIZE`, with SIGXFSZ ignored so `write()`
fails with EFBIG as on a full disk) is set in a child process for the
moment the export writes its set; no root is needed, unlike a small tmpfs.
The limit first stops the `.tflite` itself, then (above its size) the C
array of the mcu target, the second file of the set.
"""

import errno
import json
import os

import pytest

from tfgreen import _io
from tfgreen.errors import TfgreenOSError
from tfgreen.tflite.verify import check_manifest

_CHILD = r"""
import contextlib, io, json, resource, signal, sys
from pathlib import Path
import numpy as np
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
import keras
from tfgreen.cli import main
from tfgreen.export import manifest

folder = Path(sys.argv[1])
x = np.random.default_rng(0).standard_normal((32, 64)).astype("float32")
np.save(folder / "x.npy", x)
for seed in (0, 1):
    keras.utils.set_random_seed(seed)
    keras.Sequential([keras.Input((64,)), keras.layers.Dense(256), keras.layers.Dense(10)]).save(
        folder / f"m{seed}.keras"
    )
real = manifest.write_set
limit = {"bytes": None}
def limited(*args, **kwargs):
    if limit["bytes"] is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit["bytes"], resource.RLIM_INFINITY))
    try:
        return real(*args, **kwargs)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
manifest.write_set = limited

def export(model, size):
    limit["bytes"] = size
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["export", str(folder / model), "-o", str(folder / "out" / "m.tflite"),
                     "--target", "mcu", "--calibration", str(folder / "x.npy")])
    return {"code": code, "err": err.getvalue()}

results = [export("m0.keras", None)]
sizes = {p.name: p.stat().st_size for p in (folder / "out").iterdir()}
results.append(export("m1.keras", 4096))
results.append(export("m1.keras", (sizes["m.tflite"] + sizes["m.cc"]) // 2))
(folder / "results.json").write_text(json.dumps({"results": results, "sizes": sizes}))
"""


def test_export_into_a_full_disk_is_one_line_and_keeps_the_old_set(tmp_path, python_run):
    done = python_run("-c", _CHILD, str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "results.json").read_text())
    first, *full = figures["results"]
    sizes = figures["sizes"]
    assert first["code"] == 0, first["err"]
    assert sizes["m.cc"] > sizes["m.tflite"] > 4096  # so the limits stop the 1st, then the 2nd file
    for result in full:
        lines = result["err"].strip().splitlines()
        assert result["code"] == 2 and len(lines) == 1, result["err"]
        assert "cannot be written: File too large" in lines[0] and "ulimit" in lines[0]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes)  # no staging, no half file
    assert {p.name: p.stat().st_size for p in out.iterdir()} == sizes
    assert check_manifest(out / "m.tflite", (out / "m.tflite").read_bytes()) == "ok"


def test_full_disk_is_a_tfgreen_os_error(tmp_path, monkeypatch):
    """The API side: ENOSPC from a write becomes TfgreenOSError (an OSError), nothing left."""
    real = os.write

    def full(fd, data):
        if len(data) > 100:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(_io.os, "write", full)
    with pytest.raises(TfgreenOSError, match="cannot be written: No space left") as caught:
        _io.write_set({tmp_path / "a.tflite": b"x" * 1000}, tmp_path / "a.tflite.json", b"{}")
    assert isinstance(caught.value, OSError)
    with pytest.raises(TfgreenOSError, match="Free disk space"):
        _io.atomic_write_bytes(tmp_path / "b.bin", b"y" * 1000)
    assert list(tmp_path.iterdir()) == []
