"""The published roberta-base numbers (REFERENCE.md section 2), on the real weights from the hub.

These need the real 499 MB checkpoint, so they run only where the Hugging Face hub is
reachable (see `hub_reachable` in conftest.py) and skip with that reason elsewhere. The
expected values are the ones transformers produces for FacebookAI/roberta-base (its own
integration tests publish the logits and hidden states).
"""

import numpy as np
import pytest

import minirobera
from minirobera import RobertaForMaskedLM, RobertaModel, RobertaTokenizer

pytestmark = pytest.mark.network
REPO_ID = "FacebookAI/roberta-base"
IDS = [[0, 31414, 232, 328, 740, 1140, 12695, 69, 46078, 1588, 2]]


def test_masked_lm_logits_match_transformers():
    logits = RobertaForMaskedLM.from_pretrained(REPO_ID)(IDS).logits
    expected = [[33.8802, -4.3103, 22.7761], [4.6539, -2.8098, 13.6253], [1.8228, -3.6898, 8.8600]]
    assert logits.shape == (1, 11, 50265)
    np.testing.assert_allclose(logits[0, :3, :3], expected, atol=1e-4)


def test_base_model_last_hidden_state_matches_transformers():
    hidden = RobertaModel.from_pretrained(REPO_ID)(IDS).last_hidden_state
    expected = [[-0.0231, 0.0782, 0.0074], [-0.1854, 0.0540, -0.0175], [0.0548, 0.0799, 0.1687]]
    np.testing.assert_allclose(hidden[0, :3, :3], expected, atol=1e-4)


def test_hub_tokenizer_equals_the_known_ids():
    tok = RobertaTokenizer.from_pretrained(REPO_ID)
    assert tok("Hello I'm a <mask> model.")["input_ids"] == [0, 31414, 38, 437, 10, 50264, 1421, 4, 2]


def test_fill_mask_top5_matches_transformers():
    result = minirobera.fill_mask("Hello I'm a <mask> model.")
    assert [r["token"] for r in result] == [2943, 2182, 2038, 2734, 1083]
    assert [r["token_str"] for r in result] == [" male", " female", " professional", " fashion",
                                                " Russian"]
    np.testing.assert_allclose([r["score"] for r in result],
                               [0.3307, 0.0466, 0.0423, 0.0372, 0.0325], atol=1e-4)
    assert result[0]["sequence"] == "Hello I'm a male model."


@pytest.mark.parametrize("text, expected", [
    ("The goal of life is <mask>.", [" happiness", " love", " peace", " freedom", " simplicity"]),
    ("The capital of France is <mask>.", [" Paris"]),
])
def test_fill_mask_known_answers(text, expected):
    result = minirobera.fill_mask(text)
    assert [r["token_str"] for r in result][:len(expected)] == expected
