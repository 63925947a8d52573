import numpy as np
import pytest

from tfgreen.errors import TfgreenTypeError, TfgreenValueError
from tfgreen.models import tiny_gpt
from tfgreen.perplexity import next_token_agreement, perplexity
from tfgreen.quantization.ptq import convert


def test_trained_lm_perplexity_is_far_below_vocab(flavor, tiny_lm, text_data, tiny_lm_figures):
    vocab = text_data.tokenizer.vocab_size
    untrained = perplexity(
        tiny_gpt(flavor, vocab_size=vocab, seq_len=32, embed_dim=32, ff_dim=64), text_data.val
    )
    trained = tiny_lm_figures[flavor]["val_perplexity"]
    print(
        f"{flavor}: untrained {untrained:.1f}, trained {trained:.2f}, fit {tiny_lm_figures[flavor]['train_seconds']:.1f}s"
    )
    assert 0.7 * vocab < untrained < 1.5 * vocab
    assert trained < 0.35 * vocab
    assert trained == pytest.approx(perplexity(tiny_lm, text_data.val, batch_size=7), rel=1e-6)


def test_keras_and_float32_tflite_agree(flavor, tiny_lm, text_data, tmp_path):
    path = tmp_path / "lm.tflite"
    path.write_bytes(convert(tiny_lm))
    val = text_data.val
    keras_ppl = perplexity(tiny_lm, val)
    tflite_ppl = perplexity(path, val, batch_size=16)
    print(f"{flavor}: keras {keras_ppl:.5f} tflite {tflite_ppl:.5f}")
    assert tflite_ppl == pytest.approx(keras_ppl, rel=1e-4)
    assert next_token_agreement(tiny_lm, path, val) >= 0.999


def test_static_batch_tflite_runs_per_sample(tiny_lm, text_data):
    data = convert(tiny_lm, batch_size=1)
    val = text_data.val[:13]
    assert perplexity(data, val, batch_size=5) == pytest.approx(perplexity(tiny_lm, val), rel=1e-4)


def test_agreement_of_different_models_is_low(flavor, tiny_lm, text_data):
    other = tiny_gpt(flavor, vocab_size=512, seq_len=32, embed_dim=32, ff_dim=64, seed=3)
    agreement = next_token_agreement(tiny_lm, other, text_data.val)
    assert 0.0 <= agreement < 0.3
    assert next_token_agreement(tiny_lm, tiny_lm, text_data.val[:8]) == 1.0


def test_package_attribute_is_callable_after_submodule_import(tiny_lm, text_data):
    import tfgreen.perplexity  # binds tfgreen.perplexity to the module

    assert tfgreen.perplexity(tiny_lm, text_data.val[:4]) == perplexity(tiny_lm, text_data.val[:4])


def test_keras_file_path(tiny_lm, text_data, tmp_path):
    path = tmp_path / "lm.keras"
    tiny_lm.save(path)
    assert perplexity(path, text_data.val[:8]) == pytest.approx(
        perplexity(tiny_lm, text_data.val[:8]), rel=1e-6
    )


def test_progress_bar_when_verbose(tiny_lm, text_data, capsys):
    perplexity(tiny_lm, text_data.val[:64], batch_size=16, verbose=True)
    assert "perplexity" in capsys.readouterr().err
    perplexity(tiny_lm, text_data.val[:64], batch_size=16, verbose=False)
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def model3():
    return tiny_gpt("keras3", vocab_size=300, seq_len=8, embed_dim=8, num_layers=1)


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (np.zeros((2, 8), "float32"), "2-D integer array.*dtype='float32'"),
        (np.zeros((8,), "int32"), "2-D integer.*shape=\\(8,\\)"),
        (np.zeros((0, 8), "int32"), "non-empty"),
        (np.zeros((2, 9), "int32"), "input length.*\\[n, 8\\].*shape=\\(2, 9\\)"),
        (
            np.array([[1] * 8, [1] * 7 + [300], [-1] * 8]),
            "first in sample 1.*\\[0, 300\\).*token_id=300",
        ),
    ],
)
def test_bad_token_ids(model3, ids, match):
    with pytest.raises(TfgreenValueError, match=match):
        perplexity(model3, ids)


def test_bad_arguments(model3):
    ids = np.zeros((2, 8), "int32")
    with pytest.raises(TfgreenValueError, match="batch_size"):
        perplexity(model3, ids, batch_size=0)
    with pytest.raises(TfgreenTypeError, match="verbose"):
        perplexity(model3, ids, verbose=1)
    with pytest.raises(TfgreenTypeError, match="not a Keras model"):
        perplexity(object(), ids)
    with pytest.raises(TfgreenValueError, match="too short"):
        perplexity(
            tiny_gpt("keras3", vocab_size=300, seq_len=2, embed_dim=8, num_layers=1), ids[:, :1]
        )


def test_classifier_is_not_a_language_model():
    from tfgreen.models import small_mlp, tiny_encoder_classifier

    with pytest.raises(TfgreenTypeError, match="does not take token ids alone"):
        perplexity(small_mlp(), np.zeros((2, 64), "int32"))
    encoder = tiny_encoder_classifier(vocab_size=300, seq_len=16, embed_dim=16)
    with pytest.raises(TfgreenTypeError, match="next-token logits"):
        perplexity(encoder, np.zeros((2, 16), "int32"))


def test_kerashub_gpt2_from_config(text_data, make_gpt2):
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    from tfgreen.datasets import next_token_targets

    tokenizer = text_data.tokenizer
    hub_tokenizer = keras_hub.models.GPT2Tokenizer(
        vocabulary=tokenizer.vocabulary, merges=tokenizer.merges
    )
    text = 'The "if" statement is used for conditional execution.'
    np.testing.assert_array_equal(np.asarray(hub_tokenizer(text)), tokenizer.encode(text))
    assert hub_tokenizer.end_token_id == tokenizer.end_token_id != hub_tokenizer.pad_token_id

    lm = make_gpt2(tokenizer.vocab_size)
    val = text_data.val[:64]
    before = perplexity(lm, val)
    x = text_data.train[:512]
    y, weights = next_token_targets(x)
    lm.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    lm.fit(
        {"token_ids": x, "padding_mask": np.ones_like(x)},
        y,
        sample_weight=weights,
        epochs=1,
        batch_size=32,
        verbose=0,
    )
    after = perplexity(lm, val)
    print(f"keras-hub GPT2: perplexity {before:.1f} -> {after:.1f}")
    assert 0.7 * 512 < before < 1.5 * 512 and after < 0.6 * before
    assert next_token_agreement(lm, lm, val[:4]) == 1.0
