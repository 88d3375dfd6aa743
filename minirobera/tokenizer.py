"""RobertaTokenizer: RoBERTa's byte-level BPE with everything around it, under transformers' names.

Owns what happens before and after BPE, matching the tokenizers-backed transformers tokenizer
as the hub ships roberta-base:
  * special tokens written in the text are matched whole; `<mask>` also swallows the
    whitespace on its left (lstrip), the others do not, so " <s>" leaves a lone 'Ġ';
  * add_prefix_space (a space before each stretch of text between special tokens);
  * the templates `<s> A </s>` and `<s> A </s></s> B </s>`;
  * truncation (longest_first / only_first / only_second, left or right, overflow windows
    with a stride), padding (longest / max_length, pad_to_multiple_of, left or right);
  * offsets (code points, trim_offsets), word ids, sequence ids, special-tokens masks;
  * decode, from_pretrained / save_pretrained, and `explain` for notebooks.

Leaves out: the merge algorithm and vocab files (bpe.py), finding files (hub.py), chat
templates, adding new tokens after construction, and targets (`text_target`).

>>> from minirobera.bpe import BYTE_ENCODER
>>> vocab = {s: i for i, s in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + sorted(BYTE_ENCODER.values()))}
>>> vocab.update({"Ġw": 260, "<mask>": 261})
>>> tok = RobertaTokenizer(vocab, [("Ġ", "w")])
>>> enc = tok("hi <mask> w")
>>> enc["input_ids"], enc.tokens()
([0, 75, 76, 261, 260, 2], ['<s>', 'h', 'i', ' <mask>', 'Ġw', '</s>'])
>>> tok.decode(enc["input_ids"], skip_special_tokens=True)
'hi w'
"""

import gc
import json
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import bpe as _bpe
from .bpe import BytePairEncoder, find_surrogate, pre_tokenize_spans, tokens_to_bytes

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("only_first", "only_second", "longest_first", "do_not_truncate")
SPECIAL_TOKEN_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                       "cls_token", "mask_token")  # transformers' order (all_special_tokens)
VERY_LARGE_INTEGER = int(1e30)  # transformers' "no limit" model_max_length
LARGE_INTEGER = int(1e20)  # above this, model_max_length means "no limit" (transformers' test)

# Rust's char::is_whitespace (Unicode White_Space): what lstrip strips and trim_offsets trims.
# Not str.isspace(), which also counts \x1c-\x1f.
_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                        + "".join(map(chr, range(0x2000, 0x200B))))


@dataclass(frozen=True)
class AddedToken:
    """A token matched whole in the text before BPE runs (here: the special tokens).

    lstrip/rstrip: the match also swallows the whitespace on that side. RoBERTa's `<mask>`
    has lstrip=True, which is why "Hello <mask>" has no 'Ġ' before the mask.
    """
    content: str
    lstrip: bool = False
    rstrip: bool = False
    special: bool = True
    normalized: bool = False
    single_word: bool = False

    def __str__(self):
        return self.content


def _as_added_token(value, default_lstrip: bool = False) -> Optional[AddedToken]:
    """A str, a dict from a JSON file, or a transformers/tokenizers AddedToken -> AddedToken."""
    if value is None or isinstance(value, AddedToken):
        return value
    if isinstance(value, str):
        return AddedToken(value, lstrip=default_lstrip)
    if isinstance(value, dict):
        fields = {k: value[k] for k in ("lstrip", "rstrip", "normalized", "single_word") if k in value}
        return AddedToken(value["content"], **fields)
    if hasattr(value, "content"):  # tokenizers.AddedToken, without importing it
        return AddedToken(value.content, bool(value.lstrip), bool(value.rstrip),
                          normalized=bool(getattr(value, "normalized", False)))
    raise TypeError(f"a special token must be a string or an AddedToken, got {type(value).__name__}")


# --- pure helpers: truncation windows, offsets -------------------------------------------

def window_ranges(n: int, max_len: int, stride: int, side: str = "right") -> List[Tuple[int, int]]:
    """(start, stop) of the kept window, then of each overflow window, as tokenizers cuts them.

    Each overflow window repeats the last `stride` tokens of the one before. Left truncation
    keeps the end and walks backwards.

    >>> window_ranges(10, 4, 1)
    [(0, 4), (3, 7), (6, 10)]
    >>> window_ranges(10, 4, 1, "left")
    [(6, 10), (3, 7), (0, 4)]
    >>> window_ranges(3, 0, 0)   # nothing fits: the whole sequence overflows
    [(0, 0), (0, 3)]
    """
    if max_len >= n:
        return [(0, n)]
    if max_len == 0:
        return [(0, 0), (0, n)]
    if stride >= max_len:
        raise ValueError(f"stride ({stride}) must be smaller than the room left for this sequence "
                         f"({max_len} tokens, after the special tokens); use a smaller stride")
    step, out = max_len - stride, []
    if side == "right":
        for start in range(0, n, step):
            out.append((start, min(start + max_len, n)))
            if start + max_len >= n:
                break
    else:
        for stop in range(n, 0, -step):
            out.append((max(stop - max_len, 0), stop))
            if stop - max_len <= 0:
                break
    return out


def longest_first_lengths(n1: int, n2: int, max_len: int) -> Tuple[int, int]:
    """How long each of a pair may stay under longest_first (the reference's rule).

    If the shorter one fits, only the longer is cut; otherwise both get half (the second one
    gets the odd token).

    >>> longest_first_lengths(10, 6, 8), longest_first_lengths(7, 7, 5), longest_first_lengths(10, 2, 8)
    ((4, 4), (2, 3), (6, 2))
    """
    short, long_, swapped = (n2, n1, True) if n1 > n2 else (n1, n2, False)
    long_ = short if short > max_len else max(short, max_len - short)
    if short + long_ > max_len:
        short = max_len // 2
        long_ = short + max_len % 2
    return (long_, short) if swapped else (short, long_)


