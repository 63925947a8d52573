import os
import subprocess
import sys
from pathlib import Path

from tfgreen.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `python -m tfgreen ARGS` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "tfgreen", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_help_lists_subcommands(capsys):
    try:
        main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    assert "demo" in capsys.readouterr().out


def test_no_command_exits_2():
    assert main([]) == 2


def test_demo_quick_writes_files_and_table(tmp_path):
    done = run_cli("demo", "--quick", "--out", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("digits_float32.tflite", "digits_int8.tflite", "report.md"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    assert "| tflite int8" in done.stdout
    report = (tmp_path / "demo" / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| tflite")]
    accuracies = [float(row.split("|")[2]) for row in rows]
    assert len(accuracies) == 2 and min(accuracies) > 0.8


def test_demo_out_is_a_file_exits_2(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    done = run_cli("demo", "--quick", "--out", str(target))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "is a file" in done.stderr
