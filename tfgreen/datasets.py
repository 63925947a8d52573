"""Real data that ships with the installed packages: nothing is downloaded.

`load_digits` gives scikit-learn's 8x8 handwritten digits (1,797 images, 10
classes) as images for CNNs; `load_breast_cancer` gives the Wisconsin
breast-cancer set (569 samples, 30 features, 2 classes) for binary tasks like
the seed example. Their splits are stratified and reproducible.

`load_text` gives real English for language models: the Python documentation
topics that every Python ships in the standard library (`pydoc_data.topics`,
79 topics, about 465,000 characters), tokenized with a byte-level BPE
tokenizer trained in memory on the training topics. `load_text_classification`
labels windows of the same text by the kind of topic they come from.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np

from tfgreen import _validate
from tfgreen.errors import TfgreenValueError, message

__all__ = [
    "load_digits",
    "load_breast_cancer",
    "BpeTokenizer",
    "TextData",
    "load_text",
    "next_token_targets",
    "TOPIC_CLASSES",
    "TextClassificationData",
    "load_text_classification",
]


def _check_split(test_fraction: float) -> None:
    if not 0.0 < float(test_fraction) < 1.0:
        raise TfgreenValueError(
            message(
                "`test_fraction` must leave samples on both sides of the split",
                "a float strictly between 0 and 1",
                "Pass for example test_fraction=0.2",
                test_fraction=test_fraction,
            )
        )


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return (x_train, y_train), (x_test, y_test)


def load_digits(test_fraction: float = 0.25, seed: int = 0, flat: bool = False):
    """Loads scikit-learn's bundled 8x8 digits as float32 images in [0, 1].

    Args:
        test_fraction: Fraction of samples held out for testing. Defaults to `0.25`.
        seed: Seed of the stratified split. Defaults to `0`.
        flat: Return `(n, 64)` vectors instead of `(n, 8, 8, 1)` images.
            Defaults to `False`.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with `x` float32 and `y` int32
        class indices 0-9.

    Example:
    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape
    ((1347, 8, 8, 1), (450, 8, 8, 1))
    """
    from sklearn.datasets import load_digits as _sk_digits

    _check_split(test_fraction)
    bunch = _sk_digits()
    x = (bunch.images / 16.0).astype("float32")
    x = x.reshape(len(x), 64) if flat else x[..., None]
    return _split(x, bunch.target.astype("int32"), test_fraction, seed)


def load_breast_cancer(test_fraction: float = 0.25, seed: int = 0):
    """Loads scikit-learn's bundled breast-cancer set, standardized on the training part.

    Args:
        test_fraction: Fraction of samples held out for testing. Defaults to `0.25`.
        seed: Seed of the stratified split. Defaults to `0`.

    Returns:
        `((x_train, y_train), (x_test, y_test))` with `x` float32 of shape
        `(n, 30)` and `y` int32 labels 0 (malignant) or 1 (benign).

    Example:
    >>> (x_train, y_train), _ = load_breast_cancer()
    >>> x_train.shape
    (426, 30)
    """
    from sklearn.datasets import load_breast_cancer as _sk_cancer

    _check_split(test_fraction)
    bunch = _sk_cancer()
    (x_train, y_train), (x_test, y_test) = _split(
        bunch.data, bunch.target.astype("int32"), test_fraction, seed
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    x_train = ((x_train - mean) / std).astype("float32")
    x_test = ((x_test - mean) / std).astype("float32")
    return (x_train, y_train), (x_test, y_test)


# ---------------------------------------------------------------- bundled text

END_OF_TEXT = "<|endoftext|>"
_MIN_VOCAB = 258  # 256 byte tokens + <|endoftext|> + at least one merge
_MAX_VOCAB = 8192
_VAL_EVERY, _VAL_AT = 10, 6  # topic i (sorted names) is held out when i % 10 == 6


def _topics() -> dict[str, str]:
    from pydoc_data.topics import topics

    return {name: topics[name] for name in sorted(topics)}


def _split_topics() -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = list(_topics())
    val = tuple(n for i, n in enumerate(names) if i % _VAL_EVERY == _VAL_AT)
    return tuple(n for n in names if n not in val), val


class BpeTokenizer:
    """A byte-level BPE tokenizer (GPT-2 style) with `<|endoftext|>` as the last id.

    Any text encodes (unknown characters fall back to bytes) and
    `decode(encode(text)) == text`. `vocabulary` and `merges` are in the form
    KerasHub's `GPT2Tokenizer(vocabulary=..., merges=...)` takes, and the end
    token has the last id, as in GPT-2, so it never collides with KerasHub's
    padding id 0.

    Args:
        vocabulary: Token string (byte-level alphabet) -> id, ids `0..n-1`.
        merges: BPE merges in priority order, each `"left right"`.

    Example:
    >>> tokenizer = load_text(seq_len=32, vocab_size=300).tokenizer
    >>> ids = tokenizer.encode("The if statement")
    >>> tokenizer.decode(ids)
    'The if statement'
    >>> tokenizer.end_token_id == tokenizer.vocab_size - 1
    True
    """

    def __init__(self, vocabulary: dict[str, int], merges: list[str]):
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        self.vocabulary = dict(vocabulary)
        self.merges = list(merges)
        if sorted(self.vocabulary.values()) != list(range(len(self.vocabulary))):
            raise TfgreenValueError(
                message(
                    "The vocabulary ids are not 0..n-1",
                    "a dict token -> id whose ids are exactly 0, 1, ..., n-1",
                    "Pass the `vocabulary` of a trained BpeTokenizer",
                    vocab_size=len(self.vocabulary),
                )
            )
        if self.vocabulary.get(END_OF_TEXT) != len(self.vocabulary) - 1:
            raise TfgreenValueError(
                message(
                    f"{END_OF_TEXT!r} must have the last id",
                    f"vocabulary[{END_OF_TEXT!r}] == len(vocabulary) - 1",
                    "Give the end token the last id, as GPT-2 does",
                    end_token_id=self.vocabulary.get(END_OF_TEXT),
                )
            )
        pairs = [tuple(m.split(" ")) for m in self.merges]
        tokenizer = Tokenizer(models.BPE(vocab=self.vocabulary, merges=pairs))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.add_special_tokens([AddedToken(END_OF_TEXT, special=True)])
        self._tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        """Number of ids, the end token included."""
        return len(self.vocabulary)

    @property
    def end_token_id(self) -> int:
        """The id of `<|endoftext|>` (the last one)."""
        return self.vocab_size - 1

    def encode(self, text: str) -> np.ndarray:
        """Token ids of a string, int32 `[n]`."""
        if not isinstance(text, str):
            raise TfgreenValueError(
                message(
                    "`encode` takes one string",
                    "a str",
                    "Pass the text itself, or encode a list one item at a time",
                    text=type(text).__name__,
                )
            )
        return np.asarray(self._tokenizer.encode(text).ids, dtype="int32")

    def decode(self, ids) -> str:
        """The string of a 1-D sequence of ids (special tokens kept)."""
        ids = np.asarray(ids).reshape(-1)
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def __repr__(self) -> str:
        return f"BpeTokenizer(vocab_size={self.vocab_size})"


@functools.lru_cache(maxsize=8)
def _tokenizer(vocab_size: int) -> BpeTokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    topics = _topics()
    hf.train_from_iterator([topics[n] for n in _split_topics()[0]], trainer)
    model = json.loads(hf.to_str())["model"]
    # The trainer gives the special token id 0; move it to the last id.
    order = sorted((i, t) for t, i in model["vocab"].items() if t != END_OF_TEXT)
    vocabulary = {token: new for new, (_, token) in enumerate(order)}
    vocabulary[END_OF_TEXT] = len(vocabulary)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return BpeTokenizer(vocabulary, merges)


@dataclasses.dataclass(frozen=True)
class TextData:
    """Token windows of the bundled text, with their tokenizer.

    Attributes:
        train: int32 `[n_train, seq_len]` token ids (read-only), from the
            training topics.
        val: int32 `[n_val, seq_len]` token ids (read-only), from the held-out
            topics.
        tokenizer: The `BpeTokenizer` that made them.
        train_topics: Names of the `pydoc_data.topics` topics in `train`.
        val_topics: Names of the topics in `val`.
    """

    train: np.ndarray = dataclasses.field(repr=False)
    val: np.ndarray = dataclasses.field(repr=False)
    tokenizer: BpeTokenizer
    train_topics: tuple[str, ...]
    val_topics: tuple[str, ...]

    @property
    def seq_len(self) -> int:
        """Tokens per window."""
        return int(self.train.shape[1])


def _check_text_args(seq_len, vocab_size) -> tuple[int, int]:
    seq_len = _validate.positive_int("seq_len", seq_len, minimum=2, example=64)
    vocab_size = _validate.positive_int("vocab_size", vocab_size, minimum=_MIN_VOCAB, example=512)
    if vocab_size > _MAX_VOCAB:
        raise TfgreenValueError(
            message(
                "`vocab_size` is too large for the bundled text",
                f"an int between {_MIN_VOCAB} and {_MAX_VOCAB}",
                "Pass for example vocab_size=512",
                vocab_size=vocab_size,
            )
        )
    return seq_len, vocab_size


def _windows(tokenizer: BpeTokenizer, names, seq_len: int, what: str) -> np.ndarray:
    topics = _topics()
    end = np.array([tokenizer.end_token_id], dtype="int32")
    ids = np.concatenate([part for n in names for part in (tokenizer.encode(topics[n]), end)])
    n = len(ids) // seq_len
    if n == 0:
        raise TfgreenValueError(
            message(
                f"`seq_len` is longer than the whole {what} text",
                f"seq_len <= {len(ids)} tokens",
                "Pass for example seq_len=64",
                seq_len=seq_len,
            )
        )
    windows = ids[: n * seq_len].reshape(n, seq_len)
    windows.flags.writeable = False
    return windows


@functools.lru_cache(maxsize=8)
def _text(seq_len: int, vocab_size: int) -> TextData:
    tokenizer = _tokenizer(vocab_size)
    train_topics, val_topics = _split_topics()
    return TextData(
        train=_windows(tokenizer, train_topics, seq_len, "training"),
        val=_windows(tokenizer, val_topics, seq_len, "validation"),
        tokenizer=tokenizer,
        train_topics=train_topics,
        val_topics=val_topics,
    )


def load_text(seq_len: int = 64, vocab_size: int = 512) -> TextData:
    """Loads the stdlib's Python documentation as token windows for language models.

    The text is `pydoc_data.topics` (79 topics of English prose, about 465,000
    characters), which every Python installs. The split is by topic, fixed:
    with the topic names sorted, every tenth from the 7th (the 7th, 17th,
    ...: 8 topics, 11% of the text) is held out for `val`, the rest is `train`. A
    byte-level BPE tokenizer (HF `tokenizers`) is trained on the training
    topics only, deterministically. Each split is the topics' ids, each topic
    followed by `<|endoftext|>`, cut into non-overlapping windows of `seq_len`
    (the last partial window dropped). Results are cached for the process.

    Args:
        seq_len: Tokens per window, >= 2. Defaults to `64`.
        vocab_size: Tokenizer vocabulary, between 258 and 8192 (256 byte
            tokens, `<|endoftext|>` and the merges). Defaults to `512`.

    Returns:
        A `TextData` with `train` and `val` (int32 `[n, seq_len]`) and `tokenizer`.

    Example:
    >>> data = load_text(seq_len=32, vocab_size=300)
    >>> data.train.dtype, data.train.shape[1], data.tokenizer.vocab_size
    (dtype('int32'), 32, 300)
    """
    return _text(*_check_text_args(seq_len, vocab_size))


def next_token_targets(token_ids) -> tuple[np.ndarray, np.ndarray]:
    """Targets and weights to train a causal LM with `fit` on windows of ids.

    Position `t` learns token `t + 1`; the last position has no target in the
    window, so its weight is 0.

    Args:
        token_ids: Integer `[n, seq_len]` token ids.

    Returns:
        `(y, sample_weight)`: int32 `[n, seq_len]` targets and float32
        `[n, seq_len]` weights, for `model.fit(token_ids, y, sample_weight=...)`.

    Example:
    >>> y, w = next_token_targets(np.array([[5, 6, 7]]))
    >>> y.tolist(), w.tolist()
    ([[6, 7, 0]], [[1.0, 1.0, 0.0]])
    """
    ids = np.asarray(token_ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise TfgreenValueError(
            message(
                "`token_ids` must be a 2-D integer array",
                "int token ids of shape [n, seq_len]",
                "Pass for example load_text().train",
                shape=ids.shape,
                dtype=str(ids.dtype),
            )
        )
    y = np.zeros_like(ids, dtype="int32")
    y[:, :-1] = ids[:, 1:]
    weights = np.ones(ids.shape, dtype="float32")
    weights[:, -1] = 0.0
    return y, weights


# The Python documentation chapter each topic comes from ("else" is left out:
# its text is the "if" topic's).
TOPIC_CLASSES: dict[str, tuple[str, ...]] = {
    "statements": (
        "assert", "assignment", "augassign", "break", "class", "compound", "continue", "del",
        "for", "function", "global", "if", "import", "nonlocal", "pass", "raise", "return",
        "try", "while", "with", "yield",
    ),
    "expressions": (
        "atom-identifiers", "atom-literals", "attribute-references", "await", "binary",
        "bitwise", "booleans", "calls", "comparisons", "conversions", "dict", "exprlists",
        "floating", "id-classes", "identifiers", "imaginary", "in", "integers", "lambda",
        "lists", "numbers", "operator-summary", "power", "shifting", "slicings", "strings",
        "subscriptions", "unary",
    ),
    "data-model": (
        "async", "attribute-access", "callable-types", "context-managers", "customization",
        "dynamic-features", "exceptions", "execmodel", "naming", "numeric-types", "objects",
        "sequence-types", "specialnames", "types",
    ),
    "library": (
        "bltin-code-objects", "bltin-ellipsis-object", "bltin-null-object",
        "bltin-type-objects", "debugger", "formatstrings", "specialattrs", "string-methods",
        "truth", "typesfunctions", "typesmapping", "typesmethods", "typesmodules", "typesseq",
        "typesseq-mutable",
    ),
}  # fmt: skip
_CLASS_VAL_EVERY, _CLASS_VAL_AT = 5, 4  # within a class, topic i (sorted) is held out if i % 5 == 4


@dataclasses.dataclass(frozen=True)
class TextClassificationData:
    """Labelled token windows of the bundled text.

    Attributes:
        x_train: int32 `[n_train, seq_len]` token ids (read-only).
        y_train: int32 `[n_train]` class indices into `class_names` (read-only).
        x_val: int32 `[n_val, seq_len]` token ids, from held-out topics (read-only).
        y_val: int32 `[n_val]` class indices (read-only).
        tokenizer: The `BpeTokenizer` (the one `load_text` trains).
        class_names: The class names, in index order.
        val_topics: Names of the held-out topics.
    """

    x_train: np.ndarray = dataclasses.field(repr=False)
    y_train: np.ndarray = dataclasses.field(repr=False)
    x_val: np.ndarray = dataclasses.field(repr=False)
    y_val: np.ndarray = dataclasses.field(repr=False)
    tokenizer: BpeTokenizer
    class_names: tuple[str, ...]
    val_topics: tuple[str, ...]


def _labelled_windows(tokenizer, topics_by_label, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    topics = _topics()
    xs, ys = [], []
    for label, names in topics_by_label:
        for name in names:
            ids = tokenizer.encode(topics[name])
            n = len(ids) // seq_len
            xs.append(ids[: n * seq_len].reshape(n, seq_len))
            ys.append(np.full(n, label, dtype="int32"))
    x, y = np.concatenate(xs), np.concatenate(ys)
    x.flags.writeable = y.flags.writeable = False
    return x, y


@functools.lru_cache(maxsize=8)
def _classification(seq_len: int, vocab_size: int) -> TextClassificationData:
    tokenizer = _tokenizer(vocab_size)
    train, val = [], []
    for label, names in enumerate(TOPIC_CLASSES.values()):
        held = tuple(
            n for i, n in enumerate(sorted(names)) if i % _CLASS_VAL_EVERY == _CLASS_VAL_AT
        )
        train.append((label, tuple(n for n in sorted(names) if n not in held)))
        val.append((label, held))
    x_train, y_train = _labelled_windows(tokenizer, train, seq_len)
    x_val, y_val = _labelled_windows(tokenizer, val, seq_len)
    for what, y in (("training", y_train), ("validation", y_val)):
        if len(np.unique(y)) < len(TOPIC_CLASSES):
            raise TfgreenValueError(
                message(
                    f"`seq_len` is too long: some classes have no {what} window",
                    "seq_len short enough for every held-out topic (64 works)",
                    "Pass for example seq_len=64",
                    seq_len=seq_len,
                )
            )
    return TextClassificationData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        tokenizer=tokenizer,
        class_names=tuple(TOPIC_CLASSES),
        val_topics=tuple(n for _, names in val for n in names),
    )


def load_text_classification(seq_len: int = 64, vocab_size: int = 512) -> TextClassificationData:
    """Loads the bundled Python documentation as labelled windows for encoder models.

    Each window of `seq_len` tokens (non-overlapping, within one topic) is
    labelled with the documentation chapter its topic belongs to
    (`TOPIC_CLASSES`): 0 `"statements"` (simple and compound statements),
    1 `"expressions"` (expressions, operators, literals, identifiers),
    2 `"data-model"` (the data and execution model, special methods),
    3 `"library"` (built-in types and their methods, format strings, pdb).
    The split is by topic: within each class, with the topic names sorted,
    every fifth (the 5th, 10th, ...) is held out for validation, so validation text
    comes from topics never seen in training. Classes are unbalanced (the
    data model has the longest topics). The tokenizer is `load_text`'s.

    Args:
        seq_len: Tokens per window, >= 2. Defaults to `64`.
        vocab_size: Tokenizer vocabulary, between 258 and 8192. Defaults to `512`.

    Returns:
        A `TextClassificationData` (`x_train`, `y_train`, `x_val`, `y_val`,
        `tokenizer`, `class_names`).

    Example:
    >>> data = load_text_classification(seq_len=32, vocab_size=300)
    >>> data.class_names
    ('statements', 'expressions', 'data-model', 'library')
    >>> data.x_train.shape[1], sorted(set(data.y_val.tolist()))
    (32, [0, 1, 2, 3])
    """
    return _classification(*_check_text_args(seq_len, vocab_size))
