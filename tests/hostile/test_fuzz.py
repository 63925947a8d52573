"""Fuzz: 200 seeded hostile `.tflite` files through every entry point that reads or runs one.

Mutants of three valid files (a float classifier, a full-int8 classifier, a
token-id language model; `tests/hostile/mutants.py`) go through `tfgreen
inspect`, `tfgreen bench`, `tfgreen compare` (classifiers, on the bundled
digits) or `tfgreen.compare` and `tfgreen.perplexity` (the language model),
and the device kit's `--no-verify` path. Each must give a result or one
clean refusal: exit 0, or exit 2 with exactly one error line and no
traceback; the test process itself runs every call, so a crash of LiteRT
that reached the caller would end the test run. The files are `.tflite`
bytes, the same whichever Keras made them: one flavour builds the bases.
"""

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tfgreen
from tests.hostile.mutants import KINDS, mutants
from tfgreen.cli import main
from tfgreen.errors import TfgreenError

_KIT = Path(__file__).resolve().parents[2] / "tflite_export" / "run_tflite.py"
_COUNTS = {"float": 70, "int8": 70, "lm": 60}  # 200 files, every kind 20 times

# Runs the kit's in-child code (what `--no-verify` runs in its child) on many files in one
# process; prints "start I" before and one JSON line after each. If LiteRT kills this
# process, the test knows the file and runs the real kit on it.
_DRIVER = r"""
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import run_tflite
for line in sys.stdin:
    i, path, x = line.split("\t")
    print("start", i, flush=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_tflite.main([path, "--input", x.strip(), "--no-verify", "--runs", "2", "--show", "0"])
    print(json.dumps({"i": int(i), "code": code, "err": err.getvalue()}), flush=True)
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import keras
    import tensorflow as tf

    from tfgreen.datasets import load_digits

    (x_train, _), _ = load_digits(flat=True)
    keras.utils.set_random_seed(0)
    classifier = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    lm = keras.Sequential(
        [keras.Input((8,), dtype="int32"), keras.layers.Embedding(32, 8), keras.layers.Dense(32)]
    )
    converter = tf.lite.TFLiteConverter.from_keras_model(classifier)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None].astype("float32")] for x in x_train[:32])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    bases = {
        "float": tf.lite.TFLiteConverter.from_keras_model(classifier).convert(),
        "int8": converter.convert(),
        "lm": tf.lite.TFLiteConverter.from_keras_model(lm).convert(),
    }
    folder = tmp_path_factory.mktemp("fuzz")
    files = []
    for seed, (base, count) in enumerate(_COUNTS.items()):
        for i, data in enumerate(mutants(bases[base], count, seed=seed)):
            path = folder / f"{base}-{i:03d}.tflite"
            path.write_bytes(data)
            files.append((base, KINDS[i % len(KINDS)], path))
    np.save(folder / "x.npy", x_train[:3].astype("float32"))
    ids = np.random.default_rng(0).integers(0, 32, (4, 8)).astype("int32")
    np.save(folder / "ids.npy", ids.astype("float32"))
    return files, folder, ids


def _one_line_or_result(code: int, err: str, prefix: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    if code == 0:
        return "result"
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    return "refused"


def test_cli_and_api_refuse_every_mutant_in_one_line(corpus, capsys, monkeypatch):
    import functools

    from tfgreen import datasets

    files, _, ids = corpus
    # the bundled digits, parsed once instead of 140 times (half of `tfgreen compare`'s time)
    monkeypatch.setattr(datasets, "load_digits", functools.cache(datasets.load_digits))
    assert len(files) == 200
    outcomes, kinds = collections.Counter(), collections.Counter()
    for base, kind, path in files:
        commands = [["inspect", str(path)], ["bench", str(path), "--runs", "2"]]
        if base != "lm":
            commands.append(
                ["compare", str(path), "--data", "digits-flat", "--no-energy", "--runs", "2"]
            )
        for args in commands:
            code = main(args)
            err = capsys.readouterr().err
            outcome = _one_line_or_result(code, err, f"tfgreen {args[0]}: error:")
            outcomes[args[0], outcome] += 1
            kinds[kind, outcome] += args[0] == "bench"
        if base == "lm":
            for name, call in (
                ("perplexity", lambda p=path: tfgreen.perplexity(p, ids)),
                ("compare api", lambda p=path: tfgreen.compare({"m": p}, ids, energy=False)),
            ):
                try:
                    call()
                    outcomes[name, "result"] += 1
                except TfgreenError as error:
                    assert len(str(error).splitlines()) == 1 and "Traceback" not in str(error)
                    outcomes[name, "refused"] += 1
    print(dict(outcomes), dict(kinds))
    assert outcomes["inspect", "result"] + outcomes["inspect", "refused"] == 200
    assert outcomes["bench", "result"] + outcomes["bench", "refused"] == 200
    assert sum(outcomes["compare", k] for k in ("result", "refused")) == 140
    assert sum(outcomes["perplexity", k] for k in ("result", "refused")) == 60
    # most mutants are refused, and some still run: the generator is neither too weak nor
    # only garbage
    for command in ("inspect", "bench", "compare", "perplexity"):
        assert outcomes[command, "refused"] > outcomes[command, "result"] > 0, outcomes


def _kit(*args, timeout=120):
    return subprocess.run(
        [sys.executable, str(_KIT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "_TFGREEN_KIT_CHILD"},
    )


def test_kit_no_verify_refuses_every_mutant_in_one_line(corpus):
    files, folder, _ = corpus
    todo = [
        f"{i}\t{path}\t{folder / ('ids.npy' if base == 'lm' else 'x.npy')}\n"
        for i, (base, _, path) in enumerate(files)
    ]
    outcomes, crashed = collections.Counter(), []
    while todo:
        done = subprocess.run(
            [sys.executable, "-c", _DRIVER, str(_KIT.parent)],
            input="".join(todo),
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, _TFGREEN_KIT_CHILD="1"),
        )
        started = None
        for line in done.stdout.splitlines():
            if line.startswith("start "):
                started = int(line.split()[1])
                continue
            reply = json.loads(line)
            outcomes[_one_line_or_result(reply["code"], reply["err"], "run_tflite: error:")] += 1
            started = None
        if started is None:
            assert done.returncode == 0, done.stderr[-2000:]
            break
        # LiteRT killed the driver on this file: the real kit must contain it in its child
        assert done.returncode < 0, done.stderr[-2000:]
        crashed.append(started)
        position = [t.split("\t")[0] for t in todo].index(str(started))
        _, path, x = todo[position].split("\t")
        real = _kit(path, "--input", x.strip(), "--no-verify", "--runs", "2")
        assert real.returncode == 2 and "Traceback" not in real.stderr, real.stderr
        lines = [line for line in real.stderr.splitlines() if line.startswith("run_tflite:")]
        # One line: the crash named, or LiteRT's refusal when only the teardown crashed.
        assert len(lines) == 1, real.stderr
        outcomes["refused"] += 1
        todo = todo[position + 1 :]
    print(dict(outcomes), "crashed LiteRT:", crashed)
    assert outcomes["result"] + outcomes["refused"] == 200
    assert outcomes["refused"] > outcomes["result"] > 0
