import os

import pytest

from tfgreen.errors import TfgreenError, TfgreenTypeError, TfgreenValueError
from tfgreen.flavor import flavor_of, keras_for, tfmot
from tfgreen.models import small_mlp


def _last_line(python_run, code: str) -> str:
    done = python_run("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_flavor_of_each_keras(flavor):
    model = small_mlp(flavor, hidden=(8,))
    assert flavor_of(model) == flavor
    assert flavor_of(model.layers[0]) == flavor
    assert keras_for(model).__name__ == ("keras" if flavor == "keras3" else "tf_keras")


@pytest.mark.parametrize("thing", [None, 3, "model.keras", object()])
def test_flavor_of_rejects_non_models(thing):
    with pytest.raises(TfgreenTypeError, match=r"not a Keras model.*Received: model="):
        flavor_of(thing)


def test_keras_for_rejects_unknown_flavor():
    with pytest.raises(TfgreenValueError, match="Received: flavor='keras2'") as info:
        keras_for("keras2")
    assert isinstance(info.value, (TfgreenError, ValueError))


def test_import_tfgreen_does_not_import_tfmot(python_run):
    code = "import tfgreen, sys; print('tensorflow_model_optimization' in sys.modules)"
    assert _last_line(python_run, code) == "False"


def test_tfmot_leaves_users_keras_alone(python_run):
    """tfmot's import sets TF_USE_LEGACY_KERAS; after tfgreen uses it, tf.keras is still Keras 3."""
    code = (
        "import os, tfgreen.flavor as f; m = f.tfmot(); import tensorflow as tf, keras;"
        "print(os.environ.get('TF_USE_LEGACY_KERAS'), tf.keras.Model.__module__.split('.')[0],"
        " keras.__version__.split('.')[0], hasattr(m, 'sparsity'))"
    )
    assert _last_line(python_run, code) == "None keras 3 True"


def test_tfmot_is_the_same_module_each_time():
    assert tfmot() is tfmot()
    assert "TF_USE_LEGACY_KERAS" not in os.environ


def test_trains_multi_worker_and_flavor_of_class(keras, flavor):
    from tfgreen.flavor import flavor_of_class, trains_multi_worker

    assert trains_multi_worker(flavor) is (flavor == "tf_keras")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert trains_multi_worker(model) is trains_multi_worker(flavor)
    assert flavor_of_class(type(model)) == flavor and flavor_of_class(dict) is None
