"""Hostile tokenizer files (issue 22, items 6 and 7): every malformed field is refused at load
with a TokenizerFileError that names the file and the field, never a TypeError / KeyError /
IndexError / struct.error, never a value silently misread, and never slow.

The files are small copies derived from real ones: the SentencePiece model of
tests/fixtures/sentencepiece (re-encoded field by field), and a RoBERTa tokenizer made of
the real roberta-base vocab restricted to its first 300 merges (so the real vocab is never
copied into the repo). Then seeded fuzzing of the same files (flipped bytes, truncation,
changed lengths, JSON values swapped for hostile ones): the only acceptable outcomes are a
correct load, whose tokenizer then encodes, or a TokenizerFileError.
"""

import base64
import copy
import json
import random
import struct
import time
from pathlib import Path

import pytest

import minirobera
from minirobera.sentencepiece import CharsMap, read_model_proto
from minirobera.tokenizer import RobertaTokenizer
from minirobera.tokenizer_files import TokenizerFileError
from minirobera.xlm_roberta import XLMRobertaTokenizer, tokenizer_class_for

SPM_FIXTURE = Path(__file__).parent / "fixtures" / "sentencepiece" / "sentencepiece.bpe.model"
SAMPLE = "Hello world, I'm naïve <mask> ﬁ２ 🤗 <s>x</s>"


def test_error_class_is_exported_and_a_value_error():
    assert minirobera.TokenizerFileError is TokenizerFileError
    assert issubclass(TokenizerFileError, ValueError)


# --- writing a SentencePiece ModelProto by hand ------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + (_varint(payload) if wire == 0 else payload)


def _model_bytes(pieces, charsmap: bytes, name: bytes = b"nmt_nfkc") -> bytes:
    """A ModelProto: pieces [(name bytes, score, type)], unigram trainer spec, normalizer."""
    out = b"".join(_field(1, 2, _field(1, 2, p) + _field(2, 5, struct.pack("<f", s))
                          + _field(3, 0, t)) for p, s, t in pieces)
    out += _field(2, 2, _field(3, 0, 1))
    return out + _field(3, 2, _field(1, 2, name) + _field(2, 2, charsmap)
                        + _field(3, 0, 1) + _field(4, 0, 1))


@pytest.fixture(scope="module")
def spm():
    """(pieces as bytes, charsmap) of the fixture model."""
    proto = read_model_proto(SPM_FIXTURE)
    return [(p.encode(), s, t) for p, s, t in proto.pieces], proto.precompiled_charsmap


def _spm_folder(tmp_path, data: bytes) -> Path:
    (tmp_path / "sentencepiece.bpe.model").write_bytes(data)
    return tmp_path


def test_re_encoded_fixture_loads_the_same(spm, tmp_path):
    pieces, charsmap = spm
    ours = XLMRobertaTokenizer.from_pretrained(_spm_folder(tmp_path, _model_bytes(pieces, charsmap)))
    fixture = XLMRobertaTokenizer.from_pretrained(SPM_FIXTURE.parent)
    assert ours(SAMPLE)["input_ids"] == fixture(SAMPLE)["input_ids"]


def _leaf_units(charsmap: bytes):
    """(index, unit) of each trie unit with a leaf, and the units and targets."""
    (size,) = struct.unpack_from("<I", charsmap)
    units = list(struct.unpack_from(f"<{size // 4}I", charsmap, 4))
    leaves = [(i, u) for i, u in enumerate(units) if not u >> 31 and (u >> 8) & 1]
    return leaves, units, charsmap[4 + size:]


def _pack(units, targets) -> bytes:
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + targets


