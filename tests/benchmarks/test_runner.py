import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("bench_runner", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runner_writes_json_and_markdown(runner, tmp_path):
    folder = tmp_path / "benches"
    folder.mkdir()
    (folder / "bench_toy.py").write_text(
        "def run(quick):\n    return [{'case': 'a', 'ratio': 0.5 if quick else 1.0}]\n"
    )
    results = runner.run_all(None, quick=True, out=tmp_path / "out", folder=folder)
    assert results == {"toy": [{"case": "a", "ratio": 0.5}]}
    saved = json.loads((tmp_path / "out" / "toy.json").read_text())
    assert saved["rows"] == [{"case": "a", "ratio": 0.5}] and saved["machine"]["quick"] is True
    assert "| case | ratio |" in (tmp_path / "out" / "README.md").read_text()


def test_running_one_benchmark_keeps_the_others_tables(runner, tmp_path):
    folder = tmp_path / "benches"
    folder.mkdir()
    for name, ratio in (("first", 0.25), ("second", 0.75)):
        (folder / f"bench_{name}.py").write_text(
            f"def run(quick):\n    return [{{'case': '{name}', 'ratio': {ratio}}}]\n"
        )
    runner.run_all(None, quick=True, out=tmp_path / "out", folder=folder)
    runner.run_all(["second"], quick=True, out=tmp_path / "out", folder=folder)
    table = (tmp_path / "out" / "README.md").read_text()
    assert "## first" in table and "| first | 0.25  |" in table and "## second" in table


def test_runner_rejects_unknown_names(runner, tmp_path):
    with pytest.raises(SystemExit, match="unknown benchmark"):
        runner.run_all(["nope"], out=tmp_path, folder=tmp_path)


def test_rows_of_different_shapes_keep_every_column(runner, tmp_path):
    folder = tmp_path / "benches"
    folder.mkdir()
    (folder / "bench_mixed.py").write_text(
        "def run(quick):\n    return [{'case': 'size', 'ratio': 0.26}, {'case': 'time', 'seconds': 1.5}]\n"
    )
    runner.run_all(None, quick=True, out=tmp_path / "out", folder=folder)
    table = (tmp_path / "out" / "README.md").read_text()
    assert "| case | ratio | seconds |" in table
    assert "| time | -     | 1.5     |" in table
