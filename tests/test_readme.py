"""The README's quick start runs as written and does what its comments say."""

import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _quick_start() -> str:
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_quick_start_runs(python_run, tmp_path):
    script = tmp_path / "quick_start.py"
    # Run the README's code as written, then report what it built as JSON.
    script.write_text(
        _quick_start() + "\nimport json\nresult = tfgreen.compare({'pruned keras': slim, 'int8': "
        "'out/digits.tflite'}, (x_test, y_test), energy=False)\n"
        "print(json.dumps({'sparsity': tfgreen.sparsity(slim), 'rows': result.rows}))\n"
    )
    done = python_run(str(script), cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert min(figures["sparsity"].values()) > 0.79
    keras_row, int8_row = figures["rows"]
    assert keras_row["accuracy"] > 0.85
    assert int8_row["accuracy"] > keras_row["accuracy"] - 0.02
    assert (tmp_path / "out" / "digits.tflite.json").is_file()
