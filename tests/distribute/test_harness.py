"""The harness itself: free ports, per-worker TF_CONFIG, deadlines, cleanup (no TensorFlow needed)."""

from __future__ import annotations

import json
import os
import time

import pytest


def test_free_ports_are_distinct(distribute_harness):
    ports = distribute_harness.free_ports(4)
    assert len(set(ports)) == 4
    assert all(1024 <= port < 65536 for port in ports)


def test_tf_configs_name_every_worker(distribute_harness):
    configs = [json.loads(c) for c in distribute_harness.cluster_tf_configs([1111, 2222])]
    assert [c["task"] for c in configs] == [
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
    ]
    assert configs[0]["cluster"] == {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"]}


def test_results_in_task_order(distribute_harness, tmp_path):
    script = tmp_path / "echo.py"
    script.write_text(
        "import json, os\n"
        "task = json.loads(os.environ['TF_CONFIG'])['task']['index']\n"
        "print('TFGREEN_RESULT ' + json.dumps({'task': task, 'pid': os.getpid()}))\n"
    )
    results = distribute_harness.run_cluster(script, tmp_path / "logs", num_workers=2)
    assert [r["task"] for r in results] == [0, 1]
    for r in results:  # reaped: no such process any more
        with pytest.raises(ProcessLookupError):
            os.kill(r["pid"], 0)


def test_timeout_kills_every_process(distribute_harness, tmp_path):
    script = tmp_path / "hang.py"
    pids = tmp_path / "pids"
    script.write_text(
        "import os, sys, time\n"
        f"open({str(pids)!r} + str(os.getpid()), 'w').close()\n"
        "time.sleep(600)\n"
    )
    start = time.monotonic()
    with pytest.raises(distribute_harness.WorkerFailure, match="timed out"):
        distribute_harness.run_cluster(script, tmp_path / "logs", num_workers=2, timeout=3)
    assert time.monotonic() - start < 30
    started = [int(p.name[len("pids") :]) for p in tmp_path.glob("pids*")]
    assert len(started) == 2
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_failure_shows_output(distribute_harness, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("raise SystemExit('worker broke on purpose')\n")
    with pytest.raises(distribute_harness.WorkerFailure, match="worker broke on purpose"):
        distribute_harness.run_cluster(script, tmp_path / "logs", num_workers=2)
