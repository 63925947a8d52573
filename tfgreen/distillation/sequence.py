"""Token-level distillation of language models: per-token KL and next-token loss, masked.

When teacher and student are both language models (`tfgreen._lm`: token
ids in, `[batch, seq, vocab]` logits out; `tiny_gpt`, KerasHub CausalLMs),
`tfgreen.Distiller` trains the student on

    student_loss_weight * CE + (1 - student_loss_weight) * weight * KL

- `KL`: `T**2 * KL(softmax(t / T) || softmax(s / T))` at every position,
  summed over the real tokens and divided by their number: masked tokens
  contribute nothing, and the figure does not depend on how much padding a
  batch holds.
- `CE`: the student's next-token cross-entropy, weighted per token and
  divided by the sum of the weights (the number of real targets).

Which tokens are real:
- KL: the `padding_mask` of the inputs (KerasHub models), else a per-token
  `sample_weight` `[batch, seq]` given to `fit`, else every token.
- CE targets: `fit(x, y, sample_weight=w)` as a causal LM takes them
  (`tfgreen.datasets.next_token_targets` or a KerasHub
  `CausalLMPreprocessor`'s `(x, y, sample_weight)`); with `y=None` the
  targets are the inputs shifted by one token (`x[:, t + 1]`), weighted by
  the padding mask shifted likewise, the last position unweighted.

The math is written once against an `ops` namespace (`keras.ops` for
Keras 3, TensorFlow functions for tf_keras), as in `losses.py`.

Example:
```python
d = tfgreen.Distiller(teacher_lm, student_lm, temperature=2.0, student_loss_weight=0.5)
d.compile(keras.optimizers.Adam(1e-2))     # loss: next-token CE, implied
d.fit(data.train, epochs=2)                # targets: the ids shifted by one
tfgreen.perplexity(d.student, data.val)
```
"""

from __future__ import annotations

from dataclasses import dataclass

from tfgreen._lm import is_language_model, token_feed
from tfgreen.distillation.losses import LogitsDistillation, activation_name, kl_terms, log_probs
from tfgreen.errors import TfgreenTypeError, TfgreenValueError, UnsupportedLayerError, message

__all__ = [
    "SequenceInputs",
    "SequencePlan",
    "check_language_models",
    "check_sequence_loss",
    "check_sequence_specs",
    "lm_output_kind",
    "sequence_losses",
    "sequence_total",
    "token_kl",
]

_EPSILON = 1e-7
_CE_NAMES = ("auto", "sparse_categorical_crossentropy")


@dataclass(frozen=True)
class SequenceInputs:
    """How a pair of language models takes its inputs.

    Attributes:
        keras_hub: Inputs are `{"token_ids", "padding_mask"}` dicts (KerasHub);
            otherwise one `[batch, seq]` token-id tensor.
        vocab_size: Logits per position.
    """

    keras_hub: bool
    vocab_size: int


@dataclass(frozen=True)
class SequencePlan:
    """Token-level distillation resolved against the two language models.

    Attributes:
        inputs: How the models take their inputs.
        temperature: The softening temperature.
        teacher_kind: `"logits"` or `"probabilities"`.
        student_kind: The same for the student.
        weight: Weight of the KL term (`distillation_loss_weights[0]`).
    """

    inputs: SequenceInputs
    temperature: float
    teacher_kind: str
    student_kind: str
    weight: float


def _describe(model) -> str:
    return "a language model" if is_language_model(model) else "not a language model"


