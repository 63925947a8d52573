"""Executes tfgreen's notebooks with nbclient, in place (full mode) or for tests (quick mode).

`python notebooks/run_all.py` runs every `NN_*.ipynb` in this folder top to
bottom in full mode and saves it with its outputs, so readers see the plots.
`python notebooks/run_all.py --quick 01_seed_example.ipynb` runs one in quick
mode (`TFGREEN_QUICK=1`). The kernel is this interpreter (`sys.executable`),
whatever kernels Jupyter has installed, and each notebook runs in a fresh
temporary folder so nothing it writes lands in the repository.

Saved notebooks keep every output except TensorFlow's C++ start-up logs and
the converter's chatter on stderr (see `clean_outputs`).
`tests/test_notebooks.py` uses `execute_notebook` from here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "NOTEBOOKS_DIR",
    "notebook_paths",
    "execute_notebook",
    "clean_outputs",
    "summary_of",
    "main",
]

NOTEBOOKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOKS_DIR.parent
SUMMARY_TAG = "summary"
_KERNEL_NAME = "tfgreen-python"


# stderr lines that are start-up and converter chatter, not part of the lesson.
_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog"),
    re.compile(r"^[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\]"),  # TensorFlow C++ logs
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate"),
    re.compile(r"^fully_quantize: \d"),
    re.compile(r"UserWarning: Statistics for quantized inputs were expected"),
    re.compile(r"^\s+warnings\.warn\($"),
)

_SITE_PACKAGES = re.compile(r"\S*/site-packages/")  # this machine's install path


def notebook_paths() -> list[Path]:
    """Returns the notebooks in reading order (`01_...`, `02_...`, ...)."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def _kernel_manager(kernel_dir: Path):
    """A kernel manager whose only kernel runs `sys.executable -m ipykernel_launcher`."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = kernel_dir / "kernels" / _KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tfgreen)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
    return KernelManager(kernel_name=_KERNEL_NAME, kernel_spec_manager=specs)


def execute_notebook(
    path: str | Path,
    quick: bool = True,
    workdir: str | Path | None = None,
    timeout: int = 600,
    save: bool = False,
):
    """Runs a notebook top to bottom and returns the executed notebook node.

    Args:
        path: The `.ipynb` file.
        quick: Set `TFGREEN_QUICK=1` so the notebook shrinks epochs and samples.
            Defaults to `True`.
        workdir: Folder the notebook runs in (its files land there); a fresh
            temporary folder when `None`. Defaults to `None`.
        timeout: Seconds allowed per cell. Defaults to `600`.
        save: Write the executed notebook back to `path`. Defaults to `False`.

    Returns:
        The executed `nbformat.NotebookNode`. A failing cell raises
        `nbclient.exceptions.CellExecutionError` with its traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    kernelspec = dict(notebook.metadata.get("kernelspec", {}))
    # The kernel may still be writing its IPython history while it shuts down:
    # a scratch file left behind then must not fail a notebook that ran.
    with tempfile.TemporaryDirectory(prefix="tfgreen-nb-", ignore_cleanup_errors=True) as scratch:
        cwd = Path(workdir) if workdir is not None else Path(scratch) / "run"
        cwd.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["IPYTHONDIR"] = str(Path(scratch) / "ipython")
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures into outputs
        if quick:
            env["TFGREEN_QUICK"] = "1"
        else:
            env.pop("TFGREEN_QUICK", None)
        client = NotebookClient(
            notebook,
            km=_kernel_manager(Path(scratch) / "jupyter"),
            timeout=timeout,
            resources={"metadata": {"path": str(cwd)}},
        )
        client.execute(env=env, cwd=str(cwd))
    if save:
        # Keep the saved file free of run-specific noise: readers' kernel name, no timings.
        notebook.metadata["kernelspec"] = kernelspec
        for cell in notebook.cells:
            cell.metadata.pop("execution", None)
        clean_outputs(notebook)
        nbformat.write(notebook, path)
    return notebook


def clean_outputs(notebook) -> None:
    """Drops TensorFlow's start-up logs and converter chatter from the cells' stderr, in place."""
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = output["text"].splitlines(keepends=True)
                lines = [ln for ln in lines if ln.strip() and not any(p.search(ln) for p in _NOISE)]
                if not lines:
                    continue
                output["text"] = _SITE_PACKAGES.sub(".../site-packages/", "".join(lines))
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept


def summary_of(notebook) -> dict:
    """Returns the JSON dict printed by the notebook's cell tagged `summary`."""
    for cell in notebook.cells:
        if SUMMARY_TAG in cell.get("metadata", {}).get("tags", []):
            text = "".join(
                out.get("text", "")
                for out in cell.get("outputs", [])
                if out.get("name") == "stdout"
            )
            if not text.strip():
                raise LookupError(
                    f"the cell tagged {SUMMARY_TAG!r} has no output: run the notebook"
                )
            return json.loads(text.strip().splitlines()[-1])
    raise LookupError(f"no cell tagged {SUMMARY_TAG!r}")


def main(argv: list[str] | None = None) -> int:
    """Runs the notebooks named (default: all) and saves them with their outputs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: all)")
    parser.add_argument("--quick", action="store_true", help="TFGREEN_QUICK=1 (do not commit)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or notebook_paths()
    for path in paths:
        start = time.perf_counter()
        print(f"running {path.name} ({'quick' if args.quick else 'full'} mode) ...", flush=True)
        notebook = execute_notebook(path, quick=args.quick, timeout=args.timeout, save=True)
        seconds = time.perf_counter() - start
        print(f"  ok in {seconds:.0f} s: {json.dumps(summary_of(notebook))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