def _corrupt_trie(charsmap: bytes) -> bytes:
    """A leaf unit whose offset points past the trie (was an IndexError at encode time)."""
    leaves, units, targets = _leaf_units(charsmap)
    i, unit = leaves[len(leaves) // 2]
    units[i] = (unit & 0x1FF) | (1 << 20) << 10  # offset 2**20: i ^ offset is past the units
    return _pack(units, targets)


def _bad_target(charsmap: bytes) -> bytes:
    """The first leaf's target starts with 0xFF (was a UnicodeDecodeError at encode time)."""
    leaves, units, targets = _leaf_units(charsmap)
    i, unit = leaves[0]
    value = units[i ^ ((unit >> 10) << ((unit & (1 << 9)) >> 6))] & 0x7FFFFFFF
    return _pack(units, targets[:value] + b"\xff" + targets[value + 1:])


def _big_size(charsmap: bytes) -> bytes:
    return struct.pack("<I", len(charsmap)) + charsmap[4:]


SPM_CASES = {
    # name: (pieces, charsmap -> hostile model bytes, words the error must hold)
    "trie-index-out-of-range": (lambda p, c: _model_bytes(p, _corrupt_trie(c)),
                                ["precompiled_charsmap", "trie unit", "past its"]),
    "charsmap-target-not-utf8": (lambda p, c: _model_bytes(p, _bad_target(c)),
                                 ["precompiled_charsmap", "not valid UTF-8"]),
    "charsmap-under-4-bytes": (lambda p, c: _model_bytes(p, b"\x01\x02\x03"),
                               ["precompiled_charsmap", "3 bytes"]),
    "charsmap-size-too-big": (lambda p, c: _model_bytes(p, _big_size(c)),
                              ["precompiled_charsmap", "trie size"]),
    "piece-name-not-utf8": (lambda p, c: _model_bytes(p[:7] + [(b"\xff\xfeab", -3.0, 1)] + p[8:], c),
                            ["piece 7 name", "not valid UTF-8"]),
    "normalizer-name-not-utf8": (lambda p, c: _model_bytes(p, c, name=b"nmt\xff"),
                                 ["normalizer_spec.name", "not valid UTF-8"]),
    "piece-score-nan": (lambda p, c: _model_bytes(p[:5] + [(b"x", float("nan"), 1)] + p[6:], c),
                        ["piece 5", "not a number"]),
    "piece-type-unknown": (lambda p, c: _model_bytes(p[:5] + [(b"x", -1.0, 9)] + p[6:], c),
                           ["piece 5", "unknown type 9"]),
    "message-cut-short": (lambda p, c: _model_bytes(p, c)[:-7], ["cut short"]),
    "no-pieces": (lambda p, c: _field(2, 2, _field(3, 0, 1)), ["pieces", "missing"]),
    "wire-type-7": (lambda p, c: b"\x0f" + _model_bytes(p, c), ["wire type 7"]),
    # sentencepiece refuses both: "piece must not be empty", "... is already defined"
    "piece-empty": (lambda p, c: _model_bytes(p[:5] + [(b"", -1.0, 1)] + p[6:], c),
                    ["piece 5", "is empty"]),
    "piece-repeated": (lambda p, c: _model_bytes(p[:5] + [p[4]] + p[6:], c),
                       ["piece 5", "repeats piece 4"]),
    # the red team's file: 2 M empty, identical pieces (4 MB) loaded as a 2,000,008-piece
    # vocab (+464 MB, 5-10 s)
    "two-million-empty-pieces": (lambda p, c: _model_bytes(p[:6], c) + b"\x0a\x00" * 2_000_000,
                                 ["piece 6", "is empty"]),
}


@pytest.mark.parametrize("case", sorted(SPM_CASES))
def test_hostile_sentencepiece_model(spm, tmp_path, case):
    make, words = SPM_CASES[case]
    folder = _spm_folder(tmp_path, make(*spm))
    start = time.perf_counter()
    with pytest.raises(TokenizerFileError) as err:
        XLMRobertaTokenizer.from_pretrained(folder)
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert str(folder / "sentencepiece.bpe.model") in message
    for word in words:
        assert word in message, message


def test_piece_count_bounded(spm, tmp_path, monkeypatch):
    """More than MAX_PIECES pieces is refused as soon as the next one is read (the bound is
    lowered here so the test stays small); exactly MAX_PIECES still loads."""
    import minirobera.sentencepiece as sentencepiece
    assert sentencepiece.MAX_PIECES == 1_000_000  # XLM-R has 250,002
    pieces, charsmap = spm
    monkeypatch.setattr(sentencepiece, "MAX_PIECES", len(pieces))
    assert len(read_model_proto(_model_bytes(pieces, charsmap)).pieces) == len(pieces)
    folder = _spm_folder(tmp_path, _model_bytes(pieces + [(b"zz", -1.0, 1)], charsmap))
    with pytest.raises(TokenizerFileError, match=f"pieces are more than {len(pieces):,}"):
        XLMRobertaTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("size, refused", [(7999, False), (8000, True), (100_000, True)])
def test_piece_length_bounded_as_sentencepiece(spm, size, refused):
    """sentencepiece loads a piece of 7999 UTF-8 bytes and refuses one of 8000 ("piece is too
    long"); so does read_model_proto (checked live against sentencepiece in the next test)."""
    pieces, charsmap = spm
    data = _model_bytes(pieces + [(b"y" * size, -1.0, 1)], charsmap)
    if not refused:
        assert read_model_proto(data).pieces[-1][0] == "y" * size
        return
    with pytest.raises(TokenizerFileError, match=f"piece {len(pieces)} is {size:,} bytes long"):
        read_model_proto(data)


def test_piece_length_bound_is_sentencepieces(spm):
    sentencepiece = pytest.importorskip("sentencepiece")
    pieces, charsmap = spm
    for size, loads in ((7999, True), (8000, False)):
        processor = sentencepiece.SentencePieceProcessor()
        data = _model_bytes(pieces + [("é".encode() * (size // 2) + b"y" * (size % 2), -1.0, 1)],
                            charsmap)
        if loads:
            processor.LoadFromSerializedProto(data)
        else:
            with pytest.raises(Exception, match="piece is too long"):
                processor.LoadFromSerializedProto(data)


def test_long_piece_does_not_slow_viterbi(spm, tmp_path):
    """One long piece (the red team's had 100,000 characters, now refused at load; this one
    has sentencepiece's maximum) made every word cost len(word) * len(piece) slices (a
    3000-character word took seconds); the prefix search stops where no piece continues.
    The long piece is still a piece, with its own id."""
    pieces, charsmap = spm
    long_piece = "y" * 7999
    folder = _spm_folder(tmp_path, _model_bytes(pieces + [(long_piece.encode(), -1.0, 1)],
                                                charsmap))
    tok = XLMRobertaTokenizer.from_pretrained(folder)
    plain = XLMRobertaTokenizer.from_pretrained(SPM_FIXTURE.parent)
    word = "x" * 3000
    start = time.perf_counter()
    ids = tok(word)["input_ids"]
    assert time.perf_counter() - start < 1.0
    assert ids == plain(word)["input_ids"]
    assert tok.convert_tokens_to_ids(long_piece) == tok.vocab_size - 2  # before <mask>


def _viterbi_every_slice(model, word):
    """The Viterbi of UnigramModel.encode_word without the prefix search (every slice up to
    the longest piece tried), for the equality test below."""
    n, longest = len(word), max(len(p) for p, _ in model.vocab)
    best, back = [0.0] * (n + 1), [None] * (n + 1)
    unk = model.min_score - 10.0
    for start in range(n):
        single = False
        for stop in range(start + 1, min(n, start + longest) + 1):
            score = model.scores.get(word[start:stop])
            if score is None:
                continue
            if back[stop] is None or best[start] + score > best[stop]:
                best[stop] = best[start] + score
                back[stop] = (start, model.token_to_id[word[start:stop]])
            single = single or stop == start + 1
        if not single and (back[start + 1] is None or best[start] + unk > best[start + 1]):
            best[start + 1], back[start + 1] = best[start] + unk, (start, model.unk_id)
    out, stop = [], n
    while stop > 0:
        start, i = back[stop]
        if i == model.unk_id and out and out[-1][0] == model.unk_id:
            out[-1] = (i, start, out[-1][2])
        else:
            out.append((i, start, stop))
        stop = start
    out.reverse()
    return [(model.token_to_id.get(word[s:e], i) if i == model.unk_id else i, s, e)
            for i, s, e in out]


@pytest.mark.parametrize("seed", range(4))
def test_prefix_search_viterbi_equals_every_slice(seed):
    """Random vocabs over a 3-letter alphabet (pieces sharing long prefixes, gaps where no
    piece continues, ties): the prefix search finds exactly the segmentation of trying every
    slice."""
    from minirobera.sentencepiece import UnigramModel
    rng = random.Random(seed)
    pieces = {"".join(rng.choice("abc") for _ in range(rng.randint(1, 7))) for _ in range(40)}
    vocab = [("<unk>", 0.0)] + [(p, -float(rng.randint(1, 6))) for p in sorted(pieces)]
    model = UnigramModel(vocab, unk_id=0)
    for _ in range(200):
        word = "".join(rng.choice("abcd") for _ in range(rng.randint(1, 20)))
        assert model.encode_word(word) == _viterbi_every_slice(model, word), word


@pytest.mark.parametrize("where", ["length", "key"])
def test_varint_run_of_0xff_fails_fast(tmp_path, where):
    """800 KB of 0xFF took 25 s (a varint without the 10-byte limit grows a huge int)."""
    data = (b"\x0a" + b"\xff" * 800_000) if where == "length" else b"\xff" * 800_000
    folder = _spm_folder(tmp_path, data)
    start = time.perf_counter()
    with pytest.raises(TokenizerFileError, match="longer than 10 bytes"):
        XLMRobertaTokenizer.from_pretrained(folder)
    assert time.perf_counter() - start < 1.0


def test_ten_byte_varint_is_still_read():
    """The limit is protobuf's: a 10-byte varint (a negative int32 field) is valid."""
    piece = _field(1, 2, b"a") + _field(2, 5, struct.pack("<f", -1.0)) + _field(3, 0, 1)
    spec = b"\x10" + _varint(2 ** 64 - 1)  # TrainerSpec field 2 (ignored), 10 bytes
    assert len(_varint(2 ** 64 - 1)) == 10
    model = read_model_proto(_field(1, 2, piece) + _field(2, 2, spec))
    assert model.pieces == [("a", -1.0, 1)]


def test_tokenizer_json_charsmap_checked_too(spm, tmp_path):
    """The same charsmap checks on the tokenizer.json route (base64 in the normalizer)."""
    tok = XLMRobertaTokenizer.from_pretrained(SPM_FIXTURE.parent)
    tok.save_pretrained(tmp_path)
    path = tmp_path / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    for blob, word in ((base64.b64encode(_corrupt_trie(spm[1])).decode(), "trie unit"),
                       ("not base64!", "not valid base64"), (["AAAA"], "base64 string")):
        spec["normalizer"]["precompiled_charsmap"] = blob
        path.write_text(json.dumps(spec), encoding="utf-8")
        with pytest.raises(TokenizerFileError) as err:
            XLMRobertaTokenizer.from_pretrained(tmp_path)
        assert f"{path}: normalizer.precompiled_charsmap" in str(err.value) and word in str(err.value)


def test_charsmap_checks_accept_the_real_map(spm):
    charsmap = CharsMap(spm[1])
    assert charsmap.transform("ﬁ") == "fi" and charsmap.transform("a") is None


# --- RoBERTa's files -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_roberta(roberta_base_dir, tmp_path_factory):
    """The real roberta-base vocab cut to the specials, the 256 byte symbols and the tokens
    of its first 300 merges (real ids), saved with all five files."""
    from minirobera.bpe import BYTE_ENCODER, read_merges_txt
    full = json.loads(Path(roberta_base_dir, "vocab.json").read_text(encoding="utf-8"))
    merges = read_merges_txt(str(Path(roberta_base_dir, "merges.txt")))[:300]
    keep = {"<s>", "<pad>", "</s>", "<unk>", "<mask>", *BYTE_ENCODER.values(),
            *(a + b for a, b in merges)}
    vocab = {t: i for t, i in full.items() if t in keep}
    folder = tmp_path_factory.mktemp("small-roberta")
    RobertaTokenizer(vocab, merges).save_pretrained(folder)
    return folder


def _copy(folder: Path, dest: Path, skip=()) -> Path:
    dest.mkdir(exist_ok=True)
    for path in folder.iterdir():
        if path.name not in skip:
            (dest / path.name).write_bytes(path.read_bytes())
    return dest


def test_small_roberta_loads_like_the_real_one(small_roberta, roberta_base_dir):
    real = RobertaTokenizer.from_pretrained(roberta_base_dir)
    small = RobertaTokenizer.from_pretrained(small_roberta)
    ids = small(" the the<mask>")["input_ids"]
    assert ids == real(" the the<mask>")["input_ids"] == [0, 5, 5, 50264, 2]


def _json_case(name, mutate, words, skip=()):
    return pytest.param(name, mutate, words, skip, id=f"{name}:{words[0]}")


def _set(path, value):
    def mutate(obj):
        *parents, last = path
        for key in parents:
            obj = obj[key]
        if value is _DELETE:
            del obj[last]
        else:
            obj[last] = value
    return mutate


_DELETE = object()
_BPE_JSON = ("vocab.json", "merges.txt")  # removed, so the model comes from tokenizer.json
ROBERTA_JSON_CASES = [
    _json_case("vocab.json", _set(["Ġthe"], "5"), ["'Ġthe'", "token id", "'5'"]),
    _json_case("vocab.json", _set(["Ġthe"], None), ["'Ġthe'", "token id", "None"]),
    _json_case("vocab.json", _set(["Ġthe"], 5.0), ["'Ġthe'", "token id", "5.0"]),
    _json_case("vocab.json", _set(["Ġthe"], -1), ["'Ġthe'", "token id", "-1"]),
    _json_case("vocab.json", _set(["Ġthe"], 10 ** 30), ["'Ġthe'", "token id"]),
    _json_case("vocab.json", _set(["Ġthe"], 2 ** 31), ["'Ġthe'", "token id"]),
    _json_case("vocab.json", _set(["Ġthe"], True), ["'Ġthe'", "token id", "True"]),
    _json_case("vocab.json", _set(["Ġthe"], 0), ["id 0 to both", "'Ġthe'"]),
    _json_case("tokenizer.json", _set(["pre_tokenizer"], []), ["pre_tokenizer", "got a list"]),
    _json_case("tokenizer.json", _set(["post_processor"], []), ["post_processor", "got a list"]),
    _json_case("tokenizer.json", _set(["added_tokens"], {}), ["added_tokens", "got an object"]),
    _json_case("tokenizer.json", _set(["added_tokens", 0, "content"], _DELETE),
               ["added_tokens[0]", "no content"]),
    _json_case("tokenizer.json", _set(["added_tokens", 1], "<pad>"),
               ["added_tokens[1]", "got a string"]),
    _json_case("tokenizer.json", _set(["added_tokens", 2, "id"], "2"), ["added_tokens[2].id"]),
    _json_case("tokenizer.json", _set(["added_tokens", 2, "lstrip"], "false"),
               ["added_tokens[2].lstrip", "'false'"]),
    _json_case("tokenizer.json", _set(["pre_tokenizer", "add_prefix_space"], "false"),
               ["pre_tokenizer.add_prefix_space", "'false'"]),
    _json_case("tokenizer.json", _set(["post_processor", "trim_offsets"], "false"),
               ["post_processor.trim_offsets", "'false'"]),
    _json_case("tokenizer.json", _set(["model"], []), ["model", "got a list"], _BPE_JSON),
    _json_case("tokenizer.json", _set(["model", "vocab"], []), ["model.vocab", "got a list"],
               _BPE_JSON),
    _json_case("tokenizer.json", _set(["model", "vocab", "Ġt"], 3.5), ["model.vocab", "'Ġt'"],
               _BPE_JSON),
    _json_case("tokenizer.json", _set(["model", "merges"], {}), ["model.merges", "got an object"],
               _BPE_JSON),
    _json_case("tokenizer.json", _set(["model", "merges", 0], 5), ["model.merges"], _BPE_JSON),
    _json_case("tokenizer.json", _set(["model", "merges", 0], ["Ġ", "zz"]),
               ["merge 1", "not in the vocab"], _BPE_JSON),
    _json_case("tokenizer_config.json", _set(["add_prefix_space"], "false"),
               ["add_prefix_space", "'false'"]),
    _json_case("tokenizer_config.json", _set(["add_prefix_space"], 0), ["add_prefix_space", "0"]),
    _json_case("tokenizer_config.json", _set(["add_prefix_space"], None),
               ["add_prefix_space", "None"]),
    _json_case("tokenizer_config.json", _set(["trim_offsets"], "no"), ["trim_offsets", "'no'"]),
    _json_case("tokenizer_config.json", _set(["clean_up_tokenization_spaces"], "false"),
               ["clean_up_tokenization_spaces", "'false'"]),
    _json_case("tokenizer_config.json", _set(["model_max_length"], "512"),
               ["model_max_length", "'512'"]),
    _json_case("tokenizer_config.json", _set(["model_max_length"], -1), ["model_max_length", "-1"]),
    _json_case("tokenizer_config.json", _set(["model_max_length"], 512.5),
               ["model_max_length", "512.5"]),
    _json_case("tokenizer_config.json", _set(["model_max_length"], True),
               ["model_max_length", "True"]),
    _json_case("tokenizer_config.json", _set(["mask_token"], ""), ["mask_token", "empty string"]),
    _json_case("tokenizer_config.json", _set(["mask_token"], 5), ["mask_token", "got an integer"]),
    _json_case("tokenizer_config.json", _set(["mask_token"], {"lstrip": True}),
               ["mask_token.content", "got null"]),
    _json_case("tokenizer_config.json", _set(["mask_token"], {"content": "<mask>", "lstrip": 1}),
               ["mask_token.lstrip"]),
    _json_case("tokenizer_config.json", _set(["padding_side"], 5), ["padding_side", "current value: 5"]),
    _json_case("special_tokens_map.json", _set(["mask_token"], ""), ["mask_token", "empty string"]),
    _json_case("special_tokens_map.json", _set(["pad_token"], ["<pad>"]), ["pad_token", "got a list"]),
]


@pytest.mark.parametrize("name, mutate, words, skip", ROBERTA_JSON_CASES)
def test_hostile_roberta_json_field(small_roberta, tmp_path, name, mutate, words, skip):
    _assert_json_field_refused(RobertaTokenizer, _copy(small_roberta, tmp_path / "tok", skip),
                               name, mutate, words)


def _assert_json_field_refused(cls, folder, name, mutate, words):
    """cls.from_pretrained on `folder` with its JSON file `name` mutated: a TokenizerFileError
    whose message starts with the file and holds each of `words`."""
    data = json.loads((folder / name).read_text(encoding="utf-8"))
    mutate(data)
    (folder / name).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(TokenizerFileError) as err:
        cls.from_pretrained(folder)
    message = str(err.value)
    assert message.startswith(str(folder / name) + ": "), message
    for word in words:
        assert word in message, message


RAW_CASES = [
    ("vocab.json", b'{"a": 0,', "vocab.json: "),
    ("vocab.json", b'{"caf\xe9": 0}', "not valid UTF-8"),
    ("vocab.json", b"[1, 2]", "JSON object"),
    ("vocab.json", b"[" * 100_000 + b"]" * 100_000, "vocab.json: "),
    ("merges.txt", b"#version: 0.2\n\xc3( x\n", "not valid UTF-8"),
    ("merges.txt", b"#version: 0.2\n\xc4\xa0 t h\n", "merge 1"),
    ("tokenizer.json", b"[]", "the file must be a JSON object"),
    ("tokenizer.json", b"{\"model\": ", "tokenizer.json: "),
    ("tokenizer_config.json", b"\"just a string\"", "the file must be a JSON object"),
    ("special_tokens_map.json", b"\xff", "not valid UTF-8"),
]


@pytest.mark.parametrize("name, content, words", RAW_CASES,
                         ids=[f"{n}:{w}" for n, _, w in RAW_CASES])
def test_hostile_roberta_file(small_roberta, tmp_path, name, content, words):
    folder = _copy(small_roberta, tmp_path / "tok")
    (folder / name).write_bytes(content)
    with pytest.raises(TokenizerFileError) as err:
        RobertaTokenizer.from_pretrained(folder)
    assert str(folder / name) in str(err.value) and words in str(err.value), str(err.value)


def test_add_prefix_space_string_refused_like_the_reference(small_roberta, tmp_path):
    """transformers 5.25 refuses "false" (TypeError) rather than read it as True; so do we,
    with our error naming the file. Where it is a real false, the ids are the reference's."""
    transformers = pytest.importorskip("transformers")
    folder = _copy(small_roberta, tmp_path / "tok", skip=("tokenizer.json",))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    for value in ("false", 0):
        (folder / "tokenizer_config.json").write_text(json.dumps({**config,
                                                                  "add_prefix_space": value}))
        with pytest.raises(TypeError):
            transformers.AutoTokenizer.from_pretrained(str(folder))
        with pytest.raises(TokenizerFileError, match="add_prefix_space"):
            RobertaTokenizer.from_pretrained(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "add_prefix_space": False}))
    ref = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert RobertaTokenizer.from_pretrained(folder)("the the")["input_ids"] == \
        ref("the the")["input_ids"]


@pytest.mark.parametrize("kwargs", [dict(add_prefix_space="false"), dict(trim_offsets="no"),
                                    dict(clean_up_tokenization_spaces="false"),
                                    dict(model_max_length="512")])
def test_constructor_refuses_non_bool_flags(small_roberta, kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        RobertaTokenizer.from_pretrained(small_roberta, **kwargs)


# --- XLM-R's files ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xlmr_json(tmp_path_factory):
    folder = tmp_path_factory.mktemp("xlmr-json")
    XLMRobertaTokenizer.from_pretrained(SPM_FIXTURE.parent).save_pretrained(folder)
    return folder


XLMR_JSON_CASES = [
    ("tokenizer.json", _set(["model", "vocab"], {}), ["model.vocab", "got an object"]),
    ("tokenizer.json", _set(["model", "vocab", 7], ["▁a", "x"]), ["model.vocab[7]"]),
    ("tokenizer.json", _set(["model", "vocab", 7], ["▁a"]), ["model.vocab[7]"]),
    ("tokenizer.json", _set(["model", "vocab", 7], [5, -1.0]), ["model.vocab[7]"]),
    ("tokenizer.json", _set(["model", "unk_id"], 10 ** 9), ["model.unk_id", "1000000000"]),
    ("tokenizer.json", _set(["model", "unk_id"], "3"), ["model.unk_id"]),
    ("tokenizer.json", _set(["model", "type"], "WordPiece"), ["model", "'WordPiece'"]),
    ("tokenizer.json", _set(["normalizer"], []), ["normalizer", "got a list"]),
    ("tokenizer.json", _set(["normalizer"], {"type": "Sequence", "normalizers": {}}),
     ["normalizer.normalizers", "got an object"]),
    ("tokenizer.json", _set(["added_tokens", 0, "content"], _DELETE), ["added_tokens[0]"]),
    ("tokenizer_config.json", _set(["add_prefix_space"], "false"), ["add_prefix_space"]),
    ("tokenizer_config.json", _set(["mask_token"], ""), ["mask_token", "empty string"]),
]


@pytest.mark.parametrize("name, mutate, words", XLMR_JSON_CASES,
                         ids=[f"{n}:{w[0]}:{i}" for i, (n, _, w) in enumerate(XLMR_JSON_CASES)])
def test_hostile_xlmr_json_field(xlmr_json, tmp_path, name, mutate, words):
    _assert_json_field_refused(XLMRobertaTokenizer, _copy(xlmr_json, tmp_path / "tok"), name,
                               mutate, words)


def test_tokenizer_class_from_hostile_config(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text('["XLMRobertaTokenizer"]')
    with pytest.raises(TokenizerFileError, match="tokenizer_config.json: the file must be"):
        tokenizer_class_for(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": ["x"]}')
    assert tokenizer_class_for(tmp_path) is RobertaTokenizer  # not a name: ignored, as absent


# --- seeded fuzzing --------------------------------------------------------------------------

def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """One random damage: flipped bytes, a cut, a deleted or inserted run, a length changed."""
    data = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del data[rng.randrange(len(data)):]
    elif kind == 2:
        start = rng.randrange(len(data))
        del data[start:start + rng.randint(1, 64)]
    elif kind == 3:
        start = rng.randrange(len(data))
        data[start:start] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:  # a byte that is likely a length or a varint set to an extreme
        data[rng.randrange(min(len(data), 4096))] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
    return bytes(data)


HOSTILE_VALUES = ["false", "", None, [], {}, -1, 1.5, 10 ** 30, 2 ** 40, True, "\udcff"[:0] + "x",
                  [[]], {"content": ""}]


def _mutate_json(rng: random.Random, value):
    """A copy of a JSON value with one node replaced by a hostile value or one key deleted."""
    value = copy.deepcopy(value)
    nodes = [(None, None)]
    stack = [value]
    while stack and len(nodes) < 20_000:
        node = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, child in children:
            nodes.append((node, key))
            if isinstance(child, (dict, list)) and rng.random() < 0.3:
                stack.append(child)
    parent, key = rng.choice(nodes[1:])
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    return value


def _load_and_encode(load, folder):
    """The fuzz oracle: a TokenizerFileError at load, or a tokenizer that encodes.

    Two documented exceptions, both files the reference loads too and both a ValueError
    saying what is missing, raised only for a text that needs it: a byte-level vocab that
    lost one of the 256 byte symbols (bpe.py), and a Unigram model whose unk_id is null
    (tokenizers fails the same way on an unknown character).
    """
    try:
        tok = load(folder)
    except TokenizerFileError:
        return "refused"
    try:
        tok(SAMPLE, "pair text", return_offsets_mapping=True)
        tok.decode(tok(SAMPLE)["input_ids"])
    except ValueError as e:
        if not ("the vocab has no entry for the byte symbol" in str(e)
                or "the model has no unk token" in str(e)):
            raise
        return "missing symbol"
    return "loaded"


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_sentencepiece_model(tmp_path, seed):
    rng, data = random.Random(seed), SPM_FIXTURE.read_bytes()
    outcomes = []
    for n in range(20):
        folder = _spm_folder(tmp_path / f"m{n}" if (tmp_path / f"m{n}").mkdir() is None else None,
                             _mutate_bytes(rng, data))
        outcomes.append(_load_and_encode(XLMRobertaTokenizer.from_pretrained, folder))
    assert "refused" in outcomes  # the fuzzing reached the checks


@pytest.mark.parametrize("name", ["tokenizer.json", "vocab.json", "merges.txt",
                                  "tokenizer_config.json"])
def test_fuzz_roberta_files(small_roberta, tmp_path, name):
    rng = random.Random(name)
    skip = _BPE_JSON if name == "tokenizer.json" else ()
    original = (small_roberta / name).read_bytes()
    outcomes = []
    for n in range(40):
        folder = _copy(small_roberta, tmp_path / f"t{n}", skip)
        if name.endswith(".json") and n % 2:
            mutated = json.dumps(_mutate_json(rng, json.loads(original))).encode()
        else:
            mutated = _mutate_bytes(rng, original)
        (folder / name).write_bytes(mutated)
        outcomes.append(_load_and_encode(RobertaTokenizer.from_pretrained, folder))
    assert "refused" in outcomes


def test_fuzz_xlmr_tokenizer_json(xlmr_json, tmp_path):
    rng = random.Random(22)
    spec = json.loads((xlmr_json / "tokenizer.json").read_text(encoding="utf-8"))
    outcomes = []
    for n in range(20):
        folder = _copy(xlmr_json, tmp_path / f"x{n}", skip=("tokenizer.json",))
        (folder / "tokenizer.json").write_text(json.dumps(_mutate_json(rng, spec)))
        outcomes.append(_load_and_encode(XLMRobertaTokenizer.from_pretrained, folder))
    assert "refused" in outcomes


@pytest.mark.parametrize("mask", ["", {"content": ""}, {"content": 5}])
def test_constructor_refuses_empty_special_tokens(small_roberta, mask):
    """mask_token "" was an IndexError deep in the added-token regex."""
    with pytest.raises(ValueError, match="mask_token must be a non-empty string"):
        RobertaTokenizer.from_pretrained(small_roberta, mask_token=mask)
    with pytest.raises(ValueError, match="mask_token must be a non-empty string"):
        XLMRobertaTokenizer.from_pretrained(SPM_FIXTURE.parent, mask_token=mask)


# --- added tokens outside the seven roles (red team 16: silently misread) -------------------

def _entry(id_, content, **flags):
    entry = {"id": id_, "content": content, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
    return {**entry, **flags}


def _with_added_tokens(folder: Path, first_id: int) -> Path:
    """Append four added tokens to folder/tokenizer.json: a special one, a non-special one, a
    single_word one and an lstrip + rstrip one (ids from first_id on)."""
    path = folder / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    spec["added_tokens"] += [_entry(first_id, "<custom>"),
                             _entry(first_id + 1, "plain", special=False, normalized=True),
                             _entry(first_id + 2, "<sw>", single_word=True, special=False),
                             _entry(first_id + 3, "<ls>", lstrip=True, rstrip=True)]
    path.write_text(json.dumps(spec), encoding="utf-8")
    return folder


ADDED_TEXTS = ["a <custom> b", "xplain plain", "a<sw>b <sw> x <sw>", "a  <ls>  b",
               "é<sw> _<sw> 1<sw> \u0301<sw> ·<sw> ²<sw>", "<custom><s> plain<mask>"]


@pytest.fixture
def roberta_added(tmp_path):
    """The toy RoBERTa tokenizer from tokenizer.json alone, with the four added tokens."""
    from minirobera.tokenizer import _tiny
    RobertaTokenizer(*_tiny()).save_pretrained(tmp_path)
    (tmp_path / "vocab.json").unlink()
    (tmp_path / "merges.txt").unlink()
    return _with_added_tokens(tmp_path, 262)


def test_added_tokens_outside_the_roles_are_matched(roberta_added):
    """Known answers, recorded from transformers 5.25 / tokenizers loading the same file (the
    live comparison is the next test): "<custom>" was split by BPE into 8 ids; a single_word
    token is not matched inside a word; decode(skip_special_tokens=True) drops special=True
    added tokens and keeps the others."""
    tok = RobertaTokenizer.from_pretrained(roberta_added)
    enc = tok("a <custom> b", return_offsets_mapping=True)
    assert enc["input_ids"] == [0, 69, 225, 262, 225, 70, 2]
    assert enc["offset_mapping"] == [(0, 0), (0, 1), (2, 2), (2, 10), (11, 11), (11, 12), (0, 0)]
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == "a  b"
    assert tok("a<sw>b <sw> x <sw>")["input_ids"] == [0, 69, 32, 87, 91, 34, 70, 225, 264, 225,
                                                      92, 225, 264, 2]
    assert tok("a  <ls>  b")["input_ids"] == [0, 69, 265, 70, 2]
    ids = tok("xplain plain")["input_ids"]
    assert ids == [0, 92, 263, 225, 263, 2]
    assert tok.decode(ids, skip_special_tokens=True) == "xplain plain"
    assert tok.convert_ids_to_tokens([262], skip_special_tokens=True) == ["<custom>"]  # no role
    assert len(tok) == 266 and tok.all_special_ids == [0, 2, 3, 1, 4]


def test_added_tokens_survive_save_pretrained(roberta_added, tmp_path_factory):
    tok = RobertaTokenizer.from_pretrained(roberta_added)
    saved = tmp_path_factory.mktemp("saved")
    tok.save_pretrained(saved)
    again = RobertaTokenizer.from_pretrained(saved)  # vocab.json + merges.txt + tokenizer.json
    written = json.loads((saved / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    assert written[-2] == _entry(264, "<sw>", single_word=True, special=False)
    for text in ADDED_TEXTS:
        assert again(text)["input_ids"] == tok(text)["input_ids"], text


def _same_as_reference(ours, ref, text):
    got, want = ours(text, return_offsets_mapping=True), ref(text, return_offsets_mapping=True)
    assert got["input_ids"] == want["input_ids"], text
    assert list(map(tuple, got["offset_mapping"])) == list(map(tuple, want["offset_mapping"]))
    for skip in (False, True):
        assert ours.decode(got["input_ids"], skip_special_tokens=skip) \
            == ref.decode(want["input_ids"], skip_special_tokens=skip), text
        assert ours.convert_ids_to_tokens(got["input_ids"], skip_special_tokens=skip) \
            == ref.convert_ids_to_tokens(want["input_ids"], skip_special_tokens=skip), text


def test_added_tokens_equal_transformers(roberta_added, tmp_path_factory):
    """Live: ids, offsets, decode with and without skip_special_tokens, for the folder and for
    what save_pretrained makes of it (loaded by transformers too)."""
    transformers = pytest.importorskip("transformers")
    saved = tmp_path_factory.mktemp("saved")
    RobertaTokenizer.from_pretrained(roberta_added).save_pretrained(saved)
    for folder in (roberta_added, saved):
        ours = RobertaTokenizer.from_pretrained(folder)
        ref = transformers.AutoTokenizer.from_pretrained(folder)
        for text in ADDED_TEXTS:
            _same_as_reference(ours, ref, text)


@pytest.mark.parametrize("name", ["XLMRobertaTokenizer", "CamembertTokenizer"])
def test_unigram_added_tokens_outside_the_roles(tmp_path, name):
    """The same for XLM-R and CamemBERT (tokenizer.json route): recorded answers from
    transformers 5.25, and the live comparison when transformers is installed."""
    from minirobera.xlm_roberta import TOKENIZER_CLASSES
    cls = TOKENIZER_CLASSES[name]
    cls.from_pretrained(SPM_FIXTURE.parent).save_pretrained(tmp_path)
    first = {"XLMRobertaTokenizer": 5002, "CamembertTokenizer": 5005}[name]
    tok = cls.from_pretrained(_with_added_tokens(tmp_path, first))
    enc = tok("Hello<custom>world plain", return_offsets_mapping=True)
    assert enc["input_ids"][-4:-1] == [first, tok.convert_tokens_to_ids("▁world"), first + 1]
    assert enc["offset_mapping"][-4:] == [(5, 13), (13, 18), (19, 24), (0, 0)]
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == "Hello worldplain"
    ids = tok("a<sw>b <sw> x <sw>")["input_ids"]
    assert ids.count(first + 2) == 2
    try:
        import transformers
    except ImportError:
        return
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for text in ADDED_TEXTS:
        _same_as_reference(tok, ref, text)


def _roberta_config_added(tmp_path, case):
    """The toy RoBERTa tokenizer as vocab.json + merges.txt (no tokenizer.json), its extra
    added tokens in tokenizer_config.json's added_tokens_decoder or in added_tokens.json."""
    from minirobera.tokenizer import _tiny
    RobertaTokenizer(*_tiny()).save_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    entries = [_entry(262, "<custom>"), _entry(263, "plain", special=False, normalized=True),
               _entry(264, "<sw>", single_word=True, special=False)]
    if case == "added_tokens_decoder":
        config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
        config["added_tokens_decoder"] = {str(e.pop("id")): e for e in entries}
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    else:
        (tmp_path / "added_tokens.json").write_text(
            json.dumps({e["content"]: e["id"] for e in entries}), encoding="utf-8")
    return tmp_path


# recorded from transformers 5.25 on the folders _roberta_config_added makes: added_tokens.json
# carries no flags, so there <custom> is not special (decode keeps it) and <sw> is not
# single_word (matched inside "a<sw>b")
CONFIG_ADDED_ANSWERS = {
    "added_tokens_decoder": {"a <custom> b": ([0, 69, 225, 262, 225, 70, 2], "a  b"),
                             "a<sw>b <sw> x": ([0, 69, 32, 87, 91, 34, 70, 225, 264, 225, 92, 2],
                                               "a<sw>b <sw> x")},
    "added_tokens.json": {"a <custom> b": ([0, 69, 225, 262, 225, 70, 2], "a <custom> b"),
                          "a<sw>b <sw> x": ([0, 69, 264, 70, 225, 264, 225, 92, 2],
                                            "a<sw>b <sw> x")},
}


@pytest.mark.parametrize("case", sorted(CONFIG_ADDED_ANSWERS))
def test_added_tokens_from_the_config_files(tmp_path, case):
    tok = RobertaTokenizer.from_pretrained(_roberta_config_added(tmp_path, case))
    for text, (ids, skipped) in CONFIG_ADDED_ANSWERS[case].items():
        assert tok(text)["input_ids"] == ids
        assert tok.decode(ids, skip_special_tokens=True) == skipped
    assert tok("xplain plain")["input_ids"] == [0, 92, 263, 225, 263, 2]
    try:
        import transformers
    except ImportError:
        return
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path)
    for text in ADDED_TEXTS[:3]:
        _same_as_reference(tok, ref, text)


@pytest.mark.parametrize("name, content, words", [
    ("tokenizer_config.json", {"added_tokens_decoder": {"x": {"content": "<a>"}}},
     ["added_tokens_decoder['x']", "token id"]),
    ("tokenizer_config.json", {"added_tokens_decoder": {"7": {"content": ""}}},
     ["added_tokens_decoder['7']", "empty"]),
    ("tokenizer_config.json", {"added_tokens_decoder": []}, ["added_tokens_decoder", "object"]),
    ("added_tokens.json", {"<a>": -1}, ["entry '<a>'", "token id"]),
    ("added_tokens.json", {"": 5}, ["entry ''", "empty"]),
    ("added_tokens.json", ["<a>"], ["the file", "object"]),
])
def test_hostile_added_token_config(tmp_path, name, content, words):
    from minirobera.tokenizer import _tiny
    RobertaTokenizer(*_tiny()).save_pretrained(tmp_path)
    path = tmp_path / name
    if name == "tokenizer_config.json":
        content = {**json.loads(path.read_text(encoding="utf-8")), **content}
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(TokenizerFileError) as err:
        RobertaTokenizer.from_pretrained(tmp_path)
    assert str(path) in str(err.value)
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize("case", sorted(CONFIG_ADDED_ANSWERS))
def test_config_file_ids_only_order_the_added_tokens(tmp_path, case):
    """transformers 5 gives the tokens of these files the next free ids in the order of their
    ids (recorded: <custom> listed at 300 after ids 263 and 264 gets 264), so a config file
    cannot put a token on an id of its choosing."""
    folder = _roberta_config_added(tmp_path, case)
    name = "tokenizer_config.json" if case == "added_tokens_decoder" else "added_tokens.json"
    text = (folder / name).read_text(encoding="utf-8")
    (folder / name).write_text(text.replace('"262"', '"300"').replace(": 262", ": 300"),
                               encoding="utf-8")
    assert "300" in (folder / name).read_text(encoding="utf-8")
    tok = RobertaTokenizer.from_pretrained(folder)
    assert tok("a <custom> b")["input_ids"] == [0, 69, 225, 264, 225, 70, 2]
    assert tok.convert_tokens_to_ids(["plain", "<sw>"]) == [262, 263]


@pytest.mark.parametrize("case", ["tokenizer.json", "added_tokens_decoder", "added_tokens.json"])
def test_added_token_count_bounded(tmp_path, monkeypatch, case):
    """Every added token joins the regex that scans each text (compiled at ~16 us a token), so
    a file with more than MAX_ADDED_TOKENS is refused before it is built (the bound is lowered
    here to keep the test small; 3 tokens pass, 4 do not)."""
    import minirobera.tokenizer_files as tokenizer_files
    assert tokenizer_files.MAX_ADDED_TOKENS == 100_000
    if case == "tokenizer.json":
        from minirobera.tokenizer import _tiny
        RobertaTokenizer(*_tiny()).save_pretrained(tmp_path)
        folder = _with_added_tokens(tmp_path, 262)  # 5 roles + 4 = 9 entries
        monkeypatch.setattr(tokenizer_files, "MAX_ADDED_TOKENS", 8)
        field = "added_tokens holds 9 added tokens"
        path = folder / "tokenizer.json"
    else:
        folder = _roberta_config_added(tmp_path, case)  # 3 entries
        monkeypatch.setattr(tokenizer_files, "MAX_ADDED_TOKENS", 3)
        RobertaTokenizer.from_pretrained(folder)
        monkeypatch.setattr(tokenizer_files, "MAX_ADDED_TOKENS", 2)
        field = "holds 3 added tokens"
        path = folder / ("tokenizer_config.json" if case == "added_tokens_decoder"
                         else "added_tokens.json")
    with pytest.raises(TokenizerFileError) as err:
        RobertaTokenizer.from_pretrained(folder)
    assert str(path) in str(err.value) and field in str(err.value), str(err.value)
