"""Dynamic masking and FULL-SENTENCES packing (minirobera/pretraining.py).

The masking rates are the ones transformers' DataCollatorForLanguageModeling uses (15%; of
those 80% <mask>, 10% random, 10% kept). transformers draws from torch's RNG, so the draws
cannot be compared one by one; the tests check the rules exactly and the rates statistically
(bounds at about six standard deviations, so a correct implementation fails with
probability < 1e-8).
"""

import numpy as np
import pytest

from minirobera.pretraining import IGNORE_INDEX, mask_tokens, pack_full_sentences

MASK, VOCAB, SPECIALS = 50264, 50265, (0, 1, 2)


def _batch(rng, b=64, t=512):
    ids = rng.integers(3, 50000, size=(b, t))
    ids[:, 0], ids[:, -1] = 0, 2
    ids[::2, -100:] = 1  # padding on half the rows
    return ids


def _within(count, n, p, sigmas=6.0):
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


def test_mask_rates_follow_80_10_10():
    rng = np.random.default_rng(1)
    ids = _batch(rng)
    inputs, labels = mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB,
                                 special_ids=SPECIALS, rng=rng)
    eligible = ~np.isin(ids, SPECIALS)
    chosen = labels != IGNORE_INDEX
    assert _within(chosen.sum(), eligible.sum(), 0.15)
    n = chosen.sum()
    assert _within((inputs[chosen] == MASK).sum(), n, 0.8)
    kept = (inputs[chosen] == ids[chosen]).sum()
    # "kept" also catches the 1/VOCAB chance that a random token equals the original.
    assert _within(kept, n, 0.1 + 0.1 / VOCAB)
    assert (inputs[~chosen] == ids[~chosen]).all(), "unchosen positions must be untouched"
    assert (labels[chosen] == ids[chosen]).all(), "labels hold the original ids"


def test_special_tokens_and_padding_are_never_chosen():
    rng = np.random.default_rng(2)
    ids = _batch(rng)
    _, labels = mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, special_ids=SPECIALS,
                            rng=rng, mlm_probability=1.0)
    assert (labels[np.isin(ids, SPECIALS)] == IGNORE_INDEX).all()
    assert (labels[~np.isin(ids, SPECIALS)] != IGNORE_INDEX).all()


def test_dynamic_masking_redraws_each_epoch_static_repeats():
    ids = _batch(np.random.default_rng(3), b=4, t=128)
    kw = dict(mask_token_id=MASK, vocab_size=VOCAB, special_ids=SPECIALS)
    rng = np.random.default_rng(7)  # dynamic: one generator carried across epochs
    epoch1, epoch2 = (mask_tokens(ids, rng=rng, **kw)[1] for _ in range(2))
    assert (epoch1 != epoch2).any()
    static1 = mask_tokens(ids, rng=np.random.default_rng(7), **kw)[1]
    static2 = mask_tokens(ids, rng=np.random.default_rng(7), **kw)[1]
    np.testing.assert_array_equal(static1, static2)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_mask_probability_out_of_range(bad):
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens([[5, 6]], mask_token_id=MASK, vocab_size=VOCAB, special_ids=SPECIALS,
                    rng=np.random.default_rng(0), mlm_probability=bad)


def test_float_ids_rejected():
    with pytest.raises(TypeError, match="integers"):
        mask_tokens([[5.0, 6.0]], mask_token_id=MASK, vocab_size=VOCAB, special_ids=SPECIALS,
                    rng=np.random.default_rng(0))


def test_packing_keeps_sentences_whole_and_marks_document_boundaries():
    docs = [[[10, 11, 12], [13, 14]], [[20, 21], [22]], [[30] * 4]]
    blocks = pack_full_sentences(docs, max_length=10)
    assert blocks == [[0, 10, 11, 12, 13, 14, 2, 20, 21, 2], [0, 22, 2, 30, 30, 30, 30, 2]]
    assert all(len(b) <= 10 for b in blocks)


def test_packing_splits_a_sentence_longer_than_a_block():
    blocks = pack_full_sentences([[list(range(100, 112))]], max_length=7)
    assert blocks == [[0, 100, 101, 102, 103, 104, 2], [0, 105, 106, 107, 108, 109, 2],
                      [0, 110, 111, 2]]


def test_packing_drops_separator_at_block_edge_and_skips_empty_documents():
    blocks = pack_full_sentences([[[10, 11, 12]], [], [[20, 21, 22]]], max_length=5)
    assert blocks == [[0, 10, 11, 12, 2], [0, 20, 21, 22, 2]]


def test_packing_respects_512_and_preserves_every_token():
    rng = np.random.default_rng(5)
    docs = [[list(rng.integers(3, 50000, size=rng.integers(1, 80))) for _ in range(rng.integers(1, 12))]
            for _ in range(40)]
    blocks = pack_full_sentences(docs)
    assert all(len(b) <= 512 and b[0] == 0 and b[-1] == 2 for b in blocks)
    content = [t for b in blocks for t in b[1:-1] if t != 2]
    assert content == [t for d in docs for s in d for t in s]


def test_packing_rejects_tiny_blocks():
    with pytest.raises(ValueError, match="max_length"):
        pack_full_sentences([[[5]]], max_length=2)
