"""`EnergyTracker`: energy (kWh) and CO2 (kg) of each epoch, in `logs`.

Built on CodeCarbon's `OfflineEmissionsTracker` (no network). Each `fit` is
one CodeCarbon *task* (`start_task` at train begin, `stop_task` at train end),
during which CodeCarbon samples power once a second in a background thread.
At each epoch end the tracker takes one more sample and reads CodeCarbon's
cumulative energy and CO2; an epoch's figure is the difference to the
previous epoch end, so the epochs add up to the whole `fit` and short epochs
are covered too. Nothing is written to disk unless `output_dir` is given,
and CodeCarbon's logging is kept at error level.

Where the machine has energy counters (Intel/AMD RAPL, Windows EMI, Apple
powermetrics, NVIDIA NVML) the CPU/GPU figures are *measured*; otherwise
CodeCarbon *estimates* CPU power from its TDP and the load, and RAM power from
a model. `tracker.method` says which (`"measured"` or `"estimate"`), and
`tracker.method_detail` how.
"""

from __future__ import annotations

import time
from pathlib import Path

from tfgreen._adapters import codecarbon
from tfgreen._callback import DualCallback
from tfgreen._timing import JOULES_PER_KWH
from tfgreen._validate import choice, number
from tfgreen.distribute import all_reduce, is_chief, strategy_of, worker_info
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = ["EnergyTracker", "TrackerUser", "check_country", "method_of"]

_TRACKING_MODES = ("process", "machine")
# CodeCarbon CPU modes that read hardware energy counters instead of estimating.
_COUNTER_MODES = {"intel_rapl", "windows_emi", "intel_power_gadget", "apple_powermetrics"}


def check_country(country_iso_code: str) -> str:
    """Validates a 3-letter ISO country code against CodeCarbon's energy-mix data.

    Args:
        country_iso_code: For example `"DEU"`, `"FRA"`, `"USA"`.

    Returns:
        The code in upper case.

    Example:
    >>> check_country("fra")
    'FRA'
    """
    code = country_iso_code.upper() if isinstance(country_iso_code, str) else None
    if code is None or code not in codecarbon.known_countries():
        raise TfgreenValueError(
            message(
                "Unknown country code for the carbon intensity of electricity",
                "a 3-letter ISO 3166 code known to CodeCarbon, such as 'DEU', 'FRA', 'USA', 'CHN'",
                "Pass the country where the machine runs, for example country_iso_code='DEU'",
                country_iso_code=country_iso_code,
            )
        )
    return code


def _check_args(tracking_mode, cpu_watts, output_dir, verbose) -> None:
    choice(
        "tracking_mode",
        tracking_mode,
        _TRACKING_MODES,
        fix="Pass tracking_mode='machine' (the whole machine's load) or tracking_mode='process' "
        "(this Python process only)",
    )
    number(
        "cpu_watts",
        cpu_watts,
        minimum=0,
        exclusive_minimum=True,
        allow_none=True,
        example=65,
        fix="Pass the CPU's TDP in watts, for example cpu_watts=65, or leave it out to let "
        "CodeCarbon look it up",
    )
    if output_dir is not None and not Path(output_dir).is_dir():
        raise TfgreenValueError(
            message(
                "`output_dir` is not an existing folder",
                "None (write nothing) or a folder for CodeCarbon's emissions.csv",
                "Create the folder first, or leave output_dir out",
                output_dir=str(output_dir),
            )
        )
    if not isinstance(verbose, (bool, int)):
        raise TfgreenTypeError(
            message(
                "`verbose` must be an int or a bool",
                "0 (silent) or 1 (one line per epoch)",
                "Pass verbose=1",
                verbose=verbose,
            )
        )


def method_of(codecarbon_tracker) -> tuple[str, str]:
    """Tells how a started CodeCarbon tracker gets its figures.

    Args:
        codecarbon_tracker: A CodeCarbon tracker whose hardware is set up
            (after `start` or `start_task`).

    Returns:
        `(method, detail)`: method is `"measured"` when CPU/GPU energy comes
        from hardware counters, `"estimate"` otherwise; detail says how each
        part is obtained.

    Example:
    ```python
    method_of(tracker)
    # ('estimate', 'CodeCarbon offline, tracking_mode=machine: RAM estimated ...')
    ```
    """
    parts, measured = [], []
    for part in codecarbon.hardware(codecarbon_tracker):
        if part["kind"] == "cpu" and part["mode"] in _COUNTER_MODES:
            parts.append(f"CPU measured by {part['mode']} counters")
            measured.append(True)
        elif part["kind"] == "cpu":
            parts.append(
                f"CPU estimated from load x TDP {part['tdp']} W ({part['mode']}; "
                "no RAPL energy counter)"
            )
            measured.append(False)
        elif part["kind"] == "gpu":
            parts.append("GPU measured by NVML/AMDSMI counters")
            measured.append(True)
        else:
            parts.append(f"{part['name']} estimated from a power model")
    method = "measured" if measured and all(measured) else "estimate"
    mode = codecarbon.tracking_mode(codecarbon_tracker)
    return method, f"CodeCarbon offline, tracking_mode={mode}: " + "; ".join(parts)


