"""Model surgery for `structure="channels"` and `"heads"`: which layers can lose whole
groups, which weights follow them, and the physically smaller model `tfgreen.strip` returns.

A *channel group* is a Dense or Conv layer (the producer) whose output
channels can be removed: every path from its output reaches, through layers
that keep a zero channel zero (ReLU-like activations, pooling, dropout,
padding), either a *follower* whose per-channel weights are masked with the
producer's (BatchNormalization's gamma/beta, a DepthwiseConv's kernel and
bias) or a *consumer* whose input slice is removed on strip (a Dense or Conv,
after a Flatten for a Dense). A path into anything else (an `Add` or
`Concatenate` residual join, LayerNormalization, a reshape, the model's
output) leaves the producer dense, and `select` says why in a warning.
A *head group* is a MultiHeadAttention layer: its heads are masked across the
query/key/value/output projections and strip builds it with fewer heads.

Works on plain Functional and Sequential models of both Kerases, and on their
pruned copies (a pruning wrapper stands for the layer it wraps).

Example:
>>> import keras
>>> from tfgreen.pruning.surgery import channel_groups
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="hidden"),
...                           keras.layers.Dense(2, name="out")])
>>> groups, dense = channel_groups(model)
>>> groups["hidden"].consumers, dense
((('out', 1),), {'out': "its output is the model's output (the logits are never pruned)"})
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from tfgreen.errors import TfgreenValueError, UnsupportedLayerError, message
from tfgreen.flavor import keras_for
from tfgreen.pruning.structure import pruned_count

__all__ = [
    "ChannelGroup",
    "channel_groups",
    "select",
    "kernel_axis",
    "extra_weights",
    "keep_vector",
    "shrink",
]

# Layers a zero channel passes through unchanged (as zero), channel axis last.
_PASS = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Identity",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
)
_CONVS = ("Conv1D", "Conv2D", "Conv3D")
_DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """A layer whose output channels can be removed, and the layers that follow them.

    Attributes:
        producer: The Dense/Conv layer's name.
        size: Its output channels.
        followers: Names of the layers whose per-channel weights are masked
            and sliced with the producer's channels (BatchNormalization,
            DepthwiseConv).
        consumers: `(name, positions)` of each layer whose input slice is
            removed: `positions` is 1 for channels read as channels, else the
            spatial positions a Flatten folded into each flat row block.
    """

    producer: str
    size: int
    followers: tuple[str, ...]
    consumers: tuple[tuple[str, int], ...]


class _Dense(Exception):
    """A reason a producer's channels can't be removed."""


def _inner(layer):
    """The layer a pruning wrapper wraps (both Kerases' wrappers keep it in `.layer`), else it."""
    inner = getattr(layer, "layer", None)
    return inner if inner is not None and "prune" in type(layer).__name__.lower() else layer


def _kind(layer) -> str:
    """The Keras class name of a (possibly wrapped) layer, matched on exact built-in types."""
    return type(_inner(layer)).__name__


def _flat(value) -> list:
    if isinstance(value, (list, tuple)):
        return [item for part in value for item in _flat(part)]
    if isinstance(value, dict):
        return [item for part in value.values() for item in _flat(part)]
    return [value]


def _node_layer(node):
    # Keras private, both Kerases: a graph node's layer (Keras 3 calls it the operation).
    return getattr(node, "operation", None) or node.layer


def _graph(model) -> tuple[dict[int, list], set[int]]:
    """`{id(layer): [consumer layers]}` and the ids of the layers whose output is a model output.

    Walks the model's own nodes back from its outputs (Keras private, both
    Kerases: `_keras_history`, `_inbound_nodes`, `parent_nodes`), so a layer
    that also has nodes outside this model (a stripped copy's) is read right.
    """
    consumers: dict[int, list] = {}
    history = [tensor._keras_history for tensor in _flat(model.outputs)]
    stack = [entry[0]._inbound_nodes[entry[1]] for entry in history]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        layer = _node_layer(node)
        for parent in node.parent_nodes:
            users = consumers.setdefault(id(_node_layer(parent)), [])
            if layer not in users:
                users.append(layer)
            stack.append(parent)
    return consumers, {id(entry[0]) for entry in history}


def _keeps_zero(activation) -> bool:
    """Whether an elementwise activation maps 0 to 0 (relu, gelu, tanh, linear; not sigmoid, softmax)."""
    if activation is None:
        return True
    try:
        out = np.asarray(activation(np.zeros((1, 3), "float32")))
    except Exception:  # an activation that can't run on a plain array: assume the worst
        return False
    return bool(np.all(out == 0))


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") in ("channels_last", None)


def _bn_last(layer) -> bool:
    axis = np.atleast_1d(layer.axis).tolist()
    rank = len(layer.input.shape)
    return len(axis) == 1 and axis[0] in (-1, rank - 1)


def _producer_problem(layer) -> str | None:
    inner = _inner(layer)
    if _kind(inner) not in ("Dense", *_CONVS):
        return "not a Dense or Conv1D/2D/3D layer"
    if getattr(inner, "groups", 1) != 1 or not _channels_last(inner):
        return "a grouped or channels_first conv"
    if not _keeps_zero(getattr(inner, "activation", None)):
        return "its activation does not map 0 to 0, so a removed channel would not be zero"
    return None


def _is_follower(kind: str, layer) -> bool:
    """A layer whose per-channel weights follow its input channels (BatchNorm, DepthwiseConv)."""
    if kind == "BatchNormalization":
        return _bn_last(layer)
    return kind in _DEPTHWISE and layer.depth_multiplier == 1 and _channels_last(layer)


def _passes_zero(kind: str, layer, positions: int) -> bool:
    """Whether a zero channel passes the layer as a zero channel (flat rows: dropout only)."""
    if kind == "Activation":
        return _keeps_zero(layer.activation)
    return kind in _PASS and (positions == 1 or kind in ("Dropout", "Identity"))


def _follow(layer, consumers, outputs, positions, followers, found) -> None:
    """Walks every path from `layer`'s output, recording followers and consumers (or raises `_Dense`)."""
    for nxt in consumers.get(id(layer), []):
        kind, inner, after = _kind(nxt), _inner(nxt), positions
        if kind in ("Dense", *_CONVS) and getattr(inner, "groups", 1) == 1:
            if kind != "Dense" and (positions != 1 or not _channels_last(inner)):
                raise _Dense(f"it feeds {kind} '{nxt.name}' in a layout tfgreen can't slice")
            found.append((inner.name, positions))
            continue
        if positions == 1 and _is_follower(kind, inner):
            followers.append(inner.name)
        elif kind == "Flatten" and positions == 1:
            shape = list(inner.input.shape)[1:-1]
            if None in shape:
                raise _Dense(f"it feeds Flatten '{nxt.name}' with unknown spatial size")
            after = int(np.prod(shape)) if shape else 1
        elif not _passes_zero(kind, inner, positions):
            join = " (a residual join)" if kind in ("Add", "Concatenate", "Subtract") else ""
            raise _Dense(f"it feeds {kind} '{nxt.name}'{join}, which tfgreen can't slice")
        if id(nxt) in outputs:
            raise _Dense(f"its channels reach the model's output through '{nxt.name}'")
        _follow(nxt, consumers, outputs, after, followers, found)


def _check_model(model) -> None:
    if type(model).__name__ not in ("Functional", "Sequential"):
        raise UnsupportedLayerError(
            message(
                "structure='channels'/'heads' rebuilds the model smaller, which needs its layer "
                f"graph, and a {type(model).__name__} model does not expose one",
                "a Functional or Sequential model (KerasHub task models rebuild themselves "
                "from one config and can't take per-layer widths)",
                "Build the model with keras.Model(inputs, outputs) or keras.Sequential, or use "
                "structure=None",
                model=model.name,
            )
        )


def channel_groups(model) -> tuple[dict[str, ChannelGroup], dict[str, str]]:
    """The layers whose output channels can be removed, and why the others can't.

    Args:
        model: A Functional or Sequential model (plain or pruned), either Keras.

    Returns:
        `({producer name: ChannelGroup}, {name of a Dense/Conv left dense: reason})`.
    """
    consumers, outputs = _graph(model)
    groups, dense = {}, {}
    for layer in model.layers:
        problem = _producer_problem(layer)
        if id(layer) in outputs and _kind(layer) in ("Dense", *_CONVS):
            problem = "its output is the model's output (the logits are never pruned)"
        if problem is not None:
            if _kind(layer) in ("Dense", *_CONVS):
                dense[_inner(layer).name] = problem
            continue
        followers, found = [], []
        try:
            _follow(layer, consumers, outputs, 1, followers, found)
            if not found:
                raise _Dense("its output reaches no layer that reads it")
        except _Dense as reason:
            dense[_inner(layer).name] = str(reason)
            continue
        name = _inner(layer).name
        groups[name] = ChannelGroup(
            name, int(_inner(layer).kernel.shape[-1]), (*followers,), (*found,)
        )
    return groups, dense


def _heads(model) -> dict[str, int]:
    mha = keras_for(model).layers.MultiHeadAttention
    return {
        _inner(layer).name: int(_inner(layer).get_config()["num_heads"])
        for layer in model.layers
        if isinstance(_inner(layer), mha)
    }


def select(model, kind: str, layers, sparsity: float) -> dict[str, bool]:
    """The top-level layers `tfgreen.prune` masks for `structure=kind`, checked.

    Args:
        model: The model to prune.
        kind: `"channels"` or `"heads"`.
        layers: `None` (every layer that can be pruned so), a list of names, or a
            predicate `layer -> bool`.
        sparsity: The final fraction of channels/heads removed per layer.

    Returns:
        `{name: False}` (the `chosen` of the pruning backend).
    """
    _check_model(model)
    if kind == "heads":
        sizes, dense = _heads(model), {}
        if not sizes:
            raise UnsupportedLayerError(
                message(
                    "structure='heads' found no MultiHeadAttention layer in the model",
                    "a model with top-level MultiHeadAttention layers",
                    "Use structure='channels' (Dense/Conv units) for this model",
                    model=model.name,
                )
            )
    else:
        groups, dense = channel_groups(model)
        sizes = {name: group.size for name, group in groups.items()}
    if layers is None or callable(layers):
        names = [n.name for n in model.layers if n.name in sizes and (layers is None or layers(n))]
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
    unknown = [name for name in names if name not in sizes]
    if unknown:
        reasons = "; ".join(f"'{n}': {dense.get(n, 'not a prunable layer')}" for n in unknown)
        raise UnsupportedLayerError(
            message(
                f"structure='{kind}' can't prune {reasons}",
                f"names among {sorted(sizes)}",
                "Leave those layers out of `layers`",
                layers=layers,
            )
        )
    for name in names:
        if pruned_count(sparsity, sizes[name]) >= sizes[name]:
            raise TfgreenValueError(
                message(
                    f"sparsity={sparsity} would remove all {sizes[name]} {kind} of '{name}'",
                    f"a sparsity that keeps at least one of the {kind}",
                    f"Pass a sparsity below {(sizes[name] - 0.5) / sizes[name]:.3f}",
                    sparsity=sparsity,
                )
            )
    left = {name: reason for name, reason in dense.items() if "logits are never" not in reason}
    if layers is None and left:
        warnings.warn(
            message(
                f"structure='channels' leaves {len(left)} layer(s) dense: "
                + "; ".join(f"'{name}': {reason}" for name, reason in left.items()),
                "each pruned layer's channels to end in layers tfgreen can slice (Dense, Conv, "
                "BatchNormalization, DepthwiseConv, Flatten, pooling)",
                "Accept them dense, or restructure the model (residual joins must keep their "
                "width)",
            ),
            UserWarning,
            stacklevel=3,
        )
    if not names:
        raise UnsupportedLayerError(
            message(
                f"structure='{kind}' found no layer whose {kind} it can remove",
                "a Dense/Conv layer that is not the model's output and feeds sliceable layers",
                "Use structure=None, or look at the reasons: "
                + "; ".join(f"'{n}': {r}" for n, r in dense.items()),
                model=model.name,
            )
        )
    return dict.fromkeys(names, False)


def kernel_axis(kind: str, path: str, rank: int) -> int:
    """The axis of a pruned kernel that indexes the groups (channels or heads).

    Dense/Conv kernels: the last (output) axis. Attention projections:
    query/key/value `(d, heads, head_dim)` axis 1, output `(heads, head_dim, d)` axis 0.
    """
    if kind == "channels":
        return rank - 1
    return 0 if path.rsplit("/", 1)[-1] == "attention_output" else 1


def _bias(layer):
    # Keras 3 keeps the variable in `bias`; a layer without bias has None.
    return getattr(layer, "bias", None)


def extra_weights(model, layer, kind: str) -> list[tuple]:
    """The non-kernel weights masked with a group: `(variable, axis)` pairs.

    The group layer's own bias (query/key/value biases of an attention
    layer), and the per-channel weights of its followers.
    """
    inner = _inner(layer)
    if kind == "heads":
        projections = (inner._query_dense, inner._key_dense, inner._value_dense)  # Keras private
        return [(_bias(dense), 0) for dense in projections if _bias(dense) is not None]
    extras = [] if _bias(inner) is None else [(_bias(inner), 0)]
    group = channel_groups(model)[0][inner.name]
    by_name = {item.name: _inner(item) for item in model.layers}
    for name in group.followers:
        follower = by_name[name]
        if _kind(follower) == "BatchNormalization":
            extras += [(v, 0) for v in (follower.gamma, follower.beta) if v is not None]
        else:
            # tf_keras names the kernel `depthwise_kernel`, Keras 3 `kernel`.
            kernel = getattr(follower, "depthwise_kernel", None)
            kernel = follower.kernel if kernel is None else kernel
            extras.append((kernel, len(kernel.shape) - 2))
            extras += [] if _bias(follower) is None else [(_bias(follower), 0)]
    return extras


def keep_vector(mask: np.ndarray, axis: int) -> np.ndarray:
    """Which groups a 0/1 mask keeps: True where any weight of the group is kept."""
    other = tuple(i for i in range(mask.ndim) if i != axis)
    return np.asarray(mask).max(axis=other) > 0


# ---------------------------------------------------------------- strip


def _flat_rows(keep: np.ndarray, positions: int, size: int) -> np.ndarray:
    """The rows of a Dense after Flatten that read the kept channels (channel axis fastest)."""
    return (np.arange(positions)[:, None] * size + keep[None, :]).reshape(-1)


def _resized(layer, out_keep: dict, head_keep: dict):
    config = layer.get_config()
    if layer.name in out_keep:
        config["units" if "units" in config else "filters"] = len(out_keep[layer.name])
    if layer.name in head_keep:
        config["num_heads"] = len(head_keep[layer.name])
    return type(layer).from_config(config)


def _sliced(value: np.ndarray, shape: tuple, keeps: dict) -> np.ndarray:
    """`value` cut down to `shape`, each shrunk axis indexed by the layer's kept indices."""
    for axis, (old, new) in enumerate(zip(value.shape, shape, strict=True)):
        if old == new:
            continue
        if "heads" in keeps:
            role = "heads"
        elif value.ndim >= 2:
            role = "out" if axis == value.ndim - 1 else "in"
        else:
            role = "out" if "out" in keeps else "in"
        value = np.take(value, keeps[role], axis=axis)
    return value


def shrink(model, keeps: dict[str, tuple[str, np.ndarray]]):
    """The physically smaller copy of a stripped model: removed channels and heads cut out.

    Args:
        model: The plain model `strip` made (same shapes as the pruned one).
        keeps: `{layer name: (kind, kept groups as a bool vector)}`.

    Returns:
        A new model of the same flavour and outputs (to float rounding),
        with fewer units/filters/heads and the next layers' inputs sliced.
    """
    keras = keras_for(model)
    groups = channel_groups(model)[0] if any(k == "channels" for k, _ in keeps.values()) else {}
    out_keep, in_keep, head_keep = {}, {}, {}
    for name, (kind, keep) in keeps.items():
        kept = np.flatnonzero(keep)
        if kind == "heads":
            head_keep[name] = kept
            continue
        group = groups[name]
        out_keep[name] = kept
        for follower in group.followers:
            in_keep[follower] = kept
        for consumer, positions in group.consumers:
            in_keep[consumer] = kept if positions == 1 else _flat_rows(kept, positions, group.size)
    smaller = keras.models.clone_model(
        model, clone_function=lambda layer: _resized(layer, out_keep, head_keep)
    )
    for old, new in zip(model.layers, smaller.layers, strict=True):
        roles = {
            role: table[old.name]
            for role, table in (("out", out_keep), ("in", in_keep), ("heads", head_keep))
            if old.name in table
        }
        values = [
            _sliced(np.asarray(w), tuple(v.shape), roles)
            for w, v in zip(old.get_weights(), new.weights, strict=True)
        ]
        new.set_weights(values)
    return smaller
