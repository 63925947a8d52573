"""Runs every notebook in `notebooks/` top to bottom in quick mode and checks its numbers.

Each notebook ends with a cell tagged `summary` that prints a JSON dict of the
figures it computed; the checks below assert on those real numbers. A notebook
lists the tfgreen names it needs in its metadata (`tfgreen.requires`); each of
them must exist, so a renamed public name fails here with the name given.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

import tfgreen

_RUN_ALL = Path(__file__).resolve().parents[1] / "notebooks" / "run_all.py"
_spec = importlib.util.spec_from_file_location("tfgreen_notebooks_run_all", _RUN_ALL)
run_all = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_all)

NOTEBOOKS = run_all.notebook_paths()
EXPECTED = [
    "01_seed_example",
    "02_pruning",
    "03_quantization",
    "04_distillation",
    "05_edge_and_vehicle_export",
    "06_green_report",
    "07_distributed",
    "08_language_model",
    "10_optimizers_and_energy",
    "11_optimize",
]
_TFGREEN_NAME = re.compile(r"\btfgreen\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def _missing(name: str) -> bool:
    """True when `tfgreen.<name>` (or `tfgreen.callbacks.<name>`) is not available yet."""
    owner, _, attr = name.rpartition(".")
    module = tfgreen if not owner else getattr(tfgreen, owner)
    try:
        getattr(module, attr)
    except (AttributeError, ImportError):
        return True
    return False


def _check_requirements(notebook) -> None:
    missing = [n for n in notebook.metadata["tfgreen"]["requires"] if _missing(n)]
    assert not missing, f"the notebook uses tfgreen.{', tfgreen.'.join(missing)}, which is gone"


def test_every_notebook_is_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    """Quick mode read first; public API only; prose between code; committed with outputs."""
    notebook = _read(path)
    code = _code(notebook)
    assert 'os.environ.get("TFGREEN_QUICK")' in code[0]
    public = set(tfgreen.__all__) | set(notebook.metadata["tfgreen"]["requires"])
    for source in code:
        for top, sub in _TFGREEN_NAME.findall(source):
            if top.startswith("__"):  # tfgreen.__version__, tfgreen.__file__
                continue
            name = f"{top}.{sub}" if top == "callbacks" and sub else top
            assert name in public or name.split(".")[0] in public, (path.name, name)
        assert "from tfgreen." not in source and "import tfgreen." not in source, path.name
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    assert len(markdown) >= len(code) // 2, "explain each step in a markdown cell"
    assert any("tf_keras" in cell.source for cell in markdown), "say where the Kerases differ"
    # Committed in full mode, with outputs and at least one figure.
    summary = run_all.summary_of(notebook)
    assert summary["quick"] is False, f"{path.name} was saved in quick mode"
    images = [
        out
        for cell in notebook.cells
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert images, f"{path.name} has no plot in its saved outputs"


def _check_01(s):
    # Green early stopping cut epochs on the plateau, for a loss within 0.05 of the full run.
    assert s["full_epochs"] > s["green_epochs"] > 0
    assert 0.0 < s["energy_saved_kwh"] < s["full_energy_kwh"]
    assert s["green_energy_kwh"] > 0.0
    assert s["green_loss"] - s["full_loss"] < 0.05
    assert s["tflite_max_abs_diff"] < 1e-5


def _check_02(s):
    assert s["min_layer_sparsity"] == pytest.approx(0.8, abs=0.01)
    assert s["tf_keras_min_layer_sparsity"] == pytest.approx(0.8, abs=0.01)
    assert s["pruned_accuracy"] > s["dense_accuracy"] - 0.05
    assert s["gzip_ratio"] > 3.0
    assert s["max_nonzero_per_2of4_block"] <= 2


def _check_03(s):
    assert s["kinds"] == ["float32", "dynamic", "float16", "int8", "int16x8", "QAT int8"]
    assert s["int8_accuracy"] > s["float_accuracy"] - 0.05
    assert s["qat_int8_accuracy"] > s["float_accuracy"] - 0.05
    assert s["tf_keras_qat_int8_accuracy"] > 0.8
    assert s["int8_size_ratio"] < 0.4
    assert s["float16_size_ratio"] < 0.6


def _check_04(s):
    # The teacher's outputs on unlabelled images teach the student more than 100 labels alone.
    assert s["student_distilled_unlabelled_accuracy"] > s["student_alone_accuracy"] + 0.03
    assert s["tf_keras_student_distilled_accuracy"] > 0.5
    assert s["teacher_accuracy"] > 0.9
    assert s["size_ratio"] > 10


def _check_05(s):
    builtin = {"cpu", "edge-cpu", "edge-gpu", "edge-tpu", "mcu", "vehicle-ecu"}
    assert builtin <= set(s["targets"])
    assert s["min_top1_agreement"] > 0.9
    assert s["vehicle_ecu_input_dtype"] == "int8"
    assert s["strict_error_names_op"] and s["size_budget_refused"]
    assert s["kit_ok"] and s["tampered_refused"]


def _check_06(s):
    assert s["energy_method"] == "estimate"
    assert s["pareto_size"]
    assert s["size_ratio_pruned_int8"] < 0.3
    assert s["pruned_training_kwh"] > 0.0
    assert "accuracy_vs_size.png" in s["plots"]
    # Savings are against the float32 .tflite; break-even only where the saving is measurable.
    assert s["baseline"] == "float32"
    assert s["saving_measurable"]["float32"] is None
    for name, count in s["break_even"].items():
        assert count is None or (s["saving_measurable"][name] and count > 0), name
    assert "Keras 3 float32 .tflite" in s["tf_keras_rows"]
    assert s["tf_keras_baseline"] == "Keras 3 float32 .tflite"


def _check_07(s):
    assert s["replicas"] == 2
    assert s["replica_difference"] == 0.0
    assert s["pruned_replica_difference"] == 0.0
    assert s["tf_keras_replica_difference"] == 0.0
    assert s["min_sparsity"] == pytest.approx(0.8, abs=0.01)
    assert s["tf_keras_min_sparsity"] == pytest.approx(0.8, abs=0.01)
    assert s["loss_gap_single_vs_mirrored"] < 0.05


def _check_10(s):
    # Every optimizer reached the target with a positive energy; the answer is the least.
    assert set(s["optimizers"]) == {"SGD", "Adam", "Adadelta"}
    reached = {k: v for k, v in s["optimizers"].items() if v is not None}
    assert reached, "no optimizer reached the target"
    for name, best in reached.items():
        assert best["energy_to_target_kwh"] > 0.0, name
        assert best["spread_kwh"] >= 0.0, name
    for setting in s["sweep"]:
        assert setting["kwh"] is None or setting["kwh"] > 0.0, setting
    least = min(reached, key=lambda k: reached[k]["energy_to_target_kwh"])
    assert s["answer"] == least
    assert s["answer_kwh"] == reached[least]["energy_to_target_kwh"]
    # ... over every setting that reached the target in all its runs ("3/3").
    every_run = [x["kwh"] for x in s["sweep"] if len(set(x["reached"].split("/"))) == 1]
    assert s["answer_kwh"] == min(every_run)
    assert s["runner_up"] in reached and s["runner_up"] != s["answer"]
    # Green early stopping: the seed-length run wastes energy after its plateau; stopping saves some.
    assert 0 < s["plateau_epoch"] < s["seed_epochs"]
    assert 0.0 < s["wasted_after_plateau_kwh"] < s["seed_run_kwh"]
    assert s["green_epochs"] < s["seed_epochs"]
    assert 0.0 < s["green_saved_kwh"] < s["seed_run_kwh"]
    assert s["green_val_accuracy"] > s["seed_final_val_accuracy"] - 0.03
    assert s["tf_keras_energy_to_target_kwh"] > 0.0


def _check_08(s):
    # Attention pruned to target on both Kerases; edge-cpu keeps the LM (dynamic after the
    # full-int8 collapse), QAT gives a real int8 file, mcu refuses naming the tensors.
    assert s["attention_sparsity"] == pytest.approx([0.5, 0.5], abs=1e-3)
    assert s["tf_keras_attention_sparsity"] == pytest.approx([0.5, 0.5], abs=1e-3)
    assert s["pruned_perplexity"] < 1.2 * s["float_perplexity"]
    assert s["cpu_perplexity_ratio"] <= 1.005
    assert s["edge_cpu_quantization"] == "dynamic"
    assert s["edge_cpu_perplexity_ratio"] <= 1.03 and s["edge_cpu_agreement"] >= 0.95
    # The QAT file passes edge-cpu's LM bar, or the export is refused saying which check.
    agreement = s["qat_edge_cpu_agreement"]
    assert (agreement is not None and agreement >= 0.95) or "perplexity" in s["qat_refusal"]
    assert all("ln" in name or "position" in name for name in s["qat_float_layers"])
    assert s["mcu_refused_naming_tensors"]
    assert s["tf_keras_edge_cpu_perplexity_ratio"] <= 1.03


def _check_11(s):
    # The search tried >= 4 recipes and picked a file within the floor, re-measured, that costs
    # no more estimated energy than a plain int8 export; the LM pick keeps perplexity within 3%.
    assert s["recipes_tried"] >= 4
    assert s["pick_remeasured_accuracy"] >= s["reference_remeasured_accuracy"] - 0.01 - 1e-9
    assert s["pick_remeasured_accuracy"] == pytest.approx(s["pick_accuracy"])
    assert s["pick_joules_estimate"] <= s["plain_int8_joules_estimate"]
    assert s["pick_joules_measured"] > 0 and s["pick_on_pareto"]
    assert "optimize.md" in s["report_files"] and "accuracy_vs_energy.png" in s["report_files"]
    assert s["lm_pick_ratio"] <= 1.03
    assert s["tf_keras_pick_accuracy"] >= s["tf_keras_floor"]


CHECKS = {
    "01_seed_example": _check_01,
    "02_pruning": _check_02,
    "03_quantization": _check_03,
    "04_distillation": _check_04,
    "05_edge_and_vehicle_export": _check_05,
    "06_green_report": _check_06,
    "07_distributed": _check_07,
    "08_language_model": _check_08,
    "10_optimizers_and_energy": _check_10,
    "11_optimize": _check_11,
}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    notebook = _read(path)
    _check_requirements(notebook)
    executed = run_all.execute_notebook(path, quick=True, workdir=tmp_path, timeout=300)
    summary = run_all.summary_of(executed)
    assert summary["quick"] is True
    CHECKS[path.stem](summary)
    print(json.dumps(summary))
