"""Adapters: the one place each third-party internal is touched."""

__all__: list[str] = []
