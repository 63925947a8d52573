"""Pruning schedules sized from the real `fit()` run.

A schedule says how sparse the pruned weights should be at each training
step. `begin` and `end` given as floats are fractions of the `fit()` run and
are turned into steps when training starts (from `epochs`, the steps per epoch
and `initial_epoch`, by `tfgreen.callbacks.Pruning`); given as ints they are
steps. The masks are updated every `frequency` steps between `begin` and
`end`; left as `None`, the frequency is chosen from the run so the masks
update about 40 times whatever its length (each update re-ranks every pruned
kernel, so updating every step would cost more than the training), and always
on the `end` step, so the final sparsity is reached exactly (tfmot's fixed
`frequency=100` leaves short runs at 0%).

Write a custom schedule by subclassing `PruningSchedule`, setting
`final_sparsity` and implementing `sparsity_at(progress)`; subclasses are
registered by class name so pruned models using them load back.
"""

from __future__ import annotations

import dataclasses
import math

from tfgreen import _validate
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = [
    "PruningSchedule",
    "PolynomialDecay",
    "ConstantSparsity",
    "Plan",
    "check_sparsity",
    "schedule_to_config",
    "schedule_from_config",
]

_UPDATES_PER_RUN = 40
_REGISTRY: dict[str, type] = {}


def check_sparsity(value, name: str = "sparsity") -> float:
    """Validates a sparsity fraction in [0, 1) and returns it as a float.

    Args:
        value: The fraction of weights to set to zero.
        name: The argument name shown in the error. Defaults to `"sparsity"`.

    Returns:
        The value as a float.

    Example:
    >>> check_sparsity(0.8)
    0.8
    """
    return _validate.fraction(
        name,
        value,
        example=0.8,
        fix=f"Pass for example {name}=0.8 for 80% zeros (1.0 would remove every weight)",
    )


