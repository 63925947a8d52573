"""The glue tfgreen needs inside `tf.distribute`: who is chief, where to write, summing across workers.

tfgreen does not distribute anything itself. Training is distributed by
`tf.distribute` (`MirroredStrategy` over the devices of one machine,
`MultiWorkerMirroredStrategy` over several machines, one process each, told
about each other by `TF_CONFIG`). Under a strategy every worker runs the same
script, so three things need care, and this module provides them with the
strategy's own APIs:

- `is_chief` / `worker_info`: which worker is the chief (the strategy's
  `extended.should_checkpoint` and cluster resolver, or `TF_CONFIG` when no
  strategy is active).
- `chief_path` / `chief_writes`: only the chief writes a file; the others
  write the same bytes into a private temporary folder that is deleted
  afterwards (the pattern Keras' own checkpoint callbacks use), so no two
  workers ever write the same path and every worker still runs the same code.
- `all_reduce` / `any_worker`: sum (or average) a per-worker Python scalar,
  such as the energy one worker measured, over all workers with the
  strategy's collective all-reduce (`strategy.reduce`). Call them from a Keras
  callback, in the same order on every worker.

Support (checked with TF 2.21, Keras 3.15, tf_keras 2.21): `MirroredStrategy`
works for both Kerases. `MultiWorkerMirroredStrategy` with more than one
worker works for tf_keras; Keras 3's `model.fit` fails under it (an upstream
Keras bug, keras-team/keras#20585), so `check_strategy` raises
`UnsupportedStrategyError` for that pairing, before any work.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

from tfgreen.errors import TfgreenError, TfgreenTypeError, TfgreenValueError, message
from tfgreen.flavor import flavor_of, trains_multi_worker

__all__ = [
    "UnsupportedStrategyError",
    "strategy_of",
    "worker_info",
    "is_chief",
    "chief_path",
    "remove_worker_path",
    "chief_writes",
    "all_reduce",
    "any_worker",
    "check_strategy",
]

_REDUCE_OPS = ("sum", "mean")
# Strategies tfgreen's tests run under; others may work but are not checked.
_TESTED = (
    "_DefaultDistributionStrategy",
    "OneDeviceStrategy",
    "MirroredStrategy",
    "MultiWorkerMirroredStrategy",
    "CollectiveAllReduceStrategy",
)


class UnsupportedStrategyError(TfgreenError, NotImplementedError):
    """A Keras flavour cannot train under the active `tf.distribute` strategy."""


def strategy_of(model=None):
    """Returns the `tf.distribute.Strategy` a model trains under, or the active one.

    Keras 3 runs callbacks outside the strategy's scope, so inside a callback
    pass `self.model`: its `distribute_strategy` is the one `fit()` uses.

    Args:
        model: A Keras 3 or tf_keras model, or `None` for the strategy of the
            current scope (`tf.distribute.get_strategy()`). Defaults to `None`.

    Returns:
        The strategy; the default (no-op) strategy when none is active.

    Example:
    >>> strategy = tf.distribute.MirroredStrategy()
    >>> with strategy.scope():
    ...     model = tfgreen.models.small_mlp()
    >>> strategy_of(model) is strategy
    True
    """
    import tensorflow as tf

    if model is None:
        return tf.distribute.get_strategy()
    flavor_of(model)
    return model.distribute_strategy


def _resolve(strategy):
    import tensorflow as tf

    if strategy is None:
        return tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TfgreenTypeError(
            message(
                "`strategy` is not a tf.distribute strategy",
                "a `tf.distribute.Strategy` (for example MirroredStrategy) or None",
                "Pass the strategy you train under, or None for the active one",
                strategy=type(strategy).__name__,
            )
        )
    return strategy


def _tf_config() -> dict:
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise TfgreenValueError(
            message(
                "TF_CONFIG is not valid JSON",
                '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}',
                "Fix or unset the TF_CONFIG environment variable",
                TF_CONFIG=text,
            )
        ) from error
    if not isinstance(config, dict):
        raise TfgreenValueError(
            message(
                "TF_CONFIG is not a JSON object",
                'an object with "cluster" and "task"',
                "Fix or unset the TF_CONFIG environment variable",
                TF_CONFIG=text,
            )
        )
    return config


def worker_info(strategy=None) -> dict:
    """Describes this process's place in the cluster.

    Under a multi-worker strategy the answer comes from the strategy (its
    cluster resolver and `extended.should_checkpoint`); otherwise from
    `TF_CONFIG` (a process with no `TF_CONFIG` is a lone chief). As in
    TensorFlow, the chief is the task of type `"chief"`, or worker 0 when the
    cluster has no `"chief"` task.

    Args:
        strategy: A `tf.distribute.Strategy`, or `None` for the active one.
            Defaults to `None`.

    Returns:
        A dict: `task_type` (str or None), `task_id` (int), `num_workers`
        (int, chief included), `is_chief` (bool), `multi_worker` (bool: the
        strategy itself spans several workers, so collectives cross
        processes), `num_replicas` (replicas in
        sync over the whole cluster), `local_replicas` (replicas in this process),
        `strategy` (class name).

    Example:
    >>> worker_info()["is_chief"]  # no TF_CONFIG, no strategy
    True
    """
    strategy = _resolve(strategy)
    resolver = getattr(strategy, "cluster_resolver", None)
    from_strategy = resolver is not None and resolver.task_type is not None
    if from_strategy:
        cluster = resolver.cluster_spec().as_dict()
        task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
        chief = bool(strategy.extended.should_checkpoint)
    else:
        config = _tf_config()
        cluster = config.get("cluster", {})
        task = config.get("task", {})
        task_type, task_id = task.get("type"), int(task.get("index", 0))
        if task_type is None:
            chief = True
        elif "chief" in cluster:
            chief = task_type == "chief"
        else:
            chief = task_type == "worker" and task_id == 0
    workers = sum(len(cluster.get(kind, ())) for kind in ("chief", "worker")) or 1
    multi_worker = from_strategy and workers > 1
    replicas = int(strategy.num_replicas_in_sync)
    return {
        "task_type": task_type,
        "task_id": task_id,
        "num_workers": workers,
        "is_chief": chief,
        "multi_worker": multi_worker,
        "num_replicas": replicas,
        # Every worker of a multi-worker strategy holds the same number of replicas.
        "local_replicas": replicas // workers if multi_worker else replicas,
        "strategy": type(strategy).__name__,
    }


def is_chief(strategy=None) -> bool:
    """Tells whether this process is the chief, the one worker that writes files.

    Args:
        strategy: A `tf.distribute.Strategy`, or `None` for the active one.
            Defaults to `None`.

    Returns:
        `True` on the chief and in any single-process run.

    Example:
    ```python
    if is_chief(strategy):
        print("I write the report")
    ```
    """
    return worker_info(strategy)["is_chief"]


def _worker_folder(path: Path, info: dict) -> Path:
    return path.parent / f".workertemp_{info['task_type']}_{info['task_id']}"


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TfgreenTypeError(
            message(
                "`path` is not a file path",
                "a non-empty str or pathlib.Path",
                "Pass where the chief should write, for example 'out/model.tflite'",
                path=path,
            )
        )
    return Path(path)


def chief_path(path: str | os.PathLike, strategy=None) -> Path:
    """Returns where this worker should write `path`: the path itself on the chief.

    Every worker can run the same saving code: the chief gets `path`, any
    other worker gets the same file name inside a private folder
    `<folder>/.workertemp_<type>_<id>/` (created), so no two workers write the
    same file. Delete that folder afterwards with `remove_worker_path`, or use
    `chief_writes`, which does both.

    Args:
        path: Where the file belongs (as the chief writes it).
        strategy: A `tf.distribute.Strategy`, or `None` for the active one.
            Defaults to `None`.

    Returns:
        A `Path` to write to; its folder exists.

    Example:
    ```python
    target = chief_path("out/model.keras", strategy)
    model.save(target)
    remove_worker_path("out/model.keras", strategy)
    ```
    """
    path = _check_path(path)
    info = worker_info(strategy)
    folder = path.parent if info["is_chief"] else _worker_folder(path, info)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / path.name


def remove_worker_path(path: str | os.PathLike, strategy=None) -> None:
    """Deletes the private folder `chief_path` gave a non-chief worker (no-op on the chief).

    Args:
        path: The same path that was given to `chief_path`.
        strategy: A `tf.distribute.Strategy`, or `None` for the active one.
            Defaults to `None`.

    Example:
    ```python
    remove_worker_path("out/model.keras", strategy)
    ```
    """
    path = _check_path(path)
    info = worker_info(strategy)
    if not info["is_chief"]:
        shutil.rmtree(_worker_folder(path, info), ignore_errors=True)


@contextlib.contextmanager
def chief_writes(path: str | os.PathLike, strategy=None) -> Iterator[Path]:
    """Context manager: yields where to write `path`; only the chief's copy is kept.

    Args:
        path: Where the file belongs (as the chief writes it).
        strategy: A `tf.distribute.Strategy`, or `None` for the active one.
            Defaults to `None`.

    Yields:
        The `Path` this worker writes to (see `chief_path`); a non-chief's
        copy is deleted on exit, even on error.

    Example:
    ```python
    with chief_writes("out/model.keras", strategy) as target:
        model.save(target)
    ```
    """
    target = chief_path(path, strategy)
    try:
        yield target
    finally:
        remove_worker_path(path, strategy)


def _check_scalar(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise TfgreenTypeError(
            message(
                f"`{name}` is not a number",
                "a Python or numpy scalar (for example energy in kWh)",
                "Pass one float per worker",
                **{name: value},
            )
        ) from error
    return number


def all_reduce(value: float, op: str = "sum", strategy=None) -> float:
    """Sums (or averages) one scalar per worker over all workers, with the strategy's all-reduce.

    Each worker passes its own figure (for example the energy it measured);
    every worker gets the total back. Under a multi-worker strategy this is a
    collective `strategy.reduce` across processes, so every worker must call
    it the same number of times, in the same order (for example once per
    epoch from a callback). When the strategy spans one process (no strategy,
    or `MirroredStrategy` on one machine) there is one worker and the value
    comes back unchanged, even if `TF_CONFIG` names other workers. Call it in
    cross-replica context (a callback, or outside `strategy.run`).

    Args:
        value: This worker's figure, a scalar.
        op: `"sum"` or `"mean"` over workers. Defaults to `"sum"`.
        strategy: The strategy training runs under (in a callback:
            `tfgreen.distribute.strategy_of(self.model)`), or `None` for the
            active one. Defaults to `None`.

    Returns:
        The sum (or mean) over workers, as a Python float.

    Example:
    ```python
    total_kwh = all_reduce(my_kwh, strategy=strategy_of(model))
    ```
    """
    if op not in _REDUCE_OPS:
        raise TfgreenValueError(
            message(
                "Unknown reduction",
                f"one of {_REDUCE_OPS}",
                "Pass op='sum' for a total over workers or op='mean' for the average",
                op=op,
            )
        )
    number = _check_scalar("value", value)
    strategy = _resolve(strategy)
    info = worker_info(strategy)
    if not info["multi_worker"]:
        return number
    import tensorflow as tf

    local = info["local_replicas"]

    def _per_replica(context):
        # One replica per worker carries the figure, the others add zero, so a
        # SUM over replicas is the sum over workers.
        first = context.replica_id_in_sync_group % local == 0
        return tf.constant(number if first else 0.0, tf.float64)

    values = strategy.experimental_distribute_values_from_function(_per_replica)
    total = float(strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None))
    return total / info["num_workers"] if op == "mean" else total


def any_worker(flag: bool, strategy=None) -> bool:
    """Tells every worker whether at least one worker raised `flag`.

    Use it so all workers take a decision together, for example stopping
    training when any worker is over an energy budget (a worker that stops
    alone would leave the others waiting in the next all-reduce). A
    collective call, like `all_reduce`.

    Args:
        flag: This worker's vote.
        strategy: The strategy training runs under, or `None` for the active
            one. Defaults to `None`.

    Returns:
        `True` on every worker if any worker passed `True`.

    Example:
    ```python
    if any_worker(used_kwh > budget, strategy_of(self.model)):
        self.model.stop_training = True
    ```
    """
    return all_reduce(1.0 if flag else 0.0, "sum", strategy) > 0.0


def check_strategy(model, strategy=None) -> str:
    """Checks that a model's Keras flavour can train under the strategy, before any work.

    Args:
        model: A Keras 3 or tf_keras model.
        strategy: The strategy to train under, or `None` for the model's own
            (`model.distribute_strategy`). Defaults to `None`.

    Returns:
        The strategy's class name.

    Raises:
        UnsupportedStrategyError: for a Keras 3 model under a
            `MultiWorkerMirroredStrategy` with more than one worker, where
            Keras 3's `model.fit` fails (keras-team/keras#20585).

    Example:
    ```python
    check_strategy(model)
    # 'MirroredStrategy'
    ```
    """
    flavor = flavor_of(model)
    strategy = strategy_of(model) if strategy is None else _resolve(strategy)
    info = worker_info(strategy)
    name = info["strategy"]
    if info["multi_worker"] and not trains_multi_worker(flavor):
        raise UnsupportedStrategyError(
            message(
                f"Keras 3 cannot train under {name} with {info['num_workers']} workers: its "
                "`model.fit` fails when it builds the model from a distributed batch "
                "(keras-team/keras#20585)",
                "a tf_keras model for multi-worker training, or MirroredStrategy on one machine",
                "Build the model with `tf_keras` (tfgreen supports both), or train on one "
                "machine with tf.distribute.MirroredStrategy",
                flavor=flavor,
                strategy=name,
                num_workers=info["num_workers"],
            )
        )
    if name not in _TESTED:
        warnings.warn(
            f"tfgreen is not tested under {name}; it is tested under MirroredStrategy "
            "(both Kerases) and MultiWorkerMirroredStrategy (tf_keras).",
            stacklevel=2,
        )
    return name
