import pytest

from tfgreen.callbacks import EnergyBudget, EnergyTracker
from tfgreen.errors import TfgreenTypeError, TfgreenValueError


def test_budget_stops_training_early_and_says_so(flavor, mlp, digits_flat, capsys):
    (x, y), _ = digits_flat
    budget = EnergyBudget(max_kwh=1e-12)  # less than any epoch costs
    history = mlp.fit(x, y, epochs=10, verbose=0, callbacks=[budget]).history
    assert len(history["loss"]) == 1  # 1 of 10 epochs
    assert budget.stopped_epoch == 0
    assert history["energy_kwh"][-1] >= 1e-12  # it measured by itself and logged it
    assert "energy budget spent" in budget.reason
    assert "stopping training after epoch 1" in capsys.readouterr().out


def test_budget_runs_to_the_end_when_not_spent(flavor, mlp, digits_flat):
    (x, y), _ = digits_flat
    budget = EnergyBudget(max_kwh=1.0, verbose=0)
    history = mlp.fit(x[:256], y[:256], epochs=3, verbose=0, callbacks=[budget]).history
    assert len(history["loss"]) == 3
    assert budget.stopped_epoch is None and budget.reason is None
    assert 0 < budget.tracker.energy_kwh < 1.0


def test_co2_budget_with_a_shared_tracker(flavor, mlp, digits_flat):
    (x, y), _ = digits_flat
    tracker = EnergyTracker(tracking_mode="process")  # own work only: steady per epoch
    mlp.fit(x, y, epochs=3, verbose=0, callbacks=[tracker])
    one_epoch_co2 = tracker.epochs[-1]["co2_kg"]
    # a budget of about two warm epochs: stops after the 2nd to 4th of 20 epochs
    budget = EnergyBudget(max_co2_kg=1.5 * one_epoch_co2, tracker=tracker, verbose=0)
    history = mlp.fit(x, y, epochs=20, verbose=0, callbacks=[tracker, budget]).history
    assert 1 <= len(history["loss"]) < 20
    assert budget.stopped_epoch == len(history["loss"]) - 1
    assert tracker.co2_kg >= budget.max_co2_kg
    assert "CO2 budget spent" in budget.reason
    assert history["co2_kg"][-1] == tracker.co2_kg


def test_shared_tracker_missing_from_the_list_is_an_error(flavor, mlp, digits_flat):
    (x, y), _ = digits_flat
    tracker = EnergyTracker()
    budget = EnergyBudget(max_kwh=1.0, tracker=tracker)
    with pytest.raises(TfgreenValueError, match="found no energy figure.*before the EnergyBudget"):
        mlp.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[budget])
    # after a fit with the tracker, a fit without it must not read its stale figures
    mlp.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[tracker, budget])
    with pytest.raises(TfgreenValueError, match="found no energy figure"):
        mlp.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[budget])
    # and the wrong order is caught too
    with pytest.raises(TfgreenValueError, match="found no energy figure"):
        mlp.fit(x[:64], y[:64], epochs=1, verbose=0, callbacks=[budget, tracker])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_kwh": 0}, "`max_kwh` is not a valid number.*Received: max_kwh=0"),
        ({"max_kwh": -0.5}, "Received: max_kwh=-0.5"),
        ({"max_co2_kg": 0.0}, "`max_co2_kg` is not a valid number"),
        ({"max_kwh": float("nan")}, "`max_kwh` is not a valid number"),
        ({}, "EnergyBudget needs a budget"),
        ({"max_kwh": 1.0, "country_iso_code": "ZZZ"}, "Unknown country code"),
    ],
)
def test_bad_budgets(kwargs, match):
    with pytest.raises(TfgreenValueError, match=match):
        EnergyBudget(**kwargs)


def test_tracker_of_the_wrong_type():
    with pytest.raises(TfgreenTypeError, match="must be a tfgreen EnergyTracker"):
        EnergyBudget(max_kwh=1.0, tracker="tracker")
