"""Export to `.tflite` for device targets: convert, run the target's checks, write.

Nothing heavy is imported here; `tfgreen.export_tflite`, `tfgreen.Target`,
`tfgreen.targets` and `tfgreen.inspect_tflite` load their modules lazily.
"""

__all__: list[str] = []
