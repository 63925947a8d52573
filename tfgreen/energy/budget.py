"""`EnergyBudget`: stops `fit` once the energy or CO2 budget is spent."""

from __future__ import annotations

from tfgreen._validate import number
from tfgreen.energy.tracker import EnergyTracker, TrackerUser
from tfgreen.errors import TfgreenValueError, message

__all__ = ["EnergyBudget"]


def _check_budget(name: str, value) -> float | None:
    return number(
        name,
        value,
        minimum=0,
        exclusive_minimum=True,
        allow_none=True,
        example=0.01,
        fix=f"Pass a budget > 0 (kWh for max_kwh, kg for max_co2_kg), for example {name}=0.01, "
        "or None for no limit",
    )


class EnergyBudget(TrackerUser):
    """Stops training at the end of the epoch in which the energy or CO2 budget is spent.

    The budget counts from the start of each `fit`. It is checked after every
    epoch (validation included), so the last epoch may overshoot it by up to
    one epoch's energy. When it stops training it says so (unless
    `verbose=0`), and `stopped_epoch`, `reason` tell what happened.

    Measuring: with `tracker=None` (the default) the budget measures by
    itself with a private `EnergyTracker` and also writes `energy_kwh` /
    `co2_kg` into `logs`. To share one tracker, pass it as `tracker` and put
    it in the same `callbacks` list before the budget; anything else raises
    an error at the end of the first epoch.

    Args:
        max_kwh: Energy budget in kWh, or `None`. Defaults to `None`.
        max_co2_kg: CO2 budget in kg, or `None`. Defaults to `None`.
        tracker: An `EnergyTracker` in the same `callbacks` list, or `None`
            to measure with a private one. Defaults to `None`.
        country_iso_code: Grid country of the private tracker (ignored when
            `tracker` is given). Defaults to `"DEU"`.
        verbose: 0 is silent, 1 says when it stops training, 2 also prints
            the spending after each epoch. Defaults to `1`.

    Example:
    ```python
    budget = tfgreen.callbacks.EnergyBudget(max_kwh=0.01)
    model.fit(x, y, epochs=1000, callbacks=[budget])
    budget.stopped_epoch  # None if the budget was never reached
    ```
    """

    def __init__(
        self,
        max_kwh: float | None = None,
        max_co2_kg: float | None = None,
        tracker: EnergyTracker | None = None,
        country_iso_code: str = "DEU",
        verbose: int = 1,
    ):
        self.max_kwh = _check_budget("max_kwh", max_kwh)
        self.max_co2_kg = _check_budget("max_co2_kg", max_co2_kg)
        if self.max_kwh is None and self.max_co2_kg is None:
            raise TfgreenValueError(
                message(
                    "EnergyBudget needs a budget",
                    "max_kwh and/or max_co2_kg set to a positive number",
                    "Pass for example EnergyBudget(max_kwh=0.01)",
                    max_kwh=max_kwh,
                    max_co2_kg=max_co2_kg,
                )
            )
        self._set_tracker(tracker, country_iso_code)
        self.verbose = int(verbose)
        self.stopped_epoch: int | None = None
        self.reason: str | None = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None
        self.reason = None
        super().on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_figures(epoch, logs)
        spent_kwh, spent_co2 = self.tracker.energy_kwh, self.tracker.co2_kg
        if self.verbose > 1:
            print(
                f"EnergyBudget: epoch {epoch + 1}: spent {spent_kwh:.3g} kWh"
                + (f" of {self.max_kwh:.3g}" if self.max_kwh else "")
                + f", {spent_co2:.3g} kg CO2"
                + (f" of {self.max_co2_kg:.3g}" if self.max_co2_kg else "")
                + f" ({self.tracker.method})"
            )
        if self.max_kwh is not None and spent_kwh >= self.max_kwh:
            self.reason = f"energy budget spent: {spent_kwh:.3g} kWh >= max_kwh={self.max_kwh:.3g}"
        elif self.max_co2_kg is not None and spent_co2 >= self.max_co2_kg:
            self.reason = (
                f"CO2 budget spent: {spent_co2:.3g} kg >= max_co2_kg={self.max_co2_kg:.3g}"
            )
        else:
            return
        self.stopped_epoch = epoch
        self.model.stop_training = True
        if self.verbose:
            print(
                f"EnergyBudget: stopping training after epoch {epoch + 1}, {self.reason} "
                f"({self.tracker.method})"
            )
