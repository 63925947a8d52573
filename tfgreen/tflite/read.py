"""Reads a `.tflite` file's structure in pure Python, without running it.

The flatbuffer is parsed with LiteRT's generated schema: operators, tensors
(dtype, shape, quantization), and the constant weights of every
FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D / TRANSPOSE_CONV op, from which
weight sparsity is computed. Nothing here executes the model, so a hostile file
can at worst raise `TfliteFileError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfgreen.errors import TfgreenFileNotFoundError, TfliteFileError, message

__all__ = [
    "TensorInfo",
    "OpInfo",
    "TfliteModelInfo",
    "read_tflite",
    "existing_tflite",
    "tensor_details",
    "float_ops",
    "is_float_op",
]

_WEIGHT_OPS = {"FULLY_CONNECTED": 1, "CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "TRANSPOSE_CONV": 1}
# Ops that only convert between float and integer at the edges of the graph.
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
_NUMPY = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "FLOAT64": "float64",
    "INT32": "int32",
    "UINT8": "uint8",
    "INT64": "int64",
    "INT16": "int16",
    "INT8": "int8",
    "BOOL": "bool",
    "UINT16": "uint16",
    "UINT32": "uint32",
}


@dataclass
class TensorInfo:
    """One tensor of the main subgraph."""

    index: int
    name: str
    dtype: str
    shape: list[int]
    scale: list[float]
    zero_point: list[int]
    is_constant: bool


@dataclass
class OpInfo:
    """One operator: its name and its input/output tensor indices."""

    index: int
    name: str
    inputs: list[int]
    outputs: list[int]


@dataclass
class TfliteModelInfo:
    """What a `.tflite` file holds, read without running it."""

    size_bytes: int
    ops: list[OpInfo]
    tensors: list[TensorInfo]
    inputs: list[int]
    outputs: list[int]
    weight_counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def weight_sparsity(self) -> dict[str, float]:
        """Fraction of zeros of each weight tensor, by tensor name."""
        return {name: zeros / max(size, 1) for name, (zeros, size) in self.weight_counts.items()}

    @property
    def op_names(self) -> list[str]:
        """Operator names in execution order."""
        return [op.name for op in self.ops]

    def total_weight_sparsity(self) -> float | None:
        """Fraction of zeros over all weight tensors (None if there are none)."""
        total = sum(n for _, n in self.weight_counts.values())
        return None if total == 0 else sum(z for z, _ in self.weight_counts.values()) / total


def _enum_names(enum_class) -> dict[int, str]:
    return {
        v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)
    }


def _buffer_array(model, tensor, dtype: str, data: bytes) -> np.ndarray | None:
    buffer = (
        model.buffers[tensor.buffer]
        if model.buffers and tensor.buffer < len(model.buffers)
        else None
    )
    if buffer is None:
        return None
    if buffer.data is not None and len(buffer.data):
        raw = np.asarray(buffer.data, dtype=np.uint8).tobytes()
    elif buffer.offset > 1 and buffer.size:
        raw = data[buffer.offset : buffer.offset + buffer.size]
    else:
        return None
    if dtype == "INT4":  # two codes per byte, the first in the low nibble
        nibbles = np.frombuffer(raw, dtype=np.uint8)
        codes = np.stack([nibbles & 0x0F, nibbles >> 4], axis=1).reshape(-1).astype(np.int8)
        count = int(np.prod(tensor.shape)) if tensor.shape is not None else codes.size
        return np.where(codes > 7, codes - 16, codes).astype(np.int8)[:count]
    if dtype not in _NUMPY:
        return None
    return np.frombuffer(raw, dtype=_NUMPY[dtype])


def _check_indices(ops: list[OpInfo], count: int, graph) -> None:
    """Refuses tensor references outside the subgraph (a corrupted or hostile file)."""
    inputs = [int(i) for i in (graph.inputs if graph.inputs is not None else [])]
    outputs = [int(i) for i in (graph.outputs if graph.outputs is not None else [])]
    if not inputs or not outputs:
        raise TfliteFileError(
            message(
                "The .tflite file's graph has no inputs or no outputs",
                "a model with at least one input and one output tensor",
                "Re-export the model; the file is corrupted or was tampered with",
                inputs=len(inputs),
                outputs=len(outputs),
            )
        )
    references = [i for op in ops for i in op.inputs + op.outputs]
    bad = [i for i in references if i < -1 or i >= count]
    bad += [i for i in inputs + outputs if i < 0 or i >= count]  # -1 (no tensor) is op-only
    if bad:
        raise TfliteFileError(
            message(
                "The .tflite file refers to tensors that do not exist",
                f"tensor indices below {count} (the subgraph's tensor count)",
                "Re-export the model; the file is corrupted or was tampered with",
                tensor_index=bad[0],
            )
        )


def existing_tflite(path) -> Path:
    """Returns `path` as a `Path`, or raises `TfgreenFileNotFoundError` naming it.

    Example:
    ```python
    existing_tflite("out/model.tflite").stat().st_size
    # 45112
    ```
    """
    path = Path(path)
    if not path.is_file():
        from tfgreen._io import read_regular_file

        read_regular_file(path, ".tflite file", limit=0)  # names a FIFO, folder, loop in one line
        raise TfgreenFileNotFoundError(
            message(
                "The .tflite file does not exist",
                "a path to a file written by tfgreen.export_tflite or the TFLite converter",
                "Check the path",
                path=str(path),
            )
        )
    return path


def read_tflite(data: bytes) -> TfliteModelInfo:
    """Parses `.tflite` bytes into ops, tensors and weight sparsity.

    Args:
        data: The file's bytes.

    Returns:
        A `TfliteModelInfo`.

    Example:
    ```python
    info = read_tflite(Path("model.tflite").read_bytes())
    info.op_names
    # ['QUANTIZE', 'CONV_2D', ...]
    ```
    """
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TfliteFileError(
            message(
                "The file is not a TFLite flatbuffer (no TFL3 identifier)",
                "a .tflite file written by the TFLite converter",
                "Check the path, or re-export the model",
                size_bytes=len(data),
            )
        )
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
        graph = model.subgraphs[0]
        op_names = _enum_names(schema.BuiltinOperator)
        type_names = _enum_names(schema.TensorType)
        tensors = []
        for i, t in enumerate(graph.tensors or []):
            q = t.quantization
            array = _buffer_array(model, t, type_names.get(t.type, str(t.type)), data)
            tensors.append(
                TensorInfo(
                    index=i,
                    name=t.name.decode() if isinstance(t.name, bytes) else str(t.name or ""),
                    dtype=_NUMPY.get(
                        type_names.get(t.type, ""), type_names.get(t.type, str(t.type)).lower()
                    ),
                    shape=[
                        int(s)
                        for s in (
                            t.shapeSignature
                            if t.shapeSignature is not None
                            else t.shape
                            if t.shape is not None
                            else []
                        )
                    ],
                    scale=[
                        float(s) for s in (q.scale if q is not None and q.scale is not None else [])
                    ],
                    zero_point=[
                        int(z)
                        for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])
                    ],
                    is_constant=array is not None,
                )
            )
        ops = []
        for i, op in enumerate(graph.operators or []):
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            name = op_names.get(builtin, f"OP_{builtin}")
            if name == "CUSTOM" and code.customCode:
                name = f"CUSTOM:{code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode}"
            ops.append(
                OpInfo(
                    i,
                    name,
                    [int(x) for x in (op.inputs if op.inputs is not None else [])],
                    [int(x) for x in (op.outputs if op.outputs is not None else [])],
                )
            )
        _check_indices(ops, len(tensors), graph)
        info = TfliteModelInfo(
            size_bytes=len(data),
            ops=ops,
            tensors=tensors,
            inputs=[int(x) for x in graph.inputs],
            outputs=[int(x) for x in graph.outputs],
        )
        producers = {out: op for op in ops for out in op.outputs}
        for op in ops:
            position = _WEIGHT_OPS.get(op.name)
            if position is None or len(op.inputs) <= position or op.inputs[position] < 0:
                continue
            index = op.inputs[position]
            source = producers.get(index)
            if source is not None and source.name == "DEQUANTIZE":
                index = source.inputs[0]
            tensor = graph.tensors[index]
            type_name = type_names.get(tensor.type, "")
            values = _buffer_array(model, tensor, type_name, data)
            if values is None:
                continue
            zero = 0
            if np.issubdtype(values.dtype, np.integer) and tensors[index].zero_point:
                zero = (
                    np.repeat(
                        tensors[index].zero_point, values.size // len(tensors[index].zero_point)
                    )
                    if len(tensors[index].zero_point) > 1
                    else tensors[index].zero_point[0]
                )
            zeros = int(np.count_nonzero(values == zero))
            info.weight_counts[tensors[index].name] = (zeros, int(values.size))
        return info
    except TfliteFileError:
        raise
    except Exception as error:  # a corrupted flatbuffer can fail anywhere in the parser
        raise TfliteFileError(
            message(
                "The .tflite file is corrupted or truncated and could not be parsed",
                "a complete TFLite flatbuffer",
                "Re-export the model or copy the file again",
                error=f"{type(error).__name__}: {error}"[:200],
                size_bytes=len(data),
            )
        ) from error


def tensor_details(info: TfliteModelInfo, indices: list[int]) -> list[dict]:
    """Name, dtype, shape, scale and zero point of the given tensors.

    Args:
        info: The parsed file.
        indices: Tensor indices (e.g. `info.inputs`).

    Returns:
        One dict per tensor; `scale`/`zero_point` are `None` when the tensor
        is not quantized (per-tensor values are given as numbers).
    """
    details = []
    for index in indices:
        tensor = info.tensors[index]
        details.append(
            {
                "name": tensor.name,
                "dtype": tensor.dtype,
                "shape": list(tensor.shape),
                "scale": tensor.scale[0] if len(tensor.scale) == 1 else (tensor.scale or None),
                "zero_point": (
                    tensor.zero_point[0]
                    if len(tensor.zero_point) == 1
                    else (tensor.zero_point or None)
                ),
            }
        )
    return details


def is_float_op(info: TfliteModelInfo, op: OpInfo) -> bool:
    """Whether one op computes in float (see `float_ops`)."""
    if op.name in _CONVERSION_OPS:
        return False
    tensors = [info.tensors[i] for i in op.inputs + op.outputs if i >= 0]
    return any(t.dtype.startswith("float") and not t.is_constant for t in tensors)


def float_ops(info: TfliteModelInfo) -> list[str]:
    """Names of the ops that compute in float (QUANTIZE/DEQUANTIZE excluded).

    An op computes in float when one of its non-constant inputs or outputs is
    a float tensor. Hybrid ops (float activations, int8 weights, as in dynamic
    range quantization) count as float.

    Args:
        info: The parsed file.

    Returns:
        Op names in execution order, with repeats.
    """
    return [op.name for op in info.ops if is_float_op(info, op)]
