"""Record what the reference RoBERTa tokenizer does, for tests/test_tokenizer_fixtures.py.

The reference is the tokenizers-backed transformers RobertaTokenizer built as the hub ships
roberta-base: AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False) and
model_max_length=512. Needs the `reference` extra (transformers, tokenizers) and the real
vocab.json + merges.txt (never copied into the repo):

    python scripts/make_tokenizer_fixtures.py [--roberta-dir ../shared/roberta-base]

Writes tests/fixtures/tokenizer/{strings,calls,decode,unicode}.json.gz, each with a
"reference" header naming the versions that made it. `--unicode-tables` instead prints the
letter/number range tables that minirobera/bpe.py embeds.
"""

import argparse
import gzip
import json
import os
import random
import sys
import unicodedata
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "tokenizer"
SEED = 20240501


def default_roberta_dir() -> Path:
    return Path(os.environ.get("MINIROBERA_ROBERTA_BASE") or REPO.parent / "shared" / "roberta-base")


def reference_tokenizer(folder: Path, **kwargs):
    from transformers import AddedToken, RobertaTokenizer
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)
    return RobertaTokenizer.from_pretrained(str(folder), mask_token=mask, model_max_length=512,
                                            **kwargs)


def header(folder: Path) -> dict:
    import hashlib
    import tokenizers
    import transformers
    digest = hashlib.sha256((folder / "vocab.json").read_bytes()
                            + (folder / "merges.txt").read_bytes()).hexdigest()
    return {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "python": sys.version.split()[0], "script": "scripts/make_tokenizer_fixtures.py",
            "vocab_merges_sha256": digest,
            "tokenizer": "RobertaTokenizer(mask_token=AddedToken('<mask>', lstrip=True, "
                         "rstrip=False, normalized=False), model_max_length=512)"}


# --- the strings ---------------------------------------------------------------------------

REFERENCE_CASES = [
    "Hello world", " Hello world", "Hello <mask>", "Hello<mask>", "Hello  <mask>", " <mask> ",
    "Hello I'm a <mask> model.", "A, <mask> AllenNLP sentence.", "<s>inside</s>",
    "Hello\t<mask>", "Hello\n<mask>", "Hello\u00a0<mask>", "Hello\u3000<mask>", "naïve",
    unicodedata.normalize("NFD", "naïve"), "🤗", " world", "The capital of France is <mask>.",
    "The goal of life is <mask>.", "x\x1c<mask>", "x\x1d<mask>", "x\x1e<mask>", "x\x1f<mask>",
    "<s>Hello", "\tHello", "\nHello", "\u00a0Hello", "a <s> b", "a </s> b", "a <pad> b",
    "a <unk> b", " ".join(str(i) for i in range(12)),
]

