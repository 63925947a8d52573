"""`GreenEarlyStopping`: stops when a metric's gain per kWh is no longer worth the energy."""

from __future__ import annotations

from tfgreen._validate import choice, number, positive_int
from tfgreen.energy.tracker import EnergyTracker, TrackerUser
from tfgreen.errors import TfgreenValueError, message

__all__ = ["GreenEarlyStopping", "check_monitor", "monitored"]

_MODES = ("auto", "min", "max")


def check_monitor(monitor: str, mode: str) -> str:
    """Validates a monitored metric's name and mode; returns `"min"` or `"max"`.

    Args:
        monitor: A key of the epoch logs, such as `"val_accuracy"`.
        mode: `"min"`, `"max"`, or `"auto"` (accuracy-like names are maximized).

    Returns:
        The resolved mode.

    Example:
    >>> check_monitor("val_accuracy", "auto")
    'max'
    """
    if not isinstance(monitor, str) or not monitor:
        raise TfgreenValueError(
            message(
                "`monitor` must name a metric",
                "a key of the epoch logs such as 'val_loss' or 'val_accuracy'",
                "Pass monitor='val_loss'",
                monitor=monitor,
            )
        )
    choice("mode", mode, _MODES, fix="Pass mode='min' for losses, mode='max' for accuracies")
    if mode != "auto":
        return mode
    return "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"


def monitored(callback, logs) -> float:
    """The value of `callback.monitor` in the epoch logs, or a clear error naming the keys."""
    logs = logs or {}
    if callback.monitor not in logs:
        name = type(callback).__name__
        raise TfgreenValueError(
            message(
                f"{name}'s monitored metric {callback.monitor!r} is not in the epoch logs",
                f"one of {sorted(logs)}",
                "Pass monitor= one of those, or add validation data for 'val_*' metrics",
                monitor=callback.monitor,
            )
        )
    return float(logs[callback.monitor])


class GreenEarlyStopping(TrackerUser):
    """Stops training when the monitored metric improves too little per kWh spent.

    After each epoch the gain is how much the monitored value improved on the
    best value seen so far (negative when it got worse), and the gain per kWh
    is that gain divided by the epoch's energy. When the gain per kWh stays
    below `min_gain_per_kwh` for `patience` epochs in a row, training stops.
    Example: `val_loss` falling 0.01 in an epoch of 2e-6 kWh is a gain of
    5000 per kWh.

    Measuring works as for `EnergyBudget`: a private `EnergyTracker` unless
    `tracker` is given (then it must be in the same `callbacks` list, before
    this callback).

    Args:
        monitor: Metric in `logs` to watch. Defaults to `"val_loss"`.
        min_gain_per_kwh: Smallest gain per kWh worth paying for, in metric
            units per kWh. Defaults to `1000.0`.
        patience: Epochs in a row below the threshold before stopping.
            Defaults to `2`.
        mode: `"min"` (lower is better), `"max"`, or `"auto"` (from the
            name: accuracy-like metrics are maximized). Defaults to `"auto"`.
        tracker: An `EnergyTracker` in the same `callbacks` list, or `None`.
            Defaults to `None`.
        verbose: 0 is silent, 1 says when it stops training, 2 also prints
            the gain per kWh after each epoch. Defaults to `1`.

    Example:
    ```python
    stop = tfgreen.callbacks.GreenEarlyStopping("val_loss", min_gain_per_kwh=1e4)
    model.fit(x, y, validation_split=0.2, epochs=200, callbacks=[stop])
    stop.stopped_epoch, stop.gains_per_kwh[-1]
    ```
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_gain_per_kwh: float = 1000.0,
        patience: int = 2,
        mode: str = "auto",
        tracker: EnergyTracker | None = None,
        verbose: int = 1,
    ):
        mode = check_monitor(monitor, mode)
        number(
            "min_gain_per_kwh",
            min_gain_per_kwh,
            minimum=0,
            exclusive_minimum=True,
            example=1000.0,
            fix="Pass the smallest improvement of the metric per kWh worth paying for, for "
            "example min_gain_per_kwh=1000.0",
        )
        positive_int(
            "patience",
            patience,
            example=2,
            fix="Pass the epochs in a row below the threshold, for example patience=2",
        )
        self.monitor = monitor
        self.min_gain_per_kwh = float(min_gain_per_kwh)
        self.patience = patience
        self.mode = mode
        self._set_tracker(tracker, "DEU")
        self.verbose = int(verbose)
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.reason: str | None = None
        self.gains_per_kwh: list[float] = []

    def on_train_begin(self, logs=None):
        self._reset()
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        figures = self._epoch_figures(epoch, logs)
        value = monitored(self, logs)
        logs = logs if logs is not None else {}
        if self.best is None:  # the first epoch sets the reference
            self.best = value
            return
        gain = (self.best - value) if self.mode == "min" else (value - self.best)
        per_kwh = gain / max(figures["energy_kwh"], 1e-15)
        self.gains_per_kwh.append(per_kwh)
        logs["gain_per_kwh"] = per_kwh
        if gain > 0:
            self.best = value
        self.wait = self.wait + 1 if per_kwh < self.min_gain_per_kwh else 0
        if self.verbose > 1:
            print(
                f"GreenEarlyStopping: epoch {epoch + 1}: {self.monitor} gain {gain:.4g} for "
                f"{figures['energy_kwh']:.3g} kWh = {per_kwh:.4g}/kWh "
                f"(threshold {self.min_gain_per_kwh:.4g}, {self.wait}/{self.patience})"
            )
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self.reason = (
                f"{self.monitor} gained less than {self.min_gain_per_kwh:.4g} per kWh for "
                f"{self.patience} epoch(s)"
            )
            if self.verbose:
                print(
                    f"GreenEarlyStopping: stopping after epoch {epoch + 1}: {self.reason} "
                    f"({self.tracker.method})"
                )
