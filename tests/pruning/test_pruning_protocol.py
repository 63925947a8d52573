"""Both pruning backends implement `PruningBackend`: the same public names and signatures."""

from __future__ import annotations

import inspect
import typing

import pytest

from tfgreen.flavor import FLAVORS, backend
from tfgreen.pruning._protocol import PruningBackend

_MEMBERS = sorted(
    name
    for name in {*vars(PruningBackend), *typing.get_type_hints(PruningBackend)}
    if not name.startswith("_")
)


def test_protocol_lists_every_member():
    assert "batch" in _MEMBERS and "load_scope" in _MEMBERS and len(_MEMBERS) == 18


@pytest.mark.parametrize("flavor", FLAVORS)
def test_backend_matches_protocol(flavor):
    module = backend("tfgreen.pruning", flavor)
    assert sorted(module.__all__) == _MEMBERS
    public = sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", module.__name__) == module.__name__
        and (callable(value) or name.isupper())
    )
    assert public == _MEMBERS
    for name in _MEMBERS:
        expected = list(inspect.signature(getattr(PruningBackend, name)).parameters)[1:]
        assert list(inspect.signature(getattr(module, name)).parameters) == expected, name


def test_api_has_no_flavour_branch():
    from pathlib import Path

    import tfgreen.pruning

    folder = Path(tfgreen.pruning.__file__).parent
    for name in ("api.py", "saving.py", "callback.py", "schedules.py"):
        text = (folder / name).read_text()
        assert "KERAS3" not in text and "TF_KERAS" not in text and "flavor ==" not in text, name
