"""Device targets: what a `.tflite` file must be to run on a kind of device.

A `Target` says which quantization a device wants, the dtype of the file's
inputs and outputs, whether ops may stay in float, whether shapes must be
static (batch 1), a size budget, how close the file must stay to the Keras
model, and which checks fail the export instead of only being reported.
Six targets are built in (`targets()`); a user's own comes from a JSON file
(`Target.from_json`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from tfgreen.errors import TfgreenFileNotFoundError, TfgreenTypeError, TfgreenValueError, message
from tfgreen.quantization.ptq import check_quantization

__all__ = ["CHECKS", "Target", "targets", "get_target", "add_arguments", "run"]

# Checks export_tflite runs; a target lists in `strict` those that fail the export.
CHECKS = ("float_ops", "io_dtypes", "parity", "size", "reference_kernels", "deterministic")
_IO = ("float32", "int8", "uint8", "int16")


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
    >>> target = tfgreen.targets()["edge-tpu"]
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
        check_quantization(self.quantization)
        for field in ("input_dtype", "output_dtype"):
            if getattr(self, field) not in _IO:
                raise _invalid(field, f"one of {_IO}", getattr(self, field), source)
        for field in (
            "allow_float_ops",
            "static_shapes",
            "deterministic",
            "per_channel_dense",
            "c_array",
        ):
            if not isinstance(getattr(self, field), bool):
                raise _invalid(field, "true or false", getattr(self, field), source)
        budget = self.size_budget_bytes
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0
        ):
            raise _invalid("size_budget_bytes", "a positive integer or null", budget, source)
        for field in ("min_top1_agreement", "min_cosine"):
            value = getattr(self, field)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value <= 1
            ):
                raise _invalid(field, "a number in [0, 1]", value, source)
        lsb = self.max_reference_lsb
        if lsb is not None and (
            isinstance(lsb, bool) or not isinstance(lsb, (int, float)) or lsb < 0
        ):
            raise _invalid("max_reference_lsb", "a number >= 0 or null", lsb, source)
        if not isinstance(self.strict, tuple) or any(c not in CHECKS for c in self.strict):
            raise _invalid("strict", f"a list of check names from {CHECKS}", self.strict, source)
        integer_io = self.input_dtype != "float32" or self.output_dtype != "float32"
        if integer_io and self.quantization not in ("int8", "int16x8"):
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
        >>> Path("board.json").write_text('{"name": "board", "quantization": "int8"}')
        >>> Target.from_json("board.json").quantization
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


_STRICT_INT = ("float_ops", "io_dtypes", "size")
_BUILTIN = {
    t.name: t
    for t in (
        Target(
            "cpu",
            description="desktop/server CPU: plain float32",
            strict=("io_dtypes",),
        ),
        Target(
            "edge-cpu",
            quantization="int8",
            min_top1_agreement=0.95,
            min_cosine=0.98,
            strict=("io_dtypes",),
            description="Cortex-A / x86 edge board (Raspberry Pi, automotive Linux) with "
            "XNNPACK: int8 kernels, float I/O, float fallback allowed",
        ),
        Target(
            "edge-gpu",
            quantization="float16",
            strict=("io_dtypes",),
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
            strict=CHECKS,
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
    >>> sorted(tfgreen.targets())
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `tfgreen targets` arguments."""
    parser.add_argument("--json", action="store_true", help="print the targets as JSON")


def run(args: argparse.Namespace) -> int:
    """Prints the built-in targets as a table (or JSON); returns 0."""
    from tfgreen.report import markdown_table

    if args.json:
        print(json.dumps({n: t.to_dict() for n, t in _BUILTIN.items()}, indent=2))
        return 0
    rows = [
        {
            "target": t.name,
            "quantization": t.quantization,
            "io": f"{t.input_dtype}/{t.output_dtype}",
            "float ops": "allowed" if t.allow_float_ops else "no",
            "shapes": "batch 1" if t.static_shapes else "dynamic",
            "budget": f"{t.size_budget_bytes // 1024} KiB" if t.size_budget_bytes else None,
            "strict checks": ",".join(t.strict) or None,
        }
        for t in _BUILTIN.values()
    ]
    print(markdown_table(rows))
    return 0
