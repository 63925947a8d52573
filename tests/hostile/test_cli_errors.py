"""Every CLI command: bad input, refused files and OS errors exit 2 with one line.

The cases run through `tfgreen.cli.main` in this process (fast: each is
refused before any model work). Permission errors need a user that lacks
the permission; these machines run the tests as root, who has them all, so
those cases run in a child process that drops to `nobody` first.
"""

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest

from tfgreen.cli import _COMMANDS, main

LONG = "n" * 300  # longer than any file system's 255-byte name limit


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "garbage.tflite").write_bytes(b"\x00TFL3 not a model" * 10)
    (folder / "garbage.keras").write_bytes(b"PK not a zip")
    (folder / "plain.txt").write_text("a file where a folder is expected")
    return folder


def _cases(folder: Path) -> list[tuple[str, list[str], str]]:
    garbage, keras_file = str(folder / "garbage.tflite"), str(folder / "garbage.keras")
    missing, long = str(folder / "missing.tflite"), str(folder / f"{LONG}.tflite")
    plain = str(folder / "plain.txt")
    return [
        ("inspect", [missing], "does not exist"),
        ("inspect", [garbage], "not a TFLite flatbuffer|corrupted"),
        ("inspect", [long], "File name too long"),
        ("bench", [garbage], "not a TFLite flatbuffer|corrupted"),
        ("bench", [missing, "--runs", "2"], "does not exist"),
        ("bench", [long], "File name too long"),
        ("bench", [garbage, "--runs", "0"], "runs|not a TFLite|corrupted"),
        ("compare", [garbage, "--no-energy"], "not a TFLite flatbuffer|corrupted"),
        ("compare", [long, "--no-energy"], "File name too long"),
        ("compare", [garbage, "--out", f"{plain}/sub"], "not a folder"),
        ("compare", [garbage, "--out", str(folder / LONG)], "too long"),
        ("export", [keras_file, "-o", str(folder / "m.tflite")], "not a valid|could not|zip"),
        ("export", [keras_file, "-o", str(folder / f"{LONG}.tflite")], "too long"),
        ("export", [keras_file, "-o", f"{plain}/m.tflite"], "not a folder"),
        ("export", [keras_file, "-o", str(folder / "m.tflite"), "--target", "nope"], "target"),
        ("demo", ["--out", str(folder / LONG)], "too long"),
        ("demo", ["--out", f"{plain}/sub"], "not a folder"),
    ]


def _one_line(code: int, err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    # argparse's top level reports unknown options without naming the command
    prefixes = (f"tfgreen {command}: error:", "tfgreen: error:")
    assert lines[0].startswith(prefixes) and "Traceback" not in err, lines[0]
    return lines[0]


def test_bad_input_and_refused_files_are_one_line(files, capsys):
    for command, args, match in _cases(files):
        code = main([command, *args])
        line = _one_line(code, capsys.readouterr().err, command)
        assert any(m in line for m in match.split("|")), (command, args, line)


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_every_command_refuses_an_unknown_option_in_one_line(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main([command, "--no-such-option"])
    assert caught.value.code == 2
    line = _one_line(2, capsys.readouterr().err, command)
    assert "--no-such-option" in line or "required" in line, line
    with pytest.raises(SystemExit):
        main([command, "--runs", "many"] if command in ("bench", "compare") else [command, "-o"])
    _one_line(2, capsys.readouterr().err, command)


_AS_NOBODY = r"""
import contextlib, io, json, os, sys
from tfgreen.cli import build_parser, main
# what the commands import lazily, imported now: as nobody, Python's own files (and a
# checkout in a private folder) are out of reach
build_parser()  # every subcommand's module
import tfgreen.comparison, tfgreen.datasets, tfgreen.demo, tfgreen.export.exporter, tfgreen.loading  # noqa: E401
import tfgreen.tflite.bench, tfgreen.tflite.inspection, tfgreen.tflite.isolated  # noqa: E401
tfgreen.datasets.load_digits(flat=True)
import tfgreen._adapters.codecarbon as cc; cc.known_countries()  # noqa: E702
os.setgid(65534)
os.setuid(65534)
results = []
for command, *args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([command, *args])
    results.append({"command": command, "code": code, "err": err.getvalue()})
print(json.dumps(results))
"""


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root to drop to nobody")
def test_permission_errors_are_one_line(python_run):
    folder = Path(tempfile.mkdtemp(prefix="tfgreen-perm-"))
    try:
        folder.chmod(0o755)  # nobody may look in, not write
        secret = folder / "secret.tflite"
        secret.write_bytes(b"x" * 100)
        secret.chmod(0o600)
        model = folder / "m.keras"
        model.write_bytes(b"PK")
        model.chmod(0o644)
        out = str(folder / "out" / "m.tflite")
        cases = [
            ["inspect", str(secret)],
            ["bench", str(secret)],
            ["compare", str(secret), "--no-energy"],
            ["compare", str(model), "--out", str(folder / "report")],
            ["export", str(model), "-o", out],
            ["demo", "--out", str(folder / "demo")],
        ]
        done = python_run("-c", _AS_NOBODY, json.dumps(cases), timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        results = json.loads(done.stdout.strip().splitlines()[-1])
        for result in results:
            line = _one_line(result["code"], result["err"], result["command"])
            assert "Permission denied" in line, line
        assert sorted(p.name for p in folder.iterdir()) == ["m.keras", "secret.tflite"]
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
