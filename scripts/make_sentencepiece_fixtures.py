"""Make the SentencePiece tokenizer fixtures under tests/fixtures/sentencepiece/.

Trains a small SentencePiece unigram model (default nmt_nfkc normalization, vocab 5,000) on
public-domain text found on this machine (/usr/share/common-licenses, and the month and day
names in glibc's /usr/share/i18n/locales for other scripts), converts it with transformers'
XLMRobertaTokenizer and CamembertTokenizer (tokenizers-backed), and records what they give:
ids, tokens, offsets and word ids of >2,000 strings, __call__ outputs, decodes, and the
fill-mask pipeline on a tiny random XLM-R checkpoint (tests/test_sentencepiece_pipeline.py
builds the same one from a seed). Rerun it after

    pip install -e ".[test,reference]" sentencepiece protobuf

Usage: python scripts/make_sentencepiece_fixtures.py
"""

import glob
import gzip
import json
import os
import random
import re
import sys
import tempfile
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "sentencepiece"
sys.path.insert(0, str(ROOT / "tests"))


def training_lines():
    lines = []
    for path in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(path):
            lines += Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    for path in sorted(glob.glob("/usr/share/i18n/locales/*")):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        for quoted in re.findall(r'"((?:<U[0-9A-Fa-f]{4,8}>)+)"', text):
            lines.append("".join(chr(int(h, 16)) for h in re.findall(r"<U([0-9A-Fa-f]+)>", quoted)))
    return [line for line in lines if line.strip()]


def train(dest: Path, lines):
    import sentencepiece as spm
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(lines), encoding="utf-8")
        spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(Path(tmp) / "m"),
                                       vocab_size=5000, model_type="unigram",
                                       character_coverage=0.99, num_threads=1, minloglevel=2)
        dest.write_bytes((Path(tmp) / "m.model").read_bytes())


HANDMADE = [
    "Hello world", "  leading and trailing  ", "tabs\tand\nnew\r\nlines", "a\u3000b\u2003c",
    "ﬁne ﬂow ﬀ ﬃ", "Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３", "x² y³ z¹⁰ H₂O", "① ⑩ Ⅻ ㈱ ㎏ ℃ ™",
    "e\u0301 a\u0300 n\u0303 o\u0308\u0301", "ﬁ\u0301x", " \u0301a", "\u0301", "東京は日本の首都です。",
    "中文，日本語、한국어！", "ｶﾞｷﾞｸﾞ ﾊﾟﾋﾟ", "\u1100\u1161\u11a8 가각", "🤗👍🏽 👨\u200d👩\u200d👧 🇫🇷",
    "a\u200bb\u200cc\u200dd\ufeffe", "\x00\x01\x1f\x7f", "▁▁x ▁ y▁", "Hi <mask> there", "<s>", "</s> a",
    "a <s> </s> <pad> <unk> b", "x<mask>y", "<mask><mask>", "＜s＞ ＜mask＞", "<s>NOTUSED <unk>NOTUSED",
    "", " ", "\n\n", "Ⅰ Ⅱ ⅰ ⅱ", "ℌ ℍ ℕ 𝐀 𝒜 𝔸", "ǅ ǆ Ǆ", "½ ¼ ⅞", "‥ … ‼ ⁇", "ｱｲｳ",
    "\u0600\u0661 \u0623\u0644\u0639\u0631\u0628\u064a\u0629", "עִבְרִית", "हिन्दी क्षत्रिय", "ไทย ภาษา",
    "Ελληνικά ΆΈ", "Русский язык Ёё", "ß ẞ ﬅ ﬆ", "\u00a0\u2007\u202f", "a\u00adb", "l·l", "\u2028\u2029",
]

CATEGORIES = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps",
              "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co"]


def strings(lines, n_random=1500):
    rng = random.Random(14)
    by_cat = {c: [] for c in CATEGORIES}
    for cp in list(range(0x20000)) + list(range(0xE0000, 0xE0080)):
        if 0xD800 <= cp < 0xE000:
            continue
        cat = unicodedata.category(chr(cp))
        if cat in by_cat:
            by_cat[cat].append(chr(cp))
    out = list(HANDMADE)
    out += rng.sample(lines, 400)
    for cat in CATEGORIES:  # every category alone, next to letters, and between spaces
        for _ in range(6):
            c = rng.choice(by_cat[cat])
            out += [c, f"a{c}b", f" {c} x{c}{c}"]
    pool = [chr(rng.randint(32, 126)) for _ in range(200)] + [" "] * 60
    for _ in range(n_random):
        k = rng.randint(1, 14)
        chars = []
        for _ in range(k):
            if rng.random() < 0.45:
                chars.append(rng.choice(pool))
            else:
                chars.append(rng.choice(by_cat[rng.choice(CATEGORIES)]))
        out.append("".join(chars))
    out += ["word " * 300, "ab" * 400, "東" * 200]  # long inputs
    return list(dict.fromkeys(out))


