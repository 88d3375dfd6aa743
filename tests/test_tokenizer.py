"""Known answers from REFERENCE.md section 1, the API around them, and bad input.

Values here are the reference's (transformers 5.24 / tokenizers 0.23 on the real roberta-base
vocab) as REFERENCE.md records them; tests that need the real vocab use `roberta_base_dir`.
"""

import json
import os
import warnings

import numpy as np
import pytest

from minirobera import RobertaTokenizer
from minirobera import bpe
from minirobera.batching import longest_first_lengths, pair_window_order, window_ranges
from minirobera.tokenizer import _tiny


@pytest.fixture(scope="module")
def tok(roberta_base_dir):
    return RobertaTokenizer.from_pretrained(roberta_base_dir)


@pytest.fixture(scope="module")
def tok_prefix(roberta_base_dir):
    return RobertaTokenizer.from_pretrained(roberta_base_dir, add_prefix_space=True)


def ids(tok, *args, **kwargs):
    return tok(*args, **kwargs)["input_ids"]


# --- bytes, pre-tokens, merges ---------------------------------------------------------------

def test_byte_table():
    table = bpe.bytes_to_unicode()
    assert [b for b in range(256) if table[b] == chr(b)] == \
        [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    moved = [b for b in range(256) if table[b] != chr(b)]
    assert len(moved) == 68 and [table[b] for b in moved] == [chr(256 + n) for n in range(68)]
    assert (table[0x20], table[0x0A], table[0x09], table[0x00], table[0x7F], table[0xAD]) == \
        ("Ġ", "Ċ", "ĉ", "Ā", "ġ", "Ń")


def test_all_byte_symbols_in_vocab(tok):
    assert all(s in tok.get_vocab() for s in bpe.BYTE_ENCODER.values())


@pytest.mark.parametrize("text,pieces", [
    ("Hello world", ["Hello", " world"]),
    ("I'm it's we'll", ["I", "'m", " it", "'s", " we", "'ll"]),
    ("IT'S", ["IT", "'", "S"]),  # case-sensitive: 'S is not a contraction
    ("a   b", ["a", "  ", " b"]),  # the last space of a run goes to the next word
    ("x\n\n", ["x", "\n\n"]),
    ("2024 années", ["2024", " années"]),
    ("a\x1cb", ["a", "\x1c", "b"]),  # \x1c is not \s for the reference (it is for str.isspace)
])
def test_pre_tokenize(text, pieces):
    assert bpe.pre_tokenize(text) == pieces


def test_merges_header_skipped_but_hash_merges_kept(roberta_base_dir):
    merges = bpe.read_merges_txt(os.path.join(roberta_base_dir, "merges.txt"))
    assert len(merges) == 50_000
    assert merges[0] == ("Ġ", "t")
    assert ("#", "#") in merges and ("##", "##") in merges


def test_ids_are_not_ranks(tok):
    assert tok.bpe.ranks[("Ġ", "t")] == 0
    assert tok.get_vocab()["Ġt"] != 0


def test_vocab_sizes(tok):
    assert tok.vocab_size == len(tok) == len(tok.get_vocab()) == 50265


def test_parse_merges_both_formats():
    assert bpe.parse_merges(["a b", ["c", "d"], ("e", "f")]) == [("a", "b"), ("c", "d"), ("e", "f")]
    with pytest.raises(ValueError, match="merge 1"):
        bpe.parse_merges(["a b c"])


# --- special tokens ------------------------------------------------------------------------

def test_special_token_ids(tok):
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id,
            tok.mask_token_id) == (0, 1, 2, 3, 50264)
    assert (tok.cls_token, tok.sep_token, tok.mask_token) == ("<s>", "</s>", "<mask>")
    assert tok.all_special_tokens == ["<s>", "</s>", "<unk>", "<pad>", "<mask>"]
    assert tok.all_special_ids == [0, 2, 3, 1, 50264]


