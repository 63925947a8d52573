"""Runs the cluster example of docs/distributed.md as one worker (run by the harness).

Usage: python docs_example.py DOCS_MD

Executes the first ```python block of the guide with `x`, `y` set to bundled
digits, then reports the figures it produced.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from _common import digits_flat, emit

text = Path(sys.argv[1]).read_text()
code = re.search(r"```python\n(.*?)```", text, flags=re.S).group(1)
code = "\n".join(line[3:] if line.startswith("   ") else line for line in code.splitlines())
(x, y), _ = digits_flat()
namespace = {"x": x, "y": y}
exec(compile(code, sys.argv[1], "exec"), namespace)
emit(
    {
        "chief": namespace["is_chief"](namespace["strategy"]),
        "energy_kwh": namespace["tracker"].energy_kwh,
        "worker_energy_kwh": namespace["tracker"].worker_energy_kwh,
        "sparsity": namespace["tfgreen"].sparsity(namespace["slim"]),
    }
)
