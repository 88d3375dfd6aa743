"""Properties of the tokenizer on generated text (hypothesis), and equality with the live
reference when transformers is installed. Example counts come from the hypothesis profile in
tests/conftest.py (MINIROBERA_HYPOTHESIS_EXAMPLES)."""

import re
import warnings

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, strategies as st  # noqa: E402

from minirobera import RobertaTokenizer  # noqa: E402
from minirobera.added_tokens import _WHITESPACE  # noqa: E402

_TOKENIZERS = {}


def load(folder, **options):
    key = (str(folder), tuple(sorted(options.items())))
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = RobertaTokenizer.from_pretrained(folder, **options)
    return _TOKENIZERS[key]


@pytest.fixture(scope="module")
def tok(roberta_base_dir):
    return load(roberta_base_dir)


# Any valid UTF-8 text (no lone surrogates), with the tricky bits over-represented.
PIECES = ["<mask>", "<s>", "</s>", "<pad>", "<unk>", "<mas", " ", "  ", "\t", "\n", "\u00a0",
          "\u3000", "\x1c", "'s", "'S", "'ll", "🤗", "👨‍👩‍👧", "e\u0301", "123", "...", "naïve"]
any_char = st.characters(exclude_categories=("Cs",))
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(any_char, max_size=8)),
                 max_size=8).map("".join)
plain_texts = st.text(any_char, max_size=40)
MASK_AFTER_SPACE = re.compile("[" + "".join(sorted(_WHITESPACE)) + "]<mask>")


@given(texts)
def test_decode_inverts_encode(tok, text):
    """Every valid string comes back, except whitespace that <mask> swallows (lstrip)."""
    assume(not MASK_AFTER_SPACE.search(text))
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


@given(plain_texts)
def test_decode_inverts_encode_plain(tok, text):
    assume(not MASK_AFTER_SPACE.search(text))
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


@given(texts)
def test_ids_in_range(tok, text):
    enc = tok(text, return_offsets_mapping=True)
    assert all(0 <= i < len(tok) for i in enc["input_ids"])
    assert all(0 <= s <= e <= len(text) for s, e in enc["offset_mapping"])


@given(st.lists(texts, min_size=1, max_size=5), st.sampled_from([False, True, "max_length"]),
       st.sampled_from(["left", "right"]))
def test_batch_equals_items(tok, batch, padding, side):
    kwargs = dict(padding=padding, padding_side=side, max_length=64 if padding == "max_length" else None,
                  truncation=True if padding == "max_length" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        together = tok(batch, **kwargs)
        if padding is True:  # padding=True pads to the batch's longest, so compare unpadded
            kwargs["padding"] = False
            together = {k: [[x for x, m in zip(row, mask) if m] for row, mask in
                            zip(together[k], together["attention_mask"])] for k in together}
        alone = [tok(text, **kwargs) for text in batch]
    assert together["input_ids"] == [a["input_ids"] for a in alone]
    assert together["attention_mask"] == [a["attention_mask"] for a in alone]


@given(st.lists(texts, min_size=1, max_size=5), st.sampled_from(["left", "right"]),
       st.sampled_from([None, 3, 8]))
def test_padding_keeps_the_unpadded_ids(tok, batch, side, multiple):
    plain = tok(batch)["input_ids"]
    padded = tok(batch, padding=True, padding_side=side, pad_to_multiple_of=multiple)
    for ids, row, mask in zip(plain, padded["input_ids"], padded["attention_mask"]):
        assert [i for i, m in zip(row, mask) if m] == ids
        assert all(i == tok.pad_token_id for i, m in zip(row, mask) if not m)
        assert len(row) % (multiple or 1) == 0


@given(texts, st.text(st.sampled_from(sorted(_WHITESPACE)), min_size=1, max_size=4), texts)
def test_mask_lstrip(tok, before, spaces, after):
    """Whitespace right before <mask> vanishes; nothing else changes."""
    stripped = (before + spaces).rstrip("".join(_WHITESPACE))
    assert tok.encode(before + spaces + "<mask>" + after) == tok.encode(stripped + "<mask>" + after)


@given(st.lists(texts, min_size=1, max_size=4))
def test_fast_path_equals_general_path(tok, batch):
    fast = tok(batch, return_special_tokens_mask=True)
    general = tok(batch, return_special_tokens_mask=True, return_offsets_mapping=True)
    assert fast["input_ids"] == general["input_ids"]
    assert fast["special_tokens_mask"] == general["special_tokens_mask"]


@given(st.text(st.characters(max_codepoint=127), max_size=60))
def test_ascii_fast_split_equals_full_split(text):
    """The pure-ASCII pre-tokenizer is only a faster spelling of the full one."""
    from minirobera import bpe
    assert bpe._ASCII_SPLIT.findall(text) == bpe._FULL_SPLIT.findall(text)


@given(texts)
def test_explain_agrees_with_encode(tok, text):
    assert tok.explain(text)["input_ids"] == tok.encode(text)


# --- live equality with the reference (only with transformers installed) ------------------

@pytest.fixture(scope="module")
def reference(roberta_base_dir):
    transformers = pytest.importorskip("transformers")
    mask = transformers.AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)

    def make(**options):
        return transformers.RobertaTokenizer.from_pretrained(
            str(roberta_base_dir), mask_token=mask, model_max_length=512, **options)
    return {False: make(), True: make(add_prefix_space=True)}


def _plain(enc):
    return {k: [list(x) if isinstance(x, tuple) else x for x in v] if k == "offset_mapping" else v
            for k, v in enc.items()}


@given(texts, st.booleans())
def test_equals_reference(reference, roberta_base_dir, text, prefix):
    ours = load(roberta_base_dir, add_prefix_space=prefix)
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want, got = reference[prefix](text, **kw), ours(text, **kw)
    assert _plain(got) == _plain(want)
    assert got.word_ids() == want.word_ids()


@given(texts, texts, st.sampled_from(["longest_first", "only_first", "only_second"]),
       st.integers(4, 24), st.integers(0, 3), st.booleans())
def test_pairs_equal_reference(reference, roberta_base_dir, a, b, strategy, max_length, stride,
                               prefix):
    assume(b)  # an empty text_pair means "no pair" in transformers
    ours = load(roberta_base_dir, add_prefix_space=prefix)
    kw = dict(truncation=strategy, max_length=max_length, stride=stride,
              return_overflowing_tokens=True, return_offsets_mapping=True)
    try:
        want = reference[prefix](a, b, **kw)
    except BaseException as e:  # the reference raises Exception or panics on impossible cuts
        if type(e).__name__ not in ("Exception", "PanicException", "ValueError"):
            raise
        with pytest.raises(ValueError):
            ours(a, b, **kw)
        return
    got = ours(a, b, **kw)
    assert _plain(got) == _plain(want)
    rows = range(len(want["input_ids"]))
    assert [got.sequence_ids(i) for i in rows] == [want.sequence_ids(i) for i in rows]