class EnergyTracker(DualCallback):
    """Writes the energy (kWh) and CO2 (kg) of training into `logs`, per epoch and in total.

    After each epoch, `logs` gets `energy_kwh` and `co2_kg` (cumulative since
    the start of this `fit`), and `epoch_energy_kwh` and `epoch_co2_kg`, so
    `History` and `TensorBoard` record them (put `TensorBoard` after the
    tracker in `callbacks`). Works in `model.fit` of Keras 3 and tf_keras.

    Figures come from CodeCarbon's offline tracker. Without energy counters
    (no RAPL) they are estimates from CPU TDP and load: `tracker.method` is
    then `"estimate"`, else `"measured"`; `tracker.method_detail` says how.
    The first `fit` in a process spends about a second detecting hardware.

    Under a multi-worker `tf.distribute` strategy each worker measures its own
    process and the tracker sums every epoch over the workers (a collective
    all-reduce, `tfgreen.distribute.all_reduce`): `energy_kwh` and `co2_kg`
    are then the cluster's totals, the same on every worker (so the chief
    reports the total and an `EnergyBudget` stops all workers together), and
    `worker_energy_kwh` / `worker_co2_kg` this worker's own (also in `logs`).
    Only the chief keeps CodeCarbon's CSV in `output_dir`.

    Args:
        country_iso_code: 3-letter ISO code of the country whose grid powers
            the machine (its carbon intensity turns kWh into CO2).
            Defaults to `"DEU"`.
        tracking_mode: `"machine"` (CodeCarbon's default) counts the whole
            machine's load; `"process"` only this Python process's CPU time
            and memory, fairer on a shared machine but about 3x the
            per-epoch overhead (it scans the process tree). Defaults to
            `"machine"`.
        cpu_watts: CPU TDP in watts for the estimate; `None` lets CodeCarbon
            look it up from the CPU model. Defaults to `None`.
        output_dir: Folder where CodeCarbon writes its `emissions.csv` at the
            end of `fit`; `None` writes nothing. Defaults to `None`.
        verbose: 1 prints one line per epoch. Defaults to `0`.

    Attributes (after `fit`):
        energy_kwh, co2_kg: Totals of the last `fit` (over all workers).
        worker_energy_kwh, worker_co2_kg: This worker's own totals.
        epochs: One dict per epoch (epoch, energy_kwh, co2_kg, seconds).
        method, method_detail: How the figures were obtained.

    Example:
    ```python
    tracker = tfgreen.callbacks.EnergyTracker(country_iso_code="FRA")
    history = model.fit(x, y, epochs=3, callbacks=[tracker])
    history.history["energy_kwh"][-1] == tracker.energy_kwh
    # True
    tracker.method
    # 'estimate'
    ```
    """

    def __init__(
        self,
        country_iso_code: str = "DEU",
        tracking_mode: str = "machine",
        cpu_watts: float | None = None,
        output_dir: str | Path | None = None,
        verbose: int = 0,
    ):
        _check_args(tracking_mode, cpu_watts, output_dir, verbose)
        self.country_iso_code = check_country(country_iso_code)
        self.tracking_mode = tracking_mode
        self.cpu_watts = cpu_watts
        self.output_dir = output_dir
        self.verbose = int(verbose)
        self.method: str | None = None
        self.method_detail: str | None = None
        self._codecarbon = None
        self._task_open = False
        self._last = (0.0, 0.0, 0.0)  # cumulative kWh, kg CO2 and time at the last epoch end
        self._reset()

    def _reset(self) -> None:
        self.energy_kwh = 0.0
        self.co2_kg = 0.0
        self.worker_energy_kwh = 0.0
        self.worker_co2_kg = 0.0
        self._strategy = None
        self._multi_worker = False
        self.epochs: list[dict] = []
        self.last_epoch: int | None = None
        self.running = False

    def on_train_begin(self, logs=None):
        self._reset()
        # tf.distribute: every worker measures itself; epochs are summed over workers.
        self._strategy = strategy_of(self.model) if self.model is not None else strategy_of()
        self._multi_worker = worker_info(self._strategy)["multi_worker"]
        if self._codecarbon is None:  # one CodeCarbon tracker serves every fit
            # Only the chief writes CodeCarbon's CSV; the other workers write nothing.
            output_dir = self.output_dir if is_chief(self._strategy) else None
            self._codecarbon = codecarbon.offline_tracker(
                self.country_iso_code, self.tracking_mode, self.cpu_watts, output_dir
            )
        elif self._task_open:  # a previous fit raised before its end: close its task
            self._codecarbon.stop_task()
        self._codecarbon.start_task("fit")  # starts CodeCarbon's 1 s sampling thread
        self._task_open = True
        self.method, self.method_detail = method_of(self._codecarbon)
        self._last = (*codecarbon.snapshot(self._codecarbon), time.perf_counter())
        self.running = True

    def on_epoch_end(self, epoch, logs=None):
        if not self.running:
            return
        kwh, kg = codecarbon.snapshot(self._codecarbon)
        now = time.perf_counter()
        energy, co2, seconds = kwh - self._last[0], kg - self._last[1], now - self._last[2]
        self._last = (kwh, kg, now)
        self.worker_energy_kwh += energy
        self.worker_co2_kg += co2
        if self._multi_worker:  # the same cluster-wide figures on every worker
            energy = all_reduce(energy, strategy=self._strategy)
            co2 = all_reduce(co2, strategy=self._strategy)
        self.energy_kwh += energy
        self.co2_kg += co2
        self.last_epoch = epoch
        self.epochs.append(
            {"epoch": epoch, "energy_kwh": energy, "co2_kg": co2, "seconds": seconds}
        )
        self._write(logs)
        if self.verbose:
            print(
                f"EnergyTracker: epoch {epoch + 1}: {energy:.3g} kWh, {co2:.3g} kg CO2 "
                f"({self.method}); total {self.energy_kwh:.3g} kWh, {self.co2_kg:.3g} kg CO2"
            )

    def _write(self, logs) -> None:
        if logs is None or not self.epochs:
            return
        logs["energy_kwh"] = self.energy_kwh
        logs["co2_kg"] = self.co2_kg
        logs["epoch_energy_kwh"] = self.epochs[-1]["energy_kwh"]
        logs["epoch_co2_kg"] = self.epochs[-1]["co2_kg"]
        if self._multi_worker:
            logs["worker_energy_kwh"] = self.worker_energy_kwh
            logs["worker_co2_kg"] = self.worker_co2_kg

    def on_train_end(self, logs=None):
        if not self.running:
            return
        self.running = False
        self._codecarbon.stop_task()  # stops CodeCarbon's sampling thread
        self._task_open = False
        if self.output_dir is not None:
            self._codecarbon.flush()  # CodeCarbon appends its totals to emissions.csv

    @property
    def energy_joules(self) -> float:
        """Total energy of the last `fit` in joules."""
        return self.energy_kwh * JOULES_PER_KWH

    def summary(self) -> dict:
        """The figures of the last `fit` as a dict, for reports.

        Returns:
            energy_kwh, co2_kg, epochs, seconds, method, method_detail,
            country_iso_code, tracking_mode.
        """
        return {
            "energy_kwh": self.energy_kwh,
            "co2_kg": self.co2_kg,
            "epochs": len(self.epochs),
            "seconds": sum(e["seconds"] for e in self.epochs),
            "method": self.method,
            "method_detail": self.method_detail,
            "country_iso_code": self.country_iso_code,
            "tracking_mode": self.tracking_mode,
        }


