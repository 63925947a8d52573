"""Reads a manifest (`<file>.tflite.json`) defensively and checks a file against it.

A manifest is untrusted input like the model beside it: it is read only if
it is a regular file of at most 1 MiB, its JSON may nest at most 64 levels,
and the fields relied upon are checked for type and range (`sha256`: 64 hex
digits, `size_bytes`: an integer in [0, 2**40), `extra_files`: names to
SHA-256). Anything else is refused with one `TfliteFileError`, never an
`OverflowError`, `TypeError` or `RecursionError`.

The in-process fast path (`tfgreen.tflite.isolated.vetted_runner`) is for
files tfgreen wrote itself: `export_tflite` records the sha256 of every file
it wrote (after running it in a child in its checks) with `record_export`,
and `is_verified` is true only for those bytes, in this process. A manifest
on disk can be written by anyone, so a matching one alone is not enough:
the file runs in a child process then.

Example:
```python
import json, tempfile, pathlib
folder = pathlib.Path(tempfile.mkdtemp())
_ = (folder / "m.tflite.json").write_text(json.dumps({"size_bytes": 1e400}))
try:
    read_manifest(folder / "m.tflite.json")
except TfliteFileError as error:
    print(str(error)[:44])
# The manifest is not a tfgreen manifest: size
```
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from tfgreen._io import read_regular_file
from tfgreen.errors import TfliteFileError, message

__all__ = [
    "MAX_MANIFEST_BYTES",
    "read_manifest",
    "check_manifest",
    "is_verified",
    "manifest_path",
    "record_export",
]

MAX_MANIFEST_BYTES = 1 << 20
_MAX_DEPTH = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_WRITTEN: set[str] = set()


def manifest_path(path: str | Path) -> Path:
    """The manifest written beside `path`: `<path>.json`."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _refuse(path: Path, why: str, **received) -> TfliteFileError:
    return TfliteFileError(
        message(
            f"The manifest is not a tfgreen manifest: {why}",
            "the JSON written by tfgreen.export_tflite (sha256, size_bytes, extra_files)",
            "Re-export the model, or remove the stale manifest",
            manifest=str(path),
            **received,
        )
    )


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in _STRINGS.sub('""', text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_manifest(path: str | Path) -> dict:
    """Reads and checks a manifest file.

    Args:
        path: The manifest (`<file>.tflite.json`).

    Returns:
        The manifest as a dict, with `sha256`, `size_bytes` and
        `extra_files` checked.

    Raises:
        TfliteFileError: The manifest is too large, too deep, not JSON or
            has fields of the wrong type or range.
    """
    path = Path(path)
    raw = read_regular_file(path, "manifest", limit=MAX_MANIFEST_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(path, "it is not UTF-8 text") from None
    if _depth(text) > _MAX_DEPTH:
        raise _refuse(path, f"its JSON nests deeper than {_MAX_DEPTH} levels")
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError):
        raise _refuse(path, "it is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise _refuse(path, "it is not a JSON object", kind=type(manifest).__name__)
    sha256, size = manifest.get("sha256"), manifest.get("size_bytes")
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
        raise _refuse(path, "sha256 is not 64 hex digits", sha256=sha256)
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 1 << 40:
        raise _refuse(path, "size_bytes is not an integer in [0, 2**40)", size_bytes=size)
    extra = manifest.get("extra_files", {})
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _HEX64.fullmatch(v) for k, v in extra.items()
    ):
        raise _refuse(path, "extra_files is not a map of file names to sha256")
    return manifest


def check_manifest(path: str | Path, data: bytes) -> str:
    """Checks a file's bytes against the manifest beside it.

    Every file the manifest names (`extra_files`, e.g. the C array) must
    match too, so a set mixed from two exports is refused.

    Args:
        path: The `.tflite` file the bytes were read from.
        data: Its bytes.

    Returns:
        `"ok"`, or `"missing"` when there is no manifest.

    Raises:
        TfliteFileError: The manifest is malformed, or the file (or one of
            the set) does not match it.
    """
    path = Path(path)
    where = manifest_path(path)
    if not where.exists() and not where.is_symlink():
        return "missing"
    manifest = read_manifest(where)
    sha256 = hashlib.sha256(data).hexdigest()
    if (manifest["sha256"], manifest["size_bytes"]) != (sha256, len(data)):
        raise TfliteFileError(
            message(
                "The .tflite file does not match its manifest: it was changed or corrupted",
                f"sha256={manifest['sha256'][:16]}... and size_bytes={manifest['size_bytes']}",
                "Copy the file again from the export, or re-export it",
                sha256=sha256[:16] + "...",
                size_bytes=len(data),
            )
        )
    for name, expected in manifest.get("extra_files", {}).items():
        other = path.with_name(Path(name).name)
        actual = (
            hashlib.sha256(read_regular_file(other, "export file")).hexdigest()
            if other.exists()
            else None
        )
        if actual != expected:
            raise TfliteFileError(
                message(
                    "A file of the export does not match the manifest: the set is mixed from "
                    "two exports or was changed",
                    f"{other.name} with sha256={expected[:16]}...",
                    "Re-export the model, or copy the whole set again",
                    file=str(other),
                    sha256=None if actual is None else actual[:16] + "...",
                )
            )
    return "ok"


def record_export(sha256: str) -> None:
    """Records that this process exported (and wrote) a file of this sha256 itself."""
    _WRITTEN.add(str(sha256))


def is_verified(data: bytes) -> bool:
    """Whether this process exported these bytes itself (`record_export`)."""
    return hashlib.sha256(data).hexdigest() in _WRITTEN
