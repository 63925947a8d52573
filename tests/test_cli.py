import pytest

from tfgreen.cli import main


def test_help_lists_subcommands(capsys):
    try:
        main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    assert "demo" in capsys.readouterr().out


def test_no_command_exits_2():
    assert main([]) == 2


@pytest.mark.slow
def test_demo_quick_runs_the_whole_pipeline(tmp_path, python_run):
    import json

    import matplotlib.image

    out = tmp_path / "demo"
    done = python_run("-m", "tfgreen", "demo", "--quick", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["model"]: row for row in json.loads((out / "comparison.json").read_text())["rows"]}
    assert set(rows) == {
        "baseline (keras)",
        "baseline cpu float32",
        "pruned+QAT edge-cpu",
        "pruned+QAT mcu",
        "pruned+QAT vehicle-ecu",
        "student edge-cpu",
    }
    for name, row in rows.items():
        for key in ("accuracy", "size_kb", "latency_ms", "joules_per_inference"):
            assert row[key] is not None and row[key] > 0, (name, key)
    assert rows["baseline (keras)"]["accuracy"] > 0.85
    assert rows["pruned+QAT edge-cpu"]["sparsity"] >= 0.79
    assert rows["pruned+QAT edge-cpu"]["size_kb"] < 0.35 * rows["baseline cpu float32"]["size_kb"]
    assert rows["student edge-cpu"]["params"] < rows["baseline (keras)"]["params"] / 3
    for name in ("pruned_QAT_mcu.cc", "pruned_QAT_vehicle-ecu.tflite.json"):
        assert (out / name).stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "tfgreen.optimize picked" in report and (out / "optimize" / "optimize.md").exists()
    table = [line for line in report.splitlines() if line.startswith("| ")][2:]
    assert len(table) == 6
    for png in sorted(out.glob("*.png")):
        assert matplotlib.image.imread(png).shape[0] > 100
    assert len(list(out.glob("*.png"))) >= 3
    # The language-model pipeline: tiny GPT, Wanda, int8 weights, distilled, exported, generated.
    lm_rows = {
        row["model"]: row
        for row in json.loads((out / "language_model" / "comparison.json").read_text())["rows"]
    }
    assert {
        "LM (keras)",
        "LM edge-cpu",
        "Wanda 50% LM edge-cpu",
        "int8-weight LM edge-cpu",
        "student LM edge-cpu",
    } <= set(lm_rows)
    keras_ppl = lm_rows["LM (keras)"]["perplexity"]
    assert keras_ppl < 400  # trained: below the uniform 512
    assert lm_rows["LM edge-cpu"]["perplexity"] < 1.03 * keras_ppl
    assert lm_rows["Wanda 50% LM edge-cpu"]["sparsity"] >= 0.3  # 50% of the block kernels
    for name in ("int8-weight LM edge-cpu", "student LM edge-cpu"):
        assert lm_rows[name]["size_kb"] < lm_rows["LM cpu float32"]["size_kb"] / 2, name
    assert lm_rows["LM edge-cpu"]["decode_tokens_per_second"] > 0
    notes = (out / "language_model" / "report.md").read_text()
    assert "greedy text, edge-cpu file on LiteRT: 'The return statement" in notes
    assert "LM mcu: refused" in notes and "worst_tensors" in notes


def test_demo_out_is_a_file_exits_2(tmp_path, python_run):
    target = tmp_path / "file.txt"
    target.write_text("x")
    done = python_run("-m", "tfgreen", "demo", "--quick", "--out", str(target))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "is a file" in done.stderr
