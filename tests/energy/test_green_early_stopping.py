import pytest

from tfgreen.callbacks import EnergyTracker, GreenEarlyStopping
from tfgreen.errors import TfgreenValueError


def test_stops_when_gain_per_kwh_is_too_small(flavor, mlp, digits_flat):
    (x, y), (x_val, y_val) = digits_flat
    # no real gain is worth 1e15 per kWh: stop after the first gain is measured
    stop = GreenEarlyStopping("val_loss", min_gain_per_kwh=1e15, patience=1, verbose=0)
    history = mlp.fit(
        x, y, validation_data=(x_val, y_val), epochs=10, verbose=0, callbacks=[stop]
    ).history
    assert len(history["loss"]) == 2  # epoch 1 sets the reference, epoch 2 is judged
    assert stop.stopped_epoch == 1
    assert len(stop.gains_per_kwh) == 1 and stop.gains_per_kwh[0] < 1e15
    assert history["gain_per_kwh"] == stop.gains_per_kwh
    expected = (history["val_loss"][0] - history["val_loss"][1]) / history["epoch_energy_kwh"][1]
    assert stop.gains_per_kwh[0] == pytest.approx(expected)


def test_keeps_training_while_gains_are_worth_it(flavor, mlp, digits_flat):
    (x, y), _ = digits_flat
    tracker = EnergyTracker()
    stop = GreenEarlyStopping("accuracy", min_gain_per_kwh=1e-3, patience=1, tracker=tracker)
    assert stop.mode == "max"
    history = mlp.fit(x, y, epochs=4, verbose=0, callbacks=[tracker, stop]).history
    # training accuracy of a fresh MLP on digits rises every early epoch
    assert len(history["loss"]) == 4 and stop.stopped_epoch is None
    assert all(g > 1e-3 for g in stop.gains_per_kwh)


def test_missing_metric_is_an_error(flavor, mlp, digits_flat):
    (x, y), _ = digits_flat
    stop = GreenEarlyStopping("val_loss")
    with pytest.raises(TfgreenValueError, match="'val_loss' is not in the epoch logs"):
        mlp.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[stop])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_gain_per_kwh": 0}, "`min_gain_per_kwh` is not a valid number"),
        ({"min_gain_per_kwh": -1.0}, "Received: min_gain_per_kwh=-1.0"),
        ({"patience": 0}, "`patience` must be an int >= 1"),
        ({"mode": "up"}, "Unknown `mode`.*Received: mode='up'"),
        ({"monitor": ""}, "`monitor` must name a metric"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(TfgreenValueError, match=match):
        GreenEarlyStopping(**kwargs)
