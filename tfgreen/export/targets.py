"""Device targets: what a `.tflite` file must be to run on a kind of device.

A `Target` says which quantization a device wants, the dtype of the file's
inputs and outputs, whether ops may stay in float, whether shapes must be
static (batch 1), a size budget, how close the file must stay to the Keras
model, and which checks fail the export instead of only being reported.
Six targets are built in (`targets()`); a user's own comes from a JSON file
(`Target.from_json`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from tfgreen import _validate
from tfgreen.errors import (
    TargetError,
    TfgreenFileNotFoundError,
    TfgreenTypeError,
    TfgreenValueError,
    message,
)
from tfgreen.export.checks import CHECKS
from tfgreen.quantization.ptq import INTEGER_QUANTIZATIONS, check_quantization

__all__ = ["CHECKS", "Target", "targets", "get_target", "resolve_target"]

# `CHECKS` (the registry in tfgreen.export.checks) names the checks export_tflite runs;
# a target lists in `strict` those whose failure refuses the file.
_IO = ("float32", "int8", "uint8", "int16")
_FLAGS = ("allow_float_ops", "static_shapes", "deterministic", "per_channel_dense", "c_array")


def _invalid(field: str, expected: str, value, source: str) -> TfgreenValueError:
    return TfgreenValueError(
        message(
            f"Invalid target field `{field}` in {source}",
            expected,
            f"Fix `{field}` in the target definition",
            **{field: value},
        )
    )


@dataclass(frozen=True)
class Target:
    """A device profile a `.tflite` export is converted for and checked against.

    Args:
        name: Short name, for example `"edge-tpu"`.
        quantization: Default quantization (`"float32"`, `"dynamic"`,
            `"float16"`, `"int8"`, `"int16x8"`). Defaults to `"float32"`.
        input_dtype: Dtype of the file's inputs. Defaults to `"float32"`.
        output_dtype: Dtype of the file's outputs. Defaults to `"float32"`.
        allow_float_ops: Whether ops may stay in float in an integer file.
            Defaults to `True`.
        static_shapes: Fix every input's batch axis to 1. Defaults to `False`.
        size_budget_bytes: Largest allowed file size, `None` for no limit.
            Defaults to `None`.
        min_top1_agreement: Smallest top-1 agreement with the Keras model.
            Defaults to `0.98`.
        min_cosine: Smallest mean cosine similarity of the outputs.
            Defaults to `0.99`.
        max_perplexity_ratio: For a language model, largest perplexity of
            the file over the Keras model's on the validation tokens.
            Defaults to `1.03`.
        min_next_token_agreement: For a language model, smallest fraction
            of positions where the file and the Keras model predict the same
            next token. Defaults to `0.95`.
        max_reference_lsb: Largest difference between the optimized and the
            reference kernels, in output quantization steps; `None` skips the
            check. Defaults to `None`.
        deterministic: Convert twice and require identical bytes.
            Defaults to `False`.
        per_channel_dense: In integer files, quantize Dense weights per
            output channel; `False` uses one scale per tensor (smaller files,
            the scheme every int8 runtime and NPU takes). Defaults to `False`.
        c_array: Also write the file as a C array (`.cc` + `.h`) for TFLite
            Micro. Defaults to `False`.
        strict: Names of checks (see `CHECKS`) whose failure raises
            `TargetError` instead of only being reported. Defaults to `()`.
        description: One line on the device. Defaults to `""`.

    Example:
    >>> target = targets()["edge-tpu"]
    >>> target.input_dtype, target.allow_float_ops
    ('uint8', False)
    """

    name: str
    quantization: str = "float32"
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    allow_float_ops: bool = True
    static_shapes: bool = False
    size_budget_bytes: int | None = None
    min_top1_agreement: float = 0.98
    min_cosine: float = 0.99
    max_perplexity_ratio: float = 1.03
    min_next_token_agreement: float = 0.95
    max_reference_lsb: float | None = None
    deterministic: bool = False
    per_channel_dense: bool = False
    c_array: bool = False
    strict: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self):
        self.validate()

    def validate(self, source: str = "the Target") -> Target:
        """Checks every field; raises `TfgreenValueError` naming a bad one.

        Args:
            source: Where the target came from, for the message.
                Defaults to `"the Target"`.

        Returns:
            The target itself.
        """
        if not isinstance(self.name, str) or not self.name:
            raise _invalid("name", "a non-empty string", self.name, source)
        fix = f"Fix the field in {source}"
        check_quantization(self.quantization)
        for field in ("input_dtype", "output_dtype"):
            _validate.choice(field, getattr(self, field), _IO, fix=fix)
        for field in _FLAGS:
            _validate.boolean(field, getattr(self, field), fix=fix)
        _validate.positive_int(
            "size_budget_bytes", self.size_budget_bytes, allow_none=True, example=1048576, fix=fix
        )
        for field in ("min_top1_agreement", "min_cosine"):
            _validate.fraction(field, getattr(self, field), closed=True, example=0.98, fix=fix)
        _validate.fraction(
            "min_next_token_agreement",
            self.min_next_token_agreement,
            closed=True,
            example=0.95,
            fix=fix,
        )
        _validate.number("max_perplexity_ratio", self.max_perplexity_ratio, minimum=1, fix=fix)
        _validate.number(
            "max_reference_lsb", self.max_reference_lsb, minimum=0, allow_none=True, fix=fix
        )
        if not isinstance(self.strict, tuple):
            raise _invalid("strict", "a tuple (or JSON list) of check names", self.strict, source)
        _validate.names("strict", self.strict, CHECKS, what="check")
        integer_io = self.input_dtype != "float32" or self.output_dtype != "float32"
        if integer_io and self.quantization not in INTEGER_QUANTIZATIONS:
            raise _invalid(
                "input_dtype",
                "float32 inputs/outputs unless quantization is 'int8' or 'int16x8'",
                self.input_dtype,
                source,
            )
        return self

    def to_dict(self) -> dict:
        """The target as a JSON-ready dict (the format `from_json` reads)."""
        data = dataclasses.asdict(self)
        data["strict"] = list(self.strict)
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "the target dict") -> Target:
        """Builds a target from a dict; unknown keys are refused.

        Args:
            data: Field values; `name` is required, the rest default as in `Target`.
            source: Where the dict came from, for messages. Defaults to `"the target dict"`.

        Returns:
            The `Target`.
        """
        if not isinstance(data, dict):
            raise TfgreenTypeError(
                message(
                    f"A target definition in {source} must be a JSON object",
                    'an object such as {"name": "my-board", "quantization": "int8"}',
                    "Write the target as one JSON object",
                    type=type(data).__name__,
                )
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise TfgreenValueError(
                message(
                    f"Unknown target field(s) in {source}",
                    f"only fields of tfgreen.Target: {sorted(fields)}",
                    "Remove or rename the unknown fields",
                    unknown=unknown,
                )
            )
        if "name" not in data:
            raise _invalid("name", "a non-empty string", None, source)
        values = dict(data)
        if isinstance(values.get("strict"), list):
            values["strict"] = tuple(values["strict"])
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> Target:
        """Reads a user's own target from a JSON file.

        Args:
            path: A JSON file holding one object with `Target` fields.

        Returns:
            The `Target`.

        Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "board.json").write_text('{"name": "board", "quantization": "int8"}')
        >>> Target.from_json(folder / "board.json").quantization
        'int8'
        """
        path = Path(path)
        if not path.is_file():
            raise TfgreenFileNotFoundError(
                message(
                    "The target JSON file does not exist",
                    "a path to a JSON file with Target fields, or a built-in target name",
                    f"Check the path, or use one of {sorted(_BUILTIN)}",
                    path=str(path),
                )
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TfgreenValueError(
                message(
                    "The target file is not valid JSON",
                    "one JSON object with Target fields",
                    "Fix the JSON syntax",
                    path=str(path),
                    error=str(error),
                )
            ) from error
        return cls.from_dict(data, source=str(path))


# A language model's perplexity check is strict everywhere: a collapse is never silent.
# A dynamic or integer file whose weights stayed float is refused too (`weights`).
_STRICT_FLOAT = ("io_dtypes", "perplexity", "weights")
_STRICT_INT = ("float_ops", "io_dtypes", "size", "perplexity", "weights")
_BUILTIN = {
    t.name: t
    for t in (
        Target(
            "cpu",
            description="desktop/server CPU: plain float32",
            max_perplexity_ratio=1.005,
            min_next_token_agreement=0.99,
            strict=_STRICT_FLOAT,
        ),
        Target(
            "edge-cpu",
            quantization="int8",
            min_top1_agreement=0.95,
            min_cosine=0.98,
            strict=_STRICT_FLOAT,
            description="Cortex-A / x86 edge board (Raspberry Pi, automotive Linux) with "
            "XNNPACK: int8 kernels, float I/O, float fallback allowed",
        ),
        Target(
            "edge-gpu",
            quantization="float16",
            max_perplexity_ratio=1.01,
            min_next_token_agreement=0.98,
            strict=_STRICT_FLOAT,
            description="mobile GPU delegate (Android/iOS): float16 weights, float32 I/O",
        ),
        Target(
            "edge-tpu",
            quantization="int8",
            input_dtype="uint8",
            output_dtype="uint8",
            allow_float_ops=False,
            static_shapes=True,
            size_budget_bytes=8 * 1024 * 1024,
            min_top1_agreement=0.95,
            min_cosine=0.98,
            strict=_STRICT_INT,
            description="Coral Edge TPU: every op int8, uint8 I/O, static shapes (edgetpu_compiler), "
            "fits the 8 MB on-chip cache",
        ),
        Target(
            "mcu",
            quantization="int8",
            input_dtype="int8",
            output_dtype="int8",
            allow_float_ops=False,
            static_shapes=True,
            size_budget_bytes=1024 * 1024,
            min_top1_agreement=0.95,
            min_cosine=0.98,
            c_array=True,
            strict=_STRICT_INT,
            description="Cortex-M microcontroller with TFLite Micro: every op int8, int8 I/O, "
            "static shapes, 1 MB flash, C array",
        ),
        Target(
            "vehicle-ecu",
            quantization="int8",
            input_dtype="int8",
            output_dtype="int8",
            allow_float_ops=False,
            static_shapes=True,
            size_budget_bytes=4 * 1024 * 1024,
            min_top1_agreement=0.97,
            min_cosine=0.99,
            max_reference_lsb=1.0,
            deterministic=True,
            strict=tuple(CHECKS),
            description="automotive ECU/NPU: every op int8, int8 I/O, batch 1, strict parity, "
            "reference kernels within 1 LSB, byte-identical reconversion",
        ),
    )
}


def targets() -> dict[str, Target]:
    """Returns the built-in targets by name.

    Returns:
        `{name: Target}` for `cpu`, `edge-cpu`, `edge-gpu`, `edge-tpu`, `mcu`
        and `vehicle-ecu`.

    Example:
    >>> sorted(targets())
    ['cpu', 'edge-cpu', 'edge-gpu', 'edge-tpu', 'mcu', 'vehicle-ecu']
    """
    return dict(_BUILTIN)


def get_target(target: str | Path | Target) -> Target:
    """Resolves a built-in name, a JSON file path or a `Target` to a `Target`.

    Args:
        target: A built-in name, a path to a JSON file, or a `Target`.

    Returns:
        The `Target`.

    Example:
    >>> get_target("mcu").static_shapes
    True
    """
    if isinstance(target, Target):
        return target
    if isinstance(target, str) and target in _BUILTIN:
        return _BUILTIN[target]
    if isinstance(target, (str, Path)) and (
        str(target).endswith(".json") or Path(target).is_file()
    ):
        return Target.from_json(target)
    if isinstance(target, str):
        raise TfgreenValueError(
            message(
                "Unknown target",
                f"one of {sorted(_BUILTIN)}, a path to a JSON target file, or a tfgreen.Target",
                "Run `tfgreen targets` to list the built-in targets",
                target=target,
            )
        )
    raise TfgreenTypeError(
        message(
            "`target` has the wrong type",
            "a built-in target name, a path to a JSON file, or a tfgreen.Target",
            "Pass for example target='edge-cpu'",
            target=type(target).__name__,
        )
    )


def resolve_target(target: str | Path | Target, quantization: str | None = None) -> Target:
    """The target an export runs for: `get_target(target)` with `quantization` if given.

    Args:
        target: A built-in name, a path to a JSON file, or a `Target`.
        quantization: A quantization that replaces the target's, or `None`
            to keep it. Defaults to `None`.

    Returns:
        The `Target`.

    Raises:
        TargetError: The target needs integer inputs/outputs that
            `quantization` cannot give.

    Example:
    >>> resolve_target("edge-cpu", "dynamic").quantization
    'dynamic'
    """
    profile = get_target(target)
    if quantization is None or quantization == profile.quantization:
        return profile
    check_quantization(quantization)
    integer_io = profile.input_dtype != "float32" or profile.output_dtype != "float32"
    if integer_io and quantization not in INTEGER_QUANTIZATIONS:
        raise TargetError(
            message(
                f"Target '{profile.name}' needs {profile.input_dtype}/{profile.output_dtype} "
                f"inputs/outputs, which quantization '{quantization}' cannot give",
                "quantization='int8' (or None for the target's default)",
                "Leave quantization=None, or choose a float target such as 'cpu' or 'edge-gpu'",
                quantization=quantization,
                target=profile.name,
            )
        )
    return dataclasses.replace(profile, quantization=quantization)