def kept_lengths(n_a: int, n_b: int, room: int, strategy: str, pair: bool) -> Tuple[int, int]:
    """How many tokens of A and of B the kept row holds when n_a + n_b > room.

    >>> kept_lengths(10, 6, 8, "only_first", True), kept_lengths(10, 0, 8, "longest_first", False)
    ((2, 6), (8, 0))
    """
    if room == 0:  # the reference's special case: any strategy empties both texts
        return 0, 0
    if not pair:
        if strategy == "only_second":
            raise ValueError("truncation='only_second' needs a second text (text_pair), and the "
                             "text is longer than max_length; use 'only_first' or 'longest_first'")
        return room, 0
    if strategy == "longest_first":
        return longest_first_lengths(n_a, n_b, room)
    cut = n_a + n_b - room
    which, target = ("first", n_a) if strategy == "only_first" else ("second", n_b)
    if target <= cut:
        raise ValueError(f"truncation={strategy!r} cannot make this pair fit: the {which} text has "
                         f"{target} tokens but {cut} must go (room for {room} after the special "
                         f"tokens). Use truncation='longest_first' or a larger max_length")
    return (n_a - cut, n_b) if strategy == "only_first" else (n_a, n_b - cut)


def pair_window_order(n_a: int, n_b: int) -> List[Tuple[int, int]]:
    """Which (window of A, window of B) make up each row when both overflow.

    The reference (Encoding.merge_with) lists A0+B0 first, then for each later A window
    Ai+B0, Ai+B1, ...; then A0 with the later B windows.

    >>> pair_window_order(3, 2)
    [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (0, 1)]
    """
    order = [(0, 0)]
    for i in range(1, n_a):
        order += [(i, 0)] + [(i, j) for j in range(1, n_b)]
    return order + [(0, j) for j in range(1, n_b)]


def trim_offsets(tokens: Sequence[str], spans: Sequence[Tuple[int, int]],
                 add_prefix_space: bool) -> List[Tuple[int, int]]:
    """Move spans off leading/trailing spaces ('Ġ' or whitespace) in each token.

    Quirk (the reference's): with add_prefix_space, a single leading space on the first token
    of a window (or a token at offset 0) is kept, since it may be the one that was added.

    >>> trim_offsets(["Hello", "Ġworld", "Ġ"], [(0, 5), (5, 11), (11, 12)], False)
    [(0, 5), (6, 11), (12, 12)]
    """
    out = []
    for i, (token, (start, end)) in enumerate(zip(tokens, spans)):
        lead = _count_spaces(token)
        trail = _count_spaces(reversed(token))
        if lead:
            if (i == 0 or start == 0) and add_prefix_space and lead == 1:
                lead = 0
            start = min(start + lead, end)
        if trail and end >= trail:
            end = max(end - trail, start)
        out.append((start, end))
    return out


def _count_spaces(chars) -> int:
    n = 0
    for c in chars:
        if c != "Ġ" and c not in _WHITESPACE:
            break
        n += 1
    return n


# --- encoded pieces ----------------------------------------------------------------------

@dataclass
class _Sequence:
    """One input text (A or B) after BPE, before the template. Details only when asked for."""
    ids: List[int]
    tokens: Optional[List[str]] = None
    spans: Optional[List[Tuple[int, int]]] = None  # raw code-point spans, not yet trimmed
    words: Optional[List[int]] = None

    def window(self, start: int, stop: int) -> "_Sequence":
        if self.tokens is None:
            return _Sequence(self.ids[start:stop])
        return _Sequence(self.ids[start:stop], self.tokens[start:stop],
                         self.spans[start:stop], self.words[start:stop])


@dataclass(slots=True)  # slots: no per-row __dict__ for the garbage collector to track
class _Row:
    """One output row: a window of A (and of B) wrapped in the template, maybe padded."""
    input_ids: List[int]
    special_tokens_mask: Optional[List[int]]
    sequence_ids: Optional[List[Optional[int]]]
    tokens: Optional[List[str]] = None
    offsets: Optional[List[Tuple[int, int]]] = None
    word_ids: Optional[List[Optional[int]]] = None
    type_ids: Optional[List[int]] = None  # None: all zeros (RoBERTa has one token type)
    n_pad: int = 0
    pad_left: bool = False

    @property
    def attention_mask(self) -> List[int]:
        n = len(self.input_ids) - self.n_pad
        if not self.n_pad:
            return [1] * n
        return [0] * self.n_pad + [1] * n if self.pad_left else [1] * n + [0] * self.n_pad


@dataclass
class _Plan:
    """The resolved options of one __call__."""
    add_special_tokens: bool = True
    padding: str = "do_not_pad"
    truncation: str = "do_not_truncate"
    max_length: Optional[int] = None
    stride: int = 0
    pad_to_multiple_of: Optional[int] = None
    padding_side: str = "right"
    truncation_side: str = "right"
    pretokenized: bool = False
    overflow: bool = False  # return_overflowing_tokens


class BatchEncoding(dict):
    """What __call__ returns: a dict of columns, plus per-row word_ids / sequence_ids / tokens.

    Those per-row views need the detailed encoding; if the call did not compute it (no
    offsets were asked for), it is computed on first use.
    """

    def __init__(self, data: Dict[str, Any], rows=None, recompute=None):
        super().__init__(data)
        self._rows, self._recompute = rows, recompute

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _detailed_rows(self) -> List[_Row]:
        if not self._rows or self._rows[0].tokens is None:
            self._rows = self._recompute()
        return self._rows

    def _row(self, i: int) -> _Row:
        rows = self._detailed_rows()
        if not -len(rows) <= i < len(rows):
            raise IndexError(f"row {i} out of range: this encoding has {len(rows)} rows")
        return rows[i]

    def tokens(self, batch_index: int = 0) -> List[str]:
        """The token strings of row `batch_index` (special and pad tokens included)."""
        return list(self._row(batch_index).tokens)

    def word_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """For each token the index of the word (pre-token) it came from; None for specials."""
        return list(self._row(batch_index).word_ids)

    def sequence_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """For each token 0 (first text), 1 (second text) or None (special / pad)."""
        return list(self._row(batch_index).sequence_ids)


# --- the tokenizer -------------------------------------------------------------------------