class TrackerUser(DualCallback):
    """Base of callbacks that read an `EnergyTracker`: a given one, or their own.

    With `tracker=None` the callback runs a private `EnergyTracker` (and so
    also writes `energy_kwh`/`co2_kg` into `logs`). With a tracker, that
    tracker must be in the same `callbacks` list, before this callback.
    """

    def _set_tracker(self, tracker, country_iso_code: str) -> None:
        if tracker is not None and not isinstance(tracker, EnergyTracker):
            raise TfgreenTypeError(
                message(
                    f"`tracker` of {type(self).__name__} must be a tfgreen EnergyTracker",
                    "an `EnergyTracker` that is also in the callbacks list, or None to "
                    "measure with a private one",
                    "Pass tracker=tfgreen.callbacks.EnergyTracker(...) or leave it out",
                    tracker=type(tracker).__name__,
                )
            )
        self._own = tracker is None
        self.tracker = EnergyTracker(country_iso_code) if tracker is None else tracker

    def set_model(self, model):
        super().set_model(model)
        if self._own:
            self.tracker.set_model(model)

    def on_train_begin(self, logs=None):
        if self._own:
            self.tracker.on_train_begin(logs)

    def on_train_end(self, logs=None):
        if self._own:
            self.tracker.on_train_end(logs)

    def _epoch_figures(self, epoch, logs) -> dict:
        """Energy figures of this epoch, after the tracker has measured it."""
        if self._own:
            self.tracker.on_epoch_end(epoch, logs)
        elif not self.tracker.running or self.tracker.last_epoch != epoch:
            raise TfgreenValueError(
                message(
                    f"{type(self).__name__} found no energy figure for this epoch from its tracker",
                    "the EnergyTracker passed as `tracker` in the same callbacks list, "
                    f"before the {type(self).__name__}",
                    f"Use callbacks=[tracker, {type(self).__name__}(..., tracker=tracker)], or "
                    "leave `tracker` out to let it measure by itself",
                    epoch=epoch,
                    tracker_last_epoch=self.tracker.last_epoch,
                )
            )
        return self.tracker.epochs[-1]
