"""minirobera/roberta_on_one_screen.py, the whole forward repeated on one screen, against the
model classes (and so, through test_model.py, against transformers) on every masked-LM
fixture that is a model.safetensors."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from minirobera import modeling, roberta_on_one_screen
from test_model import FIXTURES, MANIFEST, reference

ONE_SCREEN = Path(roberta_on_one_screen.__file__)
MLM = [e["name"] for e in MANIFEST["checkpoints"]
       if e["class"] == "RobertaForMaskedLM" and "safetensors" in e["formats"]]


def test_it_fits_on_one_screen_and_imports_numpy_and_safetensors_only():
    source = ONE_SCREEN.read_text()
    assert len(source.splitlines()) <= 80
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"json", "math", "os", "numpy", "safetensors"}
    assert "repeats layers.py" in source.replace("\n", " ")


@pytest.mark.parametrize("name", MLM)
def test_one_screen_equals_the_model_on_every_masked_lm_fixture(name):
    folder = FIXTURES / name / "safetensors"
    model = modeling.RobertaForMaskedLM.from_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert len(MLM) >= 4 and {json.loads((FIXTURES / n / "safetensors" / "config.json")
                                         .read_text())["hidden_act"] for n in MLM} >= {
        "gelu", "relu", "silu", "quick_gelu"}
    pad, compared = config["pad_token_id"], 0
    for inputs, expected in reference(name).values():
        if set(inputs) - {"input_ids", "attention_mask", "token_type_ids", "labels"}:
            continue  # positions or embeddings given: not what this file takes
        ids = np.atleast_2d(inputs["input_ids"])
        mask = np.atleast_2d(inputs.get("attention_mask", np.ones_like(ids)))
        types = np.atleast_2d(inputs.get("token_type_ids", np.zeros_like(ids)))
        for row, row_mask, row_types, theirs in zip(ids, mask, types, expected["logits"]):
            if not (row_mask == (row != pad)).all():
                continue  # this file masks exactly the pad tokens
            want = model(row, attention_mask=row_mask).logits[0]  # token types: row 0
            got = roberta_on_one_screen.mlm_logits(folder, row)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
            if not row_types.any():  # then also transformers' own logits
                np.testing.assert_allclose(got, theirs, rtol=0, atol=1e-5)
            compared += 1
    assert compared >= 2, name


def test_one_screen_pads_and_positions_like_the_model():
    name = "a-RobertaForMaskedLM-float16"
    folder = FIXTURES / name / "safetensors"
    model = modeling.RobertaForMaskedLM.from_pretrained(folder)
    ids = np.array([1, 1, 0, 17, 42, 1, 8, 2])  # left pads and a pad inside the text
    want = model(ids, attention_mask=ids != 1).logits[0]
    np.testing.assert_allclose(roberta_on_one_screen.mlm_logits(folder, ids), want,
                               rtol=1e-5, atol=1e-5)
