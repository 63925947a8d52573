import math

import pytest

from tfgreen.callbacks import EnergyToTarget, EnergyTracker
from tfgreen.errors import TfgreenTypeError, TfgreenValueError


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adadelta"])
def test_energy_to_reach_the_target(flavor, keras, seed, digits_flat, optimizer):
    from tfgreen.models import small_mlp

    (x, y), (x_val, y_val) = digits_flat
    learning_rate = {"sgd": 0.1, "adam": 0.003, "adadelta": 1.0}[optimizer]
    model = small_mlp(flavor, hidden=(64,), seed=0)
    model.compile(
        keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": learning_rate}}),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    to_target = EnergyToTarget("val_accuracy", target=0.9, stop=True, verbose=0)
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=40,
        batch_size=32,
        verbose=0,
        callbacks=[to_target],
    ).history
    epoch = to_target.target_epoch
    assert epoch is not None and len(history["loss"]) == epoch + 1  # stopped there
    assert history["val_accuracy"][epoch] >= 0.9 > max(history["val_accuracy"][:epoch] + [0])
    assert to_target.energy_to_target_kwh > 0 and to_target.co2_to_target_kg > 0
    assert history["energy_to_target_kwh"][epoch] == to_target.energy_to_target_kwh
    assert to_target.energy_to_target_kwh == pytest.approx(history["energy_kwh"][epoch])
    assert all(math.isnan(v) for v in history["energy_to_target_kwh"][:epoch])


def test_target_never_reached_says_so(flavor, mlp, digits_flat, capsys):
    (x, y), _ = digits_flat
    tracker = EnergyTracker()
    to_target = EnergyToTarget("loss", target=0.0, tracker=tracker)  # a loss never reaches 0
    assert to_target.mode == "min"
    history = mlp.fit(x, y, epochs=2, verbose=0, callbacks=[tracker, to_target]).history
    assert to_target.target_epoch is None and to_target.energy_to_target_kwh is None
    assert len(history["loss"]) == 2 and all(math.isnan(v) for v in history["energy_to_target_kwh"])
    printed = capsys.readouterr().out
    assert "EnergyToTarget: loss never reached 0 in 2 epoch(s)" in printed
    # a second fit starts afresh, and the figure is at the first epoch that reached
    again = EnergyToTarget("accuracy", target=0.0, tracker=tracker, verbose=0)
    mlp.fit(x, y, epochs=2, verbose=0, callbacks=[tracker, again])
    assert again.target_epoch == 0 and again.energy_to_target_kwh == tracker.epochs[0]["energy_kwh"]


def test_missing_metric_and_bad_arguments(flavor, mlp, digits_flat):
    (x, y), _ = digits_flat
    with pytest.raises(TfgreenValueError, match="EnergyToTarget's monitored metric 'val_accuracy'"):
        mlp.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[EnergyToTarget()])
    with pytest.raises(TfgreenValueError, match="`monitor` must name a metric"):
        EnergyToTarget("")
    with pytest.raises(TfgreenValueError, match="`target` is not a valid number"):
        EnergyToTarget(target=float("nan"))
    with pytest.raises(TfgreenTypeError, match="`stop` must be True or False"):
        EnergyToTarget(stop="yes")
    with pytest.raises(TfgreenTypeError, match="must be a tfgreen EnergyTracker"):
        EnergyToTarget(tracker=object())
