"""Seeded mutation of the real weight and config fixtures (issue 22): flipped bytes (more
often in the first 4 KB, where headers live), truncation, inserted and deleted runs. The only
acceptable outcomes of loading a mutant are a model or the library's own error
(CheckpointError / ConfigError): no other exception, no crash, no hang.

MINIROBERA_FUZZ_CASES sets the number of mutants per format (default 300: ~6 s in all).
"""

import json
import os
import random
import shutil
import warnings
from pathlib import Path

import pytest

from minirobera import modeling
from minirobera.checkpoint import CheckpointError
from minirobera.config import ConfigError

MLM = Path(__file__).resolve().parent / "fixtures" / "model" / "a-RobertaForMaskedLM"
CASES = int(os.environ.get("MINIROBERA_FUZZ_CASES", "300"))
FORMATS = {"safetensors": "model.safetensors", "bin_zip": "pytorch_model.bin",
           "bin_legacy": "pytorch_model.bin", "tf_h5": "tf_model.h5",
           "flax_msgpack": "flax_model.msgpack"}
EXTRA = {"tf_h5": "h5py", "flax_msgpack": "msgpack"}


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.choice(["flip", "flip", "truncate", "insert", "delete"])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(min(len(b), 4096) if rng.random() < 0.5 else len(b))] = rng.randrange(256)
    elif kind == "truncate":
        b = b[:rng.randrange(len(b))]
    elif kind == "insert":
        at = rng.randrange(len(b) + 1)
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        at = rng.randrange(len(b))
        del b[at:at + rng.randint(1, 16)]
    return bytes(b)


def load_outcome(folder):
    try:
        with warnings.catch_warnings():  # unused or fresh weights: a mutant may well have them
            warnings.simplefilter("ignore")
            modeling.RobertaForMaskedLM.from_pretrained(folder)
        return "loaded"
    except (CheckpointError, ConfigError):
        return "refused"


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_weight_files_load_or_raise_our_error(tmp_path, fmt):
    if fmt in EXTRA:
        pytest.importorskip(EXTRA[fmt])
    filename = FORMATS[fmt]
    data = (MLM / fmt / filename).read_bytes()
    shutil.copy(MLM / fmt / "config.json", tmp_path / "config.json")
    rng = random.Random(f"weights-{fmt}")
    outcomes = []
    for _ in range(CASES):
        (tmp_path / filename).write_bytes(mutate(data, rng))
        outcomes.append(load_outcome(tmp_path))
    assert "refused" in outcomes  # the mutants did reach the readers' checks


def _random_json_value(rng, depth=0):
    choices = [None, True, False, 0, -1, 1, 2 ** 31, 10 ** 30, 0.5, -1e-5, float("1e308"), "",
               "gelu", "no", "absolute", "relative_key", [], [1], {}, {"0": "X"}, {"a": 1}]
    if depth < 2 and rng.random() < 0.2:
        return {str(rng.randrange(3)): _random_json_value(rng, depth + 1)}
    return rng.choice(choices)


def test_mutated_config_json_loads_or_raises_our_error(tmp_path):
    shutil.copy(MLM / "safetensors" / "model.safetensors", tmp_path / "model.safetensors")
    text = (MLM / "safetensors" / "config.json").read_text()
    config = json.loads(text)
    rng = random.Random("config")
    outcomes = []
    for i in range(2 * CASES):
        if i % 2:  # a field given a value of another type or range
            mutant = dict(config)
            mutant[rng.choice(sorted(config) + ["id2label", "num_labels",
                                               "position_embedding_type"])] = _random_json_value(rng)
            body = json.dumps(mutant).encode()
        else:  # the bytes themselves
            body = mutate(text.encode(), rng)
        (tmp_path / "config.json").write_bytes(body)
        outcomes.append(load_outcome(tmp_path))
    assert {"loaded", "refused"} <= set(outcomes)
