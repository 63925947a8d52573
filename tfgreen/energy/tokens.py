"""Tokens per second and joules per token of a generation file (`generate=True`), with and without the KV cache.

A file exported with `generate=True` has three signatures
(`tfgreen.export.generation`), timed with one thread:

- prefill with the cache: `prefill` over its window of `max_length` tokens;
- prefill without the cache: `call`, the plain full-window forward pass;
- decode with the cache: one `decode` step, one generated token;
- decode without the cache: a device without a cache recomputes the whole
  (fixed) window for every generated token, one `call`.

Each is timed as `TfliteRunner.timed_call` times a file: inputs set once,
then the signature's invocation alone, as on a device (`decode_step_ms`
adds what a Python loop pays per token: the signature runner setting the
inputs and copying the logits and cache out).

Energy is measured on the same calls, interleaved, with the host power
model every other energy figure uses (`tfgreen.energy.inference`: CodeCarbon
in process mode, the median of `repeats`, the range as spread). Without
hardware counters CodeCarbon estimates from CPU TDP and load, and `method`
says `"estimate"`. Joules per prompt token is a prefill's joules over its
window; joules per generated token is one decode step's. The carbon
break-even in tokens is the training energy of a row over the energy per
generated token it saves against the baseline row, counted from the
saving's lower bound (as `tfgreen.energy.savings` does per inference).

Example:
```python
figures = token_figures("out/lm.tflite", energy=True)
figures["decode_tokens_per_second"], figures["cache_speedup"], figures["joules_per_generated_token"]
```
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tfgreen._timing import JOULES_PER_KWH, time_calls
from tfgreen._validate import number, positive_int

__all__ = ["token_figures", "compare_columns", "break_even_tokens", "describe"]


def _calls(data: bytes, verified: bool, num_threads: int) -> tuple[dict, int, int]:
    """One signature-runner call per figure, in this process after a child survived the file."""
    from tfgreen._adapters.litert import signature_invoke
    from tfgreen.tflite.decode import CALL, DECODE, PREFILL, layout
    from tfgreen.tflite.isolated import IsolatedRunner
    from tfgreen.tflite.runner import TfliteRunner

    max_length, _ = layout(data)
    if not verified:  # a crash of LiteRT on this file kills the child, not the caller
        child = IsolatedRunner(data, num_threads=num_threads)
        try:
            child.generate(np.zeros(1, "int32"), 2)
        finally:
            child.close()
    interpreter = TfliteRunner(data, num_threads=num_threads).interpreter
    prefill, decode, call = (interpreter.get_signature_runner(k) for k in (PREFILL, DECODE, CALL))
    window = int(call.get_input_details()["token_ids"]["shape"][1])
    cache = prefill(token_ids=np.zeros((1, max_length), "int32"))["cache"]
    token, index = np.zeros((1, 1), "int32"), np.array(max_length // 2, "int32")
    prompt, full = np.zeros((1, max_length), "int32"), np.zeros((1, window), "int32")
    calls = {
        "prefill": signature_invoke(prefill, token_ids=prompt),
        "decode": signature_invoke(decode, token=token, index=index, cache=cache),
        "call": signature_invoke(call, token_ids=full),
        # one step as tfgreen.generate runs it from Python: inputs in, outputs out
        "decode_step": lambda: decode(token=token, index=index, cache=cache),
    }
    return calls, max_length, window


def _read(tflite) -> tuple[bytes, bool] | None:
    from tfgreen.tflite.decode import DECODE, PREFILL, signatures
    from tfgreen.tflite.read import existing_tflite
    from tfgreen.tflite.verify import check_manifest

    if isinstance(tflite, (bytes, bytearray)):
        data, verified = bytes(tflite), False
    else:
        path = existing_tflite(tflite)
        data = path.read_bytes()
        verified = check_manifest(path, data) == "ok"
    found = signatures(data)
    return (data, verified) if PREFILL in found and DECODE in found else None


def token_figures(
    tflite: str | Path | bytes,
    runs: int = 50,
    energy: bool = False,
    seconds: float = 1.0,
    country_iso_code: str = "DEU",
    repeats: int = 3,
    num_threads: int = 1,
) -> dict | None:
    """Tokens per second, and with `energy` joules per token, of a generation file.

    Args:
        tflite: A `.tflite` path or its bytes.
        runs: Timed calls of each signature. Defaults to `50`.
        energy: Also measure joules per token (about `3 * repeats * seconds`).
            Defaults to `False`.
        seconds: Length of each energy measurement. Defaults to `1.0`.
        country_iso_code: Grid country for CO2. Defaults to `"DEU"`.
        repeats: Energy measurements per signature. Defaults to `3`.
        num_threads: LiteRT threads. Defaults to `1`.

    Returns:
        `None` for a file without `prefill`/`decode` signatures; else a dict:
        `max_length`, `window`, `prefill_ms`, `decode_ms`, `call_ms` (p50 of
        the invocation), `decode_step_ms` (p50 of a Python decode step),
        `prefill_tokens_per_second` / `prefill_no_cache_tokens_per_second`,
        `decode_tokens_per_second` / `decode_no_cache_tokens_per_second`,
        `cache_speedup` (decode time without the cache over with it), and
        with `energy`: `joules_per_prompt_token`,
        `joules_per_generated_token` (with `_min`/`_max`),
        `joules_per_generated_token_no_cache`, `co2_kg_per_generated_token`,
        `method` (`"measured"` or `"estimate"`) and `method_detail`.
    """
    positive_int("runs", runs, example=50)
    positive_int("repeats", repeats, example=3)
    positive_int("num_threads", num_threads, example=1)
    number("seconds", seconds, minimum=0, exclusive_minimum=True, example=1.0)
    read = _read(tflite)
    if read is None:
        return None
    calls, max_length, window = _calls(*read, num_threads)
    ms = {name: time_calls(call, runs=runs)["p50"] for name, call in calls.items()}
    figures = {
        "max_length": max_length,
        "window": window,
        "prefill_ms": ms["prefill"],
        "decode_ms": ms["decode"],
        "call_ms": ms["call"],
        "decode_step_ms": ms["decode_step"],
        "prefill_tokens_per_second": max_length * 1000.0 / ms["prefill"],
        "prefill_no_cache_tokens_per_second": window * 1000.0 / ms["call"],
        "decode_tokens_per_second": 1000.0 / ms["decode"],
        "decode_no_cache_tokens_per_second": 1000.0 / ms["call"],
        "cache_speedup": ms["call"] / ms["decode"],
    }
    if energy:
        from tfgreen.energy.inference import _measure  # the loop every energy figure uses
        from tfgreen.energy.tracker import check_country

        # each loop a timer, as InferenceLoop.time is: time_calls(call, runs=, warmup=, seconds=)
        loops = {k: functools.partial(time_calls, calls[k]) for k in ("prefill", "decode", "call")}
        measured, method, detail = _measure(
            loops, None, seconds, repeats, check_country(country_iso_code)
        )
        decode = measured["decode"]
        figures.update(
            joules_per_prompt_token=measured["prefill"]["joules_per_inference"] / max_length,
            joules_per_generated_token=decode["joules_per_inference"],
            joules_per_generated_token_min=decode["joules_min"],
            joules_per_generated_token_max=decode["joules_max"],
            joules_per_generated_token_no_cache=measured["call"]["joules_per_inference"],
            co2_kg_per_generated_token=decode["co2_kg_per_inference"],
            method=method,
            method_detail=detail,
        )
    return figures


def compare_columns(tflite: bytes, runs: int, energy) -> dict:
    """The generation columns of a `tfgreen.compare` row (empty for other files).

    Args:
        tflite: The file's bytes.
        runs: Timed calls per signature.
        energy: `None`, or `(seconds, country, repeats)` as `compare` measures energy.

    Returns:
        `decode_tokens_per_second`, `decode_no_cache_tokens_per_second`,
        `prefill_tokens_per_second`, `cache_speedup`, and with energy
        `joules_per_generated_token` (+ `_min`/`_max`) and
        `joules_per_prompt_token`.
    """
    seconds, country, repeats = energy if energy is not None else (1.0, "DEU", 1)
    figures = token_figures(
        tflite,
        runs=runs,
        energy=energy is not None,
        seconds=seconds,
        country_iso_code=country,
        repeats=repeats,
    )
    if figures is None:
        return {}
    keys = (
        "decode_tokens_per_second",
        "decode_no_cache_tokens_per_second",
        "prefill_tokens_per_second",
        "cache_speedup",
        "joules_per_generated_token",
        "joules_per_generated_token_min",
        "joules_per_generated_token_max",
        "joules_per_prompt_token",
    )
    return {k: figures[k] for k in keys if k in figures}


def break_even_tokens(rows: list[dict], baseline: str) -> None:
    """Writes `joules_per_generated_token` and `break_even_tokens` into LM comparison rows.

    A row without a KV cache (a plain file, a Keras model) recomputes its
    window for every generated token: its joules per generated token is its
    `joules_per_inference`. `break_even_tokens` is the row's training energy
    over the saving per generated token against `baseline`, taken at its
    lower bound (baseline's lowest measurement minus the row's highest);
    `None` where that is not above zero or the training energy is unknown.

    Args:
        rows: `tfgreen.compare` rows; changed in place.
        baseline: Name of the baseline row.
    """
    for row in rows:
        if row.get("joules_per_generated_token") is None and row.get("joules_per_inference"):
            row["joules_per_generated_token"] = row["joules_per_inference"]
            row["joules_per_generated_token_min"] = row.get("joules_min")
            row["joules_per_generated_token_max"] = row.get("joules_max")
        row.setdefault("joules_per_generated_token", None)
        row["break_even_tokens"] = None
    base = next(r for r in rows if r["model"] == baseline)
    if base["joules_per_generated_token"] is None:
        return
    low = base.get("joules_per_generated_token_min") or base["joules_per_generated_token"]
    for row in rows:
        high = row.get("joules_per_generated_token_max") or row["joules_per_generated_token"]
        if row is base or high is None or not row.get("training_kwh"):
            continue
        if low - high > 0:
            row["break_even_tokens"] = row["training_kwh"] * JOULES_PER_KWH / (low - high)


def describe(figures: dict) -> list[str]:
    """Lines for `tfgreen bench`: tokens/s with and without the cache, and J/token.

    Args:
        figures: What `token_figures` returned.

    Returns:
        Printable lines.
    """
    lines = [
        f"generation: KV cache of {figures['max_length']} positions (prefill/decode signatures)",
        f"  prefill  {figures['prefill_tokens_per_second']:.1f} tokens/s with the cache, "
        f"{figures['prefill_no_cache_tokens_per_second']:.1f} without (full-window call)",
        f"  decode   {figures['decode_tokens_per_second']:.1f} tokens/s with the cache, "
        f"{figures['decode_no_cache_tokens_per_second']:.1f} without (window recomputed per "
        f"token): {figures['cache_speedup']:.2f}x",
        f"  one decode step from Python (inputs in, logits and cache out): "
        f"{figures['decode_step_ms']:.4f} ms",
    ]
    if "joules_per_generated_token" in figures:
        label = "estimate" if figures["method"] != "measured" else "measured"
        lines.append(
            f"  energy ({label}, host): {figures['joules_per_generated_token']:.3g} J per "
            f"generated token ({figures['joules_per_generated_token_no_cache']:.3g} J without "
            f"the cache), {figures['joules_per_prompt_token']:.3g} J per prompt token"
        )
    return lines