HAND_WRITTEN = [
    # whitespace of every kind, alone and in runs
    "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "a  b", "a   b ", "a\t\tb", "a \t b",
    "a\u00a0b", "a\u3000b", "a\u2000\u2001\u2002b", "a\u2009b", "a\u200ab", "a\u202fb", "a\u205fb",
    "a\u1680b", "a\u2028b", "a\u2029b", "a\u0085b", "a\u200bb", "a\ufeffb", "\ufeffBOM first",
    "a\x0bb\x0cc", "trailing   ", "   leading", " \u3000 mixed \t\n runs \u00a0 ",
    # control characters
    "".join(map(chr, range(0, 32))), "del\x7fhere", "".join(map(chr, range(0x80, 0xA0))),
    "nul\x00byte", "bell\x07", "esc\x1b[31mred\x1b[0m",
    # contractions, upper and lower case, straight and curly
    "it's", "It'S", "IT'S", "we're", "WE'RE", "I've", "I'VE", "I'm", "I'M", "you'll", "YOU'LL",
    "he'd", "HE'D", "don't", "DON'T", "it’s curly", "'s 't 're 've 'm 'll 'd", "''s", "'sss",
    "rock'n'roll", "O'Neil's", "the 90's", "'", "''", "'''", "'S", "'LL",
    # numbers
    "0", "123", "1234567890", "3.14159", "1,000,000", "-42", "+1 (555) 010-9999", "1e-10",
    "²³¹", "¼½¾", "Ⅻ Ⅳ ⅻ", "٠١٢٣٤٥٦٧٨٩", "०१२३", "①②③", "𝟙𝟚𝟛", "12abc34", "abc123def",
    "v1.2.3-beta+exp.sha.5114f85", "0x1F600", "2024-05-01T12:00:00Z",
    # punctuation runs
    "...", "!!!", "?!?!", "--", "---", "—", "–", "…", "!!!???...", "(*&^%$#@!)", "[{<>}]",
    "a.b.c", "e.g.", "U.S.A.", "#hashtag", "@mention", "http://example.com/path?q=1&r=2#frag",
    "foo@bar.com", "C:\\Windows\\System32", "~/.bashrc", "$100", "€100", "£5", "¥500", "100%",
    "«guillemets»", "„quotes“", "“smart quotes”", "‘single’", "¿Qué?", "¡Hola!",
    # special tokens written in the text, whole and partial
    "<s>", "</s>", "<pad>", "<unk>", "<mask>", "<mask><mask>", "<mask> <mask>", "a<mask>b",
    "<mas", "<mask", "mask>", "<s", "</s", "<<s>>", "<s><s>", "</s></s>", "<S>", "<MASK>",
    "< mask >", "<mask >", "<<mask>>", "x<mask>", "x <mask>", "x  <mask>", "x\t\n <mask>",
    "<mask> x", "<mask>  x", "x <mask> y <mask> z", "<s> Hello </s>", "Hello</s>world",
    " <s>", "  </s>", "\t<pad>", "<unk><unk>", "<pad>text<pad>", "a\u3000\u3000<mask>",
    "a\u2028<mask>", "a\x85<mask>", "a\u200b<mask>", "a\ufeff<mask>",
    # CJK, Korean, other scripts
    "日本語のテキスト", "中文文本处理", "漢字かなカナ", "한국어 텍스트", "ㄱㄴㄷ", "Ｆｕｌｌｗｉｄｔｈ",
    "ｶﾀｶﾅ", "Русский текст", "Ελληνικά", "עברית", "مرحبا بالعالم", "हिन्दी पाठ", "ภาษาไทย",
    "ქართული", "Հայերեն", "አማርኛ", "தமிழ்", "ᚠᛇᚻ", "𐌰𐌱𐌲", "ꓮꓯꓰ", "ᎠᎡᎢ",
    # RTL with marks and controls
    "\u202eevil\u202c", "abc\u200fdef\u200e", "שלום world", "العربية 123 english",
    "\u2066isolate\u2069",
    # combining marks, NFC vs NFD
    "e\u0301", "é", "Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o", "a\u0300\u0301\u0302",
    unicodedata.normalize("NFD", "Ångström Zürich"), "Ångström Zürich", "\u0301 lone accent",
    "한", unicodedata.normalize("NFD", "한"), "ﬁ ligature", unicodedata.normalize("NFKC", "ﬁ"),
    # emoji: single, ZWJ, skin tones, flags, keycaps, variation selectors
    "👍", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇫🇷🇩🇪🇯🇵", "1️⃣#️⃣", "❤️", "❤\ufe0e",
    "🤗 hugging", "emoji🙂inside", "😀😃😄😁", "🫠🫨", "🧑‍🤝‍🧑",
    # symbols, private use, unassigned, noncharacters, astral planes
    "∑∫∂√∞≈≠", "→⇒↔", "©®™", "♠♣♥♦", "\ue000\uf8ff", "\U000f0000", "\U0010fffd", "\uffff\ufffe",
    "\U0001d400\U0001d401", "\U00020000\U0002a6df", "\u0378\u0379", "\U000e0041",
    "\U00010940 new in Unicode 17", "\u1c89 new in Unicode 16", "\U00010d50\U00011f04",
    # long words and lines
    "a" * 300, "ab" * 200, "!" * 150, " " * 100, "9" * 120, "x" + " " * 50 + "y",
    "Supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaa", "aaaaa", "abababab",
]


