"""Hostile paths and manifests: one-line refusals, never a hang or a raw Python error."""

import json
import os
import stat

import pytest

from tfgreen import _io
from tfgreen.errors import TfgreenFileNotFoundError, TfgreenOSError, TfliteFileError
from tfgreen.export.manifest import c_identifier
from tfgreen.tflite.verify import check_manifest, read_manifest


def test_fifo_device_folder_loop_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    with pytest.raises(TfgreenOSError, match="FIFO"):
        _io.read_regular_file(fifo)
    with pytest.raises(TfgreenOSError, match="character device"):
        _io.read_regular_file("/dev/zero")
    with pytest.raises(TfgreenOSError, match="a folder"):
        _io.read_regular_file(tmp_path)
    loop = tmp_path / "loop.tflite"
    loop.symlink_to(loop)
    with pytest.raises(TfgreenOSError, match="symbolic link loop"):
        _io.read_regular_file(loop)
    with pytest.raises(TfgreenFileNotFoundError, match="does not exist"):
        _io.read_regular_file(tmp_path / "missing.tflite")


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"sha256": "' + "a" * 64 + '", "size_bytes": 1e400}', "size_bytes"),
        ('{"sha256": 5, "size_bytes": 10}', "sha256"),
        ("[" * 100_000 + "]" * 100_000, "nests deeper"),
        ('{"sha256": "' + "a" * 64 + '", "size_bytes": true}', "size_bytes"),
        ("not json", "not valid JSON"),
        ('{"sha256": "' + "a" * 64 + '", "size_bytes": 3, "extra_files": [1]}', "extra_files"),
    ],
)
def test_tampered_manifest_is_one_refusal(tmp_path, text, match):
    path = tmp_path / "m.tflite.json"
    path.write_text(text)
    with pytest.raises(TfliteFileError, match=match):
        read_manifest(path)


def test_oversized_manifest_refused(tmp_path):
    path = tmp_path / "m.tflite.json"
    path.write_bytes(b" " * (2 << 20))
    with pytest.raises(TfgreenOSError, match="too large"):
        read_manifest(path)


def test_mixed_set_refused_and_missing_manifest_said(tmp_path):
    import hashlib

    model, cc = tmp_path / "m.tflite", tmp_path / "m.cc"
    _io.write_set(
        {model: b"model-bytes", cc: b"array-1"},
        tmp_path / "m.tflite.json",
        json.dumps(
            {
                "sha256": hashlib.sha256(b"model-bytes").hexdigest(),
                "size_bytes": 11,
                "extra_files": {"m.cc": hashlib.sha256(b"array-1").hexdigest()},
            }
        ).encode(),
    )
    assert check_manifest(model, model.read_bytes()) == "ok"
    cc.write_bytes(b"array-2")  # a .cc from another export
    with pytest.raises(TfliteFileError, match="set is mixed"):
        check_manifest(model, model.read_bytes())
    assert check_manifest(tmp_path / "other.tflite", b"x") == "missing"


def test_written_files_have_normal_mode_and_no_staging_left(tmp_path):
    old = os.umask(0o022)
    try:
        _io.write_set({tmp_path / "a.tflite": b"1"}, tmp_path / "a.tflite.json", b"{}")
        _io.atomic_write_bytes(tmp_path / "b.bin", b"2")
    finally:
        os.umask(old)
    for name in ("a.tflite", "a.tflite.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tfgreen-staging")]


def test_stale_staging_of_dead_process_is_cleaned(tmp_path):
    stale = tmp_path / ".tfgreen-staging-999999999-abc"
    stale.mkdir()
    (stale / "a.tflite").write_bytes(b"half")
    _io.write_set({tmp_path / "a.tflite": b"1"}, tmp_path / "a.tflite.json", b"{}")
    assert not stale.exists()


def test_name_too_long_refused_before_work(tmp_path):
    with pytest.raises(TfgreenOSError, match="too long"):
        _io.check_writable(tmp_path / ("n" * 245 + ".tflite"), ["n" * 245 + ".tflite.json"])


def test_c_identifier_is_ascii():
    assert c_identifier("modèle_ü-1") == "mod_le___1"


def test_cli_os_error_is_one_line_exit_2(tmp_path, capsys):
    from tfgreen.cli import main

    fifo = tmp_path / "pipe.tflite"
    os.mkfifo(fifo)
    assert main(["inspect", str(fifo), "--no-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FIFO" in err[0]
