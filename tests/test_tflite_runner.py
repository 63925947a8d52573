"""TfliteRunner: a batched run gives the outputs of single-sample runs.

`data/int8_lm_resize.tflite` is the Keras 3 `tiny_lm` after one QAT epoch,
exported int8 for edge-cpu by `tfgreen.optimize` (candidate "QAT (1 ep) +
int8"). Resized from batch 1 to 32 after its first allocation, LiteRT's
XNNPACK delegate returned wrong logits for rows 16 and on, so its perplexity
at batch 32 read 154 instead of 94.7; the runner now sizes a fresh
interpreter per input shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tfgreen
from tfgreen.tflite.runner import TfliteRunner

_FILE = Path(__file__).parent / "data" / "int8_lm_resize.tflite"


def test_batched_run_matches_single_runs(text_data):
    ids = text_data.val[:40]
    runner = TfliteRunner(_FILE)
    single = runner.predict(ids)
    np.testing.assert_allclose(runner.predict(ids, batch_size=32), single, atol=1e-5)
    # The remainder batch (8 rows) and the batch of 32 alternate without going wrong.
    np.testing.assert_allclose(runner.predict(ids, batch_size=32), single, atol=1e-5)
    by_batch = [tfgreen.perplexity(_FILE, ids, batch_size=size) for size in (1, 32)]
    assert by_batch[1] == pytest.approx(by_batch[0], rel=1e-6)
