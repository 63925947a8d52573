"""Writes `11_optimize.ipynb` (cells only); `python notebooks/run_all.py 11_optimize.ipynb` runs it.

Usage:
    python notebooks/make_11_optimize.py && python notebooks/run_all.py notebooks/11_optimize.ipynb
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

CELLS = [
    (
        "md",
        """# 11 · `tfgreen.optimize`: the cheapest model on a device that loses at most 1 point

The question a team shipping a model asks is not "how do I prune?" but *"what is the cheapest
model, in energy on my device, that loses at most one point of accuracy?"*. `tfgreen.optimize`
answers it with a search, not a grid: the cheap candidates first (post-training quantization:
seconds each), then one-shot pruning (Wanda, SparseGPT: no training), then pruning fine-tuned
with `fit`, then quantization-aware training. Every candidate is a checked `.tflite` export for
the target, and it is judged on **that file's** accuracy, never the Keras model's. A candidate
below the floor is rejected and ends its ladder; each fine-tune starts from what already held
the floor.""",
    ),
    (
        "code",
        """import os

# The test suite runs every notebook with TFGREEN_QUICK=1: shorter training, a small budget.
QUICK = os.environ.get("TFGREEN_QUICK") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ logs quiet

import json
import time

import keras
import matplotlib.pyplot as plt

import tfgreen

