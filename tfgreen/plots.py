"""Figures for reports: trade-offs with the Pareto front, and carbon break-even.

Figures are drawn on matplotlib's Agg canvas directly (no `pyplot`, no
window, the user's backend is left alone) and written as PNG atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from tfgreen._io import atomic_write_bytes
from tfgreen._timing import JOULES_PER_KWH

__all__ = ["pareto_front", "tradeoff_plot", "break_even_plot"]


def pareto_front(points: Sequence[tuple[float | None, float | None]]) -> list[int]:
    """Indices of the points no other point beats: lower cost and higher value are better.

    A point is dominated when another costs no more and is worth no less, and
    is strictly better in one of the two. Points with a `None` are skipped.

    Args:
        points: `(cost, value)` pairs, for example `(size_kb, accuracy)`.

    Returns:
        Indices of the Pareto-optimal points, sorted by cost.

    Example:
    >>> pareto_front([(10, 0.9), (5, 0.8), (12, 0.85), (5, 0.7)])
    [1, 0]
    """
    valid = [
        (i, c, v)
        for i, (c, v) in enumerate(points)
        if c is not None and v is not None and not (math.isnan(c) or math.isnan(v))
    ]
    front = [
        (c, i)
        for i, c, v in valid
        if not any(c2 <= c and v2 >= v and (c2 < c or v2 > v) for j, c2, v2 in valid if j != i)
    ]
    return [i for _, i in sorted(front)]


def _new_figure(width: float = 6.4, height: float = 4.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _write_png(figure, path: str | Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def tradeoff_plot(
    rows: Sequence[dict],
    cost_key: str,
    path: str | Path,
    xlabel: str,
    value_key: str = "accuracy",
    title: str | None = None,
    log_x: bool = False,
    lower_is_better: bool = False,
) -> Path:
    """Writes a scatter of value against cost, one labelled point per row, Pareto front marked.

    Args:
        rows: One dict per model, with `"model"`, `cost_key` and `value_key`.
        cost_key: Key of the cost (x axis; lower is better).
        path: Where to write the PNG.
        xlabel: Label of the x axis.
        value_key: Key of the value (y axis; higher is better).
            Defaults to `"accuracy"`.
        title: Figure title. Defaults to `None`.
        log_x: Logarithmic x axis. Defaults to `False`.
        lower_is_better: The value is better when lower (perplexity): the
            front is found on that and the y axis runs downwards, so better
            is still up. Defaults to `False`.

    Returns:
        The PNG's path.

    Example:
    ```python
    tradeoff_plot(result.rows, "size_kb", "out/size.png", "size (kB)")
    # PosixPath('out/size.png')
    ```
    """
    figure = _new_figure()
    axes = figure.add_subplot()
    points = [(row.get(cost_key), row.get(value_key)) for row in rows]
    sign = -1 if lower_is_better else 1
    front = pareto_front([(c, None if v is None else sign * v) for c, v in points])
    known = [(c, v) for c, v in points if c is not None and v is not None]
    spans = (
        [max(max(axis) - min(axis), 1e-12) for axis in zip(*known, strict=True)] if known else []
    )
    placed: list[tuple[float, float]] = []
    for i, (row, (cost, value)) in enumerate(zip(rows, points, strict=True)):
        if cost is None or value is None:
            continue
        on_front = i in front
        axes.scatter([cost], [value], s=60, color="tab:green" if on_front else "tab:gray", zorder=3)
        # Points that nearly coincide get their labels stacked instead of overprinted.
        stacked = sum(
            abs(cost - c) < spans[0] / 15 and abs(value - v) < spans[1] / 25 for c, v in placed
        )
        placed.append((cost, value))
        axes.annotate(
            str(row.get("model", i)),
            (cost, value),
            textcoords="offset points",
            xytext=(5, 5 - 12 * stacked),
        )
    if front:
        axes.step(
            [points[i][0] for i in front],
            [points[i][1] for i in front],
            where="post",
            color="tab:green",
            label="Pareto front",
            zorder=2,
        )
        axes.legend(loc="lower right")
    if log_x:
        axes.set_xscale("log")
    if lower_is_better:
        axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.set_ylabel(f"{value_key} (lower is better)" if lower_is_better else value_key)
    axes.grid(True, alpha=0.3)
    if title:
        axes.set_title(title)
    return _write_png(figure, path)


def break_even_plot(rows: Sequence[dict], baseline: str, path: str | Path, title: str) -> Path:
    """Writes the carbon break-even figure: cumulative energy against inferences served.

    The baseline's line starts at 0 (its training is spent either way); each
    other model starts at the energy of its compression step
    (`training_kwh`: pruning, QAT, distillation) and grows by its joules per
    inference. Where its line crosses the baseline's, the compression has
    paid for itself; the break-even count (taken at the saving's lower
    bound, so at or after the lines' crossing) is marked. A row with "no
    measurable saving" gets its line and no mark.

    Args:
        rows: Rows of `tfgreen.compare` (`model`, `joules_per_inference`,
            `training_kwh`, `break_even_inferences`).
        baseline: Name of the baseline row.
        path: Where to write the PNG.
        title: Figure title.

    Returns:
        The PNG's path.

    Example:
    ```python
    break_even_plot(result.rows, "baseline", "out/break_even.png", "break-even")
    # PosixPath('out/break_even.png')
    ```
    """
    import numpy as np

    base = next(r for r in rows if r["model"] == baseline)
    others = [
        r
        for r in rows
        if r["model"] != baseline and r.get("training_kwh") and r.get("joules_per_inference")
    ]
    evens = [r["break_even_inferences"] for r in others if r.get("break_even_inferences")]
    top = max([10.0 * max(evens)] if evens else [1e6])
    n = np.logspace(0, math.log10(top), 200)
    figure = _new_figure()
    axes = figure.add_subplot()
    axes.plot(n, n * base["joules_per_inference"], color="black", label=f"{baseline} (baseline)")
    for row in others:
        start = row["training_kwh"] * JOULES_PER_KWH
        (line,) = axes.plot(n, start + n * row["joules_per_inference"], label=row["model"])
        even = row.get("break_even_inferences")
        if even:
            axes.scatter([even], [even * base["joules_per_inference"]], color=line.get_color())
            axes.annotate(
                f"{even:.3g}",
                (even, even * base["joules_per_inference"]),
                xytext=(5, -12),
                textcoords="offset points",
            )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("inferences served")
    axes.set_ylabel("cumulative energy (J)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left")
    axes.set_title(title)
    return _write_png(figure, path)
