import os
from pathlib import Path

import numpy as np
import pytest

from tfgreen.callbacks import EnergyTracker
from tfgreen.errors import TfgreenTypeError, TfgreenValueError

NO_RAPL = not Path("/sys/class/powercap/intel-rapl").exists()


def test_energy_in_logs_grows_with_work(flavor, mlp, digits_flat, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # CodeCarbon must write nothing into the working folder
    (x, y), _ = digits_flat
    # "process" mode counts this process's own CPU time; "machine" mode would also count
    # the other jobs sharing the test machine, whose load changes from one fit to the next
    tracker = EnergyTracker(country_iso_code="DEU", tracking_mode="process")
    # trace the train step and probe the hardware first
    mlp.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[tracker])
    short = mlp.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[tracker]).history
    short_total = tracker.energy_kwh
    # the same instance serves a second fit: its figures restart from zero
    long = mlp.fit(x, y, epochs=6, batch_size=16, verbose=0, callbacks=[tracker]).history

    for history, epochs in ((short, 3), (long, 6)):
        for key in ("energy_kwh", "co2_kg", "epoch_energy_kwh", "epoch_co2_kg"):
            assert len(history[key]) == epochs
        assert all(e > 0 for e in history["epoch_energy_kwh"])
        assert list(np.diff(history["energy_kwh"]) > 0) == [True] * (epochs - 1)
        assert history["energy_kwh"][-1] == pytest.approx(sum(history["epoch_energy_kwh"]))
        assert history["co2_kg"][-1] == pytest.approx(sum(history["epoch_co2_kg"]))
    assert long["energy_kwh"][-1] == tracker.energy_kwh
    assert len(tracker.epochs) == 6
    assert tracker.energy_kwh > short_total  # twice the epochs, more energy
    # DEU grid: CO2 / kWh is CodeCarbon's carbon intensity for Germany, 0.1-1 kg/kWh
    assert 0.1 < tracker.co2_kg / tracker.energy_kwh < 1.0
    assert tracker.energy_joules == pytest.approx(tracker.energy_kwh * 3.6e6)
    assert sorted(os.listdir(tmp_path)) == []  # no emissions.csv, no .codecarbon.config


def test_method_is_stated(flavor, mlp, digits_flat):
    (x, y), _ = digits_flat
    tracker = EnergyTracker(country_iso_code="fra")
    assert tracker.method is None  # nothing known before a fit
    mlp.fit(x[:256], y[:256], epochs=1, verbose=0, callbacks=[tracker])
    summary = tracker.summary()
    assert summary["country_iso_code"] == "FRA"
    assert summary["epochs"] == 1 and summary["seconds"] > 0
    assert summary["method"] in ("estimate", "measured")
    if NO_RAPL:  # these machines: no counter, so an estimate, and it says why
        assert tracker.method == "estimate"
        assert "TDP" in tracker.method_detail and "no RAPL" in tracker.method_detail


def test_cpu_watts_scales_the_estimate(mlp, digits_flat):
    if not NO_RAPL:
        pytest.skip("energy counters present: cpu_watts does not drive the figure")
    (x, y), _ = digits_flat
    low = EnergyTracker(cpu_watts=1, tracking_mode="machine")
    high = EnergyTracker(cpu_watts=1000, tracking_mode="machine")
    mlp.fit(x, y, epochs=1, verbose=0, callbacks=[low, high])
    assert "TDP 1.0 W" in low.method_detail and "TDP 1000.0 W" in high.method_detail
    # same epoch, same load; the machine-mode floor alone is 10% of the TDP
    assert high.epochs[0]["energy_kwh"] > 2 * low.epochs[0]["energy_kwh"]


def test_output_dir_gets_codecarbon_csv(mlp, digits_flat, tmp_path):
    (x, y), _ = digits_flat
    mlp.fit(x[:128], y[:128], epochs=1, verbose=0, callbacks=[EnergyTracker(output_dir=tmp_path)])
    assert (tmp_path / "emissions.csv").stat().st_size > 0


def test_verbose_prints_one_line_per_epoch(mlp, digits_flat, capsys):
    (x, y), _ = digits_flat
    mlp.fit(x[:128], y[:128], epochs=2, verbose=0, callbacks=[EnergyTracker(verbose=1)])
    lines = [line for line in capsys.readouterr().out.splitlines() if "EnergyTracker" in line]
    assert len(lines) == 2 and "kWh" in lines[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"country_iso_code": "XYZ"}, "Unknown country code.*Received: country_iso_code='XYZ'"),
        ({"country_iso_code": 276}, "Unknown country code"),
        ({"tracking_mode": "gpu"}, "Unknown `tracking_mode`.*Received: tracking_mode='gpu'"),
        ({"cpu_watts": -5}, "`cpu_watts` is not a valid number.*Received: cpu_watts=-5"),
        ({"output_dir": "/no/such/folder"}, "`output_dir` is not an existing folder"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(TfgreenValueError, match=match):
        EnergyTracker(**kwargs)


def test_bad_verbose():
    with pytest.raises(TfgreenTypeError, match="`verbose` must be an int"):
        EnergyTracker(verbose="yes")


def test_recovers_from_a_fit_that_raised(mlp, digits_flat):
    (x, y), _ = digits_flat
    tracker = EnergyTracker()
    tracker.on_train_begin()  # ... and the fit raised before its end
    history = mlp.fit(x[:128], y[:128], epochs=2, verbose=0, callbacks=[tracker]).history
    assert [e["epoch"] for e in tracker.epochs] == [0, 1]
    assert history["energy_kwh"][-1] == tracker.energy_kwh > 0


def test_never_touches_the_network(mlp, digits_flat, monkeypatch):
    import socket

    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    (x, y), _ = digits_flat
    tracker = EnergyTracker(country_iso_code="USA")
    mlp.fit(x[:128], y[:128], epochs=1, verbose=0, callbacks=[tracker])
    assert attempts == [] and tracker.co2_kg > 0


def test_one_instance_fits_both_callback_protocols():
    import keras
    import tf_keras
    from keras.src.utils.python_utils import is_default

    tracker = EnergyTracker()
    # tf_keras: no batch hooks to call, logs handed over as Python numbers
    legacy = tf_keras.callbacks.CallbackList([tracker])
    assert not legacy._should_call_train_batch_hooks and not legacy._supports_tf_logs
    # Keras 3: batch hooks count as not overridden, so async batch dispatch stays possible
    assert is_default(tracker.on_train_batch_end) and is_default(tracker.on_test_batch_end)
    assert not is_default(tracker.on_epoch_end)
    assert keras.callbacks.CallbackList([tracker]).callbacks == [tracker]
