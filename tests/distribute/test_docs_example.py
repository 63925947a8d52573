"""The cluster example of docs/distributed.md runs as written on a 2-worker cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "distributed.md"


def test_guide_example_runs_on_two_workers(distribute_harness, tmp_path):
    chief, worker = distribute_harness.run_cluster(
        "docs_example.py", tmp_path, num_workers=2, args=(str(DOCS),)
    )
    assert (chief["chief"], worker["chief"]) == (True, False)
    # Both done: one export, written by the chief; the worker's copy is gone.
    out = tmp_path / "out"
    # (the export's lock file, `.tfgreen-lock-*`, is hidden and documented in docs/security.md)
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith(".tfgreen-lock-"))
    assert files == ["model.tflite", "model.tflite.json"]
    assert chief["energy_kwh"] == worker["energy_kwh"]
    assert chief["energy_kwh"] == pytest.approx(
        chief["worker_energy_kwh"] + worker["worker_energy_kwh"], rel=1e-9
    )
    assert chief["sparsity"] == worker["sparsity"]
    assert all(v == pytest.approx(0.8, abs=1e-3) for v in chief["sparsity"].values())
