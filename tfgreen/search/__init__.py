"""Accuracy-aware search for the cheapest model on a device target: `tfgreen.optimize`.

The package is not named `optimize`: a submodule of that name would shadow
the `tfgreen.optimize` function once imported.
"""

from tfgreen.search.optimizer import OBJECTIVES, optimize
from tfgreen.search.result import OptimizeResult

__all__ = ["OBJECTIVES", "OptimizeResult", "optimize"]
