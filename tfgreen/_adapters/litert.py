"""The one module that touches LiteRT (`ai_edge_litert`) internals.

A `SignatureRunner` call resizes and allocates its inputs, sets them, invokes
and copies the outputs, every time. Timing a signature as a device runs it
(inputs already in place, the invocation alone, as
`TfliteRunner.timed_call` does for the main subgraph) needs the runner's
private interpreter wrapper and subgraph index, read here.

Written against ai-edge-litert 2.3.0 (`PINNED`).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["PINNED", "signature_invoke"]

PINNED = {"ai_edge_litert": "2.3.0"}


def signature_invoke(runner, **inputs) -> Callable[[], None]:
    """Sets a signature's inputs once (one full call) and returns its bare invocation.

    Args:
        runner: A LiteRT `SignatureRunner`.
        **inputs: The signature's inputs, by name.

    Returns:
        A function of no arguments running one invocation of the signature.
    """
    runner(**inputs)
    wrapper, subgraph = runner._interpreter_wrapper, runner._subgraph_index
    return lambda: wrapper.Invoke(subgraph)