def check_language_models(teacher, student) -> SequenceInputs | None:
    """Checks a teacher and student for token-level distillation.

    Args:
        teacher: A built Keras model.
        student: A built Keras model of the same flavour.

    Returns:
        `SequenceInputs` when both are language models, `None` when neither is.

    Raises:
        TfgreenTypeError: Only one is a language model, or one takes a
            KerasHub `token_ids` + `padding_mask` dict and the other plain ids.
        TfgreenValueError: Vocabularies or fixed sequence lengths differ.
    """
    teacher_lm, student_lm = is_language_model(teacher), is_language_model(student)
    if not teacher_lm and not student_lm:
        return None
    if teacher_lm != student_lm:
        raise TfgreenTypeError(
            message(
                "Only one of teacher and student is a language model",
                "two language models (token ids in, [batch, seq, vocab] logits out) or two "
                "models of another kind",
                "Distil a language model into a smaller language model, e.g. "
                "tfgreen.models.tiny_gpt(embed_dim=16, num_layers=1, vocab_size=<teacher's>)",
                teacher=_describe(teacher),
                student=_describe(student),
            )
        )
    (t_tokens, t_feed), (s_tokens, s_feed) = token_feed(teacher), token_feed(student)
    if t_feed is not s_feed:
        kinds = {True: "token_ids + padding_mask (KerasHub)", False: "token ids alone"}
        raise TfgreenTypeError(
            message(
                "Teacher and student take different inputs",
                "the same input: both KerasHub CausalLMs (token_ids + padding_mask) or both "
                "models with one token-id input",
                "Build the student like the teacher (a KerasHub CausalLM from config for a "
                "KerasHub teacher, tfgreen.models.tiny_gpt for a tiny_gpt teacher)",
                teacher_inputs=kinds[len(teacher.inputs) == 2],
                student_inputs=kinds[len(student.inputs) == 2],
            )
        )
    t_vocab, s_vocab = int(teacher.outputs[0].shape[-1]), int(student.outputs[0].shape[-1])
    if t_vocab != s_vocab:
        raise TfgreenValueError(
            message(
                "Teacher and student vocabularies differ",
                "the same vocabulary (the same tokenizer) on both, so their logits match "
                "token by token",
                f"Build the student with vocab_size={t_vocab}",
                teacher_vocab_size=t_vocab,
                student_vocab_size=s_vocab,
            )
        )
    t_len, s_len = t_tokens.shape[1], s_tokens.shape[1]
    if t_len is not None and s_len is not None and int(t_len) != int(s_len):
        raise TfgreenValueError(
            message(
                "Teacher and student sequence lengths differ",
                "the same number of tokens per window on both",
                f"Build the student with seq_len={int(t_len)}",
                teacher_seq_len=int(t_len),
                student_seq_len=int(s_len),
            )
        )
    return SequenceInputs(keras_hub=len(teacher.inputs) == 2, vocab_size=t_vocab)


def lm_output_kind(model, declared: str, role: str) -> str:
    """Whether a language model outputs logits (the norm) or softmax probabilities.

    Args:
        model: A language model.
        declared: `"auto"`, `"logits"` or `"probabilities"`.
        role: `"teacher"` or `"student"`, for the error message.

    Returns:
        `"logits"` or `"probabilities"`: `"auto"` reads a softmax last layer
        as probabilities, and anything else (a linear head, KerasHub's tied
        `ReversibleEmbedding`) as logits.
    """
    if declared != "auto":
        return declared
    activation = activation_name(model.layers[-1])
    if activation == "sigmoid":
        raise UnsupportedLayerError(
            message(
                f"The {role} language model ends in a sigmoid",
                "next-token logits or softmax probabilities over the vocabulary",
                "End the model in a linear Dense(vocab_size) head",
                **{f"{role}_activation": activation},
            )
        )
    return "probabilities" if activation == "softmax" else "logits"


def check_sequence_specs(specs: list) -> LogitsDistillation:
    """The one logits term token-level distillation takes; refuses feature terms.

    Args:
        specs: The checked `distillation_losses`.

    Returns:
        The `LogitsDistillation`.
    """
    if len(specs) != 1 or not isinstance(specs[0], LogitsDistillation):
        raise UnsupportedLayerError(
            message(
                "Token-level distillation of language models takes one logits term",
                "distillation_losses=None or one tfgreen.distillation.LogitsDistillation",
                "Drop the other terms (FeatureDistillation and keras.distillation losses "
                "are not masked per token)",
                distillation_losses=[type(s).__name__ for s in specs],
            )
        )
    return specs[0]


def check_sequence_loss(loss, student_kind: str):
    """Checks `compile(loss=...)` of a language-model distiller.

    The student's own loss is always the masked next-token cross-entropy,
    computed from the student's outputs; `loss` may only name it.

    Args:
        loss: The `loss` given to `compile`.
        student_kind: `"logits"` or `"probabilities"`.

    Returns:
        `None` (nothing to compile: the loss is computed per token).
    """
    get_config = getattr(loss, "get_config", None)
    from_logits = bool((get_config() if callable(get_config) else {}).get("from_logits"))
    named = loss is None or (isinstance(loss, str) and loss in _CE_NAMES)
    is_ce = type(loss).__name__ == "SparseCategoricalCrossentropy"
    if not named and not (is_ce and from_logits == (student_kind == "logits")):
        raise TfgreenValueError(
            message(
                "Language-model distillation trains the student on its masked next-token "
                "cross-entropy; `loss` asks for something else"
                + (" (its from_logits does not match the student's output)" if is_ce else ""),
                f"loss=None, 'auto' or SparseCategoricalCrossentropy(from_logits="
                f"{student_kind == 'logits'}) for this student, which outputs {student_kind}",
                "Pass loss=None",
                loss=loss,
            )
        )


def _masked_mean(ops, values, weights):
    total = ops.sum(weights)
    return ops.sum(values * weights) / ops.maximum(total, _EPSILON)