def pools():
    """Snippets by category, for the random mixes."""
    return {
        "ascii_word": ["the", "The", "THE", "hello", "World", "tokenizer", "ROBERTA", "x", "I",
                       "don't", "it's", "we'll", "A", "and", "café", "naïve", "über"],
        "space": [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", " \n ", "   "],
        "punct": [".", ",", "!", "?", "...", "--", "'", '"', "(", ")", ";", ":", "/", "\\",
                  "-", "_", "*", "&", "#", "@", "%", "$", "~", "`", "^", "|", "<", ">"],
        "number": ["0", "7", "42", "2024", "3.14", "1,000", "²", "½", "Ⅻ", "٣", "१"],
        "cjk": ["日本", "中文", "漢字", "かな", "カナ", "한국어", "ｶﾀｶﾅ", "の", "、", "。"],
        "script": ["Привет", "Ελλάδα", "שלום", "مرحبا", "नमस्ते", "สวัสดี", "ሰላም", "ᚠᛇ"],
        "emoji": ["🤗", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "1️⃣", "😀", "🫠", "🏳️‍🌈"],
        "mark": ["\u0301", "\u0308", "\u0327", "\u200d", "\ufe0f", "\u200b", "\u200e", "\u202e"],
        "special": ["<s>", "</s>", "<pad>", "<unk>", "<mask>", "<mas", "mask>", "</", "<s"],
        "control": ["\x00", "\x07", "\x1b", "\x1c", "\x1f", "\x7f", "\x85", "\x9f"],
    }


def random_strings(rng: random.Random, n: int):
    """Mixes of snippets from every category, random code points, and random ASCII."""
    pool = pools()
    names = sorted(pool)
    out = []
    for i in range(n):
        kind = i % 4
        if kind in (0, 1):  # category mixes, with spaces between most pieces
            parts = []
            for _ in range(rng.randint(1, 12)):
                parts.append(rng.choice(pool[rng.choice(names)]))
                if rng.random() < 0.6:
                    parts.append(rng.choice(pool["space"]) if rng.random() < 0.3 else " ")
            out.append("".join(parts))
        elif kind == 2:  # random code points from every plane (no surrogates)
            out.append("".join(_random_char(rng) for _ in range(rng.randint(1, 16))))
        else:  # printable ASCII soup
            alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '\t\n.,!?<>/s"
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    return out


def _random_char(rng: random.Random) -> str:
    while True:
        r = rng.random()
        cp = rng.randrange(0x80) if r < 0.2 else rng.randrange(0x800) if r < 0.4 else \
            rng.randrange(0x10000) if r < 0.8 else rng.randrange(0x110000)
        if not 0xD800 <= cp < 0xE000:
            return chr(cp)


def long_inputs(rng: random.Random):
    """A few inputs past 512 tokens."""
    words = ["the", "model", "reads", "long", "documents", "and", "tokens", "overflow", "here",
             "naïve", "🤗", "<mask>", "1234", "—", "café"]
    return [" ".join(rng.choice(words) for _ in range(n)) for n in (400, 600, 900)] + \
        ["word " * 700, ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 60).strip()]


def all_strings():
    rng = random.Random(SEED)
    strings = REFERENCE_CASES + HAND_WRITTEN + random_strings(rng, 3000) + long_inputs(rng)
    return list(dict.fromkeys(strings))  # unique, order kept


# --- recording -----------------------------------------------------------------------------

def record_strings(ref, ref_prefix):
    """Per string: ids, offsets, word ids (default) and ids/offsets with add_prefix_space."""
    rows = []
    for s in all_strings():
        e = ref(s, return_offsets_mapping=True)
        p = ref_prefix(s, return_offsets_mapping=True)
        skip = ref.decode(e["input_ids"], skip_special_tokens=True)
        rows.append({
            "text": s, "ids": e["input_ids"], "offsets": _flat(e["offset_mapping"]),
            "words": e.word_ids(), "prefix_ids": p["input_ids"],
            "prefix_offsets": _flat(p["offset_mapping"]),
            "decode": ref.decode(e["input_ids"]),
            "decode_skip": None if skip == s else skip,  # None: same as the text
        })
    return rows


def _flat(offsets):
    return [x for pair in offsets for x in pair]


A10, B6 = " ".join(["a"] * 10), " ".join(["b"] * 6)
A7, B7 = " ".join(["a"] * 7), " ".join(["b"] * 7)
COUNT = " ".join(str(i) for i in range(12))
TEXT = "Hello world, this is a longer text with <mask> and naïve 🤗 emoji."
QUESTION = "What is in the text?"
BATCH = ["a", "bb cc dd", "", TEXT, "<mask> x"]
WORDS = ["Hello", "world", "!", "naïve", "🤗", "<mask>", " spaced", "a<s>", "", "don't"]


def call_cases():
    """(tokenizer options, args, kwargs) for the __call__ options that matter."""
    cases = []
    for aps in (False, True):
        opts = {"add_prefix_space": aps}
        cases += truncation_cases(opts) + side_cases(opts) + padding_cases(opts) + other_cases(opts)
    return cases


