"""`estimate_energy`: a model estimate of joules per inference on a device class.

What a host measurement cannot give: the energy of a `.tflite` file on the
device it is exported for. The estimate reads the graph, counts the
multiply-accumulates (MACs) of every FULLY_CONNECTED, CONV_2D,
DEPTHWISE_CONV_2D and BATCH_MATMUL op exactly from the tensor shapes, and
the bytes of weights and activations moved, then prices them with a
per-target energy table:

    joules = sum(MACs of a dtype x pJ per MAC of that dtype)
           + weight bytes x pJ per byte (SRAM if the weights fit on chip, else DRAM)
           + activation bytes x pJ per byte (SRAM if the largest op's tensors fit)

Sources of the figures (per operation, at 45 nm, 0.9 V): M. Horowitz,
"Computing's energy problem (and what we can do about it)", ISSCC 2014,
pp. 10-14: 8-bit integer multiply 0.2 pJ and add 0.03 pJ (an int8 MAC with
its 32-bit accumulate 0.2 + 0.1 = 0.3 pJ); 16-bit float multiply 1.1 pJ and
add 0.4 pJ (1.5 pJ per float16 MAC); 32-bit float multiply 3.7 pJ and add
0.9 pJ (4.6 pJ per float32 MAC); a 64-bit read from an 8 KB SRAM 10 pJ,
32 KB 20 pJ, 1 MB 100 pJ, from DRAM 1.3-2.6 nJ (1.25, 2.5, 12.5 and 160 pJ
per byte). The int16 MAC (16x8 quantization) is interpolated: a multiplier's
energy grows about with the square of its width, 0.8 pJ, plus the 0.1 pJ
accumulate. The Edge TPU's MAC is Coral's published 4 TOPS at 2 W (0.5 pJ
per op, 1 pJ per MAC, the whole chip) and its 8 MB of on-chip SRAM
(coral.ai, "Edge TPU performance benchmarks" and the Coral USB Accelerator
datasheet). On-chip capacities of the other classes are typical values
(an MCU's 256 KB SRAM, an application core's 1 MB L2), assumptions stated
in `TABLES`. These are figures of a technology node, not of a product: the
result says `method="model estimate (...)"` and is never a measurement.
Sparsity lowers the MAC count only where a kernel can skip zeros: a weight
tensor stored in TFLite's sparse format (the converter's sparsity
optimization); zeros kept in a dense tensor are still multiplied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tfgreen.errors import TfgreenTypeError, TfgreenValueError, message

__all__ = ["TABLES", "EnergyEstimate", "estimate_energy", "count_macs"]

_HOROWITZ_MAC_PJ = {"int8": 0.3, "int16": 0.9, "float16": 1.5, "float32": 4.6}
_SRAM_8KB, _SRAM_32KB, _SRAM_1MB, _DRAM = 1.25, 2.5, 12.5, 160.0  # pJ per byte


def _table(sram_bytes: int, sram_pj: float, mac_pj: dict | None = None, **note) -> dict:
    return {
        "mac_pj": dict(mac_pj or _HOROWITZ_MAC_PJ),
        "sram_pj_per_byte": sram_pj,
        "dram_pj_per_byte": _DRAM,
        "sram_bytes": sram_bytes,
        **note,
    }


# Per device class: pJ per MAC by compute dtype, pJ per byte from on-chip SRAM and
# from DRAM, and the on-chip capacity that decides which one a tensor is read from.
TABLES: dict[str, dict] = {
    "cpu": _table(1 << 20, _SRAM_1MB, source="Horowitz 2014, 45 nm; 1 MB L2 assumed"),
    "edge-cpu": _table(1 << 20, _SRAM_1MB, source="Horowitz 2014, 45 nm; 1 MB L2 assumed"),
    "edge-gpu": _table(1 << 20, _SRAM_1MB, source="Horowitz 2014, 45 nm; 1 MB cache assumed"),
    "edge-tpu": _table(
        8 << 20,
        _SRAM_1MB,
        {**_HOROWITZ_MAC_PJ, "int8": 1.0},
        source="Coral Edge TPU: 4 TOPS at 2 W (1 pJ/MAC), 8 MB on-chip SRAM; "
        "memory from Horowitz 2014",
    ),
    "mcu": _table(256 << 10, _SRAM_32KB, source="Horowitz 2014, 45 nm; 256 KB SRAM assumed"),
    "vehicle-ecu": _table(
        4 << 20, _SRAM_1MB, source="Horowitz 2014, 45 nm; 4 MB on-chip SRAM assumed"
    ),
}
_TABLE_KEYS = ("mac_pj", "sram_pj_per_byte", "dram_pj_per_byte", "sram_bytes")
_ITEMSIZE = {"int4": 0.5, "bool": 1}
_MAC_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL")


@dataclass
class EnergyEstimate:
    """What `estimate_energy` returns: counts, bytes and the priced estimate.

    Attributes:
        macs: Multiply-accumulates one inference runs (after sparse kernels).
        dense_macs: The same without skipping any zero weight.
        ops: One dict per MAC op: `index`, `op`, `dtype`, `macs`, `density`
            (fraction of nonzero weights), `sparse_kernel`.
        weight_bytes: Bytes of the constant tensors (weights, biases).
        activation_bytes: Bytes every op reads and writes that are not constants.
        joules_per_inference: The estimate for one inference.
        joules_per_token: For a token-id language model, per inference over
            its seq_len; else `None`.
        breakdown: Joules of `macs`, `weights` and `activations`.
        target: The device class; `table` the figures used.
        method: `"model estimate (...)"`, with the source of the figures.
    """

    macs: int
    dense_macs: int
    weight_bytes: int
    activation_bytes: int
    joules_per_inference: float
    joules_per_token: float | None
    target: str
    method: str
    breakdown: dict = field(default_factory=dict)
    ops: list[dict] = field(default_factory=list)
    table: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The estimate as plain data (JSON-ready)."""
        return asdict(self)


