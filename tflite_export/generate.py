#!/usr/bin/env python3
"""Generates text on the device from a tfgreen `generate=True` export: numpy + LiteRT only.

Usage:
    python generate.py lm.tflite --prompt-ids 464,611,2643 [--max-new-tokens 32]
    python generate.py lm.tflite --tokenizer tokenizer.json --prompt "The if statement"

The file must have been exported with `tfgreen.export_tflite(..., generate=True)`:
its `prefill` signature runs the prompt once and returns the KV cache, then
each new token is one `decode` call. Decoding is greedy (argmax). With
`--tokenizer` (a Hugging Face `tokenizer.json`, read with the `tokenizers`
package) the prompt is text and the output is decoded too.

As `run_tflite.py` does, the file's sha256 and size are checked against its
manifest first (exit code 2 on a mismatch); with `--no-verify` the file runs
in a child process, so a LiteRT crash is one line. Prints the generated ids,
the text with a tokenizer, and the decode speed. Exit codes: 0 ok, 2 bad
input or hash mismatch.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_tflite import KitError, load_interpreter, read_regular, verify  # noqa: E402

__all__ = ["greedy", "main"]


def _signatures(interpreter) -> tuple[object, object, int, int]:
    found = interpreter.get_signature_list()
    if "prefill" not in found or "decode" not in found:
        raise KitError(
            f"the file has no prefill/decode signatures (found {sorted(found) or 'none'}); "
            "export the language model with tfgreen.export_tflite(..., generate=True)"
        )
    prefill = interpreter.get_signature_runner("prefill")
    decode = interpreter.get_signature_runner("decode")
    length = int(prefill.get_input_details()["token_ids"]["shape"][1])
    vocab = int(decode.get_output_details()["logits"]["shape"][-1])
    return prefill, decode, length, vocab


def greedy(interpreter, prompt: np.ndarray, max_new_tokens: int, stop_id=None) -> tuple:
    """Greedy decoding with the KV cache; returns (new ids, seconds per decode step)."""
    prefill, decode, length, vocab = _signatures(interpreter)
    if not 1 <= len(prompt) <= length or len(prompt) + max_new_tokens - 1 > length:
        raise KitError(
            f"the prompt ({len(prompt)} ids) plus {max_new_tokens} new tokens do not fit the "
            f"KV cache of {length} positions (need 1 <= prompt and prompt + new - 1 <= {length})"
        )
    if prompt.min() < 0 or prompt.max() >= vocab:
        raise KitError(f"prompt ids must lie in [0, {vocab}); got {prompt.min()}..{prompt.max()}")
    window = np.zeros((1, length), dtype="int32")
    window[0, : len(prompt)] = prompt
    out = prefill(token_ids=window)
    cache, logits, tokens, steps = out["cache"], out["logits"][0, len(prompt) - 1], [], []
    for step in range(max_new_tokens):
        token = int(np.argmax(logits))
        tokens.append(token)
        if step == max_new_tokens - 1 or token == stop_id:
            break
        start = time.perf_counter()
        out = decode(
            token=np.array([[token]], dtype="int32"),
            index=np.array(len(prompt) + step, dtype="int32"),
            cache=cache,
        )
        steps.append(time.perf_counter() - start)
        cache, logits = out["cache"], out["logits"][0]
    return tokens, (float(np.median(steps)) if steps else None)


def _tokenizer(path: Path | None):
    if path is None:
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError as error:
        raise KitError(
            "--tokenizer needs the tokenizers package (pip install tokenizers)"
        ) from error
    try:
        return Tokenizer.from_str(read_regular(path, "tokenizer file").decode("utf-8"))
    except Exception as error:  # noqa: BLE001 - tokenizers raises its own kinds
        raise KitError(
            f"{path} is not a tokenizer.json: {str(error).splitlines()[0][:120]}"
        ) from None


def _prompt(args, tokenizer) -> np.ndarray:
    if (args.prompt is None) == (args.prompt_ids is None):
        raise KitError("pass either --prompt-ids 1,2,3 or --prompt TEXT (with --tokenizer)")
    if args.prompt is not None:
        if tokenizer is None:
            raise KitError("--prompt needs --tokenizer tokenizer.json")
        return np.asarray(tokenizer.encode(args.prompt).ids, dtype="int64")
    try:
        return np.asarray([int(i) for i in args.prompt_ids.split(",") if i.strip()], dtype="int64")
    except ValueError:
        raise KitError(
            f"--prompt-ids must be comma-separated integers: {args.prompt_ids!r}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Greedy generation with LiteRT (no TensorFlow).")
    parser.add_argument("model", type=Path)
    parser.add_argument("--prompt-ids", help="comma-separated token ids")
    parser.add_argument("--prompt", help="prompt text (needs --tokenizer)")
    parser.add_argument("--tokenizer", type=Path, help="a Hugging Face tokenizer.json")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--stop-id", type=int, help="stop after generating this id")
    parser.add_argument("--manifest", type=Path, help="default: MODEL.json")
    parser.add_argument("--no-verify", action="store_true", help="skip the sha256 check")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.max_new_tokens < 1 or args.threads < 1:
            raise KitError("--max-new-tokens and --threads must be >= 1")
        tokenizer = _tokenizer(args.tokenizer)
        prompt = _prompt(args, tokenizer)
        if args.no_verify:
            content = read_regular(args.model, "model file")
            if not os.environ.get("_TFGREEN_KIT_CHILD"):
                return _run_in_child(argv)
        else:
            content = verify(
                args.model, args.manifest or args.model.with_name(args.model.name + ".json")
            )
        interpreter = load_interpreter(content, args.threads)
        tokens, step = greedy(interpreter, prompt, args.max_new_tokens, args.stop_id)
    except KitError as error:
        print(f"generate: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as error:
        print(
            f"generate: error: {(str(error).splitlines() or [type(error).__name__])[0]}",
            file=sys.stderr,
        )
        return 2
    print(f"verified  {'skipped' if args.no_verify else 'sha256 matches manifest'}")
    print(f"prompt    {len(prompt)} ids")
    print(f"generated {','.join(str(t) for t in tokens)}")
    if tokenizer is not None:
        print(f"text      {tokenizer.decode(tokens, skip_special_tokens=False)!r}")
    if step is not None:
        print(f"decode    {step * 1000:.4f} ms per token ({1 / step:.1f} tokens/s, KV cache)")
    return 0


def _run_in_child(argv: list[str] | None) -> int:
    """Runs an unverified file in a child copy of this script: a crash of LiteRT is one line."""
    env = dict(os.environ, _TFGREEN_KIT_CHILD="1")
    args = sys.argv[1:] if argv is None else argv
    code = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args], env=env, check=False
    ).returncode
    if code < 0:
        print(
            f"generate: error: LiteRT crashed on the unverified file (signal {signal.Signals(-code).name})",
            file=sys.stderr,
        )
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
