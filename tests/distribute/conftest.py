"""Harness for distributed tests: real `tf.distribute` in child processes, bounded and cleaned up.

Logical devices must be configured before TensorFlow initialises, and
`MultiWorkerMirroredStrategy` needs one process per worker, so these tests
never distribute inside the pytest process. They run the scripts in
`tests/distribute/workers/` as child processes:

- `run_cluster(script, num_workers=2)`: one process per worker of a
  `MultiWorkerMirroredStrategy` cluster on 127.0.0.1, ports picked free at
  run time, a `TF_CONFIG` per process.
- `run_mirrored(script, devices=2)`: one process whose CPU is split into
  `devices` logical devices for `MirroredStrategy`.

Each run has a deadline; on timeout, error or success every child's process
group is killed and reaped. A script reports by printing one line
`TFGREEN_RESULT <json>` (see `workers/_common.py`); the harness returns the
parsed objects, one per process, in task order.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "workers"
RESULT_PREFIX = "TFGREEN_RESULT "
# Generous: each child imports TensorFlow (~5-10 s) on a shared 2-core machine.
DEFAULT_TIMEOUT = 240.0


class WorkerFailure(RuntimeError):
    """A child process failed, timed out or printed no result."""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Picks `count` distinct free TCP ports on `host` (held open until all are picked)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def cluster_tf_configs(ports: list[int], host: str = "127.0.0.1") -> list[str]:
    """One `TF_CONFIG` JSON per worker of a chief-less cluster (worker 0 is chief)."""
    workers = [f"{host}:{port}" for port in ports]
    return [
        json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        for i in range(len(workers))
    ]


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("TF_CONFIG", "TF_USE_LEGACY_KERAS"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(WORKERS)])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _parse(index: int, process: subprocess.Popen, log: Path) -> dict:
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith(RESULT_PREFIX)]
    if process.returncode != 0 or not lines:
        raise WorkerFailure(
            f"process {index} exited with {process.returncode} and "
            f"{'a' if lines else 'no'} result; output tail:\n{text[-6000:]}"
        )
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def run_processes(
    script: str | Path,
    envs: list[dict[str, str]],
    log_dir: Path,
    args: tuple[str, ...] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> list[dict]:
    """Starts one `python script *args` per env, waits for all with a deadline, always cleans up.

    Args:
        script: A script in `workers/` (name) or any path.
        envs: Extra environment per process.
        log_dir: Where each process's combined stdout/stderr is kept.
        args: Command-line arguments for every process.
        timeout: Seconds for the whole run; on expiry all processes are killed.

    Returns:
        The parsed `TFGREEN_RESULT` object of each process, in order.
    """
    script = Path(script) if Path(script).is_absolute() else WORKERS / script
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: list[tuple[subprocess.Popen, Path]] = []
    deadline = time.monotonic() + timeout
    try:
        for index, extra in enumerate(envs):
            log = log_dir / f"{script.stem}.{index}.log"
            with open(log, "wb") as handle:
                process = subprocess.Popen(
                    [sys.executable, str(script), *args],
                    env=_child_env(extra),
                    cwd=str(log_dir),
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            processes.append((process, log))
        for process, _ in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                tails = "\n".join(
                    f"--- process {i}:\n{log.read_text(errors='replace')[-3000:]}"
                    for i, (_, log) in enumerate(processes)
                )
                raise WorkerFailure(f"timed out after {timeout:.0f}s\n{tails}") from None
        return [_parse(i, process, log) for i, (process, log) in enumerate(processes)]
    finally:
        for process, _ in processes:
            _kill(process)


def run_cluster(
    script: str | Path,
    log_dir: Path,
    num_workers: int = 2,
    args: tuple[str, ...] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> list[dict]:
    """Runs `script` as a `num_workers`-process MultiWorkerMirroredStrategy cluster on loopback."""
    configs = cluster_tf_configs(free_ports(num_workers))
    envs = [{"TF_CONFIG": config, "TFGREEN_TEST_CPUS": "1"} for config in configs]
    return run_processes(script, envs, log_dir, args, timeout)


def run_mirrored(
    script: str | Path,
    log_dir: Path,
    devices: int = 2,
    args: tuple[str, ...] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> dict:
    """Runs `script` in one process with its CPU split into `devices` logical devices."""
    return run_processes(script, [{"TFGREEN_TEST_CPUS": str(devices)}], log_dir, args, timeout)[0]


@pytest.fixture(scope="session")
def distribute_harness():
    """The harness functions: `run_cluster`, `run_mirrored`, `run_processes`, `free_ports`."""
    return SimpleNamespace(
        run_cluster=run_cluster,
        run_mirrored=run_mirrored,
        run_processes=run_processes,
        free_ports=free_ports,
        cluster_tf_configs=cluster_tf_configs,
        WorkerFailure=WorkerFailure,
    )