def _size(shape) -> int:
    return int(np.prod([d if d > 0 else 1 for d in shape])) if len(shape) else 1


def _itemsize(dtype: str) -> float:
    if dtype in _ITEMSIZE:
        return _ITEMSIZE[dtype]
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # resource, variant, string: no tensor data moved per inference
        return 0


def _op_macs(shapes, op) -> int:
    """Exact MACs of one op from its tensors' concrete shapes."""
    out = shapes[op.outputs[0]]
    if op.name == "BATCH_MATMUL":
        a = shapes[op.inputs[0]]
        k = a[-1] if a[-2] == out[-2] else a[-2]  # adj_x transposes A: [.., K, M]
        return _size(out) * max(k, 1)
    weight = shapes[op.inputs[1]]
    if op.name == "FULLY_CONNECTED":  # weights [units, in]
        return _size(out) * weight[1]
    if op.name == "CONV_2D":  # weights [out_c, kh, kw, in_c / groups]
        return _size(out) * weight[1] * weight[2] * weight[3]
    return _size(out) * weight[1] * weight[2]  # DEPTHWISE_CONV_2D: [1, kh, kw, out_c]


def _weight_index(info, op) -> int | None:
    """The op's weight tensor, through a DEQUANTIZE of float16 weights."""
    if op.name == "BATCH_MATMUL" or len(op.inputs) < 2:
        return None
    index = op.inputs[1]
    source = next((o for o in info.ops if index in o.outputs), None)
    if source is not None and source.name == "DEQUANTIZE":
        index = source.inputs[0]
    return index if info.tensors[index].is_constant else None


def _compute_dtype(info, op, weight: int | None) -> str:
    """Which MAC price an op pays: its activation dtype, int8 for hybrid int8 weights."""
    activation = info.tensors[op.inputs[0]].dtype
    stored = info.tensors[weight].dtype if weight is not None else activation
    if activation in ("int8", "uint8") or stored in ("int8", "uint8", "int4"):
        return "int8"  # also dynamic-range kernels: inputs quantized on the fly
    if activation == "int16":
        return "int16"
    return "float16" if stored == "float16" else "float32"


