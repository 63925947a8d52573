import numpy as np
import pytest

from tfgreen.datasets import load_breast_cancer, load_digits
from tfgreen.errors import TfgreenValueError


def test_digits_images_and_split(digits):
    (x_train, y_train), (x_test, y_test) = digits
    assert x_train.shape == (1347, 8, 8, 1) and x_test.shape == (450, 8, 8, 1)
    assert x_train.dtype == np.float32 and x_train.min() >= 0.0 and x_train.max() <= 1.0
    assert set(np.unique(y_test)) == set(range(10))


def test_digits_flat_is_reproducible():
    a = load_digits(flat=True, seed=3)
    b = load_digits(flat=True, seed=3)
    assert a[0][0].shape == (1347, 64)
    np.testing.assert_array_equal(a[0][0], b[0][0])


def test_breast_cancer_is_standardized():
    (x_train, y_train), (x_test, _) = load_breast_cancer()
    assert x_train.shape == (426, 30) and x_test.shape == (143, 30)
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    assert set(np.unique(y_train)) == {0, 1}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_split(fraction):
    with pytest.raises(TfgreenValueError, match=f"test_fraction={fraction}"):
        load_digits(test_fraction=fraction)


# ---- bundled text


def test_text_shapes_split_and_dtype(text_data):
    assert text_data.train.dtype == np.int32 and text_data.val.dtype == np.int32
    assert text_data.train.shape[1] == text_data.val.shape[1] == text_data.seq_len == 32
    assert text_data.train.shape[0] > 5000 and text_data.val.shape[0] > 700
    assert len(text_data.train_topics) == 71 and len(text_data.val_topics) == 8
    assert not set(text_data.train_topics) & set(text_data.val_topics)
    assert "lambda" in text_data.val_topics and "if" in text_data.train_topics
    vocab = text_data.tokenizer.vocab_size
    assert vocab == 512 and text_data.train.min() >= 0 and text_data.train.max() < vocab
    assert (text_data.train == text_data.tokenizer.end_token_id).sum() == 70  # topic ends
    with pytest.raises(ValueError, match="read-only"):
        text_data.train[0, 0] = 1


def test_text_is_cached_and_windows_match_the_text(text_data):
    from pydoc_data.topics import topics

    from tfgreen.datasets import load_text

    assert load_text(seq_len=32, vocab_size=512) is text_data
    tokenizer = text_data.tokenizer
    first = text_data.train_topics[0]
    ids = tokenizer.encode(topics[first])
    np.testing.assert_array_equal(text_data.train.reshape(-1)[: len(ids)], ids)
    assert tokenizer.decode(ids) == topics[first]


def test_tokenizer_round_trip_and_vocabulary(text_data):
    tokenizer = text_data.tokenizer
    text = 'The "if" statement — naïve café 😀 <|endoftext|>\n\tx = 1'
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int32 and tokenizer.decode(ids) == text
    assert list(ids).count(tokenizer.end_token_id) == 1 and tokenizer.end_token_id == 511
    assert len(tokenizer.encode("The statement is executed")) < 10  # real merges
    assert tokenizer.vocabulary["<|endoftext|>"] == 511 and len(tokenizer.merges) == 255
    assert sorted(tokenizer.vocabulary.values()) == list(range(512))
    with pytest.raises(TfgreenValueError, match="one string"):
        tokenizer.encode(["a"])


def test_text_is_identical_in_fresh_processes(python_run):
    source = (
        "import hashlib; from tfgreen.datasets import load_text; d = load_text(32, 400); "
        "print(hashlib.sha256(d.train.tobytes() + d.val.tobytes()).hexdigest(), d.val.shape)"
    )
    runs = [python_run("-c", source, env_extra={"PYTHONHASHSEED": str(seed)}) for seed in (1, 2)]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout) > 64


def test_next_token_targets():
    from tfgreen.datasets import next_token_targets

    y, w = next_token_targets(np.array([[1, 2, 3], [4, 5, 6]], "int32"))
    np.testing.assert_array_equal(y, [[2, 3, 0], [5, 6, 0]])
    np.testing.assert_array_equal(w, [[1, 1, 0], [1, 1, 0]])
    with pytest.raises(TfgreenValueError, match="2-D integer"):
        next_token_targets(np.zeros(3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seq_len": 1}, "seq_len=1"),
        ({"seq_len": 32.0}, "seq_len=32.0"),
        ({"vocab_size": 100}, ">= 258.*vocab_size=100"),
        ({"vocab_size": 10**6}, "between 258 and 8192.*vocab_size=1000000"),
        ({"seq_len": 10**7}, "longer than the whole training text.*seq_len=10000000"),
    ],
)
def test_bad_text_arguments(kwargs, match):
    from tfgreen.datasets import load_text

    with pytest.raises(TfgreenValueError, match=match):
        load_text(**kwargs)


def test_text_classification_labels_and_split():
    from pydoc_data.topics import topics

    from tfgreen.datasets import TOPIC_CLASSES, load_text_classification

    data = load_text_classification(seq_len=32, vocab_size=512)
    assert data.class_names == ("statements", "expressions", "data-model", "library")
    named = [n for names in TOPIC_CLASSES.values() for n in names]
    assert len(named) == len(set(named)) == 78 and set(topics) - set(named) == {"else"}
    assert data.x_train.shape == (5707, 32) and data.x_val.shape == (1041, 32)
    np.testing.assert_array_equal(np.bincount(data.y_train), [1406, 798, 2131, 1372])
    np.testing.assert_array_equal(np.bincount(data.y_val), [195, 180, 264, 402])
    assert data.x_train.dtype == data.y_train.dtype == np.int32
    assert len(data.val_topics) == 14 and "debugger" in data.val_topics
    # A validation window is the text of a held-out topic, labelled with its class.
    first = data.tokenizer.encode(topics["class"])[:32]
    np.testing.assert_array_equal(data.x_val[0], first)
    assert data.class_names[data.y_val[0]] == "statements"
    assert data.tokenizer is load_text_classification(seq_len=64, vocab_size=512).tokenizer
    with pytest.raises(TfgreenValueError, match="some classes have no validation window"):
        load_text_classification(seq_len=4000)
