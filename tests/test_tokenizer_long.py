"""Long pre-tokens: the O(n log n) merge loops equal the readable one, equal the reference, and
the word cache stays bounded. Issue 15: "a" * 200_000 took 382 s with the O(n^2) loop alone.

Speed itself is measured by bench/tokenizer.py --pathological, not here; these tests hold the
answers. Reference ids come from the live `tokenizers` (transformers' fast tokenizer) when it
is installed; known answers below were read off tokenizers 0.23.
"""

import warnings

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from minirobera import RobertaTokenizer, bpe, kernels  # noqa: E402

_TOKENIZERS = {}


@pytest.fixture(scope="module")
def tok(roberta_base_dir):
    if "tok" not in _TOKENIZERS:
        _TOKENIZERS["tok"] = RobertaTokenizer.from_pretrained(roberta_base_dir)
    return _TOKENIZERS["tok"]


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    """Long pieces take the compiled loop with 'numba', the Python merge_long with 'numpy'."""
    if request.param == "numba":
        pytest.importorskip("numba")
    old = kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(old)


@pytest.fixture(scope="module")
def reference(roberta_base_dir):
    transformers = pytest.importorskip("transformers")
    mask = transformers.AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)
    return transformers.RobertaTokenizer.from_pretrained(str(roberta_base_dir), mask_token=mask,
                                                         model_max_length=512)


# Units whose runs stress the merges: one letter, digits, spaces, an emoji (4 bytes, no merge
# across copies), a base64-ish alphabet, a laugh whose best merges overlap.
UNITS = ["a", "7", " ", "😀", "ha", "ACGT", "=", "ab", "\n", "aé", "Zz9+/"]
runs = st.builds(lambda unit, count, tail: unit * count + tail, st.sampled_from(UNITS),
                 st.integers(1, 2_000), st.text(st.sampled_from("ab7 😀"), max_size=5))
symbol_strings = st.text(st.sampled_from("aabb7 éh😀"), min_size=2, max_size=400)


@given(symbol_strings)
def test_merge_long_equals_the_readable_merge(tok, text):
    symbols = bpe.to_byte_symbols(text)
    assert tok.bpe.merge_long(symbols) == tok.bpe.merge(symbols)


@given(symbol_strings)
def test_compiled_merge_equals_merge_long(tok, text):
    pytest.importorskip("numba")
    from minirobera.bpe_numba import MergeTable

    if "table" not in _TOKENIZERS:
        _TOKENIZERS["table"] = MergeTable(tok.bpe)
    want = [tok.bpe.encoder[t] for t in tok.bpe.merge_long(bpe.to_byte_symbols(text))]
    assert _TOKENIZERS["table"].encode(text).tolist() == want


@pytest.mark.parametrize("text, ids", [
    ("a" * 21, [44172] * 5 + [102]),                             # aaaa x5, a
    ("7" * 9, [4718] * 3 + [33416]),                             # 77 x3, 777
    ("ha" * 9, [298, 43555, 43555, 43555, 895, 11695]),          # h ahah x3 ah aha
], ids=["letters", "digits", "laugh"])
def test_known_answers(tok, backend, text, ids):
    """Short enough for the readable loop and for merge_long / the compiled loop alike."""
    assert tok.encode(text, add_special_tokens=False) == ids
    symbols = bpe.to_byte_symbols(text)
    assert [tok.bpe.encoder[t] for t in tok.bpe.merge_long(symbols)] == ids


def test_a_200k_run(tok, backend):
    """The issue's input: one pre-token of 200,000 symbols, 50,000 'aaaa' tokens (reference)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # longer than model_max_length: the reference warns too
        ids = tok("a" * 200_000)["input_ids"]
    assert ids == [0] + [44172] * 50_000 + [2]


@pytest.mark.parametrize("text", ["7" * 100_001, " " * 100_000 + "x", "😀" * 30_000],
                         ids=["digits", "spaces", "emoji"])
def test_long_runs_round_trip(tok, backend, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert ids == tok.bpe.encode(text)


@given(runs)
def test_long_runs_equal_reference(tok, reference, text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = reference(text, return_offsets_mapping=True)
        got = tok(text, return_offsets_mapping=True)
    assert got["input_ids"] == want["input_ids"]
    assert [tuple(o) for o in got["offset_mapping"]] == [tuple(o) for o in want["offset_mapping"]]
    assert tok.decode(got["input_ids"], skip_special_tokens=True) == text


def test_cache_is_bounded(tok):
    """At most cache_size pieces, none of cache_chars characters or more (the reference's rule)."""
    small = bpe.BytePairEncoder(tok.bpe.encoder, tok.bpe.merges, cache_size=3, cache_chars=256)
    for n in range(10):
        small.encode_word(f"word{n}")
    assert 1 <= len(small.cache) <= 3
    small.cache.clear()
    ids = small.encode_word("a" * 256)
    assert ids == (44172,) * 64 and len(small.cache) == 0
    small.encode_word("a" * 255)
    assert len(small.cache) == 1


def test_explain_refuses_a_piece_it_could_not_show(tok):
    """explain() copies the symbols at every merge step: quadratic in a piece's length."""
    assert tok.explain("a" * 1024)["input_ids"] == tok.encode("a" * 1024)
    with pytest.raises(ValueError, match=r"at most 1024 bytes; this text has one of 1,025"):
        tok.explain("a" * 1025)
