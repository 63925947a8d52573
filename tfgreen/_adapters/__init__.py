"""Adapters: the one place each third-party library's private internals are touched.

Each module wraps one library's private symbols (for example
`tfgreen._adapters.tfmot` for tfmot's pruning wrapper internals) behind small
functions, and has a test that names the pinned version it was written
against and fails clearly when a symbol moves.
"""

__all__: list[str] = []