@pytest.mark.parametrize("text,want", [
    ("<s>inside</s>", [0, 0, 36615, 2, 2]),
    ("a <s> b", [0, 102, 1437, 0, 741, 2]),  # a space before a non-mask special: lone Ġ
    ("<unk>", [0, 3, 2]),
    ("Hello <mask>", [0, 31414, 50264, 2]),
    ("Hello<mask>", [0, 31414, 50264, 2]),
    ("Hello  <mask>", [0, 31414, 50264, 2]),
    (" <mask> ", [0, 50264, 1437, 2]),
    ("Hello\t<mask>", [0, 31414, 50264, 2]),
    ("Hello\n<mask>", [0, 31414, 50264, 2]),
    ("Hello\u00a0<mask>", [0, 31414, 50264, 2]),
    ("Hello\u3000<mask>", [0, 31414, 50264, 2]),
    ("x\x1c<mask>", [0, 1178, 50136, 50264, 2]),  # \x1c is not whitespace: kept
    ("Hello I'm a <mask> model.", [0, 31414, 38, 437, 10, 50264, 1421, 4, 2]),
    ("A, <mask> AllenNLP sentence.", [0, 250, 6, 50264, 3823, 487, 21992, 3645, 4, 2]),
])
def test_special_tokens_in_text(tok, text, want):
    assert ids(tok, text) == want


def test_partial_special_tokens_are_text(tok):
    assert 50264 not in ids(tok, "<mas")
    assert ids(tok, "<mas") == [0, 41552, 13738, 2]


# --- add_prefix_space, templates, masks ----------------------------------------------------

def test_prefix_space(tok, tok_prefix):
    assert ids(tok, "Hello world") == [0, 31414, 232, 2]
    assert ids(tok, " Hello world") == [0, 20920, 232, 2]
    assert ids(tok_prefix, "Hello world") == [0, 20920, 232, 2]
    assert ids(tok_prefix, "<s>Hello") == [0, 0, 20920, 2]
    assert ids(tok_prefix, "\tHello")[:3] == [0, 1437, 50117]  # the fast tokenizer's extra Ġ


def test_pair_template(tok):
    enc = tok("Hello world", "How are you?", return_special_tokens_mask=True)
    assert enc["input_ids"] == [0, 31414, 232, 2, 2, 6179, 32, 47, 116, 2]
    assert enc["special_tokens_mask"] == [1, 0, 0, 1, 1, 0, 0, 0, 0, 1]
    assert enc.sequence_ids() == [None, 0, 0, None, None, 1, 1, 1, 1, None]
    assert "token_type_ids" not in enc
    assert tok("a", "b", return_token_type_ids=True)["token_type_ids"] == [0] * 6


def test_mask_in_text_is_not_a_special_position(tok):
    enc = tok("Hello <mask>", return_special_tokens_mask=True)
    assert enc["special_tokens_mask"] == [1, 0, 0, 1]


def test_max_lengths(tok):
    assert tok.model_max_length == 512
    assert len(ids(tok, "word " * 600, truncation=True)) == 512
    assert len(ids(tok, "word " * 600, "word " * 600, truncation=True)) == 512


# --- truncation and overflow ---------------------------------------------------------------

A10, B6 = " ".join("a" * 10), " ".join("b" * 6)


@pytest.mark.parametrize("strategy,n_a,n_b", [("longest_first", 4, 4), (True, 4, 4),
                                              ("only_first", 2, 6)])
def test_pair_truncation(tok, strategy, n_a, n_b):
    enc = tok(A10, B6, truncation=strategy, max_length=12)
    assert enc.sequence_ids().count(0) == n_a and enc.sequence_ids().count(1) == n_b


def test_truncation_tie(tok):
    enc = tok(" ".join("a" * 7), " ".join("b" * 7), truncation=True, max_length=9)
    assert (enc.sequence_ids().count(0), enc.sequence_ids().count(1)) == (2, 3)


def test_only_second_impossible(tok):
    with pytest.raises(ValueError, match="only_second"):
        tok(A10, B6, truncation="only_second", max_length=12)


