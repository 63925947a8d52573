"""What `tfgreen.optimize` returns: the pick, every candidate, the Pareto front, the report.

`OptimizeResult.report(out_dir)` writes `optimize.md` (the pick against the
float32 reference, every candidate with its figures and why it was kept or
rejected, what was skipped and why, the Pareto front) with three PNG
figures (quality against estimated energy, file size and latency, the
front marked), and the host measurement of the pick and the reference by
`tfgreen.compare` in `measured/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tfgreen._io import atomic_write_text
from tfgreen.errors import TfgreenValueError, message
from tfgreen.report import markdown_table

__all__ = ["OptimizeResult", "cost"]

_PLOTS = (
    ("energy", "energy per inference, model estimate (J)", True),
    ("size", "file size (bytes)", False),
    ("latency", "latency, 1 sample, LiteRT (ms)", True),
)


def cost(record: dict, objective: str) -> float:
    """A candidate's figure for an objective (for energy, the model estimate)."""
    if objective == "energy":
        return record["joules_per_inference"]["estimate"]
    return record["latency_ms" if objective == "latency" else "size_bytes"]


def _finish(candidates: list[dict], best: dict | None, objective: str) -> None:
    """Marks the pick `best`, and says of each other candidate within the floor why not it."""
    for record in candidates:
        if record is best:
            record["status"], record["reason"] = "best", f"least {objective} within the floor"
        elif record["status"] == "kept":
            cheaper = cost(record, objective) > cost(best, objective)
            record["reason"] = (
                f"within the floor; #{best['id']} has less {objective}"
                if cheaper
                else f"within the floor; ties with #{best['id']} on {objective}, ranked after "
                "it by quality, file size, then gzip size"
            )


def _pareto(rows: list[dict], objective: str, quality: str) -> list[str]:
    from tfgreen.plots import pareto_front

    sign = -1 if quality == "perplexity" else 1
    points = [(cost(row, objective), sign * row[quality]) for row in rows]
    return [rows[i]["name"] for i in pareto_front(points)]


