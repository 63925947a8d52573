"""tf_keras distillation: the behaviour of `keras.distillation.Distiller` for Keras 2.

tf_keras has no distiller; this `tf_keras.Model` follows Keras 3's: total
loss `student_loss_weight * hard + (1 - student_loss_weight) * distill`, a
frozen teacher run in inference mode, multi-layer feature extractors built
once, and the `loss`, `student_loss`, `distillation_loss` and `total_loss`
figures in the logs. `TfKerasDistiller` is this backend's `DISTILLER` (see
`_protocol.py`); build it with `tfgreen.Distiller(...)`.
"""

from __future__ import annotations

from types import SimpleNamespace

import tensorflow as tf
import tf_keras

from tfgreen._adapters.keras import tf_keras_is_compiled
from tfgreen.distillation.distiller import (
    Distiller,
    FeaturePlan,
    LogitsPlan,
    check_compile_loss,
    num_replicas,
    resolve,
)
from tfgreen.distillation.losses import soft_kl
from tfgreen.distillation.sequence import sequence_total

__all__ = ["DISTILLER", "NATIVE_LOSSES", "NATIVE_LOSSES_NAME", "TfKerasDistiller"]

# tf_keras has no distillation losses of its own.
NATIVE_LOSSES = ()
NATIVE_LOSSES_NAME = ""

# The subset of `keras.ops` that `soft_kl` and `sequence_total` use, as TensorFlow functions.
_OPS = SimpleNamespace(
    cast=tf.cast,
    clip=tf.clip_by_value,
    concatenate=tf.concat,
    exp=tf.exp,
    expand_dims=tf.expand_dims,
    log=tf.math.log,
    log_sigmoid=tf.math.log_sigmoid,
    log_softmax=tf.nn.log_softmax,
    maximum=tf.maximum,
    mean=tf.reduce_mean,
    one_hot=tf.one_hot,
    ones_like=tf.ones_like,
    stack=tf.stack,
    sum=tf.reduce_sum,
    zeros_like=tf.zeros_like,
)
_FINAL = "final_output"


def _extractor(model, layer_names: list[str]):
    if not layer_names:
        return None
    outputs = {_FINAL: model.outputs[0]}
    for name in layer_names:
        outputs[name] = model.get_layer(name).output
    return tf_keras.Model(model.inputs, outputs, name=f"{model.name}_feature_extractor")


class TfKerasDistiller(Distiller, tf_keras.Model):
    """A tf_keras knowledge-distillation model; takes `tfgreen.Distiller`'s arguments."""

    def __init__(
        self,
        teacher,
        student,
        temperature=4.0,
        student_loss_weight=0.5,
        distillation_losses=None,
        distillation_loss_weights=None,
        name="distiller",
        **kwargs,
    ):
        resolved = resolve(
            NATIVE_LOSSES,
            NATIVE_LOSSES_NAME,
            teacher,
            student,
            temperature,
            student_loss_weight,
            distillation_losses,
            distillation_loss_weights,
        )
        super().__init__(name=name, **kwargs)
        self.teacher = teacher
        self.student = student
        self.teacher.trainable = False
        self.student_loss_weight = resolved.student_loss_weight
        self._sequence = resolved.sequence
        self._plans = list(resolved.plans)
        self.distillation_loss_weights = list(resolved.weights)
        # One projection per feature term (None when the widths match).
        self._projection_of = []
        for plan in self._plans:
            projection = None
            if isinstance(plan, FeaturePlan) and plan.teacher_width is not None:
                projection = tf_keras.layers.Dense(
                    plan.teacher_width,
                    name=f"projection_{plan.student_layer_name}_to_{plan.teacher_layer_name}",
                )
                projection.build(plan.student_shape)
            self._projection_of.append(projection)
        self.projections = [p for p in self._projection_of if p is not None]
        features = [p for p in self._plans if isinstance(p, FeaturePlan)]
        self._teacher_extractor = _extractor(
            teacher, list(dict.fromkeys(p.teacher_layer_name for p in features))
        )
        self._student_extractor = _extractor(
            student, list(dict.fromkeys(p.student_layer_name for p in features))
        )
        self.loss_tracker = tf_keras.metrics.Mean(name="loss")
        self.student_loss_tracker = tf_keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = tf_keras.metrics.Mean(name="distillation_loss")
        self.total_loss_tracker = tf_keras.metrics.Mean(name="total_loss")

    @property
    def distillation_losses(self) -> list:
        """The resolved distillation terms (`LogitsPlan` / `FeaturePlan`)."""
        return list(self._plans)

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Compiles with the student's hard-label `loss` (required, except for LMs) and `metrics`."""
        check_compile_loss(loss, self._sequence)
        if self._sequence is not None:
            loss = None  # the next-token cross-entropy is computed per token
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    @property
    def metrics(self):
        metrics = [
            self.loss_tracker,
            self.student_loss_tracker,
            self.distillation_loss_tracker,
            self.total_loss_tracker,
        ]
        if tf_keras_is_compiled(self) and self.compiled_metrics is not None:
            metrics += self.compiled_metrics.metrics
        return metrics

    def _term(self, plan, projection, teacher_features, student_features, y_pred):
        if isinstance(plan, LogitsPlan):
            return soft_kl(
                _OPS,
                teacher_features[_FINAL],
                y_pred,
                plan.temperature,
                plan.teacher_kind,
                plan.student_kind,
                plan.binary,
            )
        student = student_features[plan.student_layer_name]
        if projection is not None:
            student = projection(student)
        loss_fn = tf_keras.losses.get(plan.loss)
        return tf.reduce_mean(loss_fn(teacher_features[plan.teacher_layer_name], student))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        replicas = num_replicas()
        if self._sequence is not None:
            total = sequence_total(_OPS, self, x, y, y_pred, sample_weight)
            self.loss_tracker.update_state(total)
            return total / replicas
        student_loss = tf.constant(0.0)
        if self.student_loss_weight > 0.0 and y is not None:
            # compiled_loss divides by the replica count; keep a per-replica mean here.
            student_loss = self.compiled_loss(y, y_pred, sample_weight) * replicas
        distillation_loss = tf.constant(0.0)
        if self.student_loss_weight < 1.0:
            if self._teacher_extractor is not None:
                teacher_features = self._teacher_extractor(x, training=False)
                student_features = self._student_extractor(x, training=True)
            else:
                teacher_features = {_FINAL: self.teacher(x, training=False)}
                student_features = {}
            for plan, projection, weight in zip(
                self._plans, self._projection_of, self.distillation_loss_weights, strict=True
            ):
                term = self._term(plan, projection, teacher_features, student_features, y_pred)
                distillation_loss += weight * term
        total = (
            self.student_loss_weight * student_loss
            + (1.0 - self.student_loss_weight) * distillation_loss
        )
        self.student_loss_tracker.update_state(student_loss)
        self.distillation_loss_tracker.update_state(distillation_loss)
        self.total_loss_tracker.update_state(total)
        self.loss_tracker.update_state(total)
        return total / replicas


DISTILLER = TfKerasDistiller
