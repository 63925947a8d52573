"""Token-level distillation of language models (tfgreen.Distiller on [batch, seq, vocab] logits).

Evidence: a small student distilled from the trained `tiny_lm` teacher reaches
a lower validation perplexity on the bundled text than the same student
(same initial weights, same data order, same optimizer and steps) trained
alone. The loss is checked against a NumPy reference: per-token KL times
T^2 averaged over the real tokens, plus the masked next-token cross-entropy;
tokens behind the padding mask do not move it.
"""

from __future__ import annotations

import numpy as np
import pytest

import tfgreen
from tfgreen.datasets import next_token_targets
from tfgreen.distillation import FeatureDistillation
from tfgreen.errors import TfgreenError
from tfgreen.models import tiny_gpt
from tfgreen.perplexity import perplexity

VOCAB, SEQ = 512, 32  # tests/conftest.py's text_data / tiny_lm
_FIGURES: dict = {}


def _student(flavor, seed=1, vocab=VOCAB, seq=SEQ):
    return tiny_gpt(
        flavor, vocab_size=vocab, seq_len=seq, embed_dim=16, ff_dim=32, num_layers=1, seed=seed
    )


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _reference(teacher_logits, student_logits, y, ce_weights, kl_mask, temperature, weight):
    t = _log_softmax(teacher_logits / temperature)
    s = _log_softmax(student_logits / temperature)
    kl = (np.exp(t) * (t - s)).sum(-1) * temperature**2
    kl = (kl * kl_mask).sum() / kl_mask.sum()
    nll = -np.take_along_axis(_log_softmax(student_logits), y[..., None], -1)[..., 0]
    ce = (nll * ce_weights).sum() / ce_weights.sum()
    return weight * ce + (1 - weight) * kl


def _fit(model, keras, x, y=None, sample_weight=None, repeats=16):
    """64 steps of batch 32 over 128 windows: the small data set where a student overfits."""

    def tile(a):
        return None if a is None else np.tile(a, (repeats, 1))

    if isinstance(model, tfgreen.Distiller):
        loss = None  # the next-token cross-entropy, per token
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-2), loss)
    x = {k: tile(v) for k, v in x.items()} if isinstance(x, dict) else tile(x)
    model.fit(
        x, tile(y), sample_weight=tile(sample_weight), batch_size=32, shuffle=False, verbose=0
    )


def test_distilled_student_beats_scratch_perplexity(flavor, keras, tiny_lm, text_data):
    # The teacher learnt from train[:2048]; the students see 128 other windows 16 times.
    x = text_data.train[2048:2176]
    y, w = next_token_targets(x)
    scratch, distilled = _student(flavor), _student(flavor)  # the same initial weights
    _fit(scratch, keras, x, y, w)
    d = tfgreen.Distiller(tiny_lm, distilled, temperature=2.0, student_loss_weight=0.5)
    _fit(d, keras, x, y, w)
    figures = {
        "teacher": perplexity(tiny_lm, text_data.val),
        "scratch": perplexity(scratch, text_data.val),
        "distilled": perplexity(d.student, text_data.val),
    }
    _FIGURES[flavor] = figures
    print(flavor, figures)
    assert d.student is distilled
    assert figures["teacher"] < figures["distilled"]
    assert figures["distilled"] < 0.8 * figures["scratch"], figures


def test_loss_is_masked_per_token_kl_plus_next_token_ce(flavor, keras, text_data):
    teacher, student = _student(flavor, seed=3), _student(flavor, seed=4)
    d = tfgreen.Distiller(teacher, student, temperature=3.0, student_loss_weight=0.3)
    d.compile(keras.optimizers.Adam(1e-3))
    x = text_data.val[:4].copy()
    y, w = next_token_targets(x)
    w[0, 10:] = 0.0  # sample 0: 10 real tokens, the rest padding
    w[2, 20:] = 0.0

    def loss(ids):
        return float(d.compute_loss(x=ids, y=y, y_pred=d(ids), sample_weight=w))

    expected = _reference(
        teacher.predict(x, verbose=0), student.predict(x, verbose=0), y, w, w, 3.0, 0.3
    )
    assert loss(x) == pytest.approx(expected, rel=1e-4)
    # Other tokens behind the mask change the (causal) logits only there: same loss.
    changed = x.copy()
    changed[0, 12:] = (changed[0, 12:] + 7) % VOCAB
    changed[2, 25:] = 0
    assert not np.allclose(student.predict(changed, verbose=0), student.predict(x, verbose=0))
    assert loss(changed) == pytest.approx(loss(x), rel=1e-5)


def test_padding_mask_in_the_loss_function(flavor, keras):
    # The KL term alone: logits at masked positions are free, the mean is over real tokens.
    from tfgreen.distillation.sequence import token_kl

    if flavor == "keras3":
        ops = keras.ops
    else:
        from tfgreen.distillation._tf_keras import _OPS as ops
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(2, 6, 11)).astype("float32")
    student = rng.normal(size=(2, 6, 11)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], "float32")
    kl = float(token_kl(ops, teacher, student, 2.0, ("logits", "logits"), mask))
    noisy = (
        student + 50.0 * rng.normal(size=student.shape).astype("float32") * (1 - mask)[..., None]
    )
    assert float(token_kl(ops, teacher, noisy, 2.0, ("logits", "logits"), mask)) == pytest.approx(
        kl, rel=1e-5
    )
    t, s = _log_softmax(teacher / 2.0), _log_softmax(student / 2.0)
    per_token = (np.exp(t) * (t - s)).sum(-1) * 4.0
    assert kl == pytest.approx(float((per_token * mask).sum() / 8.0), rel=1e-5)