@dataclass
class OptimizeResult:
    """The result of `tfgreen.optimize`.

    Attributes:
        best: The pick (a candidate dict), or `None` when no candidate met
            the floor. `path` (the checked `.tflite`), `recipe`, `accuracy`
            (or `perplexity` and `perplexity_ratio`), `joules_per_inference`
            (`estimate`: tfgreen's model estimate for the target; `measured`:
            joules on this host as `tfgreen.compare` measures them, with
            `measured_method`), `size_bytes`, `gzip_bytes`, `latency_ms`,
            `sparsity`, `status`, `reason`, `seconds`.
        candidates: Every recipe tried, in order, as dicts like `best`;
            `status` is `"best"`, `"kept"` (within the floor) or
            `"rejected"`, and `reason` says why.
        skipped: Recipes not tried: `{"name", "stage", "reason"}` (a ladder
            stopped at the floor, or the budget ran out).
        pareto: Names on the quality-vs-objective front of the reference and
            the exported candidates, cheapest first.
        reference: The float32 `.tflite` of the model as given, which sets the floor.
        objective: `"energy"`, `"latency"` or `"size"`.
        target: The target's name.
        quality: `"accuracy"` or `"perplexity"`.
        floor: The floor: `max_accuracy_drop` and `min_accuracy`, or
            `max_perplexity_ratio` and `perplexity`.
        seconds: Wall time of the search.
        seed: The seed it ran with.
        out_dir: Where the files are.
        comparison: The `tfgreen.report.Comparison` of the reference and the
            pick, or `None`.
    """

    best: dict | None
    candidates: list[dict]
    skipped: list[dict]
    pareto: list[str]
    reference: dict
    objective: str
    target: str
    quality: str
    floor: dict
    seconds: float
    seed: int
    out_dir: Path
    comparison: object | None = field(default=None, repr=False)

    @classmethod
    def from_search(cls, search, comparison, seconds: float, seed: int) -> OptimizeResult:
        """Builds the result of a finished `tfgreen.search.optimizer._Search`."""
        _finish(search.candidates, search.best, search.objective)
        exported = [search.reference] + [c for c in search.candidates if c.get("path")]
        return cls(
            best=search.best,
            candidates=search.candidates,
            skipped=search.skipped,
            pareto=_pareto(exported, search.objective, search.task.quality),
            reference=search.reference,
            objective=search.objective,
            target=search.target.name,
            quality=search.task.quality,
            floor=search.floor,
            seconds=seconds,
            seed=seed,
            out_dir=search.out_dir,
            comparison=comparison,
        )

    def to_dict(self) -> dict:
        """The result as plain data (JSON-ready), without the comparison object."""
        return {
            "best": self.best,
            "candidates": self.candidates,
            "skipped": self.skipped,
            "pareto": self.pareto,
            "reference": self.reference,
            "objective": self.objective,
            "target": self.target,
            "quality": self.quality,
            "floor": self.floor,
            "seconds": self.seconds,
            "seed": self.seed,
            "out_dir": str(self.out_dir),
        }

    def save_json(self, path: str | Path) -> Path:
        """Writes `to_dict()` as JSON, atomically; returns the path."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=str))

    def _rows(self) -> list[dict]:
        drop = "perplexity_ratio" if self.quality == "perplexity" else "accuracy_drop"
        rows = []
        for record in [self.reference, *self.candidates]:
            joules = record.get("joules_per_inference") or {}
            rows.append(
                {
                    "id": f"#{record['id']}",
                    "recipe": record["name"],
                    "status": record["status"],
                    self.quality: record.get(self.quality),
                    drop: record.get(drop),
                    "J_estimate": joules.get("estimate"),
                    "J_measured": joules.get("measured"),
                    "size_bytes": record.get("size_bytes"),
                    "gzip_bytes": record.get("gzip_bytes"),
                    "latency_ms": record.get("latency_ms"),
                    "sparsity": record.get("sparsity"),
                    "seconds": record.get("seconds"),
                    "reason": record.get("reason"),
                }
            )
        return rows

    def _plots(self, out_dir: Path) -> dict[str, Path]:
        from tfgreen.plots import tradeoff_plot

        exported = [self.reference] + [c for c in self.candidates if c.get("path")]
        written = {}
        for objective, label, log_x in _PLOTS:
            rows = [
                {
                    "model": f"#{r['id']}",
                    objective: cost(r, objective),
                    self.quality: r[self.quality],
                }
                for r in exported
            ]
            name = f"{self.quality}_vs_{objective}.png"
            written[name] = tradeoff_plot(
                rows,
                objective,
                out_dir / name,
                label,
                value_key=self.quality,
                title=f"optimize on {self.target}: {self.quality} vs {objective}",
                log_x=log_x,
                lower_is_better=self.quality == "perplexity",
            )
        return written

    def _pick_lines(self) -> list[str]:
        best, floor = self.best, self.floor
        if self.quality == "perplexity":
            bar = (
                f"perplexity ratio <= {floor['max_perplexity_ratio']} against the float32 "
                f"reference's {self.reference['perplexity']:.4g}"
            )
        else:
            bar = (
                f"accuracy >= {floor['min_accuracy']:.4f} (the float32 reference's "
                f"{self.reference['accuracy']:.4f} minus {floor['max_accuracy_drop']})"
            )
        lines = [
            f"Floor: {bar}, measured on each exported `.tflite` file. Objective: least "
            f"{self.objective}. {len(self.candidates)} recipes tried, {len(self.skipped)} "
            f"skipped, in {self.seconds:.0f} s (seed {self.seed}).",
            "",
        ]
        if best is None:
            return lines + ["**No candidate met the floor**; nothing was picked.", ""]
        joules = best["joules_per_inference"]
        ref = self.reference["joules_per_inference"]
        measured = (
            f"; measured on this host {joules['measured']:.3g} J against the reference's "
            f"{ref['measured']:.3g} J ({joules.get('measured_method')})"
            if joules.get("measured") is not None and ref.get("measured") is not None
            else ""
        )
        return lines + [
            f"**Pick: #{best['id']} {best['name']}** ({best['path']}): {self.quality} "
            f"{best[self.quality]:.4f} (reference {self.reference[self.quality]:.4f}), "
            f"{best['size_bytes']} bytes (reference {self.reference['size_bytes']}), "
            f"latency {best['latency_ms']:.4g} ms, energy {joules['estimate']:.3g} J per "
            f"inference (model estimate for {joules['estimate_target']}; reference "
            f"{ref['estimate']:.3g} J){measured}.",
            "",
        ]

    def report(self, out_dir: str | Path | None = None) -> dict[str, Path]:
        """Writes `optimize.md`, `search.json`, the PNG figures and `measured/` into `out_dir`.

        Args:
            out_dir: Folder (created if missing); `None` for the search's
                own `out_dir`. Defaults to `None`.

        Returns:
            File name -> path of every file written.

        Example:
        ```python
        res.report("out/search")["optimize.md"]
        # PosixPath('out/search/optimize.md')
        ```
        """
        out_dir = Path(self.out_dir if out_dir is None else out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise TfgreenValueError(
                message(
                    "The report's output path is a file",
                    "a folder (it is created if missing)",
                    "Pass a folder name",
                    out_dir=str(out_dir),
                )
            )
        written = self._plots(out_dir)
        lines = [f"# tfgreen optimize: {self.target}, least {self.objective}", ""]
        lines += self._pick_lines()
        lines += ["## Candidates", "", markdown_table(self._rows()), ""]
        if self.skipped:
            lines += ["## Not tried", "", markdown_table(self.skipped), ""]
        lines += [
            f"Pareto front ({self.quality} vs {self.objective}): {', '.join(self.pareto)}.",
            "",
            "`J_estimate` is tfgreen.estimate_energy's model estimate for the target (MACs and "
            "bytes priced per device class; not a measurement). `J_measured` is measured on "
            "this host by tfgreen.compare for the reference and the pick only (see "
            "`measured/`). Zeros kept in dense weights do not lower either: only smaller "
            "files after compression (`gzip_bytes`) show them.",
            "",
        ]
        lines += [f"![{name}]({name})" for name in written]
        if self.comparison is not None:
            saved = self.comparison.save(out_dir / "measured", title="optimize: measured on host")
            written.update({f"measured/{name}": path for name, path in saved.items()})
        written["optimize.md"] = atomic_write_text(out_dir / "optimize.md", "\n".join(lines) + "\n")
        written["search.json"] = self.save_json(out_dir / "search.json")
        return written
