"""Reports: rows of figures as text or markdown tables, and the comparison report.

`Comparison` is what `tfgreen.compare` returns: its rows print as text,
markdown or a dict, and `save(out_dir)` writes `report.md`, `comparison.json`
and the PNG figures, so other reports (the demo) can reuse it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfgreen._io import atomic_write_text
from tfgreen._validate import choice
from tfgreen.errors import TfgreenValueError, message

__all__ = ["markdown_table", "text_table", "Comparison", "COLUMNS", "LM_COLUMNS"]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _grid(rows: Sequence[dict], columns: Sequence[str] | None):
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    return columns, cells, widths


def text_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Formats rows (dicts) as a plain fixed-width text table.

    Args:
        rows: One dict per row.
        columns: Column order; `None` takes every key of the rows, in order
            of first appearance. Defaults to `None`.

    Returns:
        The table as a string.

    Example:
    >>> print(text_table([{"model": "int8", "size_kb": 12.5}]))
    model  size_kb
    int8   12.5
    """
    columns, cells, widths = _grid(rows, columns)
    lines = [columns] + cells
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Formats rows (dicts) as a markdown table, aligned for reading as text too.

    Args:
        rows: One dict per row.
        columns: Column order; `None` takes every key of the rows, in order
            of first appearance. Defaults to `None`.

    Returns:
        The table as a string.

    Example:
    >>> print(markdown_table([{"model": "int8", "size_kb": 12.5}]))
    | model | size_kb |
    | ----- | ------- |
    | int8  | 12.5    |
    """
    columns, cells, widths = _grid(rows, columns)

    def line(values):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


COLUMNS = (
    "model",
    "kind",
    "accuracy",
    "params",
    "size_kb",
    "gzip_kb",
    "sparsity",
    "latency_ms",
    "joules_per_inference",
    "joules_spread",
    "energy_saving",
    "end_to_end_ms",
    "end_to_end_joules",
    "estimate_target",
    "estimate_joules",
    "training_kwh",
    "training_co2_kg",
    "break_even_inferences",
)
LM_COLUMNS = (
    "model",
    "kind",
    "perplexity",
    "next_token_agreement",
    "params",
    "size_kb",
    "gzip_kb",
    "sparsity",
    "latency_ms",
    "tokens_per_second",
    "joules_per_token",
    "decode_tokens_per_second",
    "joules_per_generated_token",
    "joules_per_inference",
    "joules_spread",
    "energy_saving",
    "end_to_end_ms",
    "end_to_end_joules",
    "estimate_target",
    "estimate_joules",
    "training_kwh",
    "training_co2_kg",
    "break_even_inferences",
    "break_even_tokens",
)


@dataclass(frozen=True)
class _Task:
    """What a comparison judges: its quality column, table and figures."""

    columns: tuple[str, ...]
    lower_is_better: bool
    plots: tuple[tuple[str, str, str, bool], ...]  # (file suffix, cost key, label, log x)
    per: str  # what one inference is, for the report's note


_TASKS = {
    "accuracy": _Task(
        COLUMNS,
        False,
        (
            ("size", "size_kb", "size (kB)", False),
            ("latency", "latency_ms", "latency, 1 sample (ms)", True),
            ("energy", "joules_per_inference", "energy per inference (J)", True),
        ),
        "single-sample inference",
    ),
    "perplexity": _Task(
        LM_COLUMNS,
        True,
        (
            ("size", "size_kb", "size (kB)", False),
            ("latency", "latency_ms", "latency, 1 window (ms)", True),
            ("energy", "joules_per_token", "energy per token (J)", True),
        ),
        "forward pass of one window of token ids (`tokens_per_second` and "
        "`joules_per_token` count its seq_len tokens)",
    ),
}


@dataclass
class Comparison:
    """The result of `tfgreen.compare`: one row of figures per candidate.

    Attributes:
        rows: One dict per candidate with the keys of `COLUMNS`, or of
            `LM_COLUMNS` for language models (None where unknown).
        baseline: Name of the row that energy savings and break-even are
            against (by default the float32 `.tflite` of the first model).
        baseline_note: Why that row is the baseline, in words (for example
            "the float32 .tflite of 'baseline', exported for this comparison").
        energy_method: How energy figures were obtained (`"estimate"` or
            `"measured"`), and `energy_detail`, CodeCarbon's method in words.
        quality: The column that judges the models: `"accuracy"` (higher is
            better) or `"perplexity"` for language models (lower is better).
    """

    rows: list[dict]
    baseline: str
    baseline_note: str = ""
    energy_method: str | None = None
    energy_detail: str | None = None
    data_description: str = ""
    notes: list[str] = field(default_factory=list)
    quality: str = "accuracy"

    def __post_init__(self):
        choice("quality", self.quality, tuple(_TASKS))

    @property
    def _task(self) -> _Task:
        return _TASKS[self.quality]

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns: `COLUMNS`, or `LM_COLUMNS` for language models."""
        return self._task.columns

    def pareto(self, cost_key: str = "size_kb") -> list[str]:
        """Names of the candidates on the quality-vs-cost Pareto front, cheapest first.

        Args:
            cost_key: Cost column (lower is better). Defaults to `"size_kb"`.

        Returns:
            Model names.

        Example:
        ```python
        result.pareto("latency_ms")
        # ['int8', 'baseline']
        ```
        """
        from tfgreen.plots import pareto_front

        sign = -1 if self._task.lower_is_better else 1
        points = []
        for row in self.rows:
            value = row.get(self.quality)
            points.append((row.get(cost_key), None if value is None else sign * value))
        return [self.rows[i]["model"] for i in pareto_front(points)]

    def to_dict(self) -> dict:
        """Returns rows, baseline, energy method and Pareto fronts as plain data (JSON-ready)."""
        return {
            "rows": [dict(row) for row in self.rows],
            "baseline": self.baseline,
            "baseline_note": self.baseline_note,
            "energy_method": self.energy_method,
            "energy_detail": self.energy_detail,
            "data": self.data_description,
            "quality": self.quality,
            "pareto": {key: self.pareto(key) for _, key, _, _ in self._task.plots},
            "notes": list(self.notes),
        }

    def _table_rows(self) -> list[dict]:
        """The rows as the table shows them: "no measurable saving" as the break-even."""
        from tfgreen.energy.savings import NO_SAVING

        return [
            {**row, "break_even_inferences": NO_SAVING}
            if row.get("saving_measurable") is False
            else row
            for row in self.rows
        ]

    def to_text(self) -> str:
        """Returns the table as plain fixed-width text, with the energy method."""
        return text_table(self._table_rows(), self.columns) + "\n" + self._method_line()

    def to_markdown(self) -> str:
        """Returns the table as markdown, with the energy method."""
        return markdown_table(self._table_rows(), self.columns) + "\n\n" + self._method_line()

    def __str__(self) -> str:
        return self.to_text()

    def _method_line(self) -> str:
        if self.energy_method is None:
            return "Energy: not measured."
        label = "ESTIMATES" if self.energy_method == "estimate" else "measured"
        note = f" ({self.baseline_note})" if self.baseline_note else ""
        return (
            f"Energy figures are {label} ({self.energy_detail}). Savings and break-even "
            f"are against {self.baseline!r}{note}."
        )

    def plot(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes the figures as PNG files into `out_dir`.

        Quality (accuracy, or perplexity for language models) vs size, vs
        latency and vs energy per inference (per token for language models),
        each with the Pareto front marked, and the carbon break-even figure when some
        candidate's training energy and joules per inference are known.

        Args:
            out_dir: Folder; created if missing.

        Returns:
            File name -> path of each PNG written.

        Example:
        ```python
        sorted(result.plot("out"))
        # ['accuracy_vs_energy.png', 'accuracy_vs_latency.png', 'accuracy_vs_size.png', ...]
        ```
        """
        from tfgreen.plots import break_even_plot, tradeoff_plot

        out_dir = Path(out_dir)
        estimate = " (estimate)" if self.energy_method == "estimate" else ""
        written = {}
        for suffix, key, label, log_x in self._task.plots:
            if sum(row.get(key) is not None for row in self.rows) == 0:
                continue
            name = f"{self.quality}_vs_{suffix}.png"
            title = f"{self.quality} vs {label}" + (estimate if "energy" in key else "")
            written[name] = tradeoff_plot(
                self.rows,
                key,
                out_dir / name,
                label,
                value_key=self.quality,
                title=title,
                log_x=log_x,
                lower_is_better=self._task.lower_is_better,
            )
        if any(
            row["model"] != self.baseline and row.get("break_even_inferences") for row in self.rows
        ):
            written["break_even.png"] = break_even_plot(
                self.rows,
                self.baseline,
                out_dir / "break_even.png",
                f"carbon break-even vs {self.baseline}{estimate}",
            )
        return written

    def save(self, out_dir: str | Path, title: str = "tfgreen comparison") -> dict[str, Path]:
        """Writes `report.md`, `comparison.json` and the PNG figures into `out_dir`.

        Args:
            out_dir: Folder; created if missing.
            title: Heading of the report. Defaults to `"tfgreen comparison"`.

        Returns:
            File name -> path of every file written.

        Example:
        ```python
        result.save("report")["report.md"]
        # PosixPath('report/report.md')
        ```
        """
        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise TfgreenValueError(
                message(
                    "The report's output path is a file",
                    "a folder (it is created if missing)",
                    "Pass a folder name",
                    out_dir=str(out_dir),
                )
            )
        written = self.plot(out_dir)
        lines = [f"# {title}", ""]
        if self.data_description:
            lines += [self.data_description, ""]
        lines += [self.to_markdown(), ""]
        for _, key, label, _ in self._task.plots:
            front = self.pareto(key)
            if front:
                lines.append(f"- Pareto front, {self.quality} vs {label}: {', '.join(front)}")
        lines += [
            "",
            f"Latency and energy are per {self._task.per} on this machine, timed on the "
            "same loop (for a .tflite file `invoke()` with the inputs set, as on a device; "
            "`end_to_end_ms`/`end_to_end_joules` add the host-side quantization of the "
            "inputs and outputs). `joules_per_inference` is the median of three "
            "measurements and `joules_spread` their range. "
            "Size of a Keras model: its weights' bytes in memory; of a .tflite: the file. "
            "Sparsity: fraction of zeros in conv/dense kernels. "
            "`estimate_joules`: a model estimate for the device class of the file's export "
            "manifest (`estimate_target`; tfgreen.estimate_energy: MACs and bytes priced "
            "per target), not a measurement and never mixed with the measured figures. "
            f"`energy_saving`: fraction of the energy per inference of `{self.baseline}` "
            f"({self.baseline_note or 'the baseline'}) saved. "
            "`break_even_inferences`: inferences after which the energy spent on a model's "
            "own training step (pruning, QAT, distillation) is repaid by its saving per "
            "inference, taken at the saving's lower bound (the baseline's lowest "
            "measurement minus the row's highest); a saving inside the spread reads "
            '"no measurable saving".',
        ]
        lines += [f"- {note}" for note in self.notes]
        lines.append("")
        lines += [f"![{name}]({name})" for name in written]
        written["report.md"] = atomic_write_text(out_dir / "report.md", "\n".join(lines) + "\n")
        written["comparison.json"] = atomic_write_text(
            out_dir / "comparison.json", json.dumps(self.to_dict(), indent=2, default=str)
        )
        return written
