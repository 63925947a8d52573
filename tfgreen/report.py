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
from tfgreen.errors import TfgreenValueError, message

__all__ = ["markdown_table", "text_table", "Comparison", "COLUMNS"]


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
    "training_kwh",
    "training_co2_kg",
    "break_even_inferences",
)
_PLOTS = (
    ("accuracy_vs_size.png", "size_kb", "size (kB)", False),
    ("accuracy_vs_latency.png", "latency_ms", "latency, 1 sample (ms)", True),
    ("accuracy_vs_energy.png", "joules_per_inference", "energy per inference (J)", True),
)


@dataclass
class Comparison:
    """The result of `tfgreen.compare`: one row of figures per candidate.

    Attributes:
        rows: One dict per candidate with the keys of `COLUMNS` (None where unknown).
        baseline: Name of the baseline row (the reference for break-even).
        energy_method: How energy figures were obtained (`"estimate"` or
            `"measured"`), and `energy_detail`, CodeCarbon's method in words.
    """

    rows: list[dict]
    baseline: str
    energy_method: str | None = None
    energy_detail: str | None = None
    data_description: str = ""
    notes: list[str] = field(default_factory=list)

    def pareto(self, cost_key: str = "size_kb") -> list[str]:
        """Names of the candidates on the accuracy-vs-cost Pareto front, cheapest first.

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

        points = [(row.get(cost_key), row.get("accuracy")) for row in self.rows]
        return [self.rows[i]["model"] for i in pareto_front(points)]

    def to_dict(self) -> dict:
        """Returns rows, baseline, energy method and Pareto fronts as plain data (JSON-ready)."""
        return {
            "rows": [dict(row) for row in self.rows],
            "baseline": self.baseline,
            "energy_method": self.energy_method,
            "energy_detail": self.energy_detail,
            "data": self.data_description,
            "pareto": {key: self.pareto(key) for _, key, _, _ in _PLOTS},
            "notes": list(self.notes),
        }

    def to_text(self) -> str:
        """Returns the table as plain fixed-width text, with the energy method."""
        return text_table(self.rows, COLUMNS) + "\n" + self._method_line()

    def to_markdown(self) -> str:
        """Returns the table as markdown, with the energy method."""
        return markdown_table(self.rows, COLUMNS) + "\n\n" + self._method_line()

    def __str__(self) -> str:
        return self.to_text()

    def _method_line(self) -> str:
        if self.energy_method is None:
            return "Energy: not measured."
        label = "ESTIMATES" if self.energy_method == "estimate" else "measured"
        return f"Energy figures are {label} ({self.energy_detail})."

    def plot(self, out_dir: str | Path) -> dict[str, Path]:
        """Writes the figures as PNG files into `out_dir`.

        Accuracy vs size, vs latency and vs energy per inference, each with
        the Pareto front marked, and the carbon break-even figure when some
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
        for name, key, label, log_x in _PLOTS:
            if sum(row.get(key) is not None for row in self.rows) == 0:
                continue
            title = f"accuracy vs {label}" + (estimate if "energy" in key else "")
            written[name] = tradeoff_plot(
                self.rows, key, out_dir / name, label, title=title, log_x=log_x
            )
        if any(
            row["model"] != self.baseline
            and row.get("training_kwh")
            and row.get("joules_per_inference")
            for row in self.rows
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
        for _, key, label, _ in _PLOTS:
            front = self.pareto(key)
            if front:
                lines.append(f"- Pareto front, accuracy vs {label}: {', '.join(front)}")
        lines += [
            "",
            "Latency and energy are per single-sample inference on this machine. "
            "Size of a Keras model: its weights' bytes in memory; of a .tflite: the file. "
            "Sparsity: fraction of zeros in conv/dense kernels. "
            "`break_even_inferences`: inferences after which the energy spent on a model's "
            f"own training step (pruning, QAT, distillation) is repaid by its saving per "
            f"inference against `{self.baseline}`.",
        ]
        lines += [f"- {note}" for note in self.notes]
        lines.append("")
        lines += [f"![{name}]({name})" for name in written]
        written["report.md"] = atomic_write_text(out_dir / "report.md", "\n".join(lines) + "\n")
        written["comparison.json"] = atomic_write_text(
            out_dir / "comparison.json", json.dumps(self.to_dict(), indent=2, default=str)
        )
        return written