def truncation_cases(opts):
    """Each strategy x max_length, on pairs (both orders, ties) and with overflow + stride."""
    cases = []
    for strategy in ("longest_first", "only_first", "only_second", True, False, "do_not_truncate"):
        for max_length in (5, 8, 9, 12, 16):
            for pair in ((A10, B6), (A7, B7), (B6, A10), (QUESTION, TEXT), (TEXT, QUESTION)):
                cases.append((opts, list(pair), {"truncation": strategy, "max_length": max_length}))
            for stride in (0, 1, 2):
                kw = {"truncation": strategy, "max_length": max_length, "stride": stride,
                      "return_overflowing_tokens": True}
                for args in ([COUNT], [A10, B6], [QUESTION, TEXT], [[COUNT, TEXT, "short"]]):
                    cases.append((opts, args, kw))
    return cases


def side_cases(opts):
    cases = []
    for side in ("left", "right"):
        for kw in ({"truncation": True, "max_length": 8, "stride": 2,
                    "return_overflowing_tokens": True},
                   {"truncation": "only_second", "max_length": 10, "stride": 1,
                    "return_overflowing_tokens": True}):
            cases.append(({**opts, "truncation_side": side}, [COUNT], kw))
            cases.append(({**opts, "truncation_side": side}, [QUESTION, TEXT], kw))
    return cases


def padding_cases(opts):
    """Each padding option x pad_to_multiple_of x side, on a batch and a batch of pairs."""
    cases = []
    for padding in (True, "longest", "max_length", "do_not_pad", False):
        for multiple in (None, 4, 8):
            for side in ("left", "right"):
                kw = {"padding": padding, "pad_to_multiple_of": multiple, "padding_side": side}
                if padding == "max_length":
                    kw["max_length"] = 24
                cases.append((opts, [BATCH], kw))
                cases.append((opts, [BATCH, BATCH[::-1]], kw))
    cases.append((opts, [BATCH], {"padding": True, "truncation": True, "max_length": 8,
                                  "pad_to_multiple_of": 4}))
    cases.append((opts, [BATCH], {"padding": "max_length", "truncation": True, "max_length": 6,
                                  "return_tensors": "np"}))
    cases.append((opts, [[COUNT, "x"]], {"padding": True, "truncation": True, "max_length": 6,
                                         "stride": 1, "return_overflowing_tokens": True}))
    return cases


def other_cases(opts):
    """No special tokens, batches of pairs, pre-split words, long inputs."""
    return [
        (opts, [BATCH], {"add_special_tokens": False, "padding": True}),
        (opts, [TEXT, QUESTION], {"add_special_tokens": False}),
        (opts, [[A10], [B6]], {"add_special_tokens": False, "truncation": True, "max_length": 6,
                               "return_overflowing_tokens": True}),
        (opts, [["a b", "c"], ["", "d e"]], {}),
        (opts, [[("x y", "z"), ("p", "q r")]], {"padding": True}),
        (opts, [WORDS], {"is_split_into_words": True}),
        (opts, [[WORDS, WORDS[:3]]], {"is_split_into_words": True, "padding": True}),
        (opts, [WORDS, WORDS[::-1]], {"is_split_into_words": True}),
        (opts, [WORDS], {"is_split_into_words": True, "truncation": True, "max_length": 6,
                         "stride": 1, "return_overflowing_tokens": True}),
        (opts, ["word " * 600], {}),
        (opts, ["word " * 600], {"truncation": True}),
        (opts, ["word " * 600], {"padding": "max_length", "truncation": True}),
    ]


