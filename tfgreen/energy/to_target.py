"""`EnergyToTarget`: the energy a training run spent until a metric first reached a target."""

from __future__ import annotations

import math

from tfgreen._validate import number
from tfgreen.energy.early_stopping import check_monitor, monitored
from tfgreen.energy.tracker import EnergyTracker, TrackerUser
from tfgreen.errors import TfgreenTypeError, message

__all__ = ["EnergyToTarget"]


class EnergyToTarget(TrackerUser):
    """Logs `energy_to_target_kwh`: the energy spent until the monitored metric first hit `target`.

    After each epoch, `logs` gets `energy_to_target_kwh` and
    `co2_to_target_kg`: NaN until the target is reached, then the energy
    and CO2 of the `fit` up to and including the epoch that first reached
    it (the same value from then on, so `History` keeps one entry per
    epoch). `target_epoch`, `energy_to_target_kwh` and `co2_to_target_kg`
    keep them as attributes (`None` if never reached); at the end of `fit`
    it says when the target was never reached (unless `verbose=0`). With
    `stop=True` training stops at that epoch.

    Measuring works as for `EnergyBudget`: a private `EnergyTracker` unless
    `tracker` is given (then it must be in the same `callbacks` list, before
    this callback). Under a multi-worker `tf.distribute` strategy the
    tracker sums the energy over the workers, so the figure is the cluster's.

    Args:
        monitor: Metric in `logs` to watch. Defaults to `"val_accuracy"`.
        target: The value to reach. Defaults to `0.95`.
        mode: `"max"` (reached when the metric is >= target), `"min"` (<=),
            or `"auto"` (from the name: accuracy-like metrics are
            maximized). Defaults to `"auto"`.
        stop: Stop training when the target is reached. Defaults to `False`.
        tracker: An `EnergyTracker` in the same `callbacks` list, or `None`.
            Defaults to `None`.
        verbose: 0 is silent, 1 says when the target is reached or that it
            never was. Defaults to `1`.

    Example:
    ```python
    to_target = tfgreen.callbacks.EnergyToTarget("val_accuracy", target=0.95, stop=True)
    model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[to_target])
    to_target.energy_to_target_kwh, to_target.target_epoch
    # (2.1e-06, 7)
    ```
    """

    def __init__(
        self,
        monitor: str = "val_accuracy",
        target: float = 0.95,
        mode: str = "auto",
        stop: bool = False,
        tracker: EnergyTracker | None = None,
        verbose: int = 1,
    ):
        self.mode = check_monitor(monitor, mode)
        number("target", target, example=0.95, fix="Pass the value to reach, e.g. target=0.95")
        if not isinstance(stop, bool):
            raise TfgreenTypeError(
                message(
                    "`stop` must be True or False",
                    "a bool: stop training when the target is reached, or not",
                    "Pass stop=True",
                    stop=stop,
                )
            )
        self.monitor = monitor
        self.target = float(target)
        self.stop = stop
        self._set_tracker(tracker, "DEU")
        self.verbose = int(verbose)
        self._reset()

    def _reset(self) -> None:
        self.target_epoch: int | None = None
        self.energy_to_target_kwh: float | None = None
        self.co2_to_target_kg: float | None = None
        self.epochs_run = 0

    def on_train_begin(self, logs=None):
        self._reset()
        super().on_train_begin(logs)

    def _reached(self, value: float) -> bool:
        return value >= self.target if self.mode == "max" else value <= self.target

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_figures(epoch, logs)
        value = monitored(self, logs)
        self.epochs_run = epoch + 1
        if self.target_epoch is None and self._reached(value):
            self.target_epoch = epoch
            self.energy_to_target_kwh = self.tracker.energy_kwh
            self.co2_to_target_kg = self.tracker.co2_kg
            if self.verbose:
                print(
                    f"EnergyToTarget: {self.monitor} = {value:.4g} reached {self.target:.4g} "
                    f"after epoch {epoch + 1}: {self.energy_to_target_kwh:.3g} kWh, "
                    f"{self.co2_to_target_kg:.3g} kg CO2 ({self.tracker.method})"
                )
            if self.stop:
                self.model.stop_training = True
        if logs is not None:
            reached = self.target_epoch is not None
            logs["energy_to_target_kwh"] = self.energy_to_target_kwh if reached else math.nan
            logs["co2_to_target_kg"] = self.co2_to_target_kg if reached else math.nan

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.target_epoch is None and self.verbose:
            print(
                f"EnergyToTarget: {self.monitor} never reached {self.target:.4g} in "
                f"{self.epochs_run} epoch(s); {self.tracker.energy_kwh:.3g} kWh spent "
                f"({self.tracker.method})"
            )