class RobertaTokenizer:
    """RoBERTa's tokenizer: byte-level BPE + special tokens + templates, transformers-style.

    Build it from files with `RobertaTokenizer.from_pretrained(folder_or_repo_id)`, or from a
    vocab dict (or vocab.json path) and merges list (or merges.txt path).
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab, merges, *, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                 cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                 mask_token=AddedToken("<mask>", lstrip=True),  # as the hub ships roberta-base
                 add_prefix_space: bool = False, trim_offsets: bool = True,
                 model_max_length: int = 512, padding_side: str = "right",
                 truncation_side: str = "right", clean_up_tokenization_spaces: bool = False,
                 errors: str = "replace", added_token_ids: Optional[Dict[str, int]] = None):
        if errors != "replace":
            raise ValueError(f"errors={errors!r}: only 'replace' (bad UTF-8 -> U+FFFD) is supported")
        if isinstance(vocab, (str, os.PathLike)):
            vocab = _bpe.load_vocab(os.fspath(vocab))
        if isinstance(merges, (str, os.PathLike)):
            merges = _bpe.read_merges_txt(os.fspath(merges))
        self.bpe = BytePairEncoder(vocab, _bpe.parse_merges(merges))
        self.add_prefix_space, self.trim_offsets = bool(add_prefix_space), bool(trim_offsets)
        self.model_max_length = int(model_max_length)
        for name, side in (("Padding", padding_side), ("Truncation", truncation_side)):
            if side not in ("right", "left"):  # transformers' check and message
                raise ValueError(f"{name} side should be selected between 'right' and 'left', "
                                 f"current value: {side}")
        self.padding_side, self.truncation_side = padding_side, truncation_side
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self._special = {}  # role -> AddedToken
        roles = dict(bos_token=bos_token, eos_token=eos_token, unk_token=unk_token,
                     sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                     mask_token=mask_token)
        for role in SPECIAL_TOKEN_ROLES:
            token = _as_added_token(roles[role], default_lstrip=(role == "mask_token"))
            if token is not None:
                self._special[role] = token
        self._build_added_vocab(added_token_ids or {})
        self._warned_too_long = False

    # -- special tokens ------------------------------------------------------------------

    def _build_added_vocab(self, fixed_ids: Dict[str, int]):
        """Give every special token an id and compile the regex that finds them in text."""
        self._added: Dict[str, AddedToken] = {}
        self._added_ids: Dict[str, int] = {}
        next_id = max(self.bpe.decoder) + 1 if self.bpe.decoder else 0
        for token in self._special.values():
            if token.content in self._added_ids:
                continue
            if token.content in fixed_ids:
                self._added_ids[token.content] = fixed_ids[token.content]
            elif token.content in self.bpe.encoder:
                self._added_ids[token.content] = self.bpe.encoder[token.content]
            else:
                self._added_ids[token.content] = next_id
                next_id = max(next_id, self._added_ids[token.content]) + 1
            self._added[token.content] = token
        self._added_by_id = {i: t for t, i in self._added_ids.items()}
        # longest first, so the leftmost match is also the longest (the reference's rule)
        contents = sorted(self._added, key=len, reverse=True)
        self._added_re = re.compile("|".join(map(re.escape, contents))) if contents else None
        # cheap pre-check (one C-level scan): can this text contain an added token at all?
        firsts = "".join(sorted({re.escape(c[0]) for c in contents}))
        self._maybe_added = re.compile(f"[{firsts}]").search if contents else (lambda text: None)

    def __getattr__(self, name):
        # bos_token, ..., mask_token and their *_id twins
        role, is_id = (name[:-3], True) if name.endswith("_id") else (name, False)
        if role in SPECIAL_TOKEN_ROLES:
            token = self.__dict__.get("_special", {}).get(role)
            if token is None:
                return None
            return self._added_ids[token.content] if is_id else token.content
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def all_special_tokens(self) -> List[str]:
        """Special token strings, each once, in transformers' order."""
        return list(dict.fromkeys(t.content for t in self._special.values()))

    @property
    def all_special_ids(self) -> List[int]:
        """The ids of all_special_tokens, in the same order.

        >>> RobertaTokenizer(*_tiny()).all_special_ids  # <s> </s> <unk> <pad> <mask>
        [0, 2, 3, 1, 4]
        """
        return [self._added_ids[t] for t in self.all_special_tokens]

    @property
    def special_tokens_map(self) -> Dict[str, str]:
        """{role: token string}, e.g. "mask_token": "<mask>" (sep and eos are both "</s>").

        >>> RobertaTokenizer(*_tiny()).special_tokens_map["mask_token"]
        '<mask>'
        """
        return {role: t.content for role, t in self._special.items()}

    # -- vocabulary ----------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Size of the BPE vocab (without special tokens that were added on top of it)."""
        return len(self.bpe.encoder)

    def __len__(self) -> int:
        return len(self.get_vocab())

    def get_vocab(self) -> Dict[str, int]:
        """{token string: id} for the whole vocabulary, special tokens included.

        >>> vocab = RobertaTokenizer(*_tiny()).get_vocab()
        >>> vocab["<mask>"], vocab["ab"], len(vocab)  # 5 specials + 256 byte symbols + "ab"
        (4, 261, 262)
        """
        return {**self.bpe.encoder, **self._added_ids}

    def convert_tokens_to_ids(self, tokens):
        """Token string(s) -> id(s); an unknown token gives unk_token_id.

        >>> RobertaTokenizer(*_tiny()).convert_tokens_to_ids(["ab", "<mask>", "zz"])  # zz: <unk>
        [261, 4, 3]
        """
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def _token_to_id(self, token: str) -> int:
        if token in self._added_ids:
            return self._added_ids[token]
        return self.bpe.encoder.get(token, self.unk_token_id)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Id(s) -> token string(s); an id outside the vocab gives None (like the reference).

        >>> RobertaTokenizer(*_tiny()).convert_ids_to_tokens([0, 261, 225, 2])
        ['<s>', 'ab', 'Ġ', '</s>']
        """
        ids = _to_list(ids)
        if isinstance(ids, int):
            return self._id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(int(i)) for i in ids if int(i) not in skip]

    def _id_to_token(self, index: int) -> Optional[str]:
        if index in self._added_by_id:
            return self._added_by_id[index]
        return self.bpe.decoder.get(index)

    # -- text -> ids (no template) ---------------------------------------------------------

    def _check_text(self, text, what: str = "text") -> str:
        if not isinstance(text, str):
            raise TypeError(f"{what} must be a string, got {type(text).__name__}: {text!r:.60}")
        pos = find_surrogate(text)
        if pos >= 0:
            raise ValueError(f"{what} has a lone surrogate {text[pos]!r} at position {pos}, which is "
                             f"not valid UTF-8 and cannot be encoded; fix or drop that character")
        return text

    def _split_on_added_tokens(self, text: str) -> List[Tuple[str, int, Optional[AddedToken]]]:
        """[(piece, start, added token or None)]: special tokens matched whole, text between.

        Quirk: only an lstrip token (<mask>) takes the whitespace before it (never past the
        previous match); before <s>, </s>, <pad>, <unk> the space stays in the text piece and
        becomes a lone 'Ġ' (id 1437).
        """
        pieces, pos = [], 0
        for m in self._added_re.finditer(text):
            token, start, stop = self._added[m.group()], m.start(), m.end()
            if token.lstrip:
                while start > pos and text[start - 1] in _WHITESPACE:
                    start -= 1
            if token.rstrip:
                while stop < len(text) and text[stop] in _WHITESPACE:
                    stop += 1
            if pos < start:
                pieces.append((text[pos:start], pos, None))
            pieces.append((text[start:stop], start, token))
            pos = stop
        if pos < len(text):
            pieces.append((text[pos:], pos, None))
        return pieces

    def _has_added_token(self, text: str) -> bool:
        return self._maybe_added(text) is not None

    def _text_ids(self, text: str) -> List[int]:
        """Ids of one text, special tokens in it matched whole (the fast path: ids only)."""
        if not self._has_added_token(text):
            if self.add_prefix_space and text and text[0] != " ":
                text = " " + text
            return self.bpe.encode(text)
        ids = []
        for piece, _, token in self._split_on_added_tokens(text):
            if token is not None:
                ids.append(self._added_ids[token.content])
            else:  # quirk: add_prefix_space applies to every piece between special tokens
                if self.add_prefix_space and piece[0] != " ":
                    piece = " " + piece
                ids += self.bpe.encode(piece)
        return ids

    def _text_details(self, text: str, seq: _Sequence, word: Optional[int] = None):
        """Append one text's tokens to `seq` with raw spans and word indices.

        `word` fixes the word index (pre-split input); otherwise every special token and
        every pre-token counts as a word, numbered on from the last one in `seq`.
        """
        pieces = self._split_on_added_tokens(text) if self._has_added_token(text) \
            else ([(text, 0, None)] if text else [])
        next_word = (seq.words[-1] + 1) if (word is None and seq.words) else 0
        for piece, start, token in pieces:
            if token is not None:
                seq.ids.append(self._added_ids[token.content])
                seq.tokens.append(piece)
                seq.spans.append((start, start + len(piece)))
                seq.words.append(next_word if word is None else word)
                next_word += 1
                continue
            shift = 1 if self.add_prefix_space and piece[0] != " " else 0
            for pre, s, e in pre_tokenize_spans(" " * shift + piece):
                self._word_details(pre, s, start, shift, seq, next_word if word is None else word)
                next_word += 1

    def _word_details(self, pre: str, s: int, base: int, shift: int, seq: _Sequence, word: int):
        """Tokens of one pre-token with their code-point spans in the original text.

        Tokens that split one character (an emoji is 4 bytes) share its span; an added
        prefix space is mapped onto the first real character, as the reference does.
        """
        if pre.isascii():
            char_of_byte = range(s, s + len(pre))
        else:
            char_of_byte = [s + k for k, ch in enumerate(pre) for _ in range(len(ch.encode()))]
        b = 0
        for i in self.bpe.encode_word(pre):
            token = self.bpe.decoder[i]
            first, last = char_of_byte[b], char_of_byte[b + len(token) - 1]
            b += len(token)
            seq.ids.append(i)
            seq.tokens.append(token)
            seq.spans.append((base + max(first - shift, 0), base + max(last - shift, 0) + 1))
            seq.words.append(word)

    def _encode_sequence(self, text, detailed: bool, pretokenized: bool, what: str) -> _Sequence:
        """One input (a string, or a list of words) -> _Sequence."""
        if not pretokenized:
            self._check_text(text, what)
            if not detailed:
                return _Sequence(self._text_ids(text))
            seq = _Sequence([], [], [], [])
            self._text_details(text, seq)
            return seq
        if not isinstance(text, (list, tuple)):
            raise TypeError(f"with is_split_into_words=True, {what} must be a list of words, "
                            f"got {type(text).__name__}")
        seq = _Sequence([], [], [], [])
        for w, word in enumerate(text):
            self._check_text(word, f"{what}[{w}]")
            if detailed:
                self._text_details(word, seq, word=w)
            else:
                seq.ids += self._text_ids(word)
        return seq if detailed else _Sequence(seq.ids)

    def tokenize(self, text: str, pair: Optional[str] = None, add_special_tokens: bool = False,
                 **kwargs) -> List[str]:
        """The token strings of `text` (special tokens in the text stay whole).

        >>> RobertaTokenizer(*_tiny()).tokenize("ab <mask>")
        ['ab', ' <mask>']
        """
        return self(text, pair, add_special_tokens=add_special_tokens, **kwargs).tokens()

    # -- the template and truncation --------------------------------------------------------

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many tokens the template adds: 2 for `<s> A </s>`, 4 for `<s> A </s></s> B </s>`.

        >>> tok = RobertaTokenizer(*_tiny())
        >>> tok.num_special_tokens_to_add(), tok.num_special_tokens_to_add(pair=True)
        (2, 4)
        """
        return 4 if pair else 2

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None) -> List[int]:
        """`<s> A </s>` or `<s> A </s></s> B </s>`.

        >>> RobertaTokenizer(*_tiny()).build_inputs_with_special_tokens([261], [70])
        [0, 261, 2, 2, 70, 2]
        """
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + sep + list(token_ids_1) + sep

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None,
                                already_has_special_tokens: bool = False) -> List[int]:
        """1 where the template puts a special token, 0 for text tokens.

        With already_has_special_tokens, marks every id that is a special token. (Without it,
        transformers 5 raises NotImplementedError; this gives the template mask, as v4 did.)

        >>> tok = RobertaTokenizer(*_tiny())
        >>> tok.get_special_tokens_mask([261], [70])  # <s> ab </s></s> b </s>
        [1, 0, 1, 1, 0, 1]
        >>> tok.get_special_tokens_mask([0, 261, 4, 2], already_has_special_tokens=True)
        [1, 0, 1, 1]
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when the ids already have special tokens")
            special = set(self.all_special_ids)
            return [1 if int(t) in special else 0 for t in token_ids_0]
        mask = [1] + [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [1] + [0] * len(token_ids_1) + [1]

    def _truncate(self, a: _Sequence, b: Optional[_Sequence], plan: _Plan):
        """[(window of A, window of B or None)]: the kept row first, then overflow rows."""
        n_a, n_b = len(a.ids), (len(b.ids) if b is not None else 0)
        if plan.truncation == "do_not_truncate" or plan.max_length is None:
            return [((0, n_a), (0, n_b) if b is not None else None)]
        need = self.num_special_tokens_to_add(b is not None) if plan.add_special_tokens else 0
        room = plan.max_length - need
        if room < 0:  # (the reference silently stops truncating here: an unsigned wrap-around)
            raise ValueError(f"max_length={plan.max_length} is smaller than the {need} special tokens "
                             f"this {'pair' if b is not None else 'text'} needs; use max_length "
                             f">= {need}, or add_special_tokens=False")
        if n_a + n_b <= room:
            return [((0, n_a), (0, n_b) if b is not None else None)]
        side, stride = plan.truncation_side, plan.stride
        keep_a, keep_b = kept_lengths(n_a, n_b, room, plan.truncation, b is not None)
        wa = window_ranges(n_a, keep_a, stride, side)
        if b is None:
            return [(w, None) for w in wa]
        wb = window_ranges(n_b, keep_b, stride, side)
        return [(wa[i], wb[j]) for i, j in pair_window_order(len(wa), len(wb))]

    def _make_row(self, a: _Sequence, b: Optional[_Sequence], add_special_tokens: bool) -> _Row:
        """Apply trim_offsets and the template to one window of A (and B)."""
        parts = [(a, 0)] + ([(b, 1)] if b is not None else [])
        ids, special, seq_ids = [], [], []
        detailed = a.tokens is not None
        tokens, offsets, words = ([], [], []) if detailed else (None, None, None)
        cls, sep = self.cls_token_id, self.sep_token_id
        for k, (part, seq_id) in enumerate(parts):
            wrap = add_special_tokens
            before = ([cls] if k == 0 else [sep]) if wrap else []
            after = [sep] if wrap else []
            ids += before + part.ids + after
            special += [1] * len(before) + [0] * len(part.ids) + [1] * len(after)
            seq_ids += [None] * len(before) + [seq_id] * len(part.ids) + [None] * len(after)
            if detailed:
                spans = trim_offsets(part.tokens, part.spans, self.add_prefix_space) \
                    if self.trim_offsets else list(part.spans)
                tokens += [self._id_to_token(i) for i in before] + part.tokens + \
                    [self._id_to_token(i) for i in after]
                offsets += [(0, 0)] * len(before) + spans + [(0, 0)] * len(after)
                words += [None] * len(before) + part.words + [None] * len(after)
        return _Row(ids, special, seq_ids, tokens, offsets, words)

    # -- padding -----------------------------------------------------------------------------

    def _pad_rows(self, rows: List[_Row], kept: List[_Row], plan: _Plan):
        """Pad every row to the longest kept row, or to max_length, rounded up to a multiple."""
        if plan.padding == "do_not_pad" or not rows:
            return
        if plan.padding == "max_length":
            target = plan.max_length
        else:  # longest: measured over the kept rows (not overflow ones), as the reference does
            target = max(len(r.input_ids) for r in kept)
        m = plan.pad_to_multiple_of
        if m and target % m:
            target += m - target % m
        for row in rows:
            _pad_row(row, target, self.pad_token_id, self.pad_token, plan.padding_side == "left")

    # -- __call__ ------------------------------------------------------------------------------

    def __call__(self, text=None, text_pair=None, add_special_tokens: bool = True,
                 padding=False, truncation=None, max_length: Optional[int] = None,
                 stride: int = 0, is_split_into_words: bool = False,
                 pad_to_multiple_of: Optional[int] = None, padding_side: Optional[str] = None,
                 return_tensors: Optional[str] = None,
                 return_token_type_ids: Optional[bool] = None,
                 return_attention_mask: Optional[bool] = None,
                 return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                 return_offsets_mapping: bool = False, return_length: bool = False,
                 verbose: bool = True, **kwargs) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either, like transformers' tokenizer(...).

        >>> tok = RobertaTokenizer(*_tiny())
        >>> tok("ab", "b")["input_ids"]
        [0, 261, 2, 2, 70, 2]
        >>> tok(["ab b", "a"], padding=True, return_tensors="np")["attention_mask"]
        array([[1, 1, 1, 1, 1],
               [1, 1, 1, 0, 0]])
        """
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        plan = self._plan(add_special_tokens, padding, truncation, max_length, stride,
                          pad_to_multiple_of, padding_side, is_split_into_words, verbose)
        plan.overflow = bool(return_overflowing_tokens)
        pairs, is_batched = self._as_batch(text, text_pair, is_split_into_words)
        detailed = bool(return_offsets_mapping)
        with _gc_paused():
            return self._call(pairs, is_batched, plan, detailed, return_tensors, return_token_type_ids,
                              return_attention_mask, return_overflowing_tokens,
                              return_special_tokens_mask, return_length, verbose)

    def _call(self, pairs, is_batched, plan, detailed, return_tensors, return_token_type_ids,
              return_attention_mask, return_overflowing_tokens, return_special_tokens_mask,
              return_length, verbose) -> BatchEncoding:
        rows, sample = self._encode_rows(pairs, plan, detailed, bool(return_special_tokens_mask))
        if verbose and plan.max_length is None:
            self._warn_if_too_long(rows)
        want = dict(token_type_ids=bool(return_token_type_ids),
                    attention_mask=return_attention_mask is None or bool(return_attention_mask),
                    special_tokens_mask=return_special_tokens_mask,
                    offset_mapping=detailed, length=return_length)
        data = _columns(rows, want)
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample
        recompute = (lambda: self._encode_rows(pairs, plan, True)[0])
        if return_tensors is not None:
            data = _to_numpy(data, return_tensors)
        elif not is_batched and not return_overflowing_tokens:
            # un-nest the one row, but not per-row scalars such as `length` (transformers' rule)
            data = {k: (v[0] if v and isinstance(v[0], list) else v) for k, v in data.items()}
        return BatchEncoding(data, rows, recompute)

    def _encode_rows(self, pairs, plan: _Plan, detailed: bool, special_mask: bool = True):
        """The output rows (kept, and overflow ones if asked for) and each one's input index."""
        if not detailed and plan.truncation == "do_not_truncate":
            rows = self._fast_rows(pairs, plan, special_mask)
            if rows is not None:
                self._pad_rows(rows, rows, plan)
                return rows, list(range(len(rows)))
        rows, sample, kept = [], [], []
        for k, (a, b) in enumerate(pairs):
            seq_a = self._encode_sequence(a, detailed, plan.pretokenized, "text")
            seq_b = None if b is None else self._encode_sequence(b, detailed, plan.pretokenized,
                                                                 "text_pair")
            windows = self._truncate(seq_a, seq_b, plan)
            for n, (wa, wb) in enumerate(windows if plan.overflow else windows[:1]):
                part_b = None if seq_b is None else seq_b.window(*wb)
                row = self._make_row(seq_a.window(*wa), part_b, plan.add_special_tokens)
                if part_b is not None and not plan.add_special_tokens and wb != windows[0][1]:
                    # Quirk (reference): RobertaProcessing zeroes token types of the kept
                    # encodings only; without special tokens, B's overflow windows keep type 1.
                    row.type_ids = [0] * (len(row.input_ids) - len(part_b.ids)) + [1] * len(part_b.ids)
                rows.append(row)
                sample.append(k)
                if n == 0:
                    kept.append(rows[-1])
        self._pad_rows(rows, kept, plan)
        return rows, sample

    def _fast_rows(self, pairs, plan: _Plan, special_mask: bool) -> Optional[List[_Row]]:
        """The common case (single texts, no truncation, ids only) without the detours.

        Gives the same rows as the general path in _encode_rows; tests hold them equal.
        sequence_ids are left out (None): asking for them recomputes the detailed rows.
        """
        if plan.pretokenized or any(b is not None for _, b in pairs):
            return None
        head, tail = ([self.cls_token_id], [self.sep_token_id]) if plan.add_special_tokens else ([], [])
        head_mask, tail_mask = [1] * len(head), [1] * len(tail)
        encode, prefix, rows = self.bpe.encode, self.add_prefix_space, []
        for a, _ in pairs:
            if type(a) is not str or not a.isascii():
                self._check_text(a)  # raises on non-strings and lone surrogates
            if self._maybe_added(a):
                ids = self._text_ids(a)
            else:  # = _text_ids(a), inlined: no special token can be in this text
                ids = encode(" " + a if prefix and a and a[0] != " " else a)
            mask = [*head_mask, *[0] * len(ids), *tail_mask] if special_mask else None
            rows.append(_Row([*head, *ids, *tail], mask, None))
        return rows

    def _warn_if_too_long(self, rows):
        if self._warned_too_long or self.model_max_length <= 0:
            return
        longest = max((len(r.input_ids) for r in rows), default=0)
        if longest > self.model_max_length:
            self._warned_too_long = True
            warnings.warn(f"Token indices sequence length is longer than the specified maximum "
                          f"sequence length for this model ({longest} > {self.model_max_length}). "
                          f"Running this sequence through the model will result in indexing errors",
                          stacklevel=3)

    def _plan(self, add_special_tokens, padding, truncation, max_length, stride,
              pad_to_multiple_of, padding_side, is_split_into_words, verbose) -> _Plan:
        """Resolve padding/truncation/max_length the way transformers does."""
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # max_length alone turns truncation on
        if padding is True and verbose and max_length is not None and truncation in (
                None, False, "do_not_truncate"):
            warnings.warn("`max_length` is ignored when `padding`=`True` and there is no truncation "
                          "strategy. To pad to max length, use `padding='max_length'`.", stacklevel=3)
        padding = _strategy(padding, "padding", {True: "longest", False: "do_not_pad",
                                                 None: "do_not_pad"}, PADDING_STRATEGIES)
        truncation = _strategy(truncation, "truncation", {True: "longest_first", False:
                               "do_not_truncate", None: "do_not_truncate"}, TRUNCATION_STRATEGIES)
        if max_length is None and self.model_max_length <= LARGE_INTEGER:
            if padding == "max_length" or truncation != "do_not_truncate":
                max_length = self.model_max_length
        elif max_length is None:
            padding = "do_not_pad" if padding == "max_length" else padding
            truncation = "do_not_truncate"
        side = padding_side if padding_side is not None else self.padding_side
        _check_side(side, "padding_side")
        _check_side(self.truncation_side, "truncation_side")
        plan = _Plan(bool(add_special_tokens), padding, truncation, max_length, int(stride),
                     pad_to_multiple_of, side, self.truncation_side, bool(is_split_into_words))
        self._check_plan(plan)
        return plan

    def _check_plan(self, plan: _Plan):
        if plan.max_length is not None and (not isinstance(plan.max_length, int) or plan.max_length < 0):
            raise ValueError(f"max_length must be a non-negative int, got {plan.max_length!r}")
        if plan.stride < 0:
            raise ValueError(f"stride must be >= 0, got {plan.stride}")
        if plan.truncation == "do_not_truncate":
            return
        if plan.max_length >= 2 and plan.stride > plan.max_length - 2:
            raise ValueError(f"stride ({plan.stride}) must be smaller than max_length minus the "
                             f"special tokens ({plan.max_length} - 2)")
        m = plan.pad_to_multiple_of
        if plan.padding != "do_not_pad" and m is not None and plan.max_length % m:
            raise ValueError(f"Truncation and padding are both activated but truncation length "
                             f"({plan.max_length}) is not a multiple of pad_to_multiple_of ({m}).")

    @staticmethod
    def _as_batch(text, text_pair, is_split_into_words: bool):
        """-> ([(a, b or None)], is_batched), with transformers' rules for what is a batch."""
        if text is None:
            raise TypeError("text must be a string, a list of strings, or a list of pairs; got None")
        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and len(text) > 0 \
                and isinstance(text[0], (list, tuple))
        else:
            is_batched = isinstance(text, (list, tuple))
        if not is_batched:
            if not isinstance(text, (str, list, tuple)):
                raise TypeError(f"text must be a string (or a list of them), got "
                                f"{type(text).__name__}: {text!r:.60}")
            return [(text, text_pair if text_pair else None)], False
        if isinstance(text_pair, str):
            raise TypeError("when text is a batch (a list), text_pair must be a list of the same length")
        if text_pair is not None and len(text) != len(text_pair):
            raise ValueError(f"batch length of `text`: {len(text)} does not match batch length "
                             f"of `text_pair`: {len(text_pair)}.")
        if text_pair is not None:
            return list(zip(text, text_pair)), True
        if not is_split_into_words:  # a batch item that is a 2-tuple/list is a pair
            return [tuple(t) if isinstance(t, (list, tuple)) and len(t) == 2 else (t, None)
                    for t in text], True
        return [(t, None) for t in text], True

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> List[int]:
        """Ids of a text (or pair), template included by default.

        >>> RobertaTokenizer(*_tiny()).encode("ab")
        [0, 261, 2]
        """
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    # -- ids -> text ---------------------------------------------------------------------------

    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: Optional[bool] = None, **kwargs):
        """Ids -> text: the token bytes joined and read as UTF-8 (bad bytes become U+FFFD).

        A list of lists decodes to a list of strings. clean_up_tokenization_spaces is ignored:
        transformers 5 ignores it for byte-level BPE too (it would delete real spaces).

        >>> tok = RobertaTokenizer(*_tiny())
        >>> tok.decode([0, 261, 2]), tok.decode([0, 261, 2], skip_special_tokens=True)
        ('<s>ab</s>', 'ab')
        """
        token_ids = _to_list(token_ids)
        if isinstance(token_ids, list) and token_ids and isinstance(token_ids[0], list):
            return [self.decode(ids, skip_special_tokens, clean_up_tokenization_spaces)
                    for ids in token_ids]
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if clean_up_tokenization_spaces and not getattr(self, "_warned_cleanup", False):
            self._warned_cleanup = True
            warnings.warn("clean_up_tokenization_spaces=True is ignored for this byte-level BPE "
                          "tokenizer (transformers 5 ignores it too).", stacklevel=2)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        tokens = []
        for i in token_ids:
            if not isinstance(i, int) or i < 0:
                raise ValueError(f"token ids must be non-negative ints, got {i!r}")
            token = self._id_to_token(i)
            if token is not None and i not in skip:  # unknown ids are skipped, as in the reference
                tokens.append(token)
        return self.convert_tokens_to_string(tokens)

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> List[str]:
        """decode() for each sequence in a batch."""
        sequences = _to_list(sequences)
        if not sequences:
            return []
        if not isinstance(sequences[0], list):
            sequences = [sequences]
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Token strings -> text: each byte symbol back to its byte, then UTF-8 ('Ġ' is a space).

        >>> RobertaTokenizer(*_tiny()).convert_tokens_to_string(["ab", "Ġ", "Ã©"])
        'ab é'
        """
        return tokens_to_bytes(tokens).decode("utf-8", errors="replace")

    # -- teaching ------------------------------------------------------------------------------

    def explain(self, text: str) -> dict:
        """Every step from text to ids: special-token split, prefix space, pre-tokens, the byte
        symbols, each merge in rank order, ids, and the final template.

        >>> steps = RobertaTokenizer(*_tiny()).explain("ab <mask>")
        >>> [(p["kind"], p["text"]) for p in steps["pieces"]]
        [('text', 'ab'), ('special', ' <mask>')]
        >>> steps["input_ids"]
        [0, 261, 4, 2]
        """
        self._check_text(text)
        pieces = self._split_on_added_tokens(text) if self._has_added_token(text) \
            else ([(text, 0, None)] if text else [])
        out = []
        for piece, start, token in pieces:
            if token is not None:
                out.append({"kind": "special", "text": piece, "start": start,
                            "lstrip": token.lstrip, "id": self._added_ids[token.content]})
                continue
            prefixed = " " + piece if self.add_prefix_space and piece[0] != " " else piece
            out.append({"kind": "text", "text": piece, "start": start,
                        "prefix_space_added": prefixed != piece, **self.bpe.explain(prefixed)})
        ids = [i for p in out for i in ([p["id"]] if p["kind"] == "special" else p["ids"])]
        return {"text": text, "pieces": out, "ids": ids,
                "input_ids": self.build_inputs_with_special_tokens(ids)}

    # -- files -----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_repo_id, **kwargs) -> "RobertaTokenizer":
        """Load from a folder or hub repo: vocab.json + merges.txt, or tokenizer.json, plus
        tokenizer_config.json / special_tokens_map.json when present. kwargs override them;
        `revision`, `token` and `local_files_only` go to the hub (minirobera.hub.cached_file).

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = RobertaTokenizer(*_tiny()).save_pretrained(folder)
        ...     RobertaTokenizer.from_pretrained(folder, model_max_length=8).model_max_length
        8
        >>> RobertaTokenizer.from_pretrained("FacebookAI/roberta-base")("Hello world")["input_ids"]
        ... # doctest: +SKIP
        [0, 31414, 232, 2]
        """
        from .hub import cached_file
        hub_args = {k: kwargs.pop(k) for k in ("revision", "token", "local_files_only") if k in kwargs}

        def find(name):
            return cached_file(path_or_repo_id, name, required=False, **hub_args)

        vocab_file, merges_file, tokenizer_file = find("vocab.json"), find("merges.txt"), \
            find("tokenizer.json")
        options, fixed_ids = _options_from_tokenizer_json(tokenizer_file) if tokenizer_file else ({}, {})
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            path = find(name)
            if path:
                options.update(_read_config(path, options))
        if vocab_file and merges_file:
            vocab, merges = _bpe.load_vocab(vocab_file), _bpe.read_merges_txt(merges_file)
        elif tokenizer_file:
            vocab, merges = _bpe.model_from_tokenizer_json(tokenizer_file)
        else:
            missing = "vocab.json" if not vocab_file else "merges.txt"
            raise FileNotFoundError(f"{missing!r} not found in {os.fspath(path_or_repo_id)!r} (and no "
                                    f"tokenizer.json either); a RoBERTa tokenizer needs vocab.json "
                                    f"and merges.txt")
        options.update(kwargs)
        return cls(vocab, merges, added_token_ids=fixed_ids, **options)

    def save_pretrained(self, save_directory) -> Tuple[str, ...]:
        """Write vocab.json, merges.txt, tokenizer.json, tokenizer_config.json and
        special_tokens_map.json; the folder loads here and in transformers alike."""
        os.makedirs(save_directory, exist_ok=True)
        files = {
            "vocab.json": json.dumps(self.bpe.encoder, ensure_ascii=False),
            "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.bpe.merges),
            "tokenizer.json": json.dumps(self._tokenizer_json(), ensure_ascii=False),
            "tokenizer_config.json": json.dumps(self._tokenizer_config(), indent=2,
                                                ensure_ascii=False) + "\n",
            "special_tokens_map.json": json.dumps(self.special_tokens_map, indent=2) + "\n",
        }
        paths = []
        for name, content in files.items():
            path = os.path.join(os.fspath(save_directory), name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
            paths.append(path)
        return tuple(paths)

    def _tokenizer_config(self) -> dict:
        return {"add_prefix_space": self.add_prefix_space, "trim_offsets": self.trim_offsets,
                "model_max_length": self.model_max_length, "padding_side": self.padding_side,
                "truncation_side": self.truncation_side, "errors": "replace",
                "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
                **self.special_tokens_map, "tokenizer_class": "RobertaTokenizer"}

    def _tokenizer_json(self) -> dict:
        """The tokenizers-library JSON for this tokenizer (what transformers loads first)."""
        added = [{"id": self._added_ids[t.content], "content": t.content, "single_word": False,
                  "lstrip": t.lstrip, "rstrip": t.rstrip, "normalized": t.normalized,
                  "special": True} for t in self._added.values()]
        byte_level = {"type": "ByteLevel", "add_prefix_space": self.add_prefix_space,
                      "trim_offsets": True, "use_regex": True}
        return {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": sorted(added, key=lambda t: t["id"]), "normalizer": None,
            "pre_tokenizer": byte_level,
            "post_processor": {"type": "RobertaProcessing", "sep": [self.sep_token, self.sep_token_id],
                               "cls": [self.cls_token, self.cls_token_id],
                               "trim_offsets": self.trim_offsets,
                               "add_prefix_space": self.add_prefix_space},
            "decoder": {**byte_level, "add_prefix_space": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                      "byte_fallback": False, "ignore_merges": False, "vocab": self.bpe.encoder,
                      "merges": [list(m) for m in self.bpe.merges]},
        }

    def __repr__(self):
        return (f"RobertaTokenizer(vocab_size={self.vocab_size}, model_max_length="
                f"{self.model_max_length}, add_prefix_space={self.add_prefix_space}, "
                f"padding_side={self.padding_side!r}, truncation_side={self.truncation_side!r})")


# --- small helpers -------------------------------------------------------------------------

@contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector while a batch is built.

    A big batch makes ~10 small lists per row; each few hundred allocations trigger a
    collection that rescans them all, which cost more than the BPE itself (3.7 -> 8.7 MB/s
    here). The output holds no reference cycles, so nothing is lost by waiting.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _pad_row(row: _Row, target: int, pad_id: int, pad_token: str, left: bool):
    n = target - len(row.input_ids)
    if n <= 0:
        return
    def pad(values, filler):
        return [filler] * n + list(values) if left else list(values) + [filler] * n
    row.input_ids = pad(row.input_ids, pad_id)
    if row.special_tokens_mask is not None:
        row.special_tokens_mask = pad(row.special_tokens_mask, 1)
    if row.sequence_ids is not None:
        row.sequence_ids = pad(row.sequence_ids, None)
    if row.type_ids is not None:
        row.type_ids = pad(row.type_ids, 0)
    if row.tokens is not None:
        row.tokens, row.offsets = pad(row.tokens, pad_token), pad(row.offsets, (0, 0))
        row.word_ids = pad(row.word_ids, None)
    row.n_pad, row.pad_left = row.n_pad + n, left


def _columns(rows: List[_Row], want: Dict[str, bool]) -> Dict[str, list]:
    """The output columns, in transformers' key order."""
    data = {"input_ids": [r.input_ids for r in rows]}
    if want["token_type_ids"]:
        data["token_type_ids"] = [r.type_ids or [0] * len(r.input_ids) for r in rows]
    if want["attention_mask"]:
        data["attention_mask"] = [r.attention_mask for r in rows]
    if want["special_tokens_mask"]:
        data["special_tokens_mask"] = [list(r.special_tokens_mask) for r in rows]
    if want["offset_mapping"]:
        data["offset_mapping"] = [r.offsets for r in rows]
    if want["length"]:
        data["length"] = [len(r.input_ids) for r in rows]
    return data