print("tfgreen", tfgreen.__version__, "| quick mode" if QUICK else "| full mode")
EPOCHS = 3 if QUICK else 10           # training of the model we start from
BUDGET = 0.5 if QUICK else None       # minutes for the digits search (None: no limit)
FINE_TUNE = 1 if QUICK else 2         # epochs of each pruning / QAT fine-tune""",
    ),
    (
        "md",
        """## 1. A digits CNN to make cheaper

`tfgreen.models.small_cnn` on scikit-learn's bundled 8x8 digits (no download), trained in float
with plain Keras 3.""",
    ),
    (
        "code",
        """(x_train, y_train), (x_test, y_test) = tfgreen.datasets.load_digits()
model = tfgreen.models.small_cnn("keras3", seed=0)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=EPOCHS, batch_size=32, verbose=0)
print("Keras accuracy", model.evaluate(x_test, y_test, verbose=0)[1])""",
    ),
    (
        "md",
        """## 2. The search

One call. `target="edge-cpu"` (an XNNPACK board: int8 kernels, float fallback allowed) takes
`dynamic`, `float16` and `int8` files; an all-integer target such as `mcu` would take `int8`
only. `objective="energy"` ranks by `tfgreen.estimate_energy`'s model estimate of joules per
inference on the target (MACs and bytes priced per device class: deterministic, so the search is
reproducible with its seed). The floor is 1 point below the float32 `.tflite` of the model as
given.""",
    ),
    (
        "code",
        """started = time.perf_counter()
res = tfgreen.optimize(model, (x_train, y_train), validation_data=(x_test, y_test),
                       target="edge-cpu", max_accuracy_drop=0.01, objective="energy",
                       budget_minutes=BUDGET, out_dir="search", epochs=FINE_TUNE, seed=0)
search_seconds = time.perf_counter() - started
print(f"{len(res.candidates)} recipes tried in {search_seconds:.0f} s; "
      f"floor: accuracy >= {res.floor['min_accuracy']:.4f}")
for c in [res.reference, *res.candidates]:
    acc = "-" if c.get("accuracy") is None else f"{c['accuracy']:.4f}"
    joules = c.get("joules_per_inference") or {}
    est = "-" if joules.get("estimate") is None else f"{joules['estimate']:.3g} J"
    print(f"#{c['id']:<2} {c['name']:34s} {c['status']:9s} acc {acc:6s} {est:>10s}  {c['reason'][:70]}")
for s in res.skipped:
    print(f"    {s['name']:34s} skipped   {s['reason']}")""",
    ),
    (
        "md",
        """## 3. The pick, measured again

`res.best` holds the path of the checked export, the recipe, its accuracy on the file, the
energy estimate and the host measurement (`tfgreen.compare`'s joules per inference, a
CodeCarbon estimate on a machine without an energy counter, labelled as such). Here we measure
the file again ourselves, and export a plain int8 file to check that the pick costs no more.""",
    ),
    (
        "code",
        """best = res.best
print("pick:", best["name"], "->", best["path"])
print(json.dumps({k: best[k] for k in ("accuracy", "size_bytes", "latency_ms")}, indent=1))
print(json.dumps(best["joules_per_inference"], indent=1)[:600])
again = tfgreen.compare({"reference": res.reference["path"], "pick": best["path"]},
                        (x_test, y_test), runs=5, energy=False)
remeasured = {row["model"]: row["accuracy"] for row in again.rows}
plain = tfgreen.export_tflite(model, "plain_int8.tflite", target="edge-cpu",
                              calibration_data=x_train)
plain_joules = tfgreen.estimate_energy(plain.path, target="edge-cpu").joules_per_inference
print(f"re-measured: reference {remeasured['reference']:.4f}, pick {remeasured['pick']:.4f}; "
      f"plain int8 {plain_joules:.3g} J vs pick {best['joules_per_inference']['estimate']:.3g} J")""",
    ),
    (
        "md",
        """## 4. The Pareto front and the report

`res.pareto` names the candidates no other beats on both accuracy and estimated energy.
`res.report(dir)` writes `optimize.md` (the pick, every candidate with its figures and why it was
kept or rejected, what was skipped), three figures and the host measurement. Unstructured zeros
stay multiplied in a dense int8 kernel, so pruning shows in the gzip size of a file, not in its
energy estimate: on this model the cheapest file in energy is an int8 one, and the search says
so instead of claiming a saving.""",
    ),
    (
        "code",
        """written = res.report("report")
print("Pareto front:", res.pareto)
print(sorted(written))
rows = [res.reference, *[c for c in res.candidates if c.get("path")]]
fig, ax = plt.subplots(figsize=(6.5, 4))
for c in rows:
    color = "tab:green" if c["name"] in res.pareto else "tab:gray"
    ax.scatter(c["joules_per_inference"]["estimate"], c["accuracy"], color=color)
    ax.annotate(f"#{c['id']}", (c["joules_per_inference"]["estimate"], c["accuracy"]), fontsize=8)
ax.axhline(res.floor["min_accuracy"], color="tab:red", linestyle="--", label="floor")
ax.set_xscale("log")
ax.set_xlabel("energy per inference on edge-cpu, model estimate (J)")
ax.set_ylabel("accuracy of the .tflite file")
ax.set_title("digits CNN: every candidate, Pareto front in green")
ax.legend()
plt.show()""",
    ),
    (
        "md",
        """## 5. A language model: the floor is a perplexity ratio

For a causal language model (token ids in, next-token logits out) the same call takes token-id
windows and a `max_perplexity_ratio` against the float32 file. Full int8 of a transformer
collapses in the converter; the export's own strict perplexity check refuses that file, and the
search records the refusal as the reason.""",
    ),
    (
        "code",
        """data = tfgreen.datasets.load_text(seq_len=32, vocab_size=512)
x = data.train[:1024 if QUICK else 2048]
y, weights = tfgreen.datasets.next_token_targets(x)
lm = tfgreen.models.tiny_gpt(vocab_size=512, seq_len=32, embed_dim=32, ff_dim=64)
lm.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
lm.fit(x, y, sample_weight=weights, batch_size=32, epochs=2, verbose=0)
val = data.val[:64 if QUICK else 256]
lm_res = tfgreen.optimize(lm, x, validation_data=val, max_perplexity_ratio=1.03,
                          budget_minutes=0.3 if QUICK else None, out_dir="lm_search", epochs=1)
for c in lm_res.candidates:
    ratio = "-" if c.get("perplexity_ratio") is None else f"{c['perplexity_ratio']:.4f}"
    print(f"#{c['id']:<2} {c['name']:34s} {c['status']:9s} ratio {ratio:7s} {c['reason'][:80]}")
lm_ratio = tfgreen.perplexity(lm_res.best["path"], val) / tfgreen.perplexity(lm, val)
print("pick:", lm_res.best["name"], f"re-measured perplexity ratio {lm_ratio:.4f}")""",
    ),
    (
        "md",
        """## 6. tf_keras

The same call on a tf_keras model: pruning goes through tfmot's `prune_low_magnitude`, QAT
through tfmot's `quantize_apply`, the export and the checks are the same. Here on a small
budget.""",
    ),
    (
        "code",
        """tk_model = tfgreen.models.small_cnn("tf_keras", seed=0)
tk_model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
tk_model.fit(x_train, y_train, epochs=EPOCHS, batch_size=32, verbose=0)
tk_res = tfgreen.optimize(tk_model, (x_train, y_train), validation_data=(x_test, y_test),
                          budget_minutes=0.3 if QUICK else 2.0, out_dir="tk_search",
                          epochs=1, verbose=False)
print("flavour:", type(tk_model).__module__.split(".")[0], "| tried",
      [c["name"] for c in tk_res.candidates])
print("pick:", tk_res.best["name"], f"accuracy {tk_res.best['accuracy']:.4f}, floor "
      f"{tk_res.floor['min_accuracy']:.4f}")""",
    ),
    ("md", "## Summary"),
    (
        "code",
        """summary = {
    "quick": QUICK,
    "search_seconds": search_seconds,
    "recipes_tried": len({c["name"] for c in res.candidates}),
    "stages": sorted({c["stage"] for c in res.candidates}),
    "floor": res.floor["min_accuracy"],
    "pick": best["name"],
    "pick_accuracy": best["accuracy"],
    "pick_remeasured_accuracy": remeasured["pick"],
    "reference_remeasured_accuracy": remeasured["reference"],
    "pick_joules_estimate": best["joules_per_inference"]["estimate"],
    "pick_joules_measured": best["joules_per_inference"]["measured"],
    "plain_int8_joules_estimate": plain_joules,
    "pick_on_pareto": best["name"] in res.pareto,
    "report_files": sorted(written),
    "lm_pick": lm_res.best["name"],
    "lm_pick_ratio": lm_ratio,
    "tf_keras_pick_accuracy": tk_res.best["accuracy"],
    "tf_keras_floor": tk_res.floor["min_accuracy"],
}
print(json.dumps(summary))""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The notebook, without outputs."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    notebook.metadata["tfgreen"] = {
        "requires": [
            "datasets",
            "models",
            "optimize",
            "compare",
            "export_tflite",
            "estimate_energy",
            "perplexity",
        ]
    }
    for kind, source in CELLS:
        cell = (nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell)(
            source
        )
        notebook.cells.append(cell)
    notebook.cells[-1].metadata["tags"] = ["summary"]
    return notebook


if __name__ == "__main__":
    nbformat.write(build(), HERE / "11_optimize.ipynb")
