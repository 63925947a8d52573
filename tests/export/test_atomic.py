"""An interrupted export leaves no partial file at the final path and an earlier export intact."""

import textwrap

import pytest

import tfgreen


def _snapshot(folder):
    # The empty hidden lock file of the set (tfgreen._io.write_set) stays by design.
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if not p.name.startswith(".tfgreen-lock-")
    }


def test_failed_second_write_keeps_earlier_export(flavor, softmax_cnn, tmp_path, monkeypatch):
    path = tmp_path / "model.tflite"
    tfgreen.export_tflite(softmax_cnn, path, target="cpu")
    before = _snapshot(tmp_path)
    assert set(before) == {"model.tflite", "model.tflite.json"}

    calls = []
    from tfgreen import _io

    real_write = _io._write_new

    def disk_full_on_second_write(target, data):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(target, data)

    monkeypatch.setattr(_io, "_write_new", disk_full_on_second_write)
    with pytest.raises(OSError, match="No space left"):
        tfgreen.export_tflite(softmax_cnn, path, target="edge-gpu")
    assert len(calls) == 2
    assert _snapshot(tmp_path) == before  # same files, same bytes, no staging leftovers


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import tfgreen
    from tfgreen import _io
    from tfgreen.models import small_cnn

    path, flavor = sys.argv[1], sys.argv[2]
    model = small_cnn(flavor, seed=0)
    real_write = _io._write_new
    calls = []

    def killed_mid_write(target, data):
        calls.append(target)
        if len(calls) == 2:  # the manifest: write half of it, then die
            with open(str(target) + ".partial", "wb") as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(target, data)

    _io._write_new = killed_mid_write
    tfgreen.export_tflite(model, path, target="edge-gpu")
    """
)


def test_killed_export_leaves_earlier_files_intact(python_run, flavor, tmp_path):
    script = tmp_path / "export_and_die.py"
    script.write_text(_KILL_SCRIPT)
    out = tmp_path / "out"
    path = out / "model.tflite"
    from tfgreen.models import small_cnn

    tfgreen.export_tflite(small_cnn(flavor, seed=0), path, target="cpu")
    before = {name: (out / name).read_bytes() for name in ("model.tflite", "model.tflite.json")}
    killed = python_run(str(script), str(path), flavor)
    assert killed.returncode == -9, killed.stderr[-2000:]
    for name, content in before.items():
        assert (out / name).read_bytes() == content
    finals = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert finals == {"model.tflite", "model.tflite.json"}
