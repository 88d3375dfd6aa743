"""SentencePiece unigram tokenization, as the `tokenizers` library runs XLM-R's model.

Owns:
  * reading `sentencepiece.bpe.model` (a protobuf ModelProto) by hand: the pieces (piece,
    score, type) and the normalizer spec (precompiled charsmap, add_dummy_prefix,
    remove_extra_whitespaces); no protobuf package needed;
  * the precompiled charsmap: a darts-clone double-array trie over UTF-8 keys, looked up
    as tokenizers' `Precompiled` normalizer does (per grapheme cluster shorter than 6 bytes,
    else per character, first prefix match wins), with the alignment of every normalized
    character to its span in the original text, computed as NormalizedString.transform does;
  * the extended grapheme clusters that lookup needs (UAX #29 rules from unicodedata);
  * the pre-tokenizer: WhitespaceSplit, then Metaspace (prepend '▁', split before each '▁');
  * the unigram model: Viterbi over the pieces (ties keep the first path found), unknown
    characters scored min_score - 10 and runs of them fused into one `<unk>`;
  * the Metaspace decoder.

The .model file is untrusted input: read_model_proto checks its structure at load (varints of
at most 10 bytes, lengths inside the message, at most MAX_PIECES pieces, UTF-8 piece names
that are non-empty, distinct and at most MAX_PIECE_BYTES long (sentencepiece's limits), known piece types, finite scores, a charsmap whose trie indices and targets are in range and valid UTF-8), and every
problem is a TokenizerFileError naming the file and the field, never an IndexError at encode
time.

Leaves out: sentencepiece's own normalizer (remove_extra_whitespaces and add_dummy_prefix
are read but tokenizers emulates them with the pre-tokenizer, as done here), BPE-type
SentencePiece models, byte fallback, sampling / n-best, training, and the special tokens,
templates and fairseq ids (xlm_roberta.py). The grapheme rules leave out GB9c (Indic
conjuncts, Unicode 15.1) and use Python's Unicode tables, so a cluster that only a newer
Unicode version forms can split differently from the reference.

>>> model = UnigramModel([("<unk>", 0.0), ("▁a", -1.0), ("b", -2.0), ("▁ab", -2.5)], unk_id=0)
>>> [model.vocab[i][0] for i, _, _ in model.encode_word("▁abb")]
['▁ab', 'b']
>>> [(token, span) for token, span in metaspace_pieces("a b", [(0, 1), (1, 2), (2, 3)])]
[('▁a', [(0, 1), (0, 1)]), ('▁b', [(2, 3), (2, 3)])]
"""

import base64
import binascii
import bisect
import math
import struct
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .tokenizer_files import TokenizerFileError, file_error

META = "\u2581"  # '▁', SentencePiece's meta symbol for a space
UNK_PENALTY = 10.0  # tokenizers' K_UNK_PENALTY: an unknown character scores min_score - 10
# At most this many pieces in a .model file (XLM-R has 250,002): a bigger file is refused
# while it is read, before any per-piece structure is built.
MAX_PIECES = 1_000_000
# sentencepiece's own limit: a piece of 8000 UTF-8 bytes or more is "too long" at load
MAX_PIECE_BYTES = 7999

# piece types in ModelProto.SentencePiece.type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

Span = Tuple[int, int]


# --- the model file ---------------------------------------------------------------------------

@dataclass
class SentencePieceModel:
    """The fields of a ModelProto that tokenization needs."""
    pieces: List[Tuple[str, float, int]] = field(default_factory=list)  # (piece, score, type)
    precompiled_charsmap: bytes = b""
    normalizer_name: str = ""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    model_type: int = 1  # TrainerSpec.model_type: 1 unigram, 2 bpe, 3 word, 4 char


class _ProtoError(Exception):
    """A malformed protobuf message; read_model_proto names the file and the field."""


def _fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of one protobuf message; varints decoded."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise _ProtoError(f"protobuf wire type {wire} at byte {pos}")
        if pos > end:
            raise _ProtoError("the protobuf message is cut short")
        yield number, wire, value


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    """A protobuf varint: at most 10 bytes (64 bits), as protobuf itself reads them, so a run
    of 0xFF bytes fails at once instead of building an ever larger number."""
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise _ProtoError("a protobuf varint runs past the end")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
    raise _ProtoError(f"a protobuf varint at byte {pos - 10} is longer than 10 bytes")


