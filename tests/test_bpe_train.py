"""bpe.train, byte-level BPE learned from text, against Hugging Face tokenizers' BpeTrainer.

The recorded fixture tests/fixtures/tokenizer/bpe_train.json was written by
scripts/make_bpe_train_fixture.py (its tokenizers version is in the file); the live tests run
where tokenizers is installed, on seeded random corpora made to tie and overlap.
"""

import json
import random
from pathlib import Path

import pytest

from minirobera import bpe

FIXTURE = json.loads((Path(__file__).resolve().parent / "fixtures" / "tokenizer" /
                      "bpe_train.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: f"vocab{c['vocab_size']}")
def test_train_equals_the_recorded_tokenizers_trainer(case):
    vocab, merges = bpe.train(FIXTURE["corpus"], case["vocab_size"], case["special_tokens"])
    assert merges == [tuple(m) for m in case["merges"]]
    assert vocab == case["vocab"]


def _reference(corpus, vocab_size, specials=()):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                            for m in model["merges"]]


@pytest.mark.parametrize("seed", range(6))
def test_train_equals_tokenizers_live_on_random_corpora(seed):
    rng = random.Random(seed)
    letters = rng.choice(["ab", "abc", "aéb ", "xyz東", "ab\n"])  # few symbols: many ties, runs
    corpus = [" ".join("".join(rng.choice(letters) for _ in range(rng.randint(1, 9)))
                       for _ in range(rng.randint(1, 30))) for _ in range(rng.randint(1, 8))]
    size = 256 + rng.randint(0, 60)
    want_vocab, want_merges = _reference(corpus, size)
    vocab, merges = bpe.train(corpus, size)
    assert merges == want_merges, corpus
    assert vocab == want_vocab


def test_trained_tokenizer_round_trips_and_merges_the_frequent_words_whole():
    text = FIXTURE["corpus"]
    vocab, merges = bpe.train(text, 256 + 150)
    enc = bpe.BytePairEncoder(vocab, merges)
    for line in text:
        ids = enc.encode(line)
        assert enc.decode_bytes(ids).decode("utf-8") == line
    assert enc.encode(" the") == [vocab["Ġthe"]]  # 9 times in the corpus: one token
    # the plain loop (explain_word) and the fast ones agree on every word of the corpus
    for piece in {p for line in text for p in bpe.pre_tokenize(line)}:
        symbols = bpe.to_byte_symbols(piece)
        assert enc.explain_word(piece)["tokens"] == enc.merge(symbols) == enc.merge_long(symbols)


def test_train_stops_when_nothing_is_left_to_merge():
    vocab, merges = bpe.train(["ab ab"], 1000)
    assert merges == [("a", "b"), ("Ġ", "ab")] and len(vocab) == 258
    vocab, merges = bpe.train("anything", 10, special_tokens=["<s>"])  # below the alphabet
    assert merges == [] and vocab["<s>"] == 0 and len(vocab) == 257
