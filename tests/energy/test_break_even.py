"""Break-even against the baseline: from the saving's lower bound, none inside the spread."""

import pytest

from tfgreen.energy.savings import NO_SAVING, break_even
from tfgreen.report import Comparison


def _row(name, joules, low, high, training_kwh=None):
    return {
        "model": name,
        "joules_per_inference": joules,
        "joules_min": low,
        "joules_max": high,
        "training_kwh": training_kwh,
        "energy_saving": None,
        "break_even_inferences": None,
    }


def test_break_even_uses_the_lower_bound_and_refuses_savings_inside_the_spread():
    rows = [
        _row("float32", 10e-6, 9e-6, 11e-6),
        _row("int8", 5e-6, 4e-6, 6e-6, training_kwh=1e-6),  # saves 3e-6 J at least
        _row("pruned", 9.5e-6, 9e-6, 10e-6, training_kwh=1e-6),  # inside the spread
        _row("untrained", 5e-6, 4e-6, 6e-6),  # a saving, but no training energy known
        _row("keras", 1e-3, 9e-4, 2e-3),  # costs more
    ]
    break_even(rows, "float32")
    by_name = {row["model"]: row for row in rows}
    assert by_name["int8"]["energy_saving"] == pytest.approx(0.5)
    assert by_name["int8"]["break_even_inferences"] == pytest.approx(1e-6 * 3.6e6 / 3e-6)
    assert by_name["pruned"]["energy_saving"] == pytest.approx(0.05)
    assert by_name["int8"]["saving_measurable"] is True
    # inside the spread: no count (rows stay numbers), the table says why
    assert by_name["pruned"]["saving_measurable"] is False
    assert by_name["pruned"]["break_even_inferences"] is None
    assert by_name["untrained"]["saving_measurable"] is True
    assert by_name["untrained"]["break_even_inferences"] is None
    assert by_name["keras"]["saving_measurable"] is False
    assert by_name["float32"]["energy_saving"] is None
    assert "saving_measurable" not in by_name["float32"]
    report = Comparison(rows=rows, baseline="float32", baseline_note="named by the user")
    text = report.to_markdown()
    cells = {line.split("|")[1].strip(): line for line in text.splitlines()[2:] if "|" in line}
    assert NO_SAVING == "no measurable saving"
    assert cells["pruned"].rstrip(" |").endswith(NO_SAVING)
    assert cells["keras"].rstrip(" |").endswith(NO_SAVING)
    assert NO_SAVING not in cells["untrained"] and NO_SAVING not in cells["int8"]
    assert report.rows[2]["break_even_inferences"] is None  # the table's rows are copies
    assert (
        "Savings and break-even are against 'float32' (named by the user)" not in text
    )  # no energy
    report.energy_method, report.energy_detail = "estimate", "CodeCarbon"
    assert "Savings and break-even are against 'float32' (named by the user)" in report.to_text()


def test_no_energy_measured_leaves_savings_empty():
    rows = [_row("a", None, None, None), _row("b", None, None, None, training_kwh=1e-6)]
    break_even(rows, "a")
    assert all(
        row["energy_saving"] is None and row["break_even_inferences"] is None for row in rows
    )
