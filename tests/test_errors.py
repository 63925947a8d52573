import pytest

from tfgreen import errors


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.TfgreenValueError, ValueError),
        (errors.TfgreenTypeError, TypeError),
        (errors.TfgreenFileNotFoundError, FileNotFoundError),
        (errors.UntrustedModelError, PermissionError),
        (errors.CalibrationError, ValueError),
        (errors.UnsupportedLayerError, ValueError),
        (errors.TargetError, ValueError),
        (errors.TfliteFileError, ValueError),
    ],
)
def test_errors_subclass_tfgreen_and_builtin(cls, builtin):
    error = cls("boom")
    assert isinstance(error, errors.TfgreenError)
    assert isinstance(error, builtin)


def test_message_answers_three_questions():
    text = errors.message(
        "`sparsity` is out of range.",
        "a float in [0, 1)",
        "Pass for example sparsity=0.8",
        sparsity=1.5,
    )
    assert text == (
        "`sparsity` is out of range. Expected a float in [0, 1). "
        "Pass for example sparsity=0.8. Received: sparsity=1.5"
    )


def test_message_shortens_huge_values():
    text = errors.message("Bad", "good", "Fix it", data=list(range(1000)))
    assert len(text) < 300
    assert text.endswith("...")