def test_overflow_windows_with_stride(tok):
    enc = tok(" ".join(map(str, range(12))), max_length=8, stride=2, truncation=True,
              return_overflowing_tokens=True)
    tokens = [tok.convert_ids_to_tokens(row) for row in enc["input_ids"]]
    assert tokens == [["<s>", "0", "Ġ1", "Ġ2", "Ġ3", "Ġ4", "Ġ5", "</s>"],
                      ["<s>", "Ġ4", "Ġ5", "Ġ6", "Ġ7", "Ġ8", "Ġ9", "</s>"],
                      ["<s>", "Ġ8", "Ġ9", "Ġ10", "Ġ11", "</s>"]]
    assert enc["overflow_to_sample_mapping"] == [0, 0, 0]


def test_truncation_side_left(roberta_base_dir):
    tok = RobertaTokenizer.from_pretrained(roberta_base_dir, truncation_side="left")
    assert tok.convert_ids_to_tokens(ids(tok, "a b c d e", max_length=4)) == ["<s>", "Ġd", "Ġe", "</s>"]


def test_window_helpers():
    assert window_ranges(12, 6, 2) == [(0, 6), (4, 10), (8, 12)]
    assert longest_first_lengths(10, 6, 8) == (4, 4)
    assert longest_first_lengths(7, 7, 5) == (2, 3)
    assert pair_window_order(2, 2) == [(0, 0), (1, 0), (1, 1), (0, 1)]


# --- padding -----------------------------------------------------------------------------------

def test_padding(tok):
    enc = tok(["a", "bb cc dd"], padding=True)
    assert enc["input_ids"] == [[0, 102, 2, 1, 1], [0, 14141, 41754, 47821, 2]]
    assert enc["attention_mask"] == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    left = tok(["a", "bb cc dd"], padding="longest", padding_side="left", pad_to_multiple_of=4)
    assert left["input_ids"][0] == [1, 1, 1, 1, 1, 0, 102, 2]
    assert len(tok("a", padding="max_length")["input_ids"]) == 512
    arr = tok(["a", "b c"], padding="max_length", max_length=6, return_tensors="np")["input_ids"]
    assert arr.dtype == np.int64 and arr.shape == (2, 6)


# --- offsets, words, decode ----------------------------------------------------------------

def test_offsets(tok):
    enc = tok("Hello world", return_offsets_mapping=True)
    assert enc["offset_mapping"] == [(0, 0), (0, 5), (6, 11), (0, 0)]
    assert tok("a  b", return_offsets_mapping=True)["offset_mapping"][2] == (2, 2)  # lone Ġ
    assert tok(" 🤗", return_offsets_mapping=True)["offset_mapping"][1:4] == [(1, 2)] * 3
    assert tok("Hello <mask>!", return_offsets_mapping=True)["offset_mapping"][2] == (6, 12)
    pair = tok("Hello", "world", return_offsets_mapping=True)["offset_mapping"]
    assert pair[-2] == (0, 5)  # B's offsets restart at 0


def test_decode(tok):
    assert tok.decode([232]) == " world"
    assert tok.decode([6569, 10470, 6800]) == "🤗"
    assert tok.decode([6569, 10470]) == "\ufffd"  # a cut emoji: replacement character
    assert tok.decode([0, 31414, 232, 2]) == "<s>Hello world</s>"
    assert tok.decode([0, 31414, 232, 2], skip_special_tokens=True) == "Hello world"
    assert tok.decode(np.array([31414, 232])) == "Hello world"
    assert tok.batch_decode([[0, 232, 2], [31414]], skip_special_tokens=True) == [" world", "Hello"]
    assert tok.decode([[232], [31414]]) == [" world", "Hello"]


def test_split_into_words(tok_prefix):
    enc = tok_prefix(["Hello", "world", "!"], is_split_into_words=True)
    assert enc["input_ids"] == [0, 20920, 232, 27785, 2]
    assert enc.word_ids() == [None, 0, 1, 2, None]


def test_no_normaliser(tok):
    import unicodedata
    nfc, nfd = unicodedata.normalize("NFC", "naïve"), unicodedata.normalize("NFD", "naïve")
    assert ids(tok, nfc) != ids(tok, nfd)
    assert tok.decode(ids(tok, nfd), skip_special_tokens=True) == nfd


# --- the rest of the API ---------------------------------------------------------------------