def _utf8(value: bytes, path, field: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise file_error(path, field, f"is not valid UTF-8 ({e.reason} at byte {e.start})") from None


def read_model_proto(source) -> SentencePieceModel:
    """Parse a `sentencepiece.bpe.model` file (path or bytes) into a SentencePieceModel,
    checking its structure (a TokenizerFileError names the file and the field).

    >>> piece = b"\\x0a\\x01a" + b"\\x15" + struct.pack("<f", -1.5)    # piece "a", score -1.5
    >>> spec = b"\\x18\\x00"                                            # add_dummy_prefix: false
    >>> model = read_model_proto(b"\\x0a" + bytes([len(piece)]) + piece + b"\\x1a\\x02" + spec)
    >>> model.pieces, model.add_dummy_prefix
    ([('a', -1.5, 1)], False)
    """
    if isinstance(source, (bytes, bytearray)):
        data, path = bytes(source), "the SentencePiece model"
    else:
        with open(source, "rb") as f:
            data, path = f.read(), source
    model, field = SentencePieceModel(), "the model"
    seen: Dict[str, int] = {}  # piece -> its index, to refuse a repeated one
    try:
        for number, wire, value in _fields(data):
            if number == 1 and wire == 2:  # repeated SentencePiece pieces
                n = len(model.pieces)
                field = f"piece {n}"
                if n == MAX_PIECES:
                    raise file_error(path, "pieces", f"are more than {MAX_PIECES:,}; a "
                                     f"SentencePiece model that big is refused")
                piece = _piece(value, path, field)
                # sentencepiece refuses these too ("piece must not be empty", "already defined")
                if not piece[0]:
                    raise file_error(path, field, "is empty; a piece must not be empty")
                if piece[0] in seen:
                    raise file_error(path, f"{field} ({piece[0]!r:.40})",
                                     f"repeats piece {seen[piece[0]]}; pieces must be distinct")
                seen[piece[0]] = n
                model.pieces.append(piece)
            elif number == 2 and wire == 2:  # TrainerSpec
                field = "trainer_spec"
                for n, w, v in _fields(value):
                    if n == 3 and w == 0:
                        model.model_type = v
            elif number == 3 and wire == 2:  # NormalizerSpec
                field = "normalizer_spec"
                for n, w, v in _fields(value):
                    if n == 1 and w == 2:
                        model.normalizer_name = _utf8(v, path, "normalizer_spec.name")
                    elif n == 2 and w == 2:
                        model.precompiled_charsmap = bytes(v)
                    elif n == 3 and w == 0:
                        model.add_dummy_prefix = bool(v)
                    elif n == 4 and w == 0:
                        model.remove_extra_whitespaces = bool(v)
            field = "the model"
    except _ProtoError as e:
        raise file_error(path, field, f"is not a SentencePiece model: {e}") from None
    if not model.pieces:
        raise file_error(path, "pieces", "are missing: not a SentencePiece model")
    CharsMap(model.precompiled_charsmap, source=f"{path}: normalizer_spec.precompiled_charsmap")
    return model


def _piece(message: bytes, path, field: str) -> Tuple[str, float, int]:
    """(piece, score, type) of one ModelProto.SentencePiece message, checked."""
    piece, score, kind = "", 0.0, NORMAL
    for n, w, v in _fields(message):
        if n == 1 and w == 2:
            if len(v) > MAX_PIECE_BYTES:
                raise file_error(path, field, f"is {len(v):,} bytes long; sentencepiece refuses a "
                                              f"piece over {MAX_PIECE_BYTES:,} bytes")
            piece = _utf8(v, path, f"{field} name")
        elif n == 2 and w == 5:
            score = struct.unpack("<f", v)[0]
        elif n == 3 and w == 0:
            kind = v
    if math.isnan(score):
        raise file_error(path, f"{field} ({piece!r:.40})", "has a score that is not a number")
    if not NORMAL <= kind <= BYTE:
        raise file_error(path, f"{field} ({piece!r:.40})", f"has an unknown type {kind}")
    return piece, score, kind


# --- the precompiled charsmap (darts-clone double array) ---------------------------------------

class CharsMap:
    """sentencepiece's precompiled charsmap: [u32 trie size][trie units][NUL-separated targets].

    The trie is checked when the map is built: every leaf's value unit lies inside the trie
    and every value points at a target that is valid UTF-8, so a lookup can never index out
    of range. `source` names the file (and field) in the TokenizerFileError otherwise.

    >>> CharsMap(b"").transform("a") is None    # an empty map normalizes nothing
    True
    >>> CharsMap(bytes([1, 0]), source="x.model")
    Traceback (most recent call last):
    ...
    minirobera.tokenizer_files.TokenizerFileError: x.model is corrupt: 2 bytes, but a charsmap starts with a 4-byte trie size
    """

    def __init__(self, blob: bytes, source: str = "precompiled_charsmap"):
        self.blob = blob = bytes(blob)  # kept for save_pretrained (tokenizer.json holds it)
        if not blob:
            self.units, self.targets = (), b""
        else:
            if len(blob) < 4:
                raise TokenizerFileError(f"{source} is corrupt: {len(blob)} bytes, but a charsmap "
                                         f"starts with a 4-byte trie size")
            (size,) = struct.unpack_from("<I", blob)
            if size % 4 or 4 + size > len(blob):
                raise TokenizerFileError(f"{source} is corrupt: its trie size ({size} bytes) does "
                                         f"not fit in its {len(blob)} bytes")
            self.units = struct.unpack_from(f"<{size // 4}I", blob, 4)
            self.targets = blob[4 + size:]
            _check_trie(self.units, self.targets, source)
        self._cache: Dict[str, Optional[str]] = {}

    @classmethod
    def from_base64(cls, text: Optional[str], source: str = "precompiled_charsmap") -> "CharsMap":
        """The map as tokenizer.json stores it (base64 of the same bytes)."""
        if text is not None and not isinstance(text, str):
            raise TokenizerFileError(f"{source} must be a base64 string, got {type(text).__name__}")
        try:
            blob = base64.b64decode(text, validate=True) if text else b""
        except binascii.Error as e:
            raise TokenizerFileError(f"{source} is not valid base64 ({e})") from None
        return cls(blob, source)

    def first_match(self, key: bytes) -> Optional[int]:
        """Value of the SHORTEST key in the trie that is a prefix of `key` (spm_precompiled's
        common_prefix_search()[0]), or None."""
        units = self.units
        if not units:
            return None
        pos = _offset(units[0])
        for c in key:
            if c == 0:
                return None
            pos ^= c
            if pos >= len(units):
                return None
            unit = units[pos]
            if unit & 0x800000FF != c:  # label
                return None
            pos ^= _offset(unit)
            if (unit >> 8) & 1:  # has a leaf: its value is the target's offset
                return units[pos] & 0x7FFFFFFF
        return None

    def transform(self, chunk: str) -> Optional[str]:
        """The normalized form of `chunk` if a prefix of it is in the map, else None."""
        if chunk in self._cache:
            return self._cache[chunk]
        index = self.first_match(chunk.encode("utf-8"))
        result = None
        if index is not None:
            stop = self.targets.find(b"\0", index)
            result = self.targets[index:stop if stop >= 0 else len(self.targets)].decode("utf-8")
        if len(self._cache) < 100_000:
            self._cache[chunk] = result
        return result


def _offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


def _check_trie(units: Sequence[int], targets: bytes, source: str):
    """Every unit with a leaf: its value unit (at its index XOR its offset) is in the trie and
    that value is the start of a UTF-8 target; the root's offset is in the trie. Value units
    (bit 31 set) hold no offset and unused units are 0, so both are skipped."""
    n = len(units)
    if n and _offset(units[0]) >= n:
        raise TokenizerFileError(f"{source} is corrupt: the trie's root points past its {n} units")
    checked = set()
    for i, unit in enumerate(units):
        if unit >> 31 or not (unit >> 8) & 1:
            continue
        leaf = i ^ _offset(unit)
        if leaf >= n:
            raise TokenizerFileError(f"{source} is corrupt: trie unit {i} points at unit {leaf}, "
                                     f"past its {n} units")
        value = units[leaf] & 0x7FFFFFFF
        if value in checked:
            continue
        if value >= len(targets):
            raise TokenizerFileError(f"{source} is corrupt: trie unit {i} points at target byte "
                                     f"{value}, past its {len(targets)} bytes of targets")
        stop = targets.find(b"\0", value)
        try:
            targets[value:stop if stop >= 0 else len(targets)].decode("utf-8")
        except UnicodeDecodeError:
            raise TokenizerFileError(f"{source} is corrupt: the target at byte {value} is not "
                                     f"valid UTF-8") from None
        checked.add(value)


def normalize(charsmap: CharsMap, text: str) -> Tuple[str, List[Span]]:
    """`text` through tokenizers' Precompiled normalizer, with each normalized character's
    span in `text` (code points).

    Quirk (the reference's): a grapheme cluster under 6 UTF-8 bytes is looked up whole and
    replaced by the target of its first matching prefix, so 'ﬁ' + U+0301 gives 'fi' (the
    accent is dropped) and the 'i' is aligned to the accent.

    >>> normalize(CharsMap(b""), "ab")
    ('ab', [(0, 1), (1, 2)])
    """
    if not charsmap.units:
        return text, [(i, i + 1) for i in range(len(text))]
    changes: List[Tuple[str, int]] = []  # (new char, change) as tokenizers' transform() takes
    modified = False
    for start, stop in grapheme_clusters(text):
        cluster = text[start:stop]
        if stop - start > 1 and len(cluster.encode("utf-8")) < 6:
            norm = charsmap.transform(cluster)
            if norm is not None:
                _replace(changes, stop - start, norm)
                modified = True
                continue
        for ch in cluster:
            norm = charsmap.transform(ch)
            if norm is None:
                changes.append((ch, 0))
            else:
                _replace(changes, 1, norm)
                modified = True
    if not modified:
        return text, [(i, i + 1) for i in range(len(text))]
    return _apply(changes, len(text))


def _replace(changes: List[Tuple[str, int]], n_old: int, new: str):
    """tokenizers' precompiled `replace`: extra new chars are insertions (+1); with fewer,
    the last change so far (possibly an earlier character's) absorbs the removal."""
    diff = len(new) - n_old
    changes.extend((c, 0) for c in new)
    if diff > 0:
        for k in range(len(changes) - diff, len(changes)):
            changes[k] = (changes[k][0], 1)
    elif diff < 0 and changes:
        changes[-1] = (changes[-1][0], changes[-1][1] + diff)


def _apply(changes: List[Tuple[str, int]], n: int) -> Tuple[str, List[Span]]:
    """NormalizedString::transform: walk the original characters; each change <= 0 takes
    the next one (and removes -change more), an insertion (+1) copies the previous one's."""
    pos, spans, chars = 0, [], []
    for c, change in changes:
        if change > 0:
            spans.append((pos - 1, pos) if pos >= 1 else (0, 0))
        else:
            spans.append((pos, pos + 1) if pos < n else (n, n))
            pos += 1 - change
        chars.append(c)
    return "".join(chars), spans


# --- grapheme clusters (UAX #29, extended) --------------------------------------------------------

_PREPEND = set(range(0x600, 0x606)) | {0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0xD4E, 0x110BD, 0x110CD,
                                       0x111C2, 0x111C3, 0x1193F, 0x11941, 0x11A3A, 0x11D46, 0x11F02} \
    | set(range(0x11A84, 0x11A8A))
_OTHER_EXTEND = {0x9BE, 0x9D7, 0xB3E, 0xB57, 0xBBE, 0xBD7, 0xCC2, 0xCD5, 0xCD6, 0xD3E, 0xD57, 0xDCF,
                 0xDDF, 0x1B35, 0x200C, 0x302E, 0x302F, 0xFF9E, 0xFF9F, 0x1133E, 0x11357, 0x114B0,
                 0x114BD, 0x115AF, 0x11930, 0x1D165, 0x1D16E, 0x1D16F, 0x1D170, 0x1D171, 0x1D172} \
    | set(range(0x1F3FB, 0x1F400)) | set(range(0xE0020, 0xE0080))
_NOT_SPACING = {0x102B, 0x102C, 0x1038, 0x1062, 0x1063, 0x1064, 0x1067, 0x1068, 0x1069, 0x106A,
                0x106B, 0x106C, 0x106D, 0x1083, 0x1087, 0x1088, 0x1089, 0x108A, 0x108B, 0x108C,
                0x108F, 0x109A, 0x109B, 0x109C, 0x1A61, 0x1A63, 0x1A64, 0xAA7B, 0xAA7D, 0x11720,
                0x11721}
# Extended_Pictographic, as ranges (emoji-data.txt; GB11 joins them across a ZWJ)
_PICTOGRAPHIC = ((0xA9, 0xA9), (0xAE, 0xAE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
                 (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B),
                 (0x2328, 0x2328), (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3),
                 (0x23F8, 0x23FA), (0x24C2, 0x24C2), (0x25AA, 0x25AB), (0x25B6, 0x25B6),
                 (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605), (0x2607, 0x2612),
                 (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712), (0x2714, 0x2714),
                 (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728),
                 (0x2733, 0x2734), (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C),
                 (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757), (0x2763, 0x2767),
                 (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0), (0x27BF, 0x27BF),
                 (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
                 (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297),
                 (0x3299, 0x3299), (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F),
                 (0x1F16C, 0x1F171), (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A),
                 (0x1F1AD, 0x1F1E5), (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F),
                 (0x1F232, 0x1F23A), (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA), (0x1F400, 0x1F53D),
                 (0x1F546, 0x1F64F), (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7FF),
                 (0x1F80C, 0x1F80F), (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F), (0x1F888, 0x1F88F),
                 (0x1F8AE, 0x1F8FF), (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945), (0x1F947, 0x1FAFF),
                 (0x1FC00, 0x1FFFD))


def _break_class(ch: str) -> str:
    """The Grapheme_Cluster_Break value of one character (from unicodedata)."""
    cp = ord(ch)
    if cp < 0x7F and cp >= 0x20:
        return "Other"  # the common case, decided at once
    if ch == "\r":
        return "CR"
    if ch == "\n":
        return "LF"
    if cp == 0x200D:
        return "ZWJ"
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me") or cp in _OTHER_EXTEND:
        return "Extend"
    if cp in _PREPEND:
        return "Prepend"
    if cat in ("Cc", "Zl", "Zp", "Cf"):
        return "Control"
    if cat == "Mc" and cp not in _NOT_SPACING or cp in (0xE33, 0xEB3):
        return "SpacingMark"
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return "RI"
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "LV" if (cp - 0xAC00) % 28 == 0 else "LVT"
    if any(lo <= cp <= hi for lo, hi in _PICTOGRAPHIC):
        return "Pict"
    return "Other"


_HANGUL_PAIRS = {("L", "L"), ("L", "V"), ("L", "LV"), ("L", "LVT"), ("LV", "V"), ("V", "V"),
                 ("LV", "T"), ("V", "T"), ("LVT", "T"), ("T", "T")}


def grapheme_clusters(text: str) -> List[Span]:
    """(start, stop) of each extended grapheme cluster of `text` (UAX #29, without GB9c).

    >>> grapheme_clusters("e\\u0301a\\r\\n")   # e + combining acute is one cluster, CR LF one
    [(0, 2), (2, 3), (3, 5)]
    """
    if text.isascii() and "\r\n" not in text:
        return [(i, i + 1) for i in range(len(text))]
    spans, start = [], 0
    prev = _break_class(text[0]) if text else ""
    pict_zwj = False  # GB11: inside ExtPict Extend* ZWJ
    in_pict = prev == "Pict"
    ri_run = 1 if prev == "RI" else 0
    for i in range(1, len(text)):
        cur = _break_class(text[i])
        if prev == "CR" and cur == "LF":
            join = True
        elif prev in ("Control", "CR", "LF") or cur in ("Control", "CR", "LF"):
            join = False
        elif (prev, cur) in _HANGUL_PAIRS or cur in ("Extend", "ZWJ", "SpacingMark") \
                or prev == "Prepend":
            join = True
        elif prev == "ZWJ" and cur == "Pict" and pict_zwj:
            join = True
        elif prev == "RI" and cur == "RI":
            join = ri_run % 2 == 1
        else:
            join = False
        if not join:
            spans.append((start, i))
            start = i
        # track GB11 and GB12/13 state
        pict_zwj = in_pict and cur == "ZWJ"
        in_pict = cur == "Pict" or (in_pict and cur == "Extend")
        ri_run = ri_run + 1 if cur == "RI" else 0
        prev = cur
    if text:
        spans.append((start, len(text)))
    return spans


# --- pre-tokenizer ------------------------------------------------------------------------------

# Rust's char::is_whitespace (Unicode White_Space): what WhitespaceSplit splits on.
_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                        + "".join(map(chr, range(0x2000, 0x200B))))


def metaspace_pieces(text: str, spans: Sequence[Span], prepend: bool = True
                     ) -> List[Tuple[str, List[Span]]]:
    """WhitespaceSplit then Metaspace: the words of normalized `text`, each with '▁' in front
    (prepend_scheme "always", unless it starts with one), cut before every '▁'.

    `spans` gives each character's span in the original text; the prepended '▁' takes the
    span of the character it precedes. Returns [(piece, spans of its characters)].
    """
    out = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in _WHITESPACE:
            i += 1
            continue
        j = i
        while j < n and text[j] not in _WHITESPACE:
            j += 1
        word, word_spans = text[i:j], list(spans[i:j])
        if prepend and word[0] != META:
            word, word_spans = META + word, [word_spans[0]] + word_spans
        cut = 0
        for k in range(1, len(word) + 1):  # split before each '▁' (MergedWithNext)
            if k == len(word) or word[k] == META:
                out.append((word[cut:k], word_spans[cut:k]))
                cut = k
        i = j
    return out


def metaspace_decode(tokens: Sequence[str], prepend: bool = True) -> str:
    """tokenizers' Metaspace decoder: '▁' -> ' ', except that every '▁' of the first token is
    dropped (prepend_scheme "always").

    >>> metaspace_decode(["▁Hello", "▁world", "!"])
    'Hello world!'
    """
    parts = [t.replace(META, "" if i == 0 and prepend else " ") for i, t in enumerate(tokens)]
    return "".join(parts)


# --- the unigram model ------------------------------------------------------------------------

class UnigramModel:
    """tokenizers' Unigram model: the Viterbi best segmentation of each pre-token.

    `vocab` is [(piece, score)] indexed by id; every entry can match text, special ones too.
    """

    def __init__(self, vocab: Sequence[Tuple[str, float]], unk_id: Optional[int]):
        self.vocab = [(str(p), float(s)) for p, s in vocab]
        self.unk_id = unk_id
        self.token_to_id = {}
        for i, (piece, _) in enumerate(self.vocab):
            self.token_to_id[piece] = i  # a repeated piece keeps its last id (as the reference)
        # encoder/decoder: the names added_tokens.build_added_vocab looks the specials up by
        self.encoder, self.decoder = self.token_to_id, dict(enumerate(p for p, _ in self.vocab))
        self.scores = {p: self.vocab[i][1] for p, i in self.token_to_id.items()}
        self.max_len = max((len(p) for p in self.token_to_id), default=1)  # longest piece
        # every piece, sorted: the prefix search of encode_word (see _continues)
        self._sorted = sorted(self.token_to_id)
        self.min_score = min((s for _, s in self.vocab), default=0.0)
        self._cache: Dict[str, List[Tuple[int, int, int]]] = {}

    def encode_word(self, word: str) -> List[Tuple[int, int, int]]:
        """[(id, start, stop)] of the best segmentation of `word` (stop/start in code points).

        A character no piece covers becomes unk (score min_score - 10); neighbouring unks fuse.
        """
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        n = len(word)
        best = [0.0] * (n + 1)
        back: List[Optional[Tuple[int, int]]] = [None] * (n + 1)  # (start, id) of the last token
        scores, ids, unk_score = self.scores, self.token_to_id, self.min_score - UNK_PENALTY
        continues = self._continues
        for start in range(n):
            here = best[start]
            single = False
            for stop in range(start + 1, n + 1):
                piece = word[start:stop]
                score = scores.get(piece)
                if score is None:
                    if not continues(piece):
                        break  # no piece starts with `piece`: no longer match from `start`
                    continue
                if back[stop] is None or here + score > best[stop]:
                    best[stop], back[stop] = here + score, (start, ids[piece])
                single = single or stop == start + 1
            if not single:
                if self.unk_id is None:
                    raise ValueError(f"{word[start]!r} is not in the vocabulary and the model has "
                                     "no unk token")
                if back[start + 1] is None or here + unk_score > best[start + 1]:
                    best[start + 1], back[start + 1] = here + unk_score, (start, self.unk_id)
        out: List[Tuple[int, int, int]] = []
        stop = n
        while stop > 0:
            start, i = back[stop]
            if i == self.unk_id and out and out[-1][0] == self.unk_id:
                out[-1] = (i, start, out[-1][2])  # fuse with the unk after it
            else:
                out.append((i, start, stop))
            stop = start
        out.reverse()
        # a fused run that spells a vocab piece gets that piece's id, as the reference
        out = [(ids.get(word[s:e], i) if i == self.unk_id else i, s, e) for i, s, e in out]
        if len(self._cache) < 50_000 and n < 256:  # bounded, long words never kept (as bpe.py)
            self._cache[word] = out
        return out

    def _continues(self, prefix: str) -> bool:
        """Whether some piece starts with `prefix` (a common-prefix search, as the reference's
        trie does, over the sorted pieces): the candidate is not extended once none does, so
        one long piece cannot make every word cost len(word) * len(piece) slices.

        >>> model = UnigramModel([("<unk>", 0.0), ("▁ab", -1.0), ("c", -2.0)], unk_id=0)
        >>> model._continues("▁a"), model._continues("▁b")
        (True, False)
        """
        pieces = self._sorted
        at = bisect.bisect_left(pieces, prefix)
        return at < len(pieces) and pieces[at].startswith(prefix)
