"""The `.tflite` core: read a file (pure Python), run it (LiteRT, in-process or isolated), inspect, bench.

Everything that reads or runs a `.tflite` file goes through this package:
export, energy, compare and the command line use it, and it imports none of
them. Nothing heavy is imported here.
"""

__all__: list[str] = []
