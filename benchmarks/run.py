"""Runs the benchmarks side by side and writes JSON plus a markdown table.

Every `benchmarks/bench_*.py` module exposes `run(quick: bool) -> list[dict]`:
rows of figures measured in one run (ratios measured side by side). This
runner calls them, then writes `benchmarks/results/<name>.json` and
rebuilds `benchmarks/results/README.md` from every results file there.

Usage:
    python benchmarks/run.py [--quick] [--only NAME ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tfgreen import __version__  # noqa: E402
from tfgreen._io import atomic_write_text  # noqa: E402
from tfgreen.report import markdown_table  # noqa: E402

__all__ = ["discover", "run_all", "write_readme", "main"]


def discover(folder: Path = HERE) -> dict[str, Path]:
    """Maps benchmark name (`bench_<name>.py`) to its file."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(folder.glob("bench_*.py"))}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_all(
    names: list[str] | None = None,
    quick: bool = False,
    out: Path = HERE / "results",
    folder: Path = HERE,
) -> dict[str, list[dict]]:
    """Runs the chosen benchmarks and writes their results.

    Args:
        names: Benchmarks to run; all when `None`. Defaults to `None`.
        quick: Smaller runs, for a smoke test. Defaults to `False`.
        out: Folder for the JSON files and README.md. Defaults to `benchmarks/results`.
        folder: Where the `bench_*.py` files are. Defaults to this folder.

    Returns:
        `{name: rows}`.
    """
    found = discover(folder)
    unknown = sorted(set(names or []) - set(found))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; expected some of {sorted(found)}")
    results: dict[str, list[dict]] = {}
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "tfgreen": __version__,
        "quick": quick,
    }
    for name, path in found.items():
        if names and name not in names:
            continue
        print(f"[benchmarks] {name} ...", flush=True)
        start = time.perf_counter()
        rows = _load(name, path).run(quick=quick)
        seconds = time.perf_counter() - start
        results[name] = rows
        atomic_write_text(
            out / f"{name}.json",
            json.dumps(
                {"benchmark": name, "seconds": seconds, "machine": machine, "rows": rows}, indent=2
            ),
        )
        print(markdown_table(rows), flush=True)
    write_readme(out, found, machine)
    return results


def write_readme(out: Path, found: dict[str, Path], machine: dict) -> None:
    """Writes `out/README.md`: one table per benchmark with a results file in `out`.

    Rebuilt from the JSON files after every run, so `--only` keeps the tables
    of the benchmarks it did not run.
    """
    sections = [f"# Benchmark results\n\nMachine: `{json.dumps(machine)}`\n"]
    for name in found:
        path = out / f"{name}.json"
        if path.exists():
            saved = json.loads(path.read_text())
            table = markdown_table(saved["rows"])
            sections.append(f"## {name}\n\n{table}\n\n({saved['seconds']:.0f} s)\n")
    atomic_write_text(out / "README.md", "\n".join(sections))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    args = parser.parse_args(argv)
    run_all(args.only, quick=args.quick, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
