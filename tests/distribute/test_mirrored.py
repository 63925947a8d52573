"""MirroredStrategy over 2 logical CPU devices in a child process, both Kerases.

One run of `workers/mirrored.py` trains, prunes, quantizes and distils with
each flavour; the tests check its figures.
"""

from __future__ import annotations

import pytest

from tfgreen.flavor import FLAVORS


@pytest.fixture(scope="module")
def mirrored(distribute_harness, tmp_path_factory):
    """Runs `workers/mirrored.py` once with 2 logical CPUs, both flavours."""
    root = tmp_path_factory.mktemp("mirrored")
    out = root / "out"
    result = distribute_harness.run_mirrored(
        "mirrored.py", root / "logs", devices=2, args=(str(out), ",".join(FLAVORS))
    )
    return {"out": out, "result": result}


def test_one_worker_two_replicas(mirrored):
    info = mirrored["result"]["info"]
    assert info["strategy"] == "MirroredStrategy"
    assert (info["num_workers"], info["num_replicas"], info["local_replicas"]) == (1, 2, 2)
    assert info["is_chief"] is True
    assert info["multi_worker"] is False


def test_replicas_identical_after_training(mirrored, flavor):
    run = mirrored["result"][flavor]["plain"]
    assert run["check"] == "MirroredStrategy"
    assert run["same_strategy"] is True
    assert run["copies"] == 2
    assert run["spread"] == 0.0
    assert run["trained"] != run["initial"]
    assert run["loss"][-1] < run["loss"][0]


def test_energy_tracked_and_budget_stops(mirrored, flavor):
    run = mirrored["result"][flavor]["energy"]
    # One process: its own figure is the total, no per-worker figures are logged.
    assert run["energy_kwh"] > 0
    assert run["worker_energy_kwh"] == run["energy_kwh"]
    assert run["logged"] == ["energy_kwh", "epoch_energy_kwh"]
    assert (run["stopped_epoch"], run["epochs_run"]) == (0, 1)


def test_pruning_masks_identical_and_sparsity_reached(mirrored, flavor):
    run = mirrored["result"][flavor]["prune"]
    assert run["mask_spread"] == 0.0
    assert run["spread"] == 0.0
    assert run["logged_sparsity"][-1] == pytest.approx(run["target"], abs=1e-3)
    assert run["sparsity"] and all(
        value == pytest.approx(run["target"], abs=1e-3) for value in run["sparsity"].values()
    )


def test_qat_converts_to_int8(mirrored, flavor):
    run = mirrored["result"][flavor]["qat"]
    assert run["spread"] == 0.0
    assert run["kernels"] == 2  # dense1 and output
    assert run["kernel_dtypes"] == ["int8"]


def test_distilled_student_trains(mirrored, flavor):
    run = mirrored["result"][flavor]["distill"]
    assert run["spread"] == 0.0
    assert run["student"] != run["initial"]
    assert run["loss"][-1] < run["loss"][0]


def test_single_worker_reduce_and_writes(mirrored, flavor):
    run = mirrored["result"][flavor]["plain"]
    assert run["total"] == 0.5
    assert run["any"] is True
    assert run["model_target"] == str(mirrored["out"] / flavor / "model.keras")
    assert run["listing"] == ["model.keras"]