CALLS = [  # (text, text_pair, kwargs) for __call__
    ("Hello world", None, {}),
    ("Hello world", "Second text here", {}),
    (["a b c", "東京", "ﬁne"], None, {"padding": True}),
    (["a b c", "east"], ["x", "y z w"], {"padding": "max_length", "max_length": 12}),
    ("one two three four five six", "seven eight nine", {"truncation": True, "max_length": 8}),
    ("one two three four five six", "seven eight nine",
     {"truncation": "only_first", "max_length": 9, "return_overflowing_tokens": True, "stride": 1}),
    ("one two three four five six", "seven eight nine",
     {"truncation": "only_second", "max_length": 10, "return_overflowing_tokens": True}),
    ("one two three four five six seven", None,
     {"truncation": True, "max_length": 5, "stride": 2, "return_overflowing_tokens": True,
      "return_offsets_mapping": True}),
    (["a b", "c d e f g h"], None, {"padding": True, "pad_to_multiple_of": 4,
                                    "return_special_tokens_mask": True, "return_length": True}),
    ("a b", "c d", {"return_token_type_ids": True, "add_special_tokens": False}),
    ("a b c d", "e f g", {"return_token_type_ids": True, "add_special_tokens": False,
                          "truncation": True, "max_length": 3, "return_overflowing_tokens": True}),
    (["Hi <mask> x", "ﬁ\u0301x ²"], None, {"return_offsets_mapping": True, "padding": True,
                                            "padding_side": "left"}),
    (["Hello", "world", "東京"], None, {"is_split_into_words": True, "return_offsets_mapping": True}),
    (["Hello", "world"], ["a", "b"], {"is_split_into_words": True}),
    ("x " * 20, None, {"truncation": "longest_first", "max_length": 10,
                       "return_overflowing_tokens": True, "stride": 3}),
]


def record_calls(tok):
    out = []
    for text, pair, kwargs in CALLS:
        try:
            enc = tok(text, pair, **kwargs)
        except Exception as e:  # the test checks that minirobera refuses it too
            out.append({"text": text, "text_pair": pair, "kwargs": kwargs, "error": str(e)})
            continue
        data = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in enc.items()}
        data = json.loads(json.dumps(data))  # tuples -> lists
        n_rows = len(data["input_ids"]) if data["input_ids"] and isinstance(data["input_ids"][0], list) else 1
        out.append({"text": text, "text_pair": pair, "kwargs": kwargs, "output": data,
                    "word_ids": [enc.word_ids(i) for i in range(n_rows)],
                    "tokens": [enc.tokens(i) for i in range(n_rows)]})
    return out


def record_strings(tok, texts):
    rows = []
    for text in texts:
        enc = tok(text, return_offsets_mapping=True)
        ids = enc["input_ids"]
        rows.append({"text": text, "ids": ids, "tokens": enc.tokens(),
                     "offsets": [list(o) for o in enc["offset_mapping"]], "word_ids": enc.word_ids(),
                     "decode": tok.decode(ids), "decode_skip": tok.decode(ids, skip_special_tokens=True)})
    return rows


FILL_MASK_TEXTS = ["The license is <mask>.", "Copyright <mask> the authors", "東京は<mask>です",
                   "You may <mask> it under the terms", "<mask> and <mask> together"]


def main():
    import tokenizers
    import transformers
    from transformers import CamembertTokenizer, XLMRobertaTokenizer, pipeline
    from test_sentencepiece_pipeline import build_tiny_xlmr

    OUT.mkdir(parents=True, exist_ok=True)
    model_file = OUT / "sentencepiece.bpe.model"
    lines = training_lines()
    train(model_file, lines)
    versions = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "sentencepiece": __import__("sentencepiece").__version__}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        (src / "sentencepiece.bpe.model").write_bytes(model_file.read_bytes())
        xlmr, cam = XLMRobertaTokenizer.from_pretrained(src), CamembertTokenizer.from_pretrained(src)
        texts = strings(lines)
        fixture = {"versions": versions, "made_by": "scripts/make_sentencepiece_fixtures.py",
                   "xlm-roberta": {"strings": record_strings(xlmr, texts), "calls": record_calls(xlmr)},
                   "camembert": {"strings": record_strings(cam, texts[:600]), "calls": record_calls(cam)}}
        model_dir = build_tiny_xlmr(Path(tmp) / "tiny", model_file)
        unmasker = pipeline("fill-mask", model=str(model_dir))
        fixture["fill-mask"] = [{"text": t, "top_k": 3, "output": unmasker(t, top_k=3)}
                                for t in FILL_MASK_TEXTS]
    # gzip: the JSON is ~1 MB of mostly repeated keys, the fixtures must stay small
    with gzip.open(OUT / "reference.json.gz", "wt", encoding="utf-8", compresslevel=9) as f:
        json.dump(fixture, f, ensure_ascii=False)
    print(f"{len(texts)} strings; wrote {OUT}")


if __name__ == "__main__":
    main()
