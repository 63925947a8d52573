"""Both quantization backends implement `QuantizationBackend`, with the same signatures."""

from __future__ import annotations

import inspect

import pytest

from tfgreen.flavor import FLAVORS, backend
from tfgreen.quantization._protocol import QuantizationBackend

_MEMBERS = [
    name
    for name, value in vars(QuantizationBackend).items()
    if callable(value) and not name.startswith("_")
]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_backend_satisfies_the_protocol(flavor):
    module = backend("tfgreen.quantization", flavor)
    assert isinstance(module, QuantizationBackend)
    for name in _MEMBERS:
        expected = list(inspect.signature(getattr(QuantizationBackend, name)).parameters)[1:]
        assert list(inspect.signature(getattr(module, name)).parameters) == expected, name


def test_protocol_names_every_member():
    assert sorted(_MEMBERS) == [
        "float_layers",
        "is_graph_model",
        "is_quantize_aware",
        "load_scope",
        "quantize_aware",
    ]
