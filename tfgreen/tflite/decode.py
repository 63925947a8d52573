"""Reads and runs the generation signatures of a `.tflite` file (`generate=True` exports).

A file written by `tfgreen.export_tflite(..., generate=True)` has the
signatures `call` (the full-window forward pass, subgraph 0), `prefill`
(the prompt padded to the cache length -> logits and KV cache) and `decode`
(one token, its index and the cache -> the next logits and the cache); see
`tfgreen.export.generation`. `signatures` reads them from the flatbuffer
without running anything; `greedy` runs the decoding loop on a LiteRT
interpreter. numpy and LiteRT only: `tfgreen.tflite.isolated` runs `greedy`
in its child process, which has no TensorFlow.

Example:
```python
layout(Path("out/lm.tflite").read_bytes())  # (max_length, vocab_size): (64, 512)
```
"""

from __future__ import annotations

import numpy as np

from tfgreen.errors import TfgreenValueError, TfliteFileError, message

__all__ = ["CALL", "PREFILL", "DECODE", "signatures", "layout", "greedy"]

CALL, PREFILL, DECODE = "call", "prefill", "decode"


def signatures(data: bytes) -> dict[str, dict]:
    """The signatures of `.tflite` bytes, read from the flatbuffer without running it.

    Args:
        data: The file's bytes.

    Returns:
        `{key: {"subgraph", "inputs", "outputs"}}` sorted by key; `inputs` and
        `outputs` map tensor names to `{"shape", "dtype"}`. Empty for a file
        without signatures.

    Raises:
        TfliteFileError: The bytes are not a TFLite flatbuffer, or are corrupted.
    """
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TfliteFileError(
            message(
                "The file is not a TFLite flatbuffer (no TFL3 identifier)",
                "a .tflite file written by tfgreen.export_tflite",
                "Check the path, or re-export the model",
                size_bytes=len(data),
            )
        )
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    try:
        model = schema.Model.GetRootAs(data, 0)
        found = {}
        for s in range(model.SignatureDefsLength()):
            sig = model.SignatureDefs(s)
            graph = model.Subgraphs(sig.SubgraphIndex())

            def tensors(count, get, graph=graph):
                out = {}
                for i in range(count):
                    entry = get(i)
                    tensor = graph.Tensors(entry.TensorIndex())
                    out[entry.Name().decode()] = {
                        "shape": [int(d) for d in tensor.ShapeAsNumpy()]
                        if tensor.ShapeLength()
                        else [],
                        "dtype": types.get(tensor.Type(), str(tensor.Type())),
                    }
                return out

            found[sig.SignatureKey().decode()] = {
                "subgraph": int(sig.SubgraphIndex()),
                "inputs": tensors(sig.InputsLength(), sig.Inputs),
                "outputs": tensors(sig.OutputsLength(), sig.Outputs),
            }
    except Exception as error:  # a corrupted flatbuffer can fail anywhere in the parser
        raise TfliteFileError(
            message(
                "The .tflite file's signatures could not be read: it is corrupted or truncated",
                "a complete TFLite flatbuffer",
                "Re-export the model or copy the file again",
                error=f"{type(error).__name__}: {error}"[:200],
            )
        ) from error
    return dict(sorted(found.items()))


def layout(data: bytes) -> tuple[int, int]:
    """`(max_length, vocab_size)` of a generation file (`TfgreenValueError` for any other file)."""
    found = signatures(data)
    try:
        window = found[PREFILL]["inputs"]["token_ids"]["shape"]
        vocab = found[DECODE]["outputs"]["logits"]["shape"]
        ok = set(found[DECODE]["inputs"]) == {"token", "index", "cache"}
        ok = ok and len(window) == 2 and len(vocab) == 2 and "cache" in found[PREFILL]["outputs"]
    except KeyError:
        ok = False
    if not ok:
        raise TfgreenValueError(
            message(
                "The .tflite file has no prefill/decode signatures with a KV cache",
                "a file written by tfgreen.export_tflite(..., generate=True)",
                "Export the language model again with generate=True",
                signatures=sorted(found) or None,
            )
        )
    return int(window[1]), int(vocab[1])


def greedy(
    interpreter,
    prompt: np.ndarray,
    max_new_tokens: int,
    stop_token_id: int | None = None,
    forced: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy decoding on a LiteRT interpreter of a generation file (arguments checked).

    Args:
        interpreter: An `ai_edge_litert` `Interpreter` of the file.
        prompt: int32 token ids `[n]`, `1 <= n <= max_length`.
        max_new_tokens: Tokens to generate.
        stop_token_id: Stop after generating this id. Defaults to `None`.
        forced: Teacher forcing: these ids are fed instead of the argmax
            (each one goes through `decode`); for checks. Defaults to `None`.

    Returns:
        `(tokens, logits)`: the generated ids (int32) and the logits each
        was chosen from (the prompt's last position, then every decode step;
        with `forced`, one more row: the logits after the last forced id).
    """
    prefill = interpreter.get_signature_runner(PREFILL)
    decode = interpreter.get_signature_runner(DECODE)
    length = int(prefill.get_input_details()["token_ids"]["shape"][1])
    window = np.zeros((1, length), dtype="int32")
    window[0, : len(prompt)] = prompt
    out = prefill(token_ids=window)
    cache, rows, tokens = out["cache"], [out["logits"][0, len(prompt) - 1]], []
    for step in range(max_new_tokens):
        token = int(forced[step]) if forced is not None else int(np.argmax(rows[-1]))
        tokens.append(token)
        last = step == max_new_tokens - 1 and forced is None
        if last or (stop_token_id is not None and token == stop_token_id):
            break
        out = decode(
            token=np.array([[token]], dtype="int32"),
            index=np.array(len(prompt) + step, dtype="int32"),
            cache=cache,
        )
        cache = out["cache"]
        rows.append(out["logits"][0])
    return np.asarray(tokens, dtype="int32"), np.stack(rows).astype("float32")
