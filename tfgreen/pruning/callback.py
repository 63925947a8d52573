"""`tfgreen.callbacks.Pruning`: the one callback that drives pruning in `fit()`."""

from __future__ import annotations

import warnings

import numpy as np

from tfgreen import _validate
from tfgreen._callback import DualCallback
from tfgreen.errors import TfgreenValueError, message
from tfgreen.pruning.api import backend_for

__all__ = ["Pruning"]


class Pruning(DualCallback):
    """Drives the pruning masks of a `tfgreen.prune` model during `fit()`.

    Works in `fit()` of Keras 3 and tf_keras models. When training starts it
    turns the schedule's `begin`/`end` fractions into steps of this run
    (`epochs` x steps per epoch; with `initial_epoch` the run resumes where
    the schedule left off), updates the masks at the scheduled steps, writes
    `sparsity` (fraction of zeros over all pruned kernels) into `logs` at each
    epoch end (History, TensorBoard), and warns with figures when the run is
    too short for the schedule or the target sparsity was not reached.

    Args:
        verbose: `1` prints the resolved schedule and the sparsity per epoch.
            Defaults to `0`.

    Example:
    >>> import keras, numpy as np, tfgreen
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10, name="out")])
    >>> pruned = tfgreen.prune(model, sparsity=0.8)
    >>> pruned.compile("adam", "mse")
    >>> x, y = np.ones((64, 8)), np.zeros((64, 10))
    >>> history = pruned.fit(x, y, epochs=2, verbose=0, callbacks=[tfgreen.callbacks.Pruning()])
    >>> round(history.history["sparsity"][-1], 3)
    0.8
    """

    def __init__(self, verbose: int = 0):
        super().__init__()
        fix = "Pass verbose=1 to see what pruning does"
        verbose = _validate.positive_int("verbose", verbose, minimum=0, example=1, fix=fix)
        self.verbose = _validate.choice("verbose", verbose, (0, 1, 2), fix=fix)
        # Keeps tf_keras from converting logs to numpy each batch on our account.
        self._supports_tf_logs = True

    # tf_keras' CallbackList asks its callbacks which batch hooks they use: the
    # mask updates run from `on_train_batch_begin`.
    def _implements_train_batch_hooks(self) -> bool:
        return True

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    def on_train_begin(self, logs=None):
        model = self.model
        self._backend = backend_for(model)
        self._layers = self._backend.wrappers(model)
        if not self._layers:
            raise TfgreenValueError(
                message(
                    "The Pruning callback was given a model with no pruned layers",
                    "a model returned by tfgreen.prune",
                    "Fit the model returned by tfgreen.prune(model), not the original",
                    model=model.name,
                )
            )
        epochs = self.params.get("epochs")
        self._steps = self.params.get("steps")
        if not self._steps:
            raise TfgreenValueError(
                message(
                    "The number of steps per epoch is unknown, so the pruning schedule "
                    "cannot be sized from the run",
                    "fit() on arrays, a sized dataset, or with steps_per_epoch",
                    "Pass steps_per_epoch=... to fit()",
                    steps=self._steps,
                )
            )
        total = int(epochs) * int(self._steps)
        self._groups = {}
        for layer in self._layers:
            driver = self._backend.driver_of(layer)
            if id(driver) not in self._groups:
                plan = self._backend.schedule_of(layer).resolve(total)
                self._groups[id(driver)] = (driver, plan, [])
            self._groups[id(driver)][2].append(layer)
        self._target = max(self._backend.target_of(layer) for layer in self._layers)
        self._epoch = 0
        self._started = False
        self._applied = self._done = -1
        self._warn_short_run(total)
        if self.verbose:
            for _, plan, layers in self._groups.values():
                print(
                    f"Pruning {len(layers)} layers to {self._target:.3f} sparsity: masks update "
                    f"every {plan.frequency} steps from step {plan.begin} to {plan.end} "
                    f"of {total}."
                )

    def _warn_short_run(self, total: int) -> None:
        for _, plan, layers in self._groups.values():
            structured = any(self._backend.structure_of(layer) for layer in layers)
            if plan.end > total - 1 and not structured:
                warnings.warn(
                    message(
                        f"The pruning schedule ends at step {plan.end} but this fit() run has "
                        f"only {total} steps; sparsity will reach "
                        f"{plan.reachable_sparsity():.3f}, not {plan.schedule.final_sparsity:.3f}",
                        "a schedule that ends within the run",
                        "Give begin/end as fractions of the run (for example end=0.8) or "
                        "train for more epochs",
                        end=plan.end,
                        total_steps=total,
                    ),
                    UserWarning,
                    stacklevel=2,
                )

    def on_epoch_begin(self, epoch, logs=None):
        # The first epoch of the run is `initial_epoch`: resume the plan there.
        self._epoch = epoch
        if not self._started:
            for driver, plan, layers in self._groups.values():
                self._backend.begin(driver, plan, layers, epoch * self._steps)
            self._applied = epoch * self._steps - 1
            self._started = True

    def _catch_up(self, step: int) -> None:
        """Applies the plan's mask updates of the steps after the last applied, up to `step`."""
        if step > self._applied:
            for driver, plan, layers in self._groups.values():
                self._backend.batch(driver, plan, layers, self._applied + 1, step)
            self._applied = step

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch * self._steps + batch
        self._catch_up(step)
        # A call runs `steps_per_execution` steps (fewer at the epoch's end). Knowing the
        # last one here spares an `on_train_batch_end` hook: on backends that allow it,
        # Keras 3 dispatches batch ends asynchronously only if no callback has one.
        per_call = getattr(self.model, "steps_per_execution", 1)
        per_call = per_call if isinstance(per_call, int) and per_call > 0 else 1
        self._done = min(step + per_call, (self._epoch + 1) * self._steps) - 1

    def _overall_sparsity(self) -> float:
        zeros = size = 0
        for layer in self._layers:
            for kernel in self._backend.masked_kernels(layer).values():
                zeros += int(np.count_nonzero(kernel == 0))
                size += kernel.size
        return zeros / max(size, 1)

    def on_epoch_end(self, epoch, logs=None):
        value = self._overall_sparsity()
        if logs is not None:
            logs["sparsity"] = value
        if self.verbose:
            print(f"Epoch {epoch + 1}: pruned-weight sparsity {value:.4f}")

    def on_train_end(self, logs=None):
        # Updates due in the last multi-step call land before training ends.
        self._catch_up(self._done)
        self._backend.end(self._layers)
        reached = self._overall_sparsity()
        if reached < self._target - 1e-3:
            warnings.warn(
                message(
                    f"Pruning did not reach its target: the pruned kernels are "
                    f"{reached:.4f} sparse, the target is {self._target:.4f}",
                    "the schedule to end within the run",
                    "Train for more epochs, resume with initial_epoch, or end the schedule "
                    "earlier (for example end=0.8)",
                    sparsity=round(reached, 4),
                    target=round(self._target, 4),
                ),
                UserWarning,
                stacklevel=2,
            )