def _check_point(value, name: str) -> None:
    """A schedule point: a float fraction of the run in [0, 1], or an int step >= 0."""
    fix = f"Pass a fraction of the fit() run (for example {name}=0.8) or an int step number"
    if _validate.is_number(value) and isinstance(value, int):
        _validate.positive_int(name, value, minimum=0, fix=fix)
    else:
        _validate.fraction(name, value, closed=True, example=0.8, fix=fix)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A schedule resolved to the steps of one `fit()` run.

    Attributes:
        schedule: The `PruningSchedule` it comes from.
        total_steps: Steps of the whole run (`epochs * steps per epoch`).
        begin: First step that updates the masks.
        end: Last step that updates the masks (the final sparsity is reached here).
        frequency: Steps between two mask updates.
    """

    schedule: PruningSchedule
    total_steps: int
    begin: int
    end: int
    frequency: int

    def sparsity_at_step(self, step: int) -> float | None:
        """Target sparsity if the masks update at `step`, else `None`."""
        if step < self.begin or step > self.end:
            return None
        if (step - self.begin) % self.frequency and step != self.end:
            return None
        span = self.end - self.begin
        progress = 1.0 if span == 0 else (step - self.begin) / span
        return float(self.schedule.sparsity_at(progress))

    def latest_sparsity(self, first: int, last: int) -> float | None:
        """Target of the latest mask update in steps `first..last`, else `None`."""
        for step in range(min(last, self.end), max(first, self.begin) - 1, -1):
            value = self.sparsity_at_step(step)
            if value is not None:
                return value
        return None

    def reachable_sparsity(self) -> float:
        """Sparsity of the last mask update that happens within the run."""
        value = self.latest_sparsity(self.begin, self.total_steps - 1)
        return 0.0 if value is None else value


class PruningSchedule:
    """Base class of pruning schedules; subclass it for a custom schedule.

    A subclass sets `self.final_sparsity` (the sparsity reached at `end`) and
    implements `sparsity_at(progress)`, the target sparsity at `progress` in
    [0, 1] of the way from `begin` to `end`. It should also extend
    `get_config()` with its own arguments, so `from_config` can rebuild it.

    Args:
        begin: First pruning step: a float in [0, 1] is a fraction of the
            `fit()` run, an int is a step. Defaults to `0.0`.
        end: Step at which the final sparsity is reached, same units as `begin`;
            `None` means the last step of the run. Defaults to `None`.
        frequency: Steps between two mask updates; `None` updates them about
            40 times between `begin` and `end`, whatever the run's length
            (`frequency=1` re-ranks the weights every step, which costs more
            than the training itself). Defaults to `None`.

    Example:
    >>> import tfgreen
    >>> class Linear(tfgreen.PruningSchedule):
    ...     def __init__(self, final_sparsity, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.final_sparsity = final_sparsity
    ...     def sparsity_at(self, progress):
    ...         return self.final_sparsity * progress
    ...     def get_config(self):
    ...         return {**super().get_config(), "final_sparsity": self.final_sparsity}
    """

    final_sparsity: float = 0.0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(
        self,
        begin: float | int = 0.0,
        end: float | int | None = None,
        frequency: int | None = None,
    ):
        _check_point(begin, "begin")
        if end is not None:
            _check_point(end, "end")
            if type(begin) is type(end) and end < begin:
                raise TfgreenValueError(
                    message(
                        "The pruning schedule ends before it begins",
                        "end >= begin",
                        "Pass for example begin=0.0, end=0.8",
                        begin=begin,
                        end=end,
                    )
                )
        _validate.positive_int(
            "frequency",
            frequency,
            allow_none=True,
            example=10,
            fix="Leave frequency=None (about 40 mask updates per run) unless you need a "
            "fixed update interval in steps",
        )
        self.begin = begin
        self.end = end
        self.frequency = frequency

    def sparsity_at(self, progress: float) -> float:
        """Returns the target sparsity at `progress` in [0, 1] from `begin` to `end`.

        Args:
            progress: 0.0 at `begin`, 1.0 at `end`.

        Returns:
            A fraction of weights to zero, in [0, 1).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `sparsity_at(progress)`.")

    def resolve(self, total_steps: int) -> Plan:
        """Turns fractions of the run into steps for a run of `total_steps`.

        Args:
            total_steps: Steps of the whole `fit()` run (epochs times steps per epoch).

        Returns:
            A `Plan` with begin, end and frequency in steps.
        """
        last = max(total_steps - 1, 0)

        def to_step(value):
            return value if isinstance(value, int) else min(int(round(value * total_steps)), last)

        begin = to_step(self.begin)
        end = last if self.end is None else max(to_step(self.end), begin)
        frequency = self.frequency or max(1, math.ceil((end - begin) / _UPDATES_PER_RUN))
        return Plan(self, total_steps, begin, end, frequency)

    def get_config(self) -> dict:
        """Returns the arguments that rebuild this schedule with `from_config`."""
        return {"begin": self.begin, "end": self.end, "frequency": self.frequency}

    @classmethod
    def from_config(cls, config: dict) -> PruningSchedule:
        """Builds a schedule from the output of `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class PolynomialDecay(PruningSchedule):
    """Sparsity rising fast then levelling off (cubic by default, Zhu & Gupta 2017).

    `sparsity = final + (initial - final) * (1 - progress) ** power`, with
    `progress` going from 0 at `begin` to 1 at `end`.

    Args:
        final_sparsity: Sparsity reached at `end`, in [0, 1).
        initial_sparsity: Sparsity at `begin`. Defaults to `0.0`.
        begin: First pruning step (float: fraction of the run, int: step).
            Defaults to `0.0`.
        end: Step at which `final_sparsity` is reached (float: fraction of the
            run, int: step). Defaults to `0.8`.
        power: Exponent of the decay. Defaults to `3`.
        frequency: Steps between mask updates; `None` chooses about 40
            updates per run. Defaults to `None`.

    Example:
    >>> import tfgreen
    >>> schedule = tfgreen.PolynomialDecay(0.8, end=0.5)
    >>> plan = schedule.resolve(100)
    >>> plan.end, plan.frequency, round(plan.sparsity_at_step(30), 3)
    (50, 2, 0.749)
    """

    def __init__(
        self,
        final_sparsity: float,
        initial_sparsity: float = 0.0,
        begin: float | int = 0.0,
        end: float | int = 0.8,
        power: float = 3,
        frequency: int | None = None,
    ):
        final_sparsity = check_sparsity(final_sparsity, "final_sparsity")
        initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
        if initial_sparsity > final_sparsity:
            raise TfgreenValueError(
                message(
                    "`initial_sparsity` is above `final_sparsity`",
                    "initial_sparsity <= final_sparsity",
                    "Pass for example initial_sparsity=0.0, final_sparsity=0.8",
                    initial_sparsity=initial_sparsity,
                    final_sparsity=final_sparsity,
                )
            )
        _validate.number(
            "power",
            power,
            minimum=0,
            exclusive_minimum=True,
            example=3,
            fix="Pass power=3 (the cubic schedule of Zhu & Gupta 2017) or leave it out",
        )
        super().__init__(begin=begin, end=end, frequency=frequency)
        self.final_sparsity = final_sparsity
        self.initial_sparsity = initial_sparsity
        self.power = power

    def sparsity_at(self, progress: float) -> float:
        """Returns the target sparsity at `progress` in [0, 1]."""
        progress = min(max(progress, 0.0), 1.0)
        return (
            self.final_sparsity
            + (self.initial_sparsity - self.final_sparsity) * (1.0 - progress) ** self.power
        )

    def get_config(self) -> dict:
        """Returns the arguments that rebuild this schedule."""
        return {
            "final_sparsity": self.final_sparsity,
            "initial_sparsity": self.initial_sparsity,
            "power": self.power,
            **super().get_config(),
        }


class ConstantSparsity(PruningSchedule):
    """The same sparsity at every mask update from `begin` on.

    Args:
        sparsity: Fraction of weights set to zero, in [0, 1).
        begin: First pruning step (float: fraction of the run, int: step).
            Defaults to `0.0`.
        end: Last mask update (same units); `None` keeps updating until the
            end of the run. Defaults to `None`.
        frequency: Steps between mask updates; `None` chooses about 40
            updates per run. Defaults to `None`.

    Example:
    >>> import tfgreen
    >>> schedule = tfgreen.ConstantSparsity(0.5, begin=0.5)
    >>> plan = schedule.resolve(10)
    >>> [plan.sparsity_at_step(step) for step in (4, 5, 9)]
    [None, 0.5, 0.5]
    """

    def __init__(
        self,
        sparsity: float,
        begin: float | int = 0.0,
        end: float | int | None = None,
        frequency: int | None = None,
    ):
        sparsity = check_sparsity(sparsity)
        super().__init__(begin=begin, end=end, frequency=frequency)
        self.final_sparsity = sparsity

    def sparsity_at(self, progress: float) -> float:
        """Returns the constant sparsity."""
        return self.final_sparsity

    def get_config(self) -> dict:
        """Returns the arguments that rebuild this schedule."""
        return {"sparsity": self.final_sparsity, **super().get_config()}


def schedule_to_config(schedule: PruningSchedule) -> dict:
    """Serializes a schedule as `{"class_name": ..., "config": ...}`."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def schedule_from_config(config: dict) -> PruningSchedule:
    """Rebuilds a schedule written by `schedule_to_config`.

    Args:
        config: `{"class_name": ..., "config": ...}`.

    Returns:
        The schedule.
    """
    if isinstance(config, PruningSchedule):
        return config
    cls = _REGISTRY.get(config.get("class_name")) if isinstance(config, dict) else None
    if cls is None:
        raise TfgreenTypeError(
            message(
                "Unknown pruning schedule in the saved model",
                f"one of {sorted(_REGISTRY)} (custom schedules must be defined before loading)",
                "Import the module defining the custom PruningSchedule subclass before loading",
                schedule=config,
            )
        )
    return cls.from_config(dict(config["config"]))
