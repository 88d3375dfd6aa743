"""minirobera's tokenizer against recorded reference output, exactly.

The fixtures in tests/fixtures/tokenizer/ were made by scripts/make_tokenizer_fixtures.py
with the tokenizers-backed transformers RobertaTokenizer (versions in each file's "reference"
header). These tests need the real roberta-base vocab, but not transformers.
"""

import gzip
import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import pytest

from minirobera import bpe
from minirobera.added_tokens import _WHITESPACE
from minirobera.tokenizer import RobertaTokenizer

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "tokenizer"


@lru_cache(maxsize=None)
def fixture(name: str) -> dict:
    with gzip.open(FIXTURE_DIR / name, "rt", encoding="utf-8") as f:
        return json.load(f)


@lru_cache(maxsize=None)
def _load(folder: Path, options: str) -> RobertaTokenizer:
    return RobertaTokenizer.from_pretrained(folder, **json.loads(options))


@pytest.fixture(scope="module")
def load(roberta_base_dir):
    """load(**options) -> a cached tokenizer on the real roberta-base vocab."""
    return lambda **options: _load(roberta_base_dir, json.dumps(options, sort_keys=True))


@pytest.fixture(scope="module")
def tok(load):
    return load()


@pytest.fixture(scope="module")
def tok_prefix(load):
    return load(add_prefix_space=True)


def plain(value):
    """NumPy arrays and tuples -> nested lists, as the fixtures store them."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def mismatches(cases, got, key):
    bad = [(c["text"], c[key], g) for c, g in zip(cases, got) if c[key] != g]
    return f"{len(bad)} of {len(cases)} differ from the reference ({key}); first: {bad[:3]!r}"


@pytest.mark.parametrize("name", ["strings.json.gz", "calls.json.gz", "decode.json.gz",
                                  "unicode.json.gz"])
def test_fixture_names_its_reference(name):
    ref = fixture(name)["reference"]
    assert ref["transformers"] and ref["tokenizers"] and ref["script"].startswith("scripts/")


def test_enough_strings():
    assert len(fixture("strings.json.gz")["cases"]) >= 3000


# --- one string at a time -------------------------------------------------------------------

def test_ids(tok):
    cases = fixture("strings.json.gz")["cases"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the > 512 token inputs warn, as they should
        got = [tok(c["text"])["input_ids"] for c in cases]
    assert all(c["ids"] == g for c, g in zip(cases, got)), mismatches(cases, got, "ids")


def test_batch_ids_equal_fixture(tok):
    """The whole list as one batch (the fast path) gives the same ids."""
    cases = fixture("strings.json.gz")["cases"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = tok([c["text"] for c in cases])["input_ids"]
    assert all(c["ids"] == g for c, g in zip(cases, got)), mismatches(cases, got, "ids")


def test_offsets_and_word_ids(tok):
    cases = fixture("strings.json.gz")["cases"]
    offsets, words = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in cases:
            enc = tok(c["text"], return_offsets_mapping=True)
            offsets.append([x for span in enc["offset_mapping"] for x in span])
            words.append(enc.word_ids())
    assert all(c["offsets"] == g for c, g in zip(cases, offsets)), mismatches(cases, offsets, "offsets")
    assert all(c["words"] == g for c, g in zip(cases, words)), mismatches(cases, words, "words")


def test_add_prefix_space(tok_prefix):
    cases = fixture("strings.json.gz")["cases"]
    ids, offsets = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in cases:
            enc = tok_prefix(c["text"], return_offsets_mapping=True)
            ids.append(enc["input_ids"])
            offsets.append([x for span in enc["offset_mapping"] for x in span])
    assert all(c["prefix_ids"] == g for c, g in zip(cases, ids)), mismatches(cases, ids, "prefix_ids")
    assert all(c["prefix_offsets"] == g for c, g in zip(cases, offsets)), \
        mismatches(cases, offsets, "prefix_offsets")


def test_decode_of_encoded(tok):
    cases = fixture("strings.json.gz")["cases"]
    full = [tok.decode(c["ids"]) for c in cases]
    skip = [tok.decode(c["ids"], skip_special_tokens=True) for c in cases]
    assert all(c["decode"] == g for c, g in zip(cases, full)), mismatches(cases, full, "decode")
    want = [c["decode_skip"] if c["decode_skip"] is not None else c["text"] for c in cases]
    assert skip == want, [(w, g) for w, g in zip(want, skip) if w != g][:3]


# --- decode of arbitrary ids --------------------------------------------------------------

def test_decode_random_ids(tok):
    cases = fixture("decode.json.gz")["cases"]
    for c in cases:
        assert tok.decode(c["ids"]) == c["decode"], c
        assert tok.decode(c["ids"], skip_special_tokens=True) == c["decode_skip"], c
        assert tok.convert_ids_to_tokens(c["ids"]) == c["tokens"], c


# --- __call__ with options ------------------------------------------------------------------

EVERYTHING = dict(return_token_type_ids=True, return_attention_mask=True,
                  return_special_tokens_mask=True, return_offsets_mapping=True, return_length=True)


def _case_id(i, case):
    kw = ",".join(f"{k}={v}" for k, v in case["kwargs"].items())
    return f"{i}-{'prefix' if case['options'].get('add_prefix_space') else 'plain'}-{kw}"[:90]


CALLS = fixture("calls.json.gz")["cases"] if (FIXTURE_DIR / "calls.json.gz").exists() else []


@pytest.mark.parametrize("case", CALLS, ids=[_case_id(i, c) for i, c in enumerate(CALLS)])
def test_call(case, load):
    tok = load(**case["options"])
    if "error" in case:
        # the reference raises a bare Exception (or panics); minirobera a ValueError that says why
        with pytest.raises(ValueError):
            tok(*case["args"], **case["kwargs"], **EVERYTHING)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = tok(*case["args"], **case["kwargs"], **EVERYTHING)
    assert list(enc) == list(case["result"])  # same keys, same order
    for key, want in case["result"].items():
        assert plain(enc[key]) == want, key
    rows = range(len(case["word_ids"]))
    assert [enc.word_ids(i) for i in rows] == case["word_ids"]
    assert [enc.sequence_ids(i) for i in rows] == case["sequence_ids"]
    assert [enc.tokens(i) for i in rows] == case["tokens"]


# --- the Unicode classes behind the pre-tokenizer -----------------------------------------

def test_letter_and_number_tables_match_reference():
    """bpe.py spells out \\p{L} and \\p{N} as the reference's Oniguruma (Unicode 16) has them."""
    recorded = fixture("unicode.json.gz")["cases"]
    assert " ".join(bpe._LETTER_RANGES.split()) == recorded["letters"]
    assert " ".join(bpe._NUMBER_RANGES.split()) == recorded["numbers"]