def _to_numpy(data: Dict[str, list], kind: str) -> Dict[str, Any]:
    if kind != "np":
        raise ValueError(f"return_tensors={kind!r} is not supported; minirobera returns NumPy "
                         f"arrays with return_tensors='np' (or lists with None)")
    import numpy as np
    out = {}
    for key, value in data.items():
        if value and isinstance(value[0], list) and len({len(v) for v in value}) > 1:
            raise ValueError(f"cannot make one array of rows with different lengths ({key}); "
                             f"use padding=True (or padding='max_length') with return_tensors='np'")
        out[key] = np.asarray(value, dtype=np.int64)
    return out


def _to_list(ids):
    """NumPy arrays / scalars -> plain Python ints and lists."""
    if hasattr(ids, "tolist"):
        return ids.tolist()
    if isinstance(ids, (list, tuple)):
        return [_to_list(i) for i in ids]
    return ids


def _strategy(value, what: str, aliases: dict, valid: Tuple[str, ...]) -> str:
    if isinstance(value, bool) or value is None:
        return aliases[value]
    value = getattr(value, "value", value)  # transformers' enums
    if value not in valid:
        raise ValueError(f"{value!r} is not a valid {what} strategy; choose one of "
                         f"{[True, False] + list(valid)}")
    return value


