"""Seeded hostile `.tflite` files: truncations, bit flips and structural edits.

`mutants(data, count, seed)` returns `count` byte strings made from one valid
file, the same for the same arguments (every random choice comes from one
`numpy.random.default_rng(seed)`). The kinds cycle, so any 10 consecutive
mutants hold one of each:

0. truncated at a random length
1. 1-8 bits flipped anywhere
2. a tensor of hostile shape: rank 0-23, dims in {-1, 0, 1, 2} (high
   rank) or up to 64 (rank <= 3), shape and signature disagreeing
3. an operator reading or writing tensor indices that do not exist
4. a tensor pointing at a buffer that does not exist or is another's
5. a huge or out-of-file buffer: offset/size past the end, or a tensor
   whose declared size is far larger than its data
6. quantization: NaN, inf, negative or zero scales, zero points out of
   range, a quantized dimension past the rank
7. an operator whose opcode index, or whose opcode's builtin code, is bogus
8. subgraph inputs/outputs out of range, negative or repeated
9. a tensor of another (or an invalid) element type

Element counts stay below 2**22, so no mutant asks for gigabytes: the point
is hostile structure, not exhausting the test machine's memory.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

__all__ = ["KINDS", "mutants", "pack"]

KINDS = (
    "truncated",
    "bit flips",
    "hostile shape",
    "bad tensor index",
    "bad buffer index",
    "huge buffer",
    "bad quantization",
    "bad opcode",
    "bad graph io",
    "bad dtype",
)


def pack(model: schema.ModelT) -> bytes:
    """Serializes a schema object tree back to `.tflite` bytes."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _ints(rng, low: int, high: int, size: int) -> list[int]:
    return [int(v) for v in rng.integers(low, high, size)]


def _shape(rng, tensor) -> None:
    rank = int(rng.integers(0, 24))
    high = 65 if rank <= 3 else 3
    tensor.shape = _ints(rng, -1, high, rank)
    tensor.shapeSignature = _ints(rng, -1, high, rank) if rng.random() < 0.5 else [-1] * rank


def _indices(rng, graph) -> None:
    op = graph.operators[int(rng.integers(0, len(graph.operators)))]
    n = len(graph.tensors)
    bogus = [-7, -2, n, n + 1, 2**31 - 1]
    field = "inputs" if rng.random() < 0.7 else "outputs"
    values = [int(v) for v in getattr(op, field)]
    values[int(rng.integers(0, len(values)))] = int(rng.choice(bogus))
    setattr(op, field, values)


def _buffer_index(rng, model, tensor) -> None:
    tensor.buffer = int(rng.choice([len(model.buffers), len(model.buffers) + 5, 2**32 - 1, 0, 1]))


def _huge(rng, model, tensor) -> None:
    if rng.random() < 0.5:
        buffer = model.buffers[int(rng.integers(1, len(model.buffers)))]
        buffer.data = None
        buffer.offset = int(rng.choice([2**40, 2**62, 13]))
        buffer.size = int(rng.choice([2**31, 2**40, 7]))
    else:
        tensor.shape = [int(rng.integers(512, 2048)), int(rng.integers(512, 2048))]
        tensor.shapeSignature = list(tensor.shape)


def _quantization(rng, tensor) -> None:
    q = schema.QuantizationParametersT()
    q.scale = [float(rng.choice([np.nan, np.inf, -1.0, 0.0, 1e-45, 1e38]))]
    q.zeroPoint = [int(rng.choice([-300, 300, 2**40, 0]))]
    q.quantizedDimension = int(rng.choice([0, 7, 1000]))
    if rng.random() < 0.3:
        q.scale = q.scale * int(rng.integers(2, 5))  # more scales than channels
    tensor.quantization = q


def _opcode(rng, model, graph) -> None:
    if rng.random() < 0.5:
        op = graph.operators[int(rng.integers(0, len(graph.operators)))]
        op.opcodeIndex = int(rng.choice([len(model.operatorCodes), 255, 2**31 - 1]))
    else:
        code = model.operatorCodes[int(rng.integers(0, len(model.operatorCodes)))]
        code.builtinCode = code.deprecatedBuiltinCode = int(rng.choice([126, 0, 3, 127]))


def _graph_io(rng, graph) -> None:
    n = len(graph.tensors)
    field = "inputs" if rng.random() < 0.5 else "outputs"
    choice = int(rng.integers(0, 3))
    values = [int(v) for v in getattr(graph, field)]
    if choice == 0:
        values = [int(rng.choice([-1, n, n + 9]))]
    elif choice == 1:
        values = values * 3
    else:
        values = _ints(rng, 0, n, int(rng.integers(0, 4)))
    setattr(graph, field, values)


def _structural(rng, data: bytes, kind: int) -> bytes:
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    graph = model.subgraphs[0]
    tensor = graph.tensors[int(rng.integers(0, len(graph.tensors)))]
    if kind == 2:
        _shape(rng, tensor)
    elif kind == 3:
        _indices(rng, graph)
    elif kind == 4:
        _buffer_index(rng, model, tensor)
    elif kind == 5:
        _huge(rng, model, tensor)
    elif kind == 6:
        _quantization(rng, tensor)
    elif kind == 7:
        _opcode(rng, model, graph)
    elif kind == 8:
        _graph_io(rng, graph)
    else:
        tensor.type = int(rng.choice([0, 1, 2, 3, 9, 10, 17, 99]))
    return pack(model)


def mutants(data: bytes, count: int, seed: int = 0) -> list[bytes]:
    """`count` hostile variants of a valid `.tflite` file, deterministic for a seed.

    Args:
        data: A valid `.tflite` file's bytes.
        count: How many variants.
        seed: Seed of every random choice. Defaults to `0`.

    Returns:
        A list of `count` byte strings, kind `i % 10` at position `i` (see `KINDS`).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        kind = i % len(KINDS)
        if kind == 0:
            out.append(data[: int(rng.integers(8, len(data)))])
        elif kind == 1:
            raw = bytearray(data)
            for _ in range(int(rng.integers(1, 9))):
                raw[int(rng.integers(0, len(raw)))] ^= 1 << int(rng.integers(0, 8))
            out.append(bytes(raw))
        else:
            out.append(_structural(rng, data, kind))
    return out
