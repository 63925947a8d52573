"""Every touch point of CodeCarbon, in one module (written against CodeCarbon 3.3).

tfgreen's energy figures come from CodeCarbon's offline tracker. This module
is the only one that imports `codecarbon`: it builds the quiet offline
tracker, lists the countries CodeCarbon knows, and reads the three internals
tfgreen needs (setup.cfg pins `codecarbon < 4`):

- `tracker._measure_power_and_energy()` and `tracker._prepare_emissions_data()`
  read the cumulative figures mid-task in about 0.2 ms (the public
  `stop_task` + `start_task`, or `flush`, restart CodeCarbon's sampling thread
  or its outputs, about 5 ms per epoch);
- `tracker._hardware`, `tracker._tracking_mode`, and a CPU's `_mode` and
  `_tdp` tell whether figures are measured by counters or estimated.

`TOUCH_POINTS` lists them; `tests/test_adapters_codecarbon.py` checks each
against the installed CodeCarbon and names the one that moved.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

__all__ = [
    "TOUCH_POINTS",
    "version",
    "known_countries",
    "offline_tracker",
    "snapshot",
    "hardware",
    "tracking_mode",
]

# (importable object, attribute it must have); "tracker" is an OfflineEmissionsTracker
# instance and "cpu" a codecarbon.external.hardware.CPU instance.
TOUCH_POINTS = (
    ("codecarbon", "OfflineEmissionsTracker"),
    ("codecarbon.input", "DataSource"),
    ("codecarbon.input.DataSource", "get_global_energy_mix_data"),
    ("codecarbon.output_methods.base_output", "OutputMethod"),
    ("codecarbon.output_methods.base_output.OutputMethod", "CSV"),
    ("codecarbon.external.hardware", "CPU"),
    ("codecarbon.external.hardware", "GPU"),
    ("tracker", "start_task"),
    ("tracker", "stop_task"),
    ("tracker", "stop"),
    ("tracker", "flush"),
    ("tracker", "_measure_power_and_energy"),
    ("tracker", "_prepare_emissions_data"),
    ("tracker", "_hardware"),
    ("tracker", "_tracking_mode"),
    ("cpu", "_mode"),
    ("cpu", "_tdp"),
)


def version() -> str:
    """The installed CodeCarbon version."""
    import codecarbon

    return codecarbon.__version__


@functools.lru_cache(maxsize=1)
def known_countries() -> frozenset[str]:
    """ISO 3166 alpha-3 codes of CodeCarbon's energy-mix data (upper case)."""
    from codecarbon.input import DataSource

    return frozenset(DataSource().get_global_energy_mix_data())


def offline_tracker(
    country_iso_code: str,
    tracking_mode: str,
    cpu_watts: float | None = None,
    output_dir: str | Path | None = None,
):
    """A quiet `OfflineEmissionsTracker`: no network, no lock file, no files unless asked.

    Args:
        country_iso_code: A code from `known_countries()`.
        tracking_mode: `"machine"` or `"process"`.
        cpu_watts: CPU TDP for the load-based estimate; `None` lets CodeCarbon
            look it up. Defaults to `None`.
        output_dir: Folder for CodeCarbon's `emissions.csv`; `None` writes
            nothing. Defaults to `None`.

    Returns:
        The tracker, not started.
    """
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.output_methods.base_output import OutputMethod

    # CodeCarbon logs its first lines before applying `log_level`: quiet it first.
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    options = {} if cpu_watts is None else {"force_cpu_power": float(cpu_watts)}
    return OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        tracking_mode=tracking_mode,
        output_methods=[OutputMethod.CSV] if output_dir is not None else [],
        output_dir=str(output_dir) if output_dir is not None else ".",
        emissions_endpoint=None,
        electricitymaps_api_token=None,
        allow_multiple_runs=True,  # no lock file, no signal handlers
        log_level="error",
        **options,
    )


def snapshot(tracker) -> tuple[float, float]:
    """Measures now; returns the cumulative (kWh, kg CO2) since the tracker was created."""
    tracker._measure_power_and_energy()
    data = tracker._prepare_emissions_data()
    return float(data.energy_consumed), float(data.emissions)


def hardware(tracker) -> list[dict]:
    """What a started tracker measures, one dict per part.

    Returns:
        `{"kind": "cpu", "mode": ..., "tdp": ...}`, `{"kind": "gpu"}` or
        `{"kind": "other", "name": ...}` per part.
    """
    from codecarbon.external.hardware import CPU, GPU

    parts = []
    for part in tracker._hardware:
        if isinstance(part, CPU):
            parts.append({"kind": "cpu", "mode": part._mode, "tdp": part._tdp})
        elif isinstance(part, GPU):
            parts.append({"kind": "gpu"})
        else:
            parts.append({"kind": "other", "name": type(part).__name__})
    return parts


def tracking_mode(tracker) -> str:
    """`"machine"` or `"process"`, as the tracker was configured."""
    return tracker._tracking_mode