def record_calls(folder):
    """Each call case with every column, per-row word/sequence ids and tokens, or the error."""
    cache, out = {}, []
    everything = {"return_token_type_ids": True, "return_attention_mask": True,
                  "return_special_tokens_mask": True, "return_offsets_mapping": True,
                  "return_length": True}
    for opts, args, kwargs in call_cases():
        key = json.dumps(opts, sort_keys=True)
        if key not in cache:
            cache[key] = reference_tokenizer(folder, **opts)
        ref = cache[key]
        case = {"options": opts, "args": args, "kwargs": kwargs}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                enc = ref(*args, **kwargs, **everything)
        except BaseException as e:  # the Rust side raises plain Exception / PanicException
            if type(e).__name__ not in ("Exception", "ValueError", "PanicException"):
                raise
            case["error"] = f"{type(e).__name__}: {e}"
            out.append(case)
            continue
        case["result"] = {k: _plain(v) for k, v in enc.items()}
        n = len(enc.encodings)
        case["word_ids"] = [enc.word_ids(i) for i in range(n)]
        case["sequence_ids"] = [enc.sequence_ids(i) for i in range(n)]
        case["tokens"] = [enc.tokens(i) for i in range(n)]
        out.append(case)
    return out


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record_decode(ref):
    """Decodes of random id sequences: partial UTF-8, special tokens, ids outside the vocab."""
    rng = random.Random(SEED + 1)
    vocab_size = len(ref)
    byte_ids = [ref.convert_tokens_to_ids(t) for t in ("Ã", "©", "ð", "Ł", "¤", "Ĺ", "Ġ", "Ċ")]
    cases = []
    for i in range(600):
        n = rng.randint(0, 12)
        if i % 3 == 0:
            ids = [rng.randrange(vocab_size) for _ in range(n)]
        elif i % 3 == 1:
            ids = [rng.choice(byte_ids + [0, 1, 2, 3, 50264]) for _ in range(n)]
        else:
            ids = [rng.randrange(vocab_size + 10) for _ in range(n)]  # some outside the vocab
        cases.append({"ids": ids, "decode": ref.decode(ids),
                      "decode_skip": ref.decode(ids, skip_special_tokens=True),
                      "tokens": ref.convert_ids_to_tokens(ids)})
    return cases


def record_unicode():
    """How the reference's pre-tokenizer classes every code point: letter, number, space.

    Probes Oniguruma inside tokenizers with the same \\p{L}, \\p{N} and \\s: 'x'+c stays one
    piece under the GPT-2 pattern iff c is a letter, '1'+c iff c is a number; splitting on \\s
    alone isolates c iff c is whitespace.
    """
    from tokenizers import Regex, pre_tokenizers
    gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
    probes = (("letters", gpt2, "x", 0, 2), ("numbers", gpt2, "1", 0, 2), ("spaces", r"\s", "a", 1, 1))
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    classes = {}
    for name, pattern, prefix, start, size in probes:
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        found = set()
        for k in range(0, len(cps), 50000):
            chunk = cps[k:k + 50000]
            text = "".join(prefix + chr(c) + "\n" if name != "spaces" else "a" + chr(c) + "a"
                           for c in chunk)
            for _, (a, b) in split.pre_tokenize_str(text):
                if b - a == size and a % 3 == start:
                    found.add(chunk[a // 3])
        classes[name] = to_ranges(found)
    return classes


def to_ranges(codepoints) -> str:
    """{0x41, 0x42, 0x43, 0x61} -> '0041-0043 0061'."""
    out = []
    for c in sorted(codepoints):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return " ".join("%04X" % a if a == b else "%04X-%04X" % (a, b) for a, b in out)


def write(name: str, head: dict, payload):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    data = json.dumps({"reference": head, "cases": payload}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
        f.write(data)
    print(f"{path.relative_to(REPO)}: {len(payload)} cases, {path.stat().st_size / 1e3:.0f} kB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--roberta-dir", type=Path, default=default_roberta_dir(),
                        help="folder with the real vocab.json and merges.txt")
    parser.add_argument("--unicode-tables", action="store_true",
                        help="print the letter/number tables for minirobera/bpe.py and stop")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RUST_BACKTRACE", "0")  # reference panics (recorded as errors) stay short
    if args.unicode_tables:
        import textwrap
        classes = record_unicode()
        for name in ("letters", "numbers"):
            print(f"# {name}\n" + "\n".join(textwrap.wrap(classes[name], 96)))
        return
    folder = args.roberta_dir
    if not (folder / "vocab.json").is_file() or not (folder / "merges.txt").is_file():
        sys.exit(f"vocab.json/merges.txt not found in {folder}; pass --roberta-dir")
    head = header(folder)
    ref, ref_prefix = reference_tokenizer(folder), reference_tokenizer(folder, add_prefix_space=True)
    write("strings.json.gz", head, record_strings(ref, ref_prefix))
    write("calls.json.gz", head, record_calls(folder))
    write("decode.json.gz", head, record_decode(ref))
    write("unicode.json.gz", head, record_unicode())


if __name__ == "__main__":
    main()