def test_conversions(tok):
    assert tok.convert_tokens_to_ids("Ġworld") == 232
    assert tok.convert_tokens_to_ids(["Ġworld", "no-such-token", "<mask>"]) == [232, 3, 50264]
    assert tok.convert_ids_to_tokens([0, 232, 99999]) == ["<s>", "Ġworld", None]
    assert tok.convert_ids_to_tokens([0, 232, 2], skip_special_tokens=True) == ["Ġworld"]
    assert tok.tokenize("Hello <mask> world<s>") == ["Hello", " <mask>", "Ġworld", "<s>"]
    assert tok.encode("Hello world", "x") == [0, 31414, 232, 2, 2, 1178, 2]


def test_special_tokens_mask_helpers(tok):
    assert tok.get_special_tokens_mask([5, 6], [7]) == [1, 0, 0, 1, 1, 0, 1]
    assert tok.get_special_tokens_mask([0, 5, 2], already_has_special_tokens=True) == [1, 0, 1]


def test_fast_path_equals_general_path(tok):
    texts = ["Hello world", "", "  x  ", "<s>a<mask>b</s>", "naïve 🤗", "a\n\nb"]
    fast = tok(texts, return_special_tokens_mask=True)
    general = tok(texts, return_special_tokens_mask=True, return_offsets_mapping=True)
    assert fast["input_ids"] == general["input_ids"]
    assert fast["special_tokens_mask"] == general["special_tokens_mask"]
    assert [fast.word_ids(i) for i in range(6)] == [general.word_ids(i) for i in range(6)]


def test_explain(tok):
    steps = tok.explain("Hello <mask>")
    text, special = steps["pieces"]
    assert special == {"kind": "special", "text": " <mask>", "start": 5, "lstrip": True, "id": 50264}
    assert text["pre_tokens"] == ["Hello"]
    word = text["words"][0]
    assert word["bytes"] == list(b"Hello") and word["byte_symbols"][0] == (72, "H")
    ranks = [m["rank"] for m in word["merges"]]
    assert ranks == sorted(ranks) and word["merges"][-1]["symbols"] == ["Hello"]
    assert steps["input_ids"] == [0, 31414, 50264, 2]


def test_too_long_warns_once(roberta_base_dir):
    tok = RobertaTokenizer.from_pretrained(roberta_base_dir)
    with pytest.warns(UserWarning, match="longer than the specified maximum"):
        tok("word " * 600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok("word " * 600, truncation=True)
        tok("word " * 600)  # once per tokenizer, like transformers


# --- files ---------------------------------------------------------------------------------------

def _linked_folder(tmp_path, roberta_base_dir, **config):
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).symlink_to(os.path.join(roberta_base_dir, name))
    if config:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    return tmp_path


def test_tokenizer_config_is_read(tmp_path, roberta_base_dir):
    folder = _linked_folder(tmp_path, roberta_base_dir, add_prefix_space=True, model_max_length=64)
    tok = RobertaTokenizer.from_pretrained(folder)
    assert tok.model_max_length == 64 and ids(tok, "Hello") == [0, 20920, 2]
    assert RobertaTokenizer.from_pretrained(folder, model_max_length=8).model_max_length == 8


def test_save_and_load_round_trip(tmp_path, tok):
    tok.save_pretrained(tmp_path)
    again = RobertaTokenizer.from_pretrained(tmp_path)
    assert ids(again, "Hello I'm a <mask> model.") == [0, 31414, 38, 437, 10, 50264, 1421, 4, 2]
    for text in ["naïve 🤗 <s>x</s>", " <mask> ", "\tHello  world"]:
        assert again(text, return_offsets_mapping=True) == tok(text, return_offsets_mapping=True)


def test_load_from_tokenizer_json_only(tmp_path, tok):
    tok.save_pretrained(tmp_path)
    os.remove(tmp_path / "vocab.json")
    os.remove(tmp_path / "merges.txt")
    spec = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    spec["model"]["merges"] = [" ".join(m) for m in spec["model"]["merges"]]  # older format
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    again = RobertaTokenizer.from_pretrained(tmp_path)
    assert ids(again, "Hello <mask> world") == ids(tok, "Hello <mask> world") == [0, 31414, 50264, 232, 2]


