"""The export manifest (`<path>.json`) and the all-or-nothing write of an export's files.

The manifest records what was exported and checked: sha256 and size (relied
upon by the device kit), target, quantization, versions, calibration
fingerprint, check results and creation time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tfgreen._io import atomic_write_bytes

__all__ = ["versions", "to_bytes", "write_all"]


def versions(flavor: str) -> dict:
    """Versions of tfgreen, TensorFlow, LiteRT and both Kerases, plus the model's flavour."""
    from importlib import metadata

    import tensorflow as tf

    import tfgreen

    versions = {"tfgreen": tfgreen.__version__, "tensorflow": tf.__version__}
    for name, dist in (
        ("ai_edge_litert", "ai-edge-litert"),
        ("keras", "keras"),
        ("tf_keras", "tf-keras"),
    ):
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["model_flavor"] = flavor
    return versions


def write_all(files: dict[Path, bytes]) -> None:
    """Stages every file under a hidden name, then renames them into place (manifest last)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for final, data in files.items():
            staging = final.with_name(f".{final.name}.tfgreen-staging")
            atomic_write_bytes(staging, data)
            staged.append((staging, final))
        for staging, final in staged:
            os.replace(staging, final)
    finally:
        for staging, _ in staged:
            if staging.exists():
                staging.unlink()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_bytes(manifest: dict) -> bytes:
    """Serializes a manifest as indented UTF-8 JSON."""
    return (json.dumps(manifest, indent=2, default=_json_default) + "\n").encode("utf-8")
