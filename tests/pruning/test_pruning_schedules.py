"""Schedules: values, steps resolved from the run, update frequency, configs, bad arguments."""

import pytest

import tfgreen
from tfgreen.errors import TfgreenTypeError, TfgreenValueError
from tfgreen.pruning.schedules import schedule_from_config, schedule_to_config


def test_polynomial_is_cubic_zhu_gupta():
    schedule = tfgreen.PolynomialDecay(0.8)
    assert schedule.sparsity_at(0.0) == 0.0
    assert schedule.sparsity_at(1.0) == pytest.approx(0.8)
    # 0.8 * (1 - (1 - 0.5) ** 3) = 0.7
    assert schedule.sparsity_at(0.5) == pytest.approx(0.7)
    linear = tfgreen.PolynomialDecay(0.6, initial_sparsity=0.2, power=1)
    assert linear.sparsity_at(0.25) == pytest.approx(0.3)


def test_fractions_resolve_to_steps_of_the_run():
    plan = tfgreen.PolynomialDecay(0.8, begin=0.1, end=0.8).resolve(1000)
    assert (plan.begin, plan.end, plan.frequency) == (100, 800, 18)
    updates = [s for s in range(1000) if plan.sparsity_at_step(s) is not None]
    assert len(updates) == 40
    assert updates[0] == 100 and updates[-1] == 800
    assert plan.sparsity_at_step(800) == pytest.approx(0.8)
    assert plan.sparsity_at_step(99) is None and plan.sparsity_at_step(801) is None


def test_short_runs_still_update_and_end_on_target():
    # tfmot's default frequency=100 would never update a 40-step run.
    plan = tfgreen.PolynomialDecay(0.5).resolve(40)
    assert (plan.begin, plan.end, plan.frequency) == (0, 32, 1)
    assert sum(plan.sparsity_at_step(s) is not None for s in range(40)) == 33
    assert plan.sparsity_at_step(32) == pytest.approx(0.5)
    tiny = tfgreen.PolynomialDecay(0.5).resolve(10)
    assert tiny.frequency == 1


@pytest.mark.parametrize("total", [180, 1_000, 100_000])
def test_update_count_is_bounded_whatever_the_run_length(total):
    plan = tfgreen.PolynomialDecay(0.8, end=1.0).resolve(total)
    updates = [s for s in range(total) if plan.sparsity_at_step(s) is not None]
    assert 30 <= len(updates) <= 42
    assert updates[-1] == total - 1
    assert plan.sparsity_at_step(total - 1) == pytest.approx(0.8)


def test_ints_are_steps_and_reachable_sparsity():
    plan = tfgreen.PolynomialDecay(0.8, begin=10, end=500, frequency=10).resolve(100)
    assert (plan.begin, plan.end, plan.frequency) == (10, 500, 10)
    # The run stops at step 99: last update at step 90, progress 80/490.
    assert plan.reachable_sparsity() == pytest.approx(0.8 * (1 - (1 - 80 / 490) ** 3))


def test_constant_updates_until_the_end_of_the_run():
    plan = tfgreen.ConstantSparsity(0.5, begin=0.5).resolve(10)
    assert [s for s in range(10) if plan.sparsity_at_step(s) is not None] == [5, 6, 7, 8, 9]
    assert plan.sparsity_at_step(9) == 0.5


class _Linear(tfgreen.PruningSchedule):
    def __init__(self, final_sparsity, **kwargs):
        super().__init__(**kwargs)
        self.final_sparsity = final_sparsity

    def sparsity_at(self, progress):
        return self.final_sparsity * progress

    def get_config(self):
        return {**super().get_config(), "final_sparsity": self.final_sparsity}


@pytest.mark.parametrize(
    "schedule",
    [
        tfgreen.PolynomialDecay(0.7, initial_sparsity=0.1, begin=5, end=0.9, power=2, frequency=3),
        tfgreen.ConstantSparsity(0.4, begin=0.2, end=None),
        _Linear(0.6, end=0.5),
    ],
)
def test_config_round_trip(schedule):
    again = schedule_from_config(schedule_to_config(schedule))
    assert type(again) is type(schedule)
    assert again.get_config() == schedule.get_config()
    assert [again.sparsity_at(p / 10) for p in range(11)] == [
        schedule.sparsity_at(p / 10) for p in range(11)
    ]


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: tfgreen.PolynomialDecay(1.0), "final_sparsity=1.0"),
        (lambda: tfgreen.PolynomialDecay(0.5, initial_sparsity=0.6), "initial_sparsity=0.6"),
        (lambda: tfgreen.PolynomialDecay(0.5, begin=0.9, end=0.1), "ends before it begins"),
        (lambda: tfgreen.PolynomialDecay(0.5, power=0), "power=0"),
        (lambda: tfgreen.PolynomialDecay(0.5, frequency=0), "frequency=0"),
        (lambda: tfgreen.ConstantSparsity(-0.1), "sparsity=-0.1"),
        (lambda: tfgreen.ConstantSparsity(0.5, begin=1.5), "begin=1.5"),
        (lambda: tfgreen.ConstantSparsity(0.5, end="end"), "end='end'"),
    ],
)
def test_bad_arguments(build, pattern):
    with pytest.raises(TfgreenValueError, match=pattern):
        build()


def test_unknown_schedule_in_config():
    with pytest.raises(TfgreenTypeError, match="Unknown pruning schedule"):
        schedule_from_config({"class_name": "Nope", "config": {}})