def test_saved_folder_loads_in_transformers(tmp_path, tok):
    transformers = pytest.importorskip("transformers")
    tok.save_pretrained(tmp_path)
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in ["Hello <mask>", "Hello I'm a <mask> model.", " <mask> ", "a <s> b", "naïve 🤗"]:
        assert ref(text)["input_ids"] == ids(tok, text), text
    assert ref.model_max_length == 512


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [5, 3.5, b"bytes", None, {"text": "x"}])
def test_non_string_is_a_type_error(tok, bad):
    with pytest.raises(TypeError, match=type(bad).__name__ if bad is not None else "None"):
        tok(bad)


def test_non_string_in_batch(tok):
    with pytest.raises(TypeError, match="int"):
        tok(["fine", 7])


def test_lone_surrogate(tok):
    with pytest.raises(ValueError, match="position 3"):
        tok("abc\ud800def")


@pytest.mark.parametrize("kwargs,match", [
    (dict(padding="bogus"), "longest"),
    (dict(truncation="bogus"), "only_second"),
    (dict(truncation=True, max_length=1), "special tokens"),
    (dict(truncation=True, max_length=6, stride=5), "stride"),
    (dict(padding_side="middle"), "left"),
    (dict(return_tensors="pt"), "np"),
])
def test_bad_options(tok, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tok("some text here", **kwargs)


# transformers 5.24 raises exactly these in the constructor (test_bad_sides_like_transformers).
@pytest.mark.parametrize("kwargs,message", [
    (dict(padding_side="middle"),
     "Padding side should be selected between 'right' and 'left', current value: middle"),
    (dict(truncation_side="middle"),
     "Truncation side should be selected between 'right' and 'left', current value: middle"),
    (dict(padding_side=None),
     "Padding side should be selected between 'right' and 'left', current value: None"),
    (dict(padding_side="LEFT"),
     "Padding side should be selected between 'right' and 'left', current value: LEFT"),
])
def test_bad_sides_rejected_in_the_constructor(kwargs, message):
    with pytest.raises(ValueError) as err:
        RobertaTokenizer(*_tiny(), **kwargs)
    assert str(err.value) == message


def test_bad_side_in_tokenizer_config(tmp_path, roberta_base_dir):
    folder = _linked_folder(tmp_path, roberta_base_dir, truncation_side="center")
    with pytest.raises(ValueError, match="Truncation side should be selected between 'right' "
                                         "and 'left', current value: center"):
        RobertaTokenizer.from_pretrained(folder)


def test_bad_sides_like_transformers(roberta_base_dir):
    transformers = pytest.importorskip("transformers")
    vocab, merges = (os.path.join(roberta_base_dir, n) for n in ("vocab.json", "merges.txt"))
    for kwargs in (dict(padding_side="middle"), dict(truncation_side="middle"),
                   dict(padding_side=None), dict(padding_side="LEFT")):
        with pytest.raises(ValueError) as theirs:
            transformers.RobertaTokenizer(vocab_file=vocab, merges_file=merges, **kwargs)
        with pytest.raises(ValueError) as ours:
            RobertaTokenizer(*_tiny(), **kwargs)
        assert str(ours.value) == str(theirs.value)


def test_pair_needs_room_for_four_specials(tok):
    with pytest.raises(ValueError, match="4 special tokens"):
        tok("a", "b", truncation=True, max_length=3)


def test_ragged_numpy(tok):
    with pytest.raises(ValueError, match="padding"):
        tok(["a", "b c d"], return_tensors="np")


def test_missing_vocab_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json") as err:
        RobertaTokenizer.from_pretrained(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_merges_file(tmp_path, roberta_base_dir):
    (tmp_path / "vocab.json").symlink_to(os.path.join(roberta_base_dir, "vocab.json"))
    with pytest.raises(FileNotFoundError, match="merges.txt"):
        RobertaTokenizer.from_pretrained(tmp_path)


def test_merge_outside_vocab():
    vocab, _ = _tiny()
    with pytest.raises(ValueError, match="not in the vocab"):
        RobertaTokenizer(vocab, [("x", "y")])


# --- contractions in non-ASCII text (issue 22, item 10) ----------------------------------------

# Known answers from transformers 5.25 / tokenizers 0.23.3 on the real roberta-base vocab:
# every contraction id, in text that is not ASCII (so the full-Unicode split runs, not the
# ASCII fast path). "'M" is no contraction: the split is case-sensitive.
CONTRACTION_IDS = {"'s": 18, "'t": 75, "'re": 214, "'ve": 348, "'m": 437, "'ll": 581, "'d": 1017}


@pytest.mark.parametrize("contraction", sorted(CONTRACTION_IDS))
def test_contractions_in_non_ascii_text(tok, contraction):
    text = f"I{contraction} naïve, she{contraction}é"
    assert bpe.pre_tokenize(text) == ["I", contraction, " naïve", ",", " she", contraction, "é"]
    c = CONTRACTION_IDS[contraction]
    assert ids(tok, text) == [0, 100, c, 39300, 6, 79, c, 1140, 2]


def test_capital_contraction_is_not_one(tok):
    assert bpe.pre_tokenize("I'M naïve") == ["I", "'", "M", " naïve"]
    assert ids(tok, "I'M naïve, she'Mé") == [0, 100, 108, 448, 39300, 6, 79, 108, 448, 1140, 2]


def test_contractions_equal_the_reference_pre_tokenizer():
    pre_tokenizers = pytest.importorskip("tokenizers.pre_tokenizers")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    for contraction in [*CONTRACTION_IDS, "'M", "'S", "'LL", "'x"]:
        for text in (f"I{contraction} naïve", f"naïve{contraction}", f"Ж{contraction}ü 1{contraction}"):
            want = [piece for piece, _ in byte_level.pre_tokenize_str(text)]
            assert [bpe.to_byte_symbols(p) for p in bpe.pre_tokenize(text)] == want, text


# --- transformers 4.x API: token type ids and save_vocabulary (issue 21, item 6) ----------------

def test_create_token_type_ids_from_sequences(tok):
    """All zeros, pairs included (transformers 4.x's RobertaTokenizer), and the same as
    __call__'s token_type_ids for the same inputs."""
    a, b = ids(tok, "Hello world")[1:-1], ids(tok, "How are you?")[1:-1]
    assert tok.create_token_type_ids_from_sequences(a) == [0] * (len(a) + 2)
    assert tok.create_token_type_ids_from_sequences(a, b) == [0] * (len(a) + len(b) + 4)
    enc = tok("Hello world", "How are you?", return_token_type_ids=True)
    assert tok.create_token_type_ids_from_sequences(a, b) == enc["token_type_ids"]


def test_save_vocabulary(tok, tmp_path, roberta_base_dir):
    """vocab.json and merges.txt as 4.x writes them (merges.txt byte for byte the hub's),
    their paths returned; with a prefix, `{prefix}-vocab.json`; the two load back the same."""
    paths = tok.save_vocabulary(str(tmp_path))
    assert paths == (str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    assert (tmp_path / "merges.txt").read_bytes() == \
        open(os.path.join(roberta_base_dir, "merges.txt"), "rb").read()
    text = (tmp_path / "vocab.json").read_text(encoding="utf-8")
    vocab = json.loads(text)
    assert vocab == tok.bpe.encoder and list(vocab) == sorted(vocab) and text.startswith('{\n  "')
    again = RobertaTokenizer.from_pretrained(tmp_path)
    assert ids(again, "Hello I'm a <mask> model.") == [0, 31414, 38, 437, 10, 50264, 1421, 4, 2]
    prefixed = tok.save_vocabulary(tmp_path, filename_prefix="rb")
    assert [os.path.basename(p) for p in prefixed] == ["rb-vocab.json", "rb-merges.txt"]
    with pytest.raises(NotADirectoryError):
        tok.save_vocabulary(tmp_path / "missing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merges.txt", "rb-merges.txt",
                                                          "rb-vocab.json", "vocab.json"]


def test_no_reexport_shims():
    """The names batching.py / offsets.py / added_tokens.py own are imported from there."""
    from minirobera import tokenizer
    for name in ("BatchEncoding", "window_ranges", "trim_offsets", "_WHITESPACE",
                 "VERY_LARGE_INTEGER"):
        assert not hasattr(tokenizer, name), name