def token_kl(ops, teacher, student, temperature: float, kinds: tuple[str, str], mask):
    """Per-token `T**2 * KL(teacher || student)`, averaged over the real tokens.

    Args:
        ops: `keras.ops`, or a namespace of the same TensorFlow functions.
        teacher: Teacher outputs `[batch, seq, vocab]`.
        student: Student outputs `[batch, seq, vocab]`.
        temperature: The softening temperature.
        kinds: `(teacher_kind, student_kind)`, each `"logits"` or `"probabilities"`.
        mask: float `[batch, seq]`, 1 at real tokens and 0 at padding.

    Returns:
        A scalar: the sum of the masked per-token KL divided by the mask's sum.
    """
    kl = kl_terms(ops, teacher, student, temperature, kinds[0], kinds[1], False)
    return _masked_mean(ops, kl, mask)


def _token_cross_entropy(ops, targets, student, kind: str, vocab_size: int):
    logp = ops.log_softmax(log_probs(ops, student, kind, False), axis=-1)
    return -ops.sum(ops.one_hot(ops.cast(targets, "int32"), vocab_size) * logp, axis=-1)


def _split(ops, x, keras_hub: bool):
    if keras_hub:
        return x["token_ids"], ops.cast(x["padding_mask"], "float32")
    return x, None


def _per_token(ops, sample_weight, like):
    """A sample weight as `[batch, seq]` (per-sequence weights broadcast), or None."""
    if sample_weight is None:
        return None
    weight = ops.cast(sample_weight, "float32")
    if len(weight.shape) == 1:
        weight = ops.expand_dims(weight, -1)
    return weight * ops.ones_like(like)


def sequence_losses(ops, plan: SequencePlan, teacher_outputs, student_outputs, x, y, sw):
    """The two terms of token-level distillation on one batch.

    Args:
        ops: `keras.ops`, or a namespace of the same TensorFlow functions.
        plan: The models' `SequencePlan`.
        teacher_outputs: Teacher outputs `[batch, seq, vocab]`, or `None` to skip KL.
        student_outputs: Student outputs `[batch, seq, vocab]`.
        x: The batch's inputs (ids, or KerasHub's dict).
        y: Next-token targets `[batch, seq]`, or `None` for the inputs shifted by one.
        sw: `sample_weight` as given to `fit` (`[batch, seq]`, `[batch]` or `None`).

    Returns:
        `(cross_entropy, kl)`: scalars; `kl` is 0 without teacher outputs.
    """
    kinds = (plan.teacher_kind, plan.student_kind)
    ids, padding = _split(ops, x, plan.inputs.keras_hub)
    ones = ops.ones_like(ops.cast(ids, "float32"))
    weight = _per_token(ops, sw, ones)
    mask = padding if padding is not None else (weight if weight is not None else ones)
    if y is None:
        y = ops.concatenate([ids[:, 1:], ops.zeros_like(ids[:, :1])], axis=1)
        real = padding if padding is not None else ones
        targets_weight = ops.concatenate([real[:, 1:], ops.zeros_like(ones[:, :1])], axis=1)
        if weight is not None:
            targets_weight = targets_weight * weight
    else:
        targets_weight = weight if weight is not None else mask
    ce = _masked_mean(
        ops,
        _token_cross_entropy(ops, y, student_outputs, kinds[1], plan.inputs.vocab_size),
        targets_weight,
    )
    if teacher_outputs is None:
        return ce, ops.zeros_like(ce)
    return ce, token_kl(ops, teacher_outputs, student_outputs, plan.temperature, kinds, mask)


def sequence_total(ops, distiller, x, y, y_pred, sample_weight):
    """A language-model distiller's loss on one batch; updates its loss trackers.

    Args:
        ops: `keras.ops`, or a namespace of the same TensorFlow functions.
        distiller: A `tfgreen.Distiller` of two language models (its
            `_sequence` is their `SequencePlan`).
        x: The batch's inputs.
        y: Next-token targets, or `None`.
        y_pred: The student's outputs on `x`.
        sample_weight: As given to `fit`, or `None`.

    Returns:
        `student_loss_weight * CE + (1 - student_loss_weight) * weight * KL`.
    """
    plan, hard_weight = distiller._sequence, distiller.student_loss_weight
    teacher = distiller.teacher(x, training=False) if hard_weight < 1.0 else None
    ce, kl = sequence_losses(ops, plan, teacher, y_pred, x, y, sample_weight)
    soft = kl * plan.weight
    total = ce * hard_weight + soft * (1.0 - hard_weight)
    distiller.student_loss_tracker.update_state(ce)
    distiller.distillation_loss_tracker.update_state(soft)
    distiller.total_loss_tracker.update_state(total)
    return total
