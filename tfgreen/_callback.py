"""A callback base that both Kerases accept in `model.fit`.

Keras 3's `CallbackList` calls `set_params`, `set_model` and the `on_*` hooks,
and dispatches batch hooks asynchronously unless a callback overrides them
(it checks `method._is_default`). tf_keras's `CallbackList` also asks every
callback `_implements_train_batch_hooks()` (and test/predict) and reads
`_supports_tf_logs`. Subclassing one Keras's `Callback` breaks the other, so
tfgreen's callbacks implement this union of both protocols on a plain class:
one instance works in a Keras 3 and a tf_keras `fit`, without importing either.
The private parts of both protocols come from `tfgreen._adapters.keras`.
"""

from __future__ import annotations

from tfgreen._adapters.keras import CallbackHooks, mark_default

__all__ = ["DualCallback"]


class DualCallback(CallbackHooks):
    """Base of tfgreen's callbacks: the Keras 3 and tf_keras callback protocols in one.

    Subclasses override the epoch/train hooks they need; batch hooks stay
    no-ops, so neither Keras has to call or wait for them.

    Example:
    ```python
    class Epochs(DualCallback):
        def on_epoch_end(self, epoch, logs=None):
            logs["epochs_seen"] = epoch + 1
    model.fit(x, y, epochs=2, callbacks=[Epochs()])
    ```
    """

    model = None
    params = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        """Called at the start of `fit`."""

    def on_train_end(self, logs=None):
        """Called at the end of `fit`."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of each epoch, after validation."""

    def on_test_begin(self, logs=None):
        """Called at the start of `evaluate` (and of validation in `fit`)."""

    def on_test_end(self, logs=None):
        """Called at the end of `evaluate`."""

    def on_predict_begin(self, logs=None):
        """Called at the start of `predict`."""

    def on_predict_end(self, logs=None):
        """Called at the end of `predict`."""

    @mark_default
    def on_batch_begin(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""

    @mark_default
    def on_batch_end(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""

    @mark_default
    def on_train_batch_begin(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""

    @mark_default
    def on_train_batch_end(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""

    @mark_default
    def on_test_batch_begin(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""

    @mark_default
    def on_test_batch_end(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""

    @mark_default
    def on_predict_batch_begin(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""

    @mark_default
    def on_predict_batch_end(self, batch, logs=None):
        """Batch hooks are not used by tfgreen's callbacks."""
