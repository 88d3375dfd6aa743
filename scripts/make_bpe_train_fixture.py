"""Write tests/fixtures/tokenizer/bpe_train.json: what Hugging Face tokenizers' BpeTrainer
learns on a small corpus, for tests/test_bpe_train.py to hold bpe.train equal to.

    python scripts/make_bpe_train_fixture.py

The reference: tokenizers' BPE model trained with BpeTrainer(vocab_size, special_tokens,
initial_alphabet=ByteLevel.alphabet(), show_progress=False) on a ByteLevel(add_prefix_space=
False, use_regex=True) pre-tokenizer, the byte-level BPE RoBERTa's tokenizer was made with.
The corpus is stored in the fixture itself, so the test needs nothing else. Needs tokenizers.
"""

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tokenizer" / "bpe_train.json"

# Prose with repeated words (so merges build long tokens), contractions, digits, punctuation
# runs, newlines and spaces, accented letters, CJK and emoji (multi-byte symbols), and ties.
CORPUS = [
    "The lighthouse stood at the end of a narrow spit of rock. For more than a century its "
    "keepers climbed the spiral stairs every evening to light the lamp.",
    "Ships passing in the night used its flashes to count the miles to the harbour. In 1962 "
    "the lamp was automated, and the last keeper moved to the village.",
    "Bread needs only flour, water, salt and yeast!!! Mix them into a rough dough; leave it "
    "to rest for half an hour... Fold the dough, then let it rise until it has doubled.",
    "I'm sure they're fine, aren't they? We've seen it: it'll rain, he'd say.",
    "naïve café résumé — déjà vu. 東京 and 京都 are cities; 🤗🤗 hugs, 🚀 rockets.",
    "aaaa aaa aa a bbbb abab ababab  \n\n  tabs\tand   spaces    end",
    "lower lowest newer newest wider widest low new wide slow slower slowest",
]
CASES = [  # (vocab_size, special tokens)
    (256 + 150, []),
    (5 + 256 + 120, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]),
]


def main():
    import tokenizers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    cases = []
    for vocab_size, specials in CASES:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(CORPUS, trainer=trainer)
        model = json.loads(tok.to_str())["model"]
        merges = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
        cases.append({"vocab_size": vocab_size, "special_tokens": specials,
                      "merges": merges, "vocab": model["vocab"]})
    OUT.write_text(json.dumps({"tokenizers": tokenizers.__version__, "corpus": CORPUS,
                               "cases": cases}, ensure_ascii=False, indent=1) + "\n",
                   encoding="utf-8")
    print(f"wrote {OUT} ({', '.join(str(len(c['merges'])) + ' merges' for c in cases)})")


if __name__ == "__main__":
    main()