@pytest.mark.parametrize(
    "student_args, match",
    [
        ({"vocab": 300}, "vocabularies differ"),
        ({"seq": 16}, "sequence lengths differ"),
    ],
)
def test_mismatched_language_models_are_refused(flavor, student_args, match):
    teacher = _student(flavor, seed=0)
    with pytest.raises(TfgreenError, match=match) as error:
        tfgreen.Distiller(teacher, _student(flavor, **student_args))
    assert isinstance(error.value, ValueError)


def test_a_language_model_and_another_model_are_refused(flavor):
    from tfgreen.models import tiny_encoder_classifier

    lm = _student(flavor)
    classifier = tiny_encoder_classifier(flavor, vocab_size=VOCAB, seq_len=SEQ, num_classes=VOCAB)
    for teacher, student in ((classifier, lm), (lm, classifier)):
        with pytest.raises(TypeError, match="Only one of teacher and student is a language model"):
            tfgreen.Distiller(teacher, student)


def test_feature_terms_and_wrong_losses_are_refused(flavor, keras):
    teacher, student = _student(flavor, seed=0), _student(flavor)
    with pytest.raises(TfgreenError, match="takes one logits term"):
        tfgreen.Distiller(
            teacher, student, distillation_losses=FeatureDistillation("logits", "logits")
        )
    d = tfgreen.Distiller(teacher, student)
    for loss in ("mse", keras.losses.SparseCategoricalCrossentropy(from_logits=False)):
        with pytest.raises(TfgreenError, match="masked next-token cross-entropy"):
            d.compile("adam", loss=loss)
    d.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


# ---- KerasHub CausalLMs built from config (Keras 3 only) ------------------------------


def _gpt2(hidden, layers, seed):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=layers,
        num_heads=2,
        hidden_dim=hidden,
        intermediate_dim=2 * hidden,
        max_sequence_length=SEQ,
        dropout=0.0,
    )
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def _padded(ids, seed=0):
    """Right-padded windows of 16..32 real tokens, as a CausalLMPreprocessor packs them."""
    lengths = np.random.default_rng(seed).integers(16, SEQ + 1, len(ids))
    mask = (np.arange(SEQ)[None] < lengths[:, None]).astype("int32")
    return {"token_ids": np.where(mask, ids, 0).astype("int32"), "padding_mask": mask}


@pytest.fixture(scope="session")
def gpt2_teacher(text_data):
    """A KerasHub GPT2CausalLM (width 64, 2 blocks) trained 2 epochs on padded windows."""
    import keras

    teacher = _gpt2(64, 2, seed=0)
    teacher.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = _padded(text_data.train[:2048])
    y = np.concatenate([x["token_ids"][:, 1:], np.zeros((2048, 1), "int32")], 1)
    w = np.concatenate([x["padding_mask"][:, 1:], np.zeros((2048, 1), "int32")], 1)
    teacher.fit(x, y, sample_weight=w, batch_size=32, epochs=2, verbose=0)
    return teacher


def test_keras_hub_causal_lm_distils_with_padding(gpt2_teacher, text_data):
    import keras

    # As a CausalLMPreprocessor gives them: x, the next tokens, their padding mask.
    x = _padded(text_data.train[2048:2176], seed=1)
    y = np.concatenate([x["token_ids"][:, 1:], np.zeros((128, 1), "int32")], 1)
    w = np.concatenate([x["padding_mask"][:, 1:], np.zeros((128, 1), "int32")], 1)
    scratch, distilled = _gpt2(16, 1, seed=1), _gpt2(16, 1, seed=1)
    _fit(scratch, keras, x, y, w)
    d = tfgreen.Distiller(gpt2_teacher, distilled, temperature=2.0, student_loss_weight=0.5)
    _fit(d, keras, x)  # fit(x): the targets are the token ids shifted by one
    figures = {
        "teacher": perplexity(gpt2_teacher, text_data.val),
        "scratch": perplexity(scratch, text_data.val),
        "distilled": perplexity(d.student, text_data.val),
    }
    _FIGURES["keras_hub"] = figures
    print("keras_hub", figures)
    assert figures["distilled"] < 0.9 * figures["scratch"], figures
    # The padding mask input is honoured: tokens behind it do not move the loss.
    batch = {k: v[:4] for k, v in x.items()}
    changed = {**batch, "token_ids": np.where(batch["padding_mask"], batch["token_ids"], 7)}

    def loss(inputs):
        return float(d.compute_loss(x=inputs, y=None, y_pred=d(inputs)))

    assert loss(changed) == pytest.approx(loss(batch), rel=1e-5)


def test_keras_hub_and_single_input_language_models_are_refused():
    hub, plain = _gpt2(16, 1, seed=0), _student("keras3")
    for teacher, student in ((hub, plain), (plain, hub)):
        with pytest.raises(TypeError, match="take different inputs"):
            tfgreen.Distiller(teacher, student)


def test_keras3_language_model_distiller_round_trips(tmp_path, text_data):
    import keras

    teacher, student = _student("keras3", seed=0), _student("keras3", seed=1)
    d = tfgreen.Distiller(teacher, student, temperature=2.0, student_loss_weight=0.3)
    d.compile("adam")
    d.fit(text_data.train[:32], batch_size=32, verbose=0)  # fit(x): shifted ids as targets
    d.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras")
    assert loaded._sequence == d._sequence
    assert loaded.student_loss_weight == 0.3
    np.testing.assert_allclose(
        loaded.predict(text_data.val[:2], verbose=0), d.predict(text_data.val[:2], verbose=0)
    )