def _ranges_to_set(ranges: str) -> set:
    out = set()
    for item in ranges.split():
        lo, _, hi = item.partition("-")
        out.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    return out


def test_whitespace_matches_reference():
    """\\s (what splits, and what <mask> lstrip takes) is Unicode White_Space, not str.isspace."""
    spaces = {chr(c) for c in _ranges_to_set(fixture("unicode.json.gz")["cases"]["spaces"])}
    assert _WHITESPACE == spaces
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert set(re.findall(f"[{bpe._SPACE}]", everything)) == spaces
    ascii_chars = "".join(map(chr, range(128)))
    assert set(re.findall(r"\s", ascii_chars, re.ASCII)) == {c for c in spaces if c.isascii()}


@pytest.mark.parametrize("kind,ranges", [("letters", "_LETTER_RANGES"),
                                         ("numbers", "_NUMBER_RANGES")])
def test_letter_and_number_classes_cover_exactly_the_reference(kind, ranges):
    want = {chr(c) for c in _ranges_to_set(fixture("unicode.json.gz")["cases"][kind])}
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    got = set(re.findall(f"[{bpe._char_class(getattr(bpe, ranges))}]", everything))
    assert got == want, sorted(got ^ want)[:10]


@pytest.mark.parametrize("kind,prefix", [("letters", "x"), ("numbers", "1")])
def test_pre_tokenizer_classes_code_points_like_reference(kind, prefix):
    """The real split on prefix + c, as the fixture script probed the reference: every range
    edge (and its neighbours) plus every 97th code point."""
    recorded = fixture("unicode.json.gz")["cases"]
    want = _ranges_to_set(recorded[kind])
    edges = {c + d for item in (recorded["letters"] + " " + recorded["numbers"]).split()
             for c in (int(x, 16) for x in item.split("-")) for d in (-1, 0, 1)}
    cps = sorted(c for c in edges | set(range(0, 0x110000, 97))
                 if 0 <= c < 0x110000 and not 0xD800 <= c < 0xE000)
    text = "".join(prefix + chr(c) + "\n" for c in cps)
    got = {cps[s // 3] for _, s, e in bpe.pre_tokenize_spans(text) if e - s == 2 and s % 3 == 0}
    assert got == want & set(cps), sorted(got ^ (want & set(cps)))[:10]
