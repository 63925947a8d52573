"""tfgreen.distribute in the test process: roles from TF_CONFIG, chief-only paths, argument checks.

Real strategies (MirroredStrategy, MultiWorkerMirroredStrategy) run in child
processes: see `tests/distribute/`.
"""

from __future__ import annotations

import json

import pytest

from tfgreen import distribute
from tfgreen.errors import TfgreenError, TfgreenTypeError, TfgreenValueError


def _tf_config(monkeypatch, cluster: dict, task_type: str, index: int) -> None:
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    )


WORKERS = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


def test_lone_process_is_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    info = distribute.worker_info()
    assert info["is_chief"] is True
    assert info["multi_worker"] is False
    assert (info["num_workers"], info["num_replicas"], info["local_replicas"]) == (1, 1, 1)
    assert distribute.is_chief() is True


@pytest.mark.parametrize(
    ("cluster", "task_type", "index", "chief"),
    [
        (WORKERS, "worker", 0, True),
        (WORKERS, "worker", 1, False),
        ({"chief": ["127.0.0.1:3"], **WORKERS}, "worker", 0, False),
        ({"chief": ["127.0.0.1:3"], **WORKERS}, "chief", 0, True),
        ({"evaluator": ["127.0.0.1:4"], **WORKERS}, "evaluator", 0, False),
    ],
)
def test_chief_from_tf_config(monkeypatch, cluster, task_type, index, chief):
    _tf_config(monkeypatch, cluster, task_type, index)
    info = distribute.worker_info()
    assert info["is_chief"] is chief
    assert (info["task_type"], info["task_id"]) == (task_type, index)
    assert info["num_workers"] == len(cluster.get("chief", ())) + 2
    # No multi-worker strategy is active, so collectives stay in this process.
    assert info["multi_worker"] is False
    assert distribute.all_reduce(2.5) == 2.5


def test_chief_writes_keeps_only_chief_copy(monkeypatch, tmp_path):
    target = tmp_path / "out" / "model.bin"
    _tf_config(monkeypatch, WORKERS, "worker", 1)
    with distribute.chief_writes(target) as path:
        assert path == tmp_path / "out" / ".workertemp_worker_1" / "model.bin"
        path.write_bytes(b"worker copy")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []

    _tf_config(monkeypatch, WORKERS, "worker", 0)
    with distribute.chief_writes(target) as path:
        assert path == target
        path.write_bytes(b"chief copy")
    assert target.read_bytes() == b"chief copy"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.bin"]


def test_worker_copy_removed_on_error(monkeypatch, tmp_path):
    _tf_config(monkeypatch, WORKERS, "worker", 1)
    with (
        pytest.raises(RuntimeError, match="disk full"),
        distribute.chief_writes(tmp_path / "r.json") as path,
    ):
        path.write_text("{}")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_chief_path_then_remove(monkeypatch, tmp_path):
    _tf_config(monkeypatch, WORKERS, "worker", 1)
    path = distribute.chief_path(tmp_path / "a" / "x.txt")
    assert path.parent.is_dir() and path.parent.name == ".workertemp_worker_1"
    distribute.remove_worker_path(tmp_path / "a" / "x.txt")
    assert not path.parent.exists()


def test_reduce_single_worker():
    assert distribute.all_reduce(0.125) == 0.125
    assert distribute.all_reduce(3, op="mean") == 3.0
    assert distribute.any_worker(True) is True
    assert distribute.any_worker(False) is False


def test_check_strategy_default(flavor, keras):
    from tfgreen.models import small_mlp

    model = small_mlp(flavor, hidden=(4,))
    assert distribute.check_strategy(model) == "_DefaultDistributionStrategy"
    assert distribute.strategy_of(model) is distribute.strategy_of()


def test_bad_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(
        TfgreenValueError, match=r"TF_CONFIG is not valid JSON.*Received: TF_CONFIG="
    ):
        distribute.worker_info()
    monkeypatch.setenv("TF_CONFIG", "[1, 2]")
    with pytest.raises(TfgreenValueError, match="TF_CONFIG is not a JSON object"):
        distribute.is_chief()


def test_bad_arguments(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TfgreenValueError, match=r"Unknown reduction.*Received: op='max'"):
        distribute.all_reduce(1.0, op="max")
    with pytest.raises(TfgreenTypeError, match=r"`value` is not a number.*Received: value='a lot'"):
        distribute.all_reduce("a lot")
    with pytest.raises(
        TfgreenTypeError, match=r"not a tf.distribute strategy.*Received: strategy='str'"
    ):
        distribute.worker_info("mirrored")
    with pytest.raises(TfgreenTypeError, match=r"`path` is not a file path.*Received: path=None"):
        distribute.chief_path(None)
    with pytest.raises(TfgreenTypeError, match="not a Keras model"):
        distribute.check_strategy(object())
    with pytest.raises(TfgreenTypeError, match="not a Keras model"):
        distribute.strategy_of("model")


def test_unsupported_strategy_error_is_tfgreen_and_builtin():
    assert issubclass(distribute.UnsupportedStrategyError, TfgreenError)
    assert issubclass(distribute.UnsupportedStrategyError, NotImplementedError)


def test_energy_tracker_single_process_reports_own(flavor, digits_flat, monkeypatch):
    import tfgreen
    from tfgreen.models import small_mlp

    monkeypatch.delenv("TF_CONFIG", raising=False)
    (x, y), _ = digits_flat
    model = small_mlp(flavor, hidden=(8,))
    model.compile("adam", "sparse_categorical_crossentropy")
    tracker = tfgreen.callbacks.EnergyTracker()
    history = model.fit(x[:256], y[:256], epochs=1, verbose=0, callbacks=[tracker])
    assert tracker.energy_kwh > 0
    assert tracker.worker_energy_kwh == tracker.energy_kwh
    assert history.history["energy_kwh"] == [tracker.energy_kwh]
    assert "worker_energy_kwh" not in history.history


@pytest.mark.parametrize("index", [0, 1])
def test_energy_csv_written_by_chief_only(monkeypatch, tmp_path, digits_flat, index):
    import tfgreen
    from tfgreen.models import small_mlp

    _tf_config(monkeypatch, WORKERS, "worker", index)
    (x, y), _ = digits_flat
    model = small_mlp("tf_keras", hidden=(8,))
    model.compile("adam", "sparse_categorical_crossentropy")
    tracker = tfgreen.callbacks.EnergyTracker(output_dir=str(tmp_path))
    model.fit(x[:128], y[:128], epochs=1, verbose=0, callbacks=[tracker])
    names = sorted(p.name for p in tmp_path.iterdir())
    if index == 0:  # the chief keeps CodeCarbon's CSV
        assert "emissions.csv" in names
        assert not any(name.startswith(".workertemp") for name in names)
    else:  # worker 1 wrote into its temp folder, deleted at the end of fit
        assert names == []


def test_check_strategy_warns_under_untested_strategy(flavor):
    import tensorflow as tf

    from tfgreen.models import small_mlp

    strategy = tf.distribute.experimental.CentralStorageStrategy()
    model = small_mlp(flavor, hidden=(4,))
    with pytest.warns(UserWarning, match="not tested under CentralStorageStrategy"):
        assert distribute.check_strategy(model, strategy) == "CentralStorageStrategy"
