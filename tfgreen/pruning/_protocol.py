"""The pruning backend protocol: what `api.py` and the callback ask of each Keras.

`tfgreen.flavor.backend("tfgreen.pruning", model)` returns the module that
implements it for the model's Keras: `tfgreen.pruning._keras3` (tfgreen's own
masks, written with `keras.ops`) or `tfgreen.pruning._tf_keras` (tfmot's
`PruneLowMagnitude`). Both modules define exactly these names, with these
signatures (a test checks it), and nothing else public. A "wrapper" is the
backend's pruning layer around one top-level layer; a "driver" is the object
the schedule of a `fit()` run is loaded into (tfgreen's schedule itself on
Keras 3, a plan table tfmot reads inside the graph on tf_keras).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tfgreen.pruning._kernels import Kernel
from tfgreen.pruning.schedules import Plan, PruningSchedule

__all__ = ["PruningBackend"]


class PruningBackend(Protocol):
    """One Keras's implementation of magnitude pruning.

    `tfgreen.callbacks.Pruning` calls `begin` when a `fit()` run starts,
    `batch` before each training step (the mask updates its plan makes are
    done there, on the host) and `end` when it ends.
    """

    def prunable_kernels(self, layer, embeddings: bool) -> list[Kernel]:
        """The kernels wrapping `layer` would prune (empty: the layer can't be pruned)."""

    def structure_problem(self, kernel: Kernel, n: int) -> str | None:
        """Why `"m:n"` groups of `n` can't run along the kernel's reduction axis, or `None`."""

    def xnnpack_layers(self, model) -> set[str]:
        """Names of the layers tfmot's XNNPACK latency policy would prune (or a clear error)."""

    def driver_for(self, schedule: PruningSchedule) -> Any:
        """The driver shared by the wrappers pruned on `schedule`."""

    def prune_model(self, model, chosen: dict[str, bool], driver, structure: str | None) -> Any:
        """A copy of `model` whose `chosen` top-level layers (`{name: embeddings}`) are pruned.

        No chosen layer is nested in another; a top-level layer that is (a
        backbone's embedding reused as the LM head) stays shared in the copy.
        """

    def wrappers(self, model) -> list:
        """Every pruning wrapper of a model, nested ones included."""

    def kernel_and_mask(self, wrapper) -> tuple:
        """The `(kernel, mask)` variables of the wrapper's first (for Dense/Conv: only) kernel."""

    def masked_kernels(self, wrapper) -> dict[str, np.ndarray]:
        """Each pruned kernel as the model uses it (kernel times mask), by kernel path."""

    def structure_of(self, wrapper) -> tuple[int, int] | None:
        """The `(m, n)` of a structured wrapper, else `None`."""

    def target_of(self, wrapper) -> float:
        """The sparsity the wrapper ends at (m/n for structured pruning)."""

    def driver_of(self, wrapper) -> Any:
        """The driver of a wrapper (wrappers sharing one are driven together)."""

    def schedule_of(self, wrapper) -> PruningSchedule:
        """The tfgreen schedule of a wrapper."""

    def begin(self, driver, plan: Plan, layers: list, first_step: int) -> None:
        """Starts a `fit()` run at `first_step` of `plan`."""

    def batch(self, driver, plan: Plan, layers: list, first: int, last: int) -> None:
        """Applies the plan's mask updates of steps `first..last`."""

    def end(self, layers: list) -> None:
        """Ends a `fit()` run: the kernels hold their zeros."""

    def strip(self, model) -> Any:
        """The plain model of a pruned one, kernels masked."""

    def group_keep(self, wrapper) -> tuple[str, np.ndarray] | None:
        """`(kind, kept groups as a bool vector)` of a `"channels"`/`"heads"` wrapper, else `None`."""

    def load_scope(self, path: str | Path) -> contextlib.AbstractContextManager:
        """A context in which the Keras of this backend can load the pruned model at `path`."""
