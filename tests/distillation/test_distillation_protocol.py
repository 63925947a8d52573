"""Both distillation backends implement `DistillationBackend`; their classes are `tfgreen.Distiller`s."""

from __future__ import annotations

import inspect

import pytest

import tfgreen
from tfgreen.distillation._protocol import DistillationBackend
from tfgreen.flavor import FLAVORS, backend, keras_for


@pytest.mark.parametrize("flavor", FLAVORS)
def test_backend_satisfies_the_protocol(flavor):
    module = backend("tfgreen.distillation", flavor)
    assert isinstance(module, DistillationBackend)
    cls = module.DISTILLER
    assert issubclass(cls, tfgreen.Distiller) and issubclass(cls, keras_for(flavor).Model)
    # The flavour's class takes exactly tfgreen.Distiller's arguments.
    public = inspect.signature(tfgreen.Distiller.__new__).parameters
    assert list(inspect.signature(cls.__init__).parameters)[1:] == list(public)[1:]
    assert all(isinstance(kind, type) for kind in module.NATIVE_LOSSES)