def _graph_facts(data: bytes) -> tuple[set[int], list[list[int]]]:
    """Tensors stored in TFLite's sparse format (what sparse kernels run on), and every
    tensor's shape in one batch-1 inference (the interpreter's own shape inference, run
    once on zeros: a dynamic batch can hide in a reshape's computed shape)."""
    from ai_edge_litert import schema_py_generated as schema

    from tfgreen.tflite.isolated import vetted_runner

    graph = schema.Model.GetRootAs(data, 0).Subgraphs(0)
    tensors = [graph.Tensors(i) for i in range(graph.TensorsLength())]
    sparse = {i for i, t in enumerate(tensors) if t.Sparsity() is not None}
    shapes = [[int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else [] for t in tensors]
    runner = vetted_runner(data)  # a child process unless this process exported the file
    runner.predict(runner.sample_inputs(random=False))
    for index, shape in runner.tensor_shapes().items():
        if 0 <= index < len(shapes):
            shapes[index] = shape
    return sparse, shapes


def count_macs(data: bytes) -> list[dict]:
    """MACs of every FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D and BATCH_MATMUL op.

    Args:
        data: `.tflite` bytes.

    Returns:
        One dict per op: `index`, `op`, `dtype` (the MAC price it pays),
        `dense_macs`, `density` (fraction of nonzero weights, `None` for
        BATCH_MATMUL), `sparse_kernel` and `macs` (dense MACs times the
        density where the weights are stored sparse, else dense MACs).

    Example:
    ```python
    sum(op["macs"] for op in count_macs(Path("mlp.tflite").read_bytes()))
    # 84480
    ```
    """
    from tfgreen.tflite.read import read_tflite

    info = read_tflite(data)
    sparse, shapes = _graph_facts(data)
    return _count(info, sparse, shapes)


def _count(info, sparse: set[int], shapes: list[list[int]]) -> list[dict]:
    counted = []
    for op in info.ops:
        if op.name not in _MAC_OPS:
            continue
        dense = _op_macs(shapes, op)
        weight = _weight_index(info, op)
        zeros, size = (0, 0)
        if weight is not None:
            zeros, size = info.weight_counts.get(info.tensors[weight].name, (0, 0))
        density = 1.0 - zeros / size if size else None
        sparse_kernel = weight in sparse
        counted.append(
            {
                "index": op.index,
                "op": op.name,
                "dtype": _compute_dtype(info, op, weight),
                "dense_macs": dense,
                "density": density,
                "sparse_kernel": sparse_kernel,
                "macs": round(dense * density) if sparse_kernel and density else dense,
            }
        )
    return counted


def _check_table(table, target) -> dict:
    if table is None:
        if target not in TABLES:
            raise TfgreenValueError(
                message(
                    "No energy table for this target",
                    f"one of {sorted(TABLES)}, or a `table` of your own",
                    "Pass target='mcu' (for example), or table={'mac_pj': {'int8': 0.3, "
                    "'float16': 1.5, 'float32': 4.6}, 'sram_pj_per_byte': 2.5, "
                    "'dram_pj_per_byte': 160.0, 'sram_bytes': 262144}",
                    target=target,
                )
            )
        return TABLES[target]
    missing = [k for k in _TABLE_KEYS if not isinstance(table, dict) or k not in table]
    if missing:
        raise TfgreenValueError(
            message(
                "The energy table misses fields",
                f"a dict with {list(_TABLE_KEYS)}; `mac_pj` maps int8/float16/float32 to pJ",
                "Add the missing fields (see tfgreen.energy.estimate.TABLES for examples)",
                missing=missing,
            )
        )
    return table


def _tflite_bytes(model_or_tflite) -> tuple[bytes, str]:
    if isinstance(model_or_tflite, (bytes, bytearray)):
        return bytes(model_or_tflite), "the .tflite bytes"
    if isinstance(model_or_tflite, (str, Path)):
        from tfgreen.tflite.read import existing_tflite

        return existing_tflite(model_or_tflite).read_bytes(), "the .tflite file"
    from tfgreen.flavor import flavor_of
    from tfgreen.quantization.ptq import convert

    try:
        flavor_of(model_or_tflite)
    except TfgreenTypeError:
        raise TfgreenTypeError(
            message(
                "estimate_energy needs a model or a .tflite file",
                "a Keras 3 or tf_keras model, a .tflite path, or .tflite bytes",
                "Pass for example 'out/model.tflite'",
                model_or_tflite=type(model_or_tflite).__name__,
            )
        ) from None
    return convert(model_or_tflite), "the model's float32 .tflite"


def _seq_len(info) -> int | None:
    """seq_len of a token-id language model (int ids in, [batch, seq, vocab] out), else None."""
    inp, out = info.tensors[info.inputs[0]], info.tensors[info.outputs[0]]
    ids = inp.dtype in ("int32", "int64") and not inp.scale
    return inp.shape[1] if ids and len(inp.shape) == 2 and len(out.shape) == 3 else None


def estimate_energy(
    model_or_tflite, target: str = "edge-cpu", table: dict | None = None
) -> EnergyEstimate:
    """Estimates joules per inference of a model on a device class, from its graph.

    A model estimate, not a measurement (the measured host figure is
    `tfgreen.energy.inference.inference_energy`; the two are never mixed):
    exact MACs per op and bytes moved, priced with the target's table of
    pJ per MAC and per byte (sources in this module's docstring).

    Args:
        model_or_tflite: A `.tflite` path or its bytes, or a Keras 3 or
            tf_keras model (estimated as its float32 `.tflite`).
        target: Device class, a key of `TABLES` (`"cpu"`, `"edge-cpu"`,
            `"edge-gpu"`, `"edge-tpu"`, `"mcu"`, `"vehicle-ecu"`) or, with
            `table`, any name. Defaults to `"edge-cpu"`.
        table: Your own figures: `{"mac_pj": {"int8": ..., "float16": ...,
            "float32": ...}, "sram_pj_per_byte": ..., "dram_pj_per_byte": ...,
            "sram_bytes": ...}`; `None` takes `TABLES[target]`.
            Defaults to `None`.

    Returns:
        An `EnergyEstimate` (`macs`, `weight_bytes`, `activation_bytes`,
        `joules_per_inference`, `joules_per_token`, `method`, ...).

    Example:
    >>> from tfgreen.models import small_mlp
    >>> estimate = estimate_energy(small_mlp(hidden=(256, 256)), target="mcu")
    >>> estimate.macs, estimate.method.startswith("model estimate")
    (84480, True)
    """
    table = _check_table(table, target)
    data, what = _tflite_bytes(model_or_tflite)
    from tfgreen.tflite.read import read_tflite

    info = read_tflite(data)
    sparse, shapes = _graph_facts(data)
    ops = _count(info, sparse, shapes)

    def nbytes(t) -> float:
        return _size(shapes[t.index]) * _itemsize(t.dtype)

    weight_bytes = sum(nbytes(t) for t in info.tensors if t.is_constant)
    moved, largest = 0, 0
    constant = {t.index for t in info.tensors if t.is_constant}
    for op in info.ops:
        if all(i in constant for i in op.inputs if i >= 0):  # e.g. DEQUANTIZE of float16
            constant.update(op.outputs)  # weights: done once when the file is loaded
            continue
        tensors = [info.tensors[i] for i in op.inputs + op.outputs if i >= 0 and i not in constant]
        step = sum(nbytes(t) for t in tensors)
        moved, largest = moved + step, max(largest, step)
    unpriced = sorted({op["dtype"] for op in ops} - set(table["mac_pj"]))
    if unpriced:
        raise TfgreenValueError(
            message(
                "The energy table has no MAC price for some of the file's ops",
                "a pJ figure in `mac_pj` for every compute dtype of the file",
                "Add them to table['mac_pj']",
                missing=unpriced,
            )
        )
    fits = table["sram_bytes"]
    on_chip, off_chip = table["sram_pj_per_byte"], table["dram_pj_per_byte"]
    pj = {
        "macs": sum(op["macs"] * table["mac_pj"][op["dtype"]] for op in ops),
        "weights": weight_bytes * (on_chip if weight_bytes <= fits else off_chip),
        "activations": moved * (on_chip if largest <= fits else off_chip),
    }
    joules = sum(pj.values()) * 1e-12
    seq_len = _seq_len(info)
    return EnergyEstimate(
        macs=int(sum(op["macs"] for op in ops)),
        dense_macs=int(sum(op["dense_macs"] for op in ops)),
        weight_bytes=int(weight_bytes),
        activation_bytes=int(moved),
        joules_per_inference=joules,
        joules_per_token=joules / seq_len if seq_len else None,
        target=target,
        method=f"model estimate ({table.get('source', 'user table')}; {what}, "
        "MACs and bytes from the graph; not a measurement)",
        breakdown={key: value * 1e-12 for key, value in pj.items()},
        ops=ops,
        table=table,
    )
