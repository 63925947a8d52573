"""tfmot's private pruning internals that `tfgreen._adapters.tfmot` relies on, checked against the pin.

Each check names the symbol and the tfmot version it was written against, so
an upgrade that moves one fails here with the symbol to update, not deep in
a training run.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest


def _moved(symbol: str) -> str:
    from tfgreen._adapters.tfmot import PINNED_VERSION

    installed = importlib.metadata.version("tensorflow-model-optimization")
    return (
        f"tfmot private symbol `{symbol}` is missing: tfgreen._adapters.tfmot was written "
        f"against tensorflow-model-optimization {PINNED_VERSION}, installed is {installed}. "
        "Update the adapter for the new location."
    )


def test_pinned_version_is_installed():
    from tfgreen._adapters.tfmot import PINNED_VERSION

    installed = importlib.metadata.version("tensorflow-model-optimization")
    assert installed == PINNED_VERSION, _moved(f"(any: tfmot {installed} is not the pin)")


def test_private_wrapper_module_and_class():
    from tfgreen._adapters import tfmot as adapter

    module = importlib.import_module(adapter.WRAPPER_MODULE)
    assert hasattr(module, "PruneLowMagnitude"), _moved(
        f"{adapter.WRAPPER_MODULE}.PruneLowMagnitude"
    )
    wrapper = module.PruneLowMagnitude
    assert isinstance(getattr(wrapper, "_PRUNE_CALLBACK_ERROR_MSG", None), str), _moved(
        "PruneLowMagnitude._PRUNE_CALLBACK_ERROR_MSG"
    )
    assert issubclass(adapter.PruneLowMagnitude, wrapper)


@pytest.fixture(scope="module")
def built_wrapper():
    import tf_keras

    from tfgreen._adapters import tfmot as adapter
    from tfgreen.flavor import tfmot

    sparsity = tfmot().sparsity.keras
    dense = tf_keras.layers.Dense(4)
    wrapper = adapter.PruneLowMagnitude(
        dense, pruning_schedule=sparsity.ConstantSparsity(0.5, 0), sparsity_m_by_n=(2, 4)
    )
    model = tf_keras.Sequential([tf_keras.Input((8,)), wrapper])
    return model.layers[0]


@pytest.mark.parametrize(
    "path",
    [
        "pruning_vars",
        "pruning_step",
        "pruning_obj.weight_mask_op",
        "sparsity_m_by_n",
        "pruning_schedule",
        "block_size",
    ],
)
def test_wrapper_attributes(built_wrapper, path):
    value = built_wrapper
    for part in path.split("."):
        assert hasattr(value, part), _moved(f"PruneLowMagnitude (built).{path}")
        value = getattr(value, part)


def test_adapter_functions_on_a_built_wrapper(built_wrapper):
    import numpy as np

    from tfgreen._adapters import tfmot as adapter

    assert adapter.is_wrapper(built_wrapper)
    (weight, mask, threshold), *rest = adapter.pruning_vars(built_wrapper)
    assert not rest
    assert tuple(weight.shape) == tuple(mask.shape) == (8, 4)
    assert adapter.m_by_n(built_wrapper) == (2, 4)
    assert int(adapter.step_variable(built_wrapper).numpy()) == -1
    mask.assign(np.zeros((8, 4), "float32"))
    adapter.apply_masks(built_wrapper)
    assert not np.any(weight.numpy())
    assert adapter.schedule(built_wrapper).get_config()["class_name"] == "ConstantSparsity"


@pytest.mark.parametrize(
    "path",
    [
        "_step_fn",
        "_pruning_vars",
        "_pruning_schedule",
        "_block_size",
        "_block_pooling_type",
        "weight_mask_op",
        "_weight_assign_objs",
    ],
)
def test_pruning_object_internals_for_driven_masks(built_wrapper, path):
    # `drive_masks` rebuilds tfmot's Pruning object from these and overrides the last two.
    assert hasattr(built_wrapper.pruning_obj, path), _moved(f"pruning_impl.Pruning.{path}")


@pytest.mark.parametrize(
    "name, symbols",
    [
        ("registry", ["Default8BitQuantizeRegistry"]),
        ("configs", ["Default8BitOutputQuantizeConfig"]),
        (
            "prune_preserve",
            [
                "PrunePreserveDefault8BitWeightsQuantizer",
                "PrunePreserveDefault8BitConvWeightsQuantizer",
                "PrunePreserveDefaultWeightsQuantizer",
            ],
        ),
    ],
)
def test_private_qat_modules(name, symbols):
    from tfgreen._adapters import tfmot as adapter

    try:
        module = adapter.qat_module(name)
    except ImportError as error:  # pragma: no cover - only on a tfmot upgrade
        pytest.fail(
            f"tfmot {adapter.PINNED_VERSION} had {adapter.QAT_MODULES[name]}; the installed "
            f"version does not ({error}). Update tfgreen/_adapters/tfmot.py."
        )
    missing = [symbol for symbol in symbols if not hasattr(module, symbol)]
    assert not missing, (
        f"{adapter.QAT_MODULES[name]} lost {missing} (written against tfmot "
        f"{adapter.PINNED_VERSION}); update tfgreen/_adapters/tfmot.py"
    )