def _check_side(side, what: str):
    if side not in ("left", "right"):
        raise ValueError(f"{what} must be 'left' or 'right', got {side!r}")


def _replace(plan: _Plan, **changes) -> _Plan:
    return _Plan(**{**plan.__dict__, **changes})


def _read_config(path: str, known: dict) -> dict:
    """The options we understand from tokenizer_config.json / special_tokens_map.json.

    A special token given as a bare string keeps the flags (lstrip...) already `known` for
    that content from tokenizer.json: transformers saves "<mask>" as a string there.
    """
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    keep = set(SPECIAL_TOKEN_ROLES) | {"add_prefix_space", "trim_offsets", "model_max_length",
                                       "padding_side", "truncation_side",
                                       "clean_up_tokenization_spaces"}
    out = {k: v for k, v in config.items() if k in keep and v is not None}
    by_content = {str(t): t for t in known.values() if isinstance(t, AddedToken)}
    for role in SPECIAL_TOKEN_ROLES:
        if isinstance(out.get(role), str) and out[role] in by_content:
            out[role] = by_content[out[role]]
    if out.get("model_max_length", 0) >= VERY_LARGE_INTEGER:
        out["model_max_length"] = VERY_LARGE_INTEGER
    return out


def _options_from_tokenizer_json(path: str) -> Tuple[dict, Dict[str, int]]:
    """Special-token flags (e.g. <mask> lstrip) and ids, add_prefix_space and trim_offsets."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    added = {t["content"]: t for t in spec.get("added_tokens", [])}
    options = {}
    default_names = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                     "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}
    for role, content in default_names.items():
        if content in added:
            options[role] = _as_added_token(added[content])
    pre = spec.get("pre_tokenizer") or {}
    post = spec.get("post_processor") or {}
    if "add_prefix_space" in pre:
        options["add_prefix_space"] = pre["add_prefix_space"]
    if "trim_offsets" in post:
        options["trim_offsets"] = post["trim_offsets"]
    return options, {c: t["id"] for c, t in added.items()}


def _tiny():
    """A toy vocab + merges for the examples: 256 byte symbols, 'ab', and the specials."""
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + sorted(_bpe.BYTE_ENCODER.values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab["ab"] = len(vocab)
    return vocab, [("a", "b")]
