"""The CodeCarbon internals tfgreen touches exist in the installed CodeCarbon.

`tfgreen._adapters.codecarbon` was written against CodeCarbon 3.3 (setup.cfg
pins `codecarbon < 4`). When a release moves one of its `TOUCH_POINTS`, this
test fails naming the symbol and the version, before any energy figure goes wrong.
"""

from __future__ import annotations

import importlib

import pytest

from tfgreen._adapters import codecarbon as adapter

PINNED_MAJOR = 3


@pytest.fixture(scope="module")
def started():
    """A real offline tracker inside a task (hardware detected), and its CPU part."""
    from codecarbon.external.hardware import CPU

    tracker = adapter.offline_tracker("DEU", "process")
    tracker.start_task("touch points")
    cpu = next((part for part in tracker._hardware if isinstance(part, CPU)), None)
    yield {"tracker": tracker, "cpu": cpu}
    tracker.stop_task()
    tracker.stop()


def _resolve(path: str):
    module, _, rest = path, "", []
    while True:
        try:
            value = importlib.import_module(module)
            break
        except ModuleNotFoundError:
            module, _, tail = module.rpartition(".")
            rest.insert(0, tail)
    for name in rest:
        value = getattr(value, name)
    return value


def test_pinned_major_version():
    version = adapter.version()
    assert int(version.split(".")[0]) == PINNED_MAJOR, (
        f"tfgreen's CodeCarbon adapter was written for CodeCarbon {PINNED_MAJOR}.x; "
        f"installed: {version}. Re-check every entry of TOUCH_POINTS"
    )


@pytest.mark.parametrize("owner, attribute", adapter.TOUCH_POINTS)
def test_touch_point_exists(owner, attribute, started):
    version = adapter.version()
    if owner in started:
        value = started[owner]
        assert value is not None, f"CodeCarbon {version} set up no {owner} part"
    else:
        value = _resolve(owner)
    assert hasattr(value, attribute), (
        f"CodeCarbon {version} moved `{owner}.{attribute}`, which "
        "tfgreen/_adapters/codecarbon.py uses (written against CodeCarbon 3.3)"
    )


def test_adapter_reads_real_figures(started):
    tracker = started["tracker"]
    sum(i * i for i in range(200_000))
    kwh, kg = adapter.snapshot(tracker)
    assert kwh > 0 and kg > 0 and kg / kwh < 2.0  # kg CO2 per kWh of a real grid
    parts = adapter.hardware(tracker)
    cpu = next(p for p in parts if p["kind"] == "cpu")
    assert isinstance(cpu["mode"], str) and (cpu["tdp"] is None or cpu["tdp"] > 0)
    assert adapter.tracking_mode(tracker) == "process"
    assert {"DEU", "FRA", "USA"} <= adapter.known_countries()
