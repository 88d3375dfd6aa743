"""Byte-level BPE, the GPT-2 / RoBERTa way: text -> pre-tokens -> byte symbols -> merges -> ids.

Owns:
  * the byte <-> unicode table (every byte gets a printable stand-in symbol),
  * the pre-tokenizer (the GPT-2 split pattern),
  * reading the two model tables: vocab.json (token -> id) and the merges (pair -> rank), from
    merges.txt or from tokenizer.json (both of its merge formats),
  * the merge loops: `explain_word`, the plainest (rescan every pair, merge the lowest rank,
    repeat; read it first), `merge`, the same loop re-ranking only the pairs a merge touches
    (what encoding words runs), and `merge_long`, an O(n log n) one for long pieces (a run
    of one letter, a base64 blob); a cache makes a pre-token seen before cost one dict lookup
    (at most 200,000 pieces of under 256 characters: it starts over when full),
  * learning the merges from text: `train` (count pairs, merge the most frequent, repeat),
  * turning token strings back into bytes, and `explain`, which shows every step.

Leaves out (see tokenizer.py): special tokens such as <s> and <mask>, add_prefix_space, the
<s> A </s> template, truncation, padding, offsets and the transformers-style API.

RoBERTa quirk, worth saying twice: token *ids* are not merge *ranks*. Ids come from vocab.json,
ranks are line numbers in merges.txt. Two tables, two meanings.

A tiny tokenizer, built inline, shows the whole pipeline:

>>> symbols = sorted(set(BYTE_ENCODER.values()))
>>> vocab = {s: i for i, s in enumerate(symbols)}
>>> vocab.update({"lo": 256, "low": 257, "Ġlow": 258})
>>> bpe = BytePairEncoder(vocab, [("l", "o"), ("lo", "w"), ("Ġ", "low")])
>>> pre_tokenize("low lower")
['low', ' lower']
>>> [bpe.decoder[i] for i in bpe.encode("low lower")]
['low', 'Ġlow', 'e', 'r']
>>> bpe.decode_bytes(bpe.encode("low lower")).decode()
'low lower'
"""

import json
import re
from heapq import heapify, heappop, heappush
from itertools import chain, repeat
from typing import Dict, Iterable, List, Sequence, Tuple

INF = float("inf")
# Pieces with more byte symbols than LONG_PIECE are merged by merge_long (O(n log n)) instead
# of the readable merge (O(n^2)); both give the same tokens, the readable one reads easier.
# Pieces over COMPILED_PIECE take merge_long compiled by Numba (bpe_numba.py) when the kernel
# backend is "numba": several times faster, but loading Numba costs a process a good part of a
# second, once, which prose (whose pieces are words) should not pay (bench/README.md).
LONG_PIECE = 48
COMPILED_PIECE = 1024


# --- bytes <-> unicode symbols -------------------------------------------------------------

def bytes_to_unicode() -> Dict[int, str]:
    """The GPT-2 byte table: printable bytes stand for themselves, the other 68 move to 256+n.

    BPE works on strings, and a vocab file must not contain raw control bytes or spaces, so each
    of the 256 byte values gets a visible symbol. Space (0x20) becomes 'Ġ' (U+0120), which is
    why RoBERTa tokens look like 'Ġworld'.

    >>> table = bytes_to_unicode()
    >>> table[ord("a")], table[0x20], table[ord("\\n")], table[0x00], table[0xAD]
    ('a', 'Ġ', 'Ċ', 'Ā', 'Ń')
    >>> len(set(table.values()))
    256
    """
    keep = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in keep}
    moved = [b for b in range(256) if b not in table]  # 68 bytes, in byte order
    for n, b in enumerate(moved):
        table[b] = chr(256 + n)
    return dict(sorted(table.items()))


BYTE_ENCODER: Dict[int, str] = bytes_to_unicode()
BYTE_DECODER: Dict[str, int] = {s: b for b, s in BYTE_ENCODER.items()}
# str.translate table for the hot path: text.encode("utf-8").decode("latin-1") turns each byte
# into the code point of the same value; translating that gives the byte symbols in one C call.
_LATIN1_TO_SYMBOL = {b: s for b, s in BYTE_ENCODER.items()}


def to_byte_symbols(text: str) -> str:
    """The byte symbols of `text`'s UTF-8 encoding, one symbol per byte.

    >>> to_byte_symbols(" naïve")
    'ĠnaÃ¯ve'
    """
    return text.encode("utf-8").decode("latin-1").translate(_LATIN1_TO_SYMBOL)


# --- the pre-tokenizer ---------------------------------------------------------------------

# The GPT-2 pattern, as RoBERTa uses it (case-sensitive: "'S" is not a contraction).
# In words: a few English contractions; an optional space + letters; an optional space +
# digits; an optional space + a run of "other" characters; whitespace not followed by
# non-whitespace (so the last space of a run is left to prefix the next word); whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# `\s` in the reference (Oniguruma) is Unicode White_Space. Python's `re` also counts
# \x1c-\x1f as space, the reference does not, so the class is spelled out.
_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

# Fast path for pure-ASCII text, where \p{L} is [A-Za-z] and \p{N} is [0-9]. Same alternatives,
# letters tried first (no contraction starts with a letter, so the order does not matter).
_ASCII_SPLIT = re.compile(
    r""" ?[A-Za-z]+|'(?:[stmd]|re|ve|ll)| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""", re.ASCII)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _full_split_pattern(letters: str, numbers: str) -> "re.Pattern":
    """GPT2_PATTERN for all of Unicode, with \\p{L}/\\p{N} given as code-point range lists."""
    L, N = _char_class(letters), _char_class(numbers)
    return re.compile(rf"'(?:[stmd]|re|ve|ll)| ?[{L}]+| ?[{N}]+| ?[^{_SPACE}{L}{N}]+"
                      rf"|[{_SPACE}]+(?![^{_SPACE}])|[{_SPACE}]+")


def _char_class(ranges: str) -> str:
    """'0041-005A 00AA' -> the inside of a regex character class."""
    parts = []
    for item in ranges.split():
        lo, _, hi = item.partition("-")
        parts.append(re.escape(chr(int(lo, 16))) + ("-" + re.escape(chr(int(hi, 16))) if hi else ""))
    return "".join(parts)


def pre_tokenize(text: str) -> List[str]:
    """Split text into the pieces BPE runs on; each piece is merged on its own.

    >>> pre_tokenize("Hello world, it's  2024!")
    ['Hello', ' world', ',', ' it', "'s", ' ', ' 2024', '!']
    """
    return (_ASCII_SPLIT if text.isascii() else _FULL_SPLIT).findall(text)


def pre_tokenize_spans(text: str) -> List[Tuple[str, int, int]]:
    """Like pre_tokenize, with each piece's (start, end) code-point span in `text`.

    >>> pre_tokenize_spans("a  b")
    [('a', 0, 1), (' ', 1, 2), (' b', 2, 4)]
    """
    pattern = _ASCII_SPLIT if text.isascii() else _FULL_SPLIT
    return [(m.group(), m.start(), m.end()) for m in pattern.finditer(text)]


def find_surrogate(text: str) -> int:
    """Index of the first lone surrogate (text that is not valid UTF-8), or -1.

    >>> find_surrogate("ok"), find_surrogate("a\\ud800")
    (-1, 1)
    """
    if text.isascii():
        return -1
    m = _SURROGATE.search(text)
    return m.start() if m else -1


# --- reading the model tables --------------------------------------------------------------

def load_vocab(path: str) -> Dict[str, int]:
    """Read vocab.json: {token string: id}. The ids are what the model sees (not merge ranks).

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "vocab.json")
    ...     _ = path.write_text('{"<s>": 0, "Ġthe": 5, "Ġ": 1437}', encoding="utf-8")
    ...     vocab = load_vocab(str(path))
    >>> vocab["Ġthe"], vocab["Ġ"]
    (5, 1437)
    """
    with open(path, encoding="utf-8") as f:
        vocab = json.load(f)
    if not isinstance(vocab, dict):
        raise ValueError(f"{path}: expected a JSON object of token -> id, got {type(vocab).__name__}")
    return vocab


def read_merges_txt(path: str) -> List[Tuple[str, str]]:
    """Read merges.txt: one "left right" pair per line, best (rank 0) first.

    Quirk: the first line is a `#version: 0.2` header and is skipped, but only that line:
    lines such as `# #` and `## ##` further down are real merges of the symbol '#'.

    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "merges.txt")
    ...     _ = path.write_text("#version: 0.2\\nĠ t\\n# #\\nĠt he\\n", encoding="utf-8")
    ...     read_merges_txt(str(path))  # rank = position in this list
    [('Ġ', 't'), ('#', '#'), ('Ġt', 'he')]
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    return parse_merges([line for line in lines if line], source=path)


def parse_merges(merges: Iterable, source: str = "merges") -> List[Tuple[str, str]]:
    """Normalise merges given as "a b" strings (merges.txt, older tokenizer.json) or [a, b] pairs.

    >>> parse_merges(["Ġ t", ["h", "e"]])
    [('Ġ', 't'), ('h', 'e')]
    """
    pairs = []
    for n, merge in enumerate(merges, 1):
        parts = merge.split(" ") if isinstance(merge, str) else list(merge)
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise ValueError(f"{source}: merge {n} is {merge!r}; expected 'left right' or [left, right]")
        pairs.append((parts[0], parts[1]))
    return pairs


def model_from_tokenizer_json(path: str) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """The BPE vocab and merges stored inside a tokenizer.json.

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> spec = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "tokenizer.json")
    ...     _ = path.write_text(json.dumps(spec), encoding="utf-8")
    ...     model_from_tokenizer_json(str(path))
    ({'a': 0, 'b': 1, 'ab': 2}, [('a', 'b')])
    """
    with open(path, encoding="utf-8") as f:
        model = json.load(f).get("model", {})
    if model.get("type", "BPE") != "BPE" or "vocab" not in model:
        raise ValueError(f"{path}: expected a BPE model with a vocab, got type {model.get('type')!r}")
    return model["vocab"], parse_merges(model.get("merges", []), source=path)


# --- the merge loop ------------------------------------------------------------------------

class _WordCache(dict):
    """pre-token -> tuple of ids. A miss runs BPE once; a hit stays a C-level dict lookup.

    Bounded two ways, so text from the wild cannot grow it without limit: pieces longer than
    `max_chars` are never stored (as in the reference, whose cache skips words of 256+
    characters), and when `max_size` entries are held it starts over.
    """

    def __init__(self, compute, max_size: int, max_chars: int):
        super().__init__()
        self.compute, self.max_size, self.max_chars = compute, max_size, max_chars

    def __missing__(self, word: str) -> Tuple[int, ...]:
        ids = self.compute(word)
        if len(word) < self.max_chars:
            if len(self) >= self.max_size:
                self.clear()
            self[word] = ids
        return ids


class BytePairEncoder:
    """Vocab + merges, and the algorithm that turns text (no special tokens) into ids.

    `encoder` maps token string -> id, `decoder` id -> token string, `ranks` maps a symbol
    pair -> its merge rank (lower merges first).
    """

    def __init__(self, vocab: Dict[str, int], merges: Sequence[Tuple[str, str]],
                 cache_size: int = 200_000, cache_chars: int = 256):
        self.encoder = dict(vocab)
        self.decoder = {i: t for t, i in self.encoder.items()}
        self.merges = [tuple(m) for m in merges]
        # a pair listed twice keeps its last rank, as in the reference's merge map
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        for a, b in self.ranks:  # the reference refuses such files too
            if a + b not in self.encoder:
                raise ValueError(f"merge {a!r} + {b!r} makes {a + b!r}, which is not in the vocab")
        self.cache = _WordCache(self._encode_word, cache_size, cache_chars)
        self._table = None  # bpe_numba.MergeTable, built on the first long piece
        self._lookup = self.cache.__getitem__  # bound once: the hot loop maps it over pre-tokens

    def merge(self, symbols: Sequence[str]) -> List[str]:
        """Apply merges to one pre-token's symbols, lowest rank first, until none applies.

        The readable loop: each step scans every pair, so a piece of n symbols costs O(n^2).
        Fine for words; pieces longer than LONG_PIECE symbols go to `merge_long` instead.

        Merging one pair at a time (leftmost first among equal ranks) gives the same result as
        GPT-2's "merge every occurrence" and as tokenizers' priority queue: a pair created by a
        merge always ranks after the merge that created it.

        >>> bpe = BytePairEncoder({"a": 0, "b": 1, "ab": 2, "aab": 3}, [("a", "b"), ("a", "ab")])
        >>> bpe.merge("aab"), bpe.merge("abab")
        (['aab'], ['ab', 'ab'])
        """
        symbols, get = list(symbols), self.ranks.get
        # rank of every adjacent pair; a pair that is not a merge ranks as infinity
        ranks = list(map(get, zip(symbols, symbols[1:]), repeat(INF)))
        while ranks:
            best = min(ranks)
            if best == INF:
                break
            i = ranks.index(best)  # leftmost among equals
            merged = symbols[i] + symbols.pop(i + 1)
            symbols[i] = merged
            # only the pairs touching the merged symbol change: drop one, re-rank two
            del ranks[i]
            if i > 0:
                ranks[i - 1] = get((symbols[i - 1], merged), INF)
            if i < len(ranks):
                ranks[i] = get((merged, symbols[i + 1]), INF)
        return symbols

    def merge_long(self, symbols: Sequence[str]) -> List[str]:
        """`merge` in O(n log n): a heap of candidate pairs over a linked list of symbols.

        The same merges in the same order as `merge` (the heap pops the lowest rank, and among
        equal ranks the leftmost, by the pair's first position in the piece), which is how the
        reference merges too. Two changes make it fast on a long piece (a base64 blob, a run of
        one letter, a megabyte of spaces):

        * the symbols live in a doubly linked list (`nxt`, `prv` indices), so merging a pair
          is O(1), not a list.pop that shifts the rest;
        * every candidate pair sits in a heap keyed by (rank, position), so finding the best is
          O(log n), not a scan. A merge changes its neighbours' pairs: their new pairs are
          pushed, and the old entries, now stale, are skipped when they surface (a symbol
          only ever grows, so an entry is current exactly when its pair still has that rank).

        >>> bpe = BytePairEncoder({"a": 0, "b": 1, "ab": 2, "aab": 3}, [("a", "b"), ("a", "ab")])
        >>> bpe.merge_long("aab"), bpe.merge_long("abab")
        (['aab'], ['ab', 'ab'])
        >>> bpe.merge_long("aababaab") == bpe.merge("aababaab")
        True
        """
        sym = list(symbols)  # sym[i] is None once merged into its left neighbour
        n, get = len(sym), self.ranks.get
        nxt, prv = list(range(1, n + 1)), list(range(-1, n - 1))
        nxt[-1] = -1
        heap = [(rank, i) for i, pair in enumerate(zip(sym, sym[1:]))
                if (rank := get(pair)) is not None]
        heapify(heap)
        while heap:
            rank, i = heappop(heap)
            j = nxt[i]
            if sym[i] is None or j < 0 or get((sym[i], sym[j])) != rank:
                continue  # stale: i was merged away, or its pair changed since the push
            sym[i] = merged = sym[i] + sym[j]  # merge j into i, unlink j
            sym[j], k = None, nxt[j]
            nxt[i] = k
            if k >= 0:
                prv[k] = i
                if (r := get((merged, sym[k]))) is not None:
                    heappush(heap, (r, i))
            if (h := prv[i]) >= 0 and (r := get((sym[h], merged))) is not None:
                heappush(heap, (r, h))
        return [s for s in sym if s is not None]

    def _encode_word(self, word: str) -> Tuple[int, ...]:
        symbols = to_byte_symbols(word)
        if len(symbols) <= 1:
            tokens = [symbols]
        elif len(symbols) <= LONG_PIECE:
            tokens = self.merge(symbols)
        elif len(symbols) > COMPILED_PIECE and _compiled_merges():  # merge_long, compiled
            if self._table is None:
                from .bpe_numba import MergeTable
                self._table = MergeTable(self)
            return tuple(self._table.encode(word).tolist())
        else:
            tokens = self.merge_long(symbols)
        try:
            return tuple(map(self.encoder.__getitem__, tokens))
        except KeyError as e:
            raise ValueError(f"the vocab has no entry for the byte symbol {e.args[0]!r} "
                             f"(needed for {word!r}); byte-level vocabs hold all 256") from None

    def encode_word(self, word: str) -> Tuple[int, ...]:
        """Ids of one pre-token (cached)."""
        return self.cache[word]

    def encode(self, text: str) -> List[int]:
        """Ids of plain text: pre-tokenize, then BPE each piece (the hot path)."""
        split = _ASCII_SPLIT if text.isascii() else _FULL_SPLIT  # = pre_tokenize(text), inlined
        return list(chain.from_iterable(map(self._lookup, split.findall(text))))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes behind some ids; ids outside the vocab are skipped."""
        return tokens_to_bytes(self.decoder[i] for i in ids if i in self.decoder)

    def explain(self, text: str) -> dict:
        """Every intermediate step of encoding `text` (no special tokens), for notebooks.

        >>> symbols = sorted(set(BYTE_ENCODER.values()))
        >>> vocab = {s: i for i, s in enumerate(symbols)}
        >>> vocab.update({"Ġw": 256, "Ġwo": 257})
        >>> steps = BytePairEncoder(vocab, [("Ġ", "w"), ("Ġw", "o")]).explain(" wow")
        >>> steps["pre_tokens"]
        [' wow']
        >>> [(m["pair"], m["rank"], m["symbols"]) for m in steps["words"][0]["merges"]]
        [(('Ġ', 'w'), 0, ['Ġw', 'o', 'w']), (('Ġw', 'o'), 1, ['Ġwo', 'w'])]
        >>> steps["words"][0]["tokens"], steps["ids"]
        (['Ġwo', 'w'], [257, 86])
        """
        words = [self.explain_word(w) for w in pre_tokenize(text)]
        return {"text": text, "pre_tokens": [w["pre_token"] for w in words], "words": words,
                "tokens": [t for w in words for t in w["tokens"]],
                "ids": [i for w in words for i in w["ids"]]}

    def explain_word(self, word: str) -> dict:
        """The merge loop at its plainest, on one pre-token, keeping every step.

        Rank every adjacent pair (a pair that is not a merge ranks as infinity), merge the
        lowest-ranked one (the leftmost among equals), and repeat until no pair is a merge.
        `merge` and `merge_long` compute the same tokens faster; this is the one to read.

        >>> bpe = BytePairEncoder({"a": 0, "b": 1, "ab": 2, "aab": 3}, [("a", "b"), ("a", "ab")])
        >>> [(m["pair"], m["symbols"]) for m in bpe.explain_word("aab")["merges"]]
        [(('a', 'b'), ['a', 'ab']), (('a', 'ab'), ['aab'])]
        """
        raw = word.encode("utf-8")
        if len(raw) > COMPILED_PIECE:  # every step keeps a copy of the piece: O(n^2) memory
            raise ValueError(f"explain() shows every merge of a piece with a copy of its symbols, "
                             f"so it takes pieces of at most {COMPILED_PIECE} bytes; this text has "
                             f"one of {len(raw):,} ({word[:20]!r}...). encode() takes any length.")
        symbols, steps = list(to_byte_symbols(word)), []
        while len(symbols) > 1:
            ranked = [(self.ranks.get(p, INF), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(ranked)
            if rank == INF:
                break
            pair = (symbols[i], symbols[i + 1])
            symbols[i:i + 2] = [pair[0] + pair[1]]
            steps.append({"pair": pair, "rank": rank, "position": i, "symbols": list(symbols)})
        return {"pre_token": word, "bytes": list(raw),
                "byte_symbols": [(b, BYTE_ENCODER[b]) for b in raw], "merges": steps,
                "tokens": symbols, "ids": [self.encoder[t] for t in symbols]}


def _compiled_merges() -> bool:
    """Whether long pieces take the Numba loop: the kernel backend (MINIROBERA_KERNELS) says."""
    from .kernels import get_backend
    return get_backend() == "numba"


def tokens_to_bytes(tokens: Iterable[str]) -> bytes:
    """Join token strings back into bytes, undoing the byte table.

    Like the reference's ByteLevel decoder, a token with a character outside the byte table
    (an added token such as "<mask>" is fine, it is plain ASCII) falls back to its own UTF-8.

    >>> tokens_to_bytes(["Hello", "Ġworld", "ĠðŁ", "¤", "Ĺ"]).decode("utf-8")
    'Hello world 🤗'
    """
    out = bytearray()
    for token in tokens:
        try:
            out.extend(bytes([BYTE_DECODER[c] for c in token]))
        except KeyError:
            out.extend(token.encode("utf-8"))
    return bytes(out)


# ---------------------------------------------------------------------- learning the merges

def train(texts, vocab_size: int, special_tokens: Sequence[str] = ()
          ) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """Learn byte-level BPE from text: count every adjacent pair of symbols, merge the most
    frequent pair everywhere, and repeat until the vocab has `vocab_size` entries.

    `texts` is a string or a list of strings. Each is pre-tokenized (`pre_tokenize`, the
    GPT-2 split: merges never cross a word boundary) and turned into byte symbols; the vocab
    starts with `special_tokens`, then all 256 byte symbols (ordered by code point), so any
    text can be encoded. A tie between equally frequent pairs goes to the pair whose first
    symbol has the lowest id, then whose second has (ids count up from the specials, the
    byte symbols, then each merge's result as it is made). Returns (vocab, merges), ready
    for `BytePairEncoder(vocab, merges)`. The same merges as Hugging Face tokenizers'
    `BpeTrainer(vocab_size, special_tokens, initial_alphabet=ByteLevel.alphabet())` on a
    `ByteLevel(add_prefix_space=False)` pre-tokenizer (tests/test_bpe_train.py).

    It recounts every pair after every merge: plain, and fine for a few thousand merges on a
    small text; the reference updates the counts incrementally.

    >>> vocab, merges = train("low lower lowest", vocab_size=256 + 3)
    >>> merges
    [('l', 'o'), ('lo', 'w'), ('Ġ', 'low')]
    >>> BytePairEncoder(vocab, merges).encode("lowly") == [vocab["low"], vocab["l"], vocab["y"]]
    True
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    words = {}  # byte symbols of a pre-token -> how often it occurs
    for text in texts:
        for piece in pre_tokenize(text):
            symbols = to_byte_symbols(piece)
            words[symbols] = words.get(symbols, 0) + 1
    vocab = {token: i for i, token in enumerate(dict.fromkeys(special_tokens))}
    for symbol in sorted(BYTE_ENCODER.values()):
        vocab.setdefault(symbol, len(vocab))
    corpus = [(list(symbols), count) for symbols, count in words.items()]
    merges = []
    while len(vocab) < vocab_size:
        counts = {}
        for symbols, count in corpus:  # every adjacent pair, overlapping ones too ("aaa": 2)
            for pair in zip(symbols, symbols[1:]):
                counts[pair] = counts.get(pair, 0) + count
        if not counts:
            break  # every word is one symbol: nothing left to merge
        best = max(counts, key=lambda p: (counts[p], -vocab[p[0]], -vocab[p[1]]))
        merges.append(best)
        vocab.setdefault(best[0] + best[1], len(vocab))
        for symbols, _ in corpus:
            _merge_pair(symbols, best)
    return vocab, merges


def _merge_pair(symbols: List[str], pair: Tuple[str, str]) -> None:
    """Replace every occurrence of `pair` in `symbols`, left to right ("aaa" -> "aa", "a")."""
    i = 0
    while i < len(symbols) - 1:
        if symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            symbols[i:i + 2] = [pair[0] + pair[1]]
        i += 1


# ---------------------------------------------------------------------------------------------
# \p{L} and \p{N} exactly as the reference sees them. tokenizers 0.23 matches the pattern with
# Oniguruma, whose tables are Unicode 16.0; the `regex` module follows newer Unicode (17.0 adds
# ~17k letters), and `re` has no \p{..}. Written out here, the split is the same on any Python.
# Ranges of code points in hex. Regenerate: scripts/make_tokenizer_fixtures.py --unicode-tables
# (tests/test_tokenizer_fixtures.py checks them against the reference's recorded classification).
_LETTER_RANGES = """
0041-005A 0061-007A 00AA 00B5 00BA 00C0-00D6 00D8-00F6 00F8-02C1 02C6-02D1 02E0-02E4 02EC 02EE
0370-0374 0376-0377 037A-037D 037F 0386 0388-038A 038C 038E-03A1 03A3-03F5 03F7-0481 048A-052F
0531-0556 0559 0560-0588 05D0-05EA 05EF-05F2 0620-064A 066E-066F 0671-06D3 06D5 06E5-06E6
06EE-06EF 06FA-06FC 06FF 0710 0712-072F 074D-07A5 07B1 07CA-07EA 07F4-07F5 07FA 0800-0815 081A
0824 0828 0840-0858 0860-086A 0870-0887 0889-088E 08A0-08C9 0904-0939 093D 0950 0958-0961
0971-0980 0985-098C 098F-0990 0993-09A8 09AA-09B0 09B2 09B6-09B9 09BD 09CE 09DC-09DD 09DF-09E1
09F0-09F1 09FC 0A05-0A0A 0A0F-0A10 0A13-0A28 0A2A-0A30 0A32-0A33 0A35-0A36 0A38-0A39 0A59-0A5C
0A5E 0A72-0A74 0A85-0A8D 0A8F-0A91 0A93-0AA8 0AAA-0AB0 0AB2-0AB3 0AB5-0AB9 0ABD 0AD0 0AE0-0AE1
0AF9 0B05-0B0C 0B0F-0B10 0B13-0B28 0B2A-0B30 0B32-0B33 0B35-0B39 0B3D 0B5C-0B5D 0B5F-0B61 0B71
0B83 0B85-0B8A 0B8E-0B90 0B92-0B95 0B99-0B9A 0B9C 0B9E-0B9F 0BA3-0BA4 0BA8-0BAA 0BAE-0BB9 0BD0
0C05-0C0C 0C0E-0C10 0C12-0C28 0C2A-0C39 0C3D 0C58-0C5A 0C5D 0C60-0C61 0C80 0C85-0C8C 0C8E-0C90
0C92-0CA8 0CAA-0CB3 0CB5-0CB9 0CBD 0CDD-0CDE 0CE0-0CE1 0CF1-0CF2 0D04-0D0C 0D0E-0D10 0D12-0D3A
0D3D 0D4E 0D54-0D56 0D5F-0D61 0D7A-0D7F 0D85-0D96 0D9A-0DB1 0DB3-0DBB 0DBD 0DC0-0DC6 0E01-0E30
0E32-0E33 0E40-0E46 0E81-0E82 0E84 0E86-0E8A 0E8C-0EA3 0EA5 0EA7-0EB0 0EB2-0EB3 0EBD 0EC0-0EC4
0EC6 0EDC-0EDF 0F00 0F40-0F47 0F49-0F6C 0F88-0F8C 1000-102A 103F 1050-1055 105A-105D 1061
1065-1066 106E-1070 1075-1081 108E 10A0-10C5 10C7 10CD 10D0-10FA 10FC-1248 124A-124D 1250-1256
1258 125A-125D 1260-1288 128A-128D 1290-12B0 12B2-12B5 12B8-12BE 12C0 12C2-12C5 12C8-12D6
12D8-1310 1312-1315 1318-135A 1380-138F 13A0-13F5 13F8-13FD 1401-166C 166F-167F 1681-169A
16A0-16EA 16F1-16F8 1700-1711 171F-1731 1740-1751 1760-176C 176E-1770 1780-17B3 17D7 17DC
1820-1878 1880-1884 1887-18A8 18AA 18B0-18F5 1900-191E 1950-196D 1970-1974 1980-19AB 19B0-19C9
1A00-1A16 1A20-1A54 1AA7 1B05-1B33 1B45-1B4C 1B83-1BA0 1BAE-1BAF 1BBA-1BE5 1C00-1C23 1C4D-1C4F
1C5A-1C7D 1C80-1C8A 1C90-1CBA 1CBD-1CBF 1CE9-1CEC 1CEE-1CF3 1CF5-1CF6 1CFA 1D00-1DBF 1E00-1F15
1F18-1F1D 1F20-1F45 1F48-1F4D 1F50-1F57 1F59 1F5B 1F5D 1F5F-1F7D 1F80-1FB4 1FB6-1FBC 1FBE
1FC2-1FC4 1FC6-1FCC 1FD0-1FD3 1FD6-1FDB 1FE0-1FEC 1FF2-1FF4 1FF6-1FFC 2071 207F 2090-209C 2102
2107 210A-2113 2115 2119-211D 2124 2126 2128 212A-212D 212F-2139 213C-213F 2145-2149 214E
2183-2184 2C00-2CE4 2CEB-2CEE 2CF2-2CF3 2D00-2D25 2D27 2D2D 2D30-2D67 2D6F 2D80-2D96 2DA0-2DA6
2DA8-2DAE 2DB0-2DB6 2DB8-2DBE 2DC0-2DC6 2DC8-2DCE 2DD0-2DD6 2DD8-2DDE 2E2F 3005-3006 3031-3035
303B-303C 3041-3096 309D-309F 30A1-30FA 30FC-30FF 3105-312F 3131-318E 31A0-31BF 31F0-31FF
3400-4DBF 4E00-A48C A4D0-A4FD A500-A60C A610-A61F A62A-A62B A640-A66E A67F-A69D A6A0-A6E5
A717-A71F A722-A788 A78B-A7CD A7D0-A7D1 A7D3 A7D5-A7DC A7F2-A801 A803-A805 A807-A80A A80C-A822
A840-A873 A882-A8B3 A8F2-A8F7 A8FB A8FD-A8FE A90A-A925 A930-A946 A960-A97C A984-A9B2 A9CF
A9E0-A9E4 A9E6-A9EF A9FA-A9FE AA00-AA28 AA40-AA42 AA44-AA4B AA60-AA76 AA7A AA7E-AAAF AAB1
AAB5-AAB6 AAB9-AABD AAC0 AAC2 AADB-AADD AAE0-AAEA AAF2-AAF4 AB01-AB06 AB09-AB0E AB11-AB16
AB20-AB26 AB28-AB2E AB30-AB5A AB5C-AB69 AB70-ABE2 AC00-D7A3 D7B0-D7C6 D7CB-D7FB F900-FA6D
FA70-FAD9 FB00-FB06 FB13-FB17 FB1D FB1F-FB28 FB2A-FB36 FB38-FB3C FB3E FB40-FB41 FB43-FB44
FB46-FBB1 FBD3-FD3D FD50-FD8F FD92-FDC7 FDF0-FDFB FE70-FE74 FE76-FEFC FF21-FF3A FF41-FF5A
FF66-FFBE FFC2-FFC7 FFCA-FFCF FFD2-FFD7 FFDA-FFDC 10000-1000B 1000D-10026 10028-1003A
1003C-1003D 1003F-1004D 10050-1005D 10080-100FA 10280-1029C 102A0-102D0 10300-1031F 1032D-10340
10342-10349 10350-10375 10380-1039D 103A0-103C3 103C8-103CF 10400-1049D 104B0-104D3 104D8-104FB
10500-10527 10530-10563 10570-1057A 1057C-1058A 1058C-10592 10594-10595 10597-105A1 105A3-105B1
105B3-105B9 105BB-105BC 105C0-105F3 10600-10736 10740-10755 10760-10767 10780-10785 10787-107B0
107B2-107BA 10800-10805 10808 1080A-10835 10837-10838 1083C 1083F-10855 10860-10876 10880-1089E
108E0-108F2 108F4-108F5 10900-10915 10920-10939 10980-109B7 109BE-109BF 10A00 10A10-10A13
10A15-10A17 10A19-10A35 10A60-10A7C 10A80-10A9C 10AC0-10AC7 10AC9-10AE4 10B00-10B35 10B40-10B55
10B60-10B72 10B80-10B91 10C00-10C48 10C80-10CB2 10CC0-10CF2 10D00-10D23 10D4A-10D65 10D6F-10D85
10E80-10EA9 10EB0-10EB1 10EC2-10EC4 10F00-10F1C 10F27 10F30-10F45 10F70-10F81 10FB0-10FC4
10FE0-10FF6 11003-11037 11071-11072 11075 11083-110AF 110D0-110E8 11103-11126 11144 11147
11150-11172 11176 11183-111B2 111C1-111C4 111DA 111DC 11200-11211 11213-1122B 1123F-11240
11280-11286 11288 1128A-1128D 1128F-1129D 1129F-112A8 112B0-112DE 11305-1130C 1130F-11310
11313-11328 1132A-11330 11332-11333 11335-11339 1133D 11350 1135D-11361 11380-11389 1138B 1138E
11390-113B5 113B7 113D1 113D3 11400-11434 11447-1144A 1145F-11461 11480-114AF 114C4-114C5 114C7
11580-115AE 115D8-115DB 11600-1162F 11644 11680-116AA 116B8 11700-1171A 11740-11746 11800-1182B
118A0-118DF 118FF-11906 11909 1190C-11913 11915-11916 11918-1192F 1193F 11941 119A0-119A7
119AA-119D0 119E1 119E3 11A00 11A0B-11A32 11A3A 11A50 11A5C-11A89 11A9D 11AB0-11AF8 11BC0-11BE0
11C00-11C08 11C0A-11C2E 11C40 11C72-11C8F 11D00-11D06 11D08-11D09 11D0B-11D30 11D46 11D60-11D65
11D67-11D68 11D6A-11D89 11D98 11EE0-11EF2 11F02 11F04-11F10 11F12-11F33 11FB0 12000-12399
12480-12543 12F90-12FF0 13000-1342F 13441-13446 13460-143FA 14400-14646 16100-1611D 16800-16A38
16A40-16A5E 16A70-16ABE 16AD0-16AED 16B00-16B2F 16B40-16B43 16B63-16B77 16B7D-16B8F 16D40-16D6C
16E40-16E7F 16F00-16F4A 16F50 16F93-16F9F 16FE0-16FE1 16FE3 17000-187F7 18800-18CD5 18CFF-18D08
1AFF0-1AFF3 1AFF5-1AFFB 1AFFD-1AFFE 1B000-1B122 1B132 1B150-1B152 1B155 1B164-1B167 1B170-1B2FB
1BC00-1BC6A 1BC70-1BC7C 1BC80-1BC88 1BC90-1BC99 1D400-1D454 1D456-1D49C 1D49E-1D49F 1D4A2
1D4A5-1D4A6 1D4A9-1D4AC 1D4AE-1D4B9 1D4BB 1D4BD-1D4C3 1D4C5-1D505 1D507-1D50A 1D50D-1D514
1D516-1D51C 1D51E-1D539 1D53B-1D53E 1D540-1D544 1D546 1D54A-1D550 1D552-1D6A5 1D6A8-1D6C0
1D6C2-1D6DA 1D6DC-1D6FA 1D6FC-1D714 1D716-1D734 1D736-1D74E 1D750-1D76E 1D770-1D788 1D78A-1D7A8
1D7AA-1D7C2 1D7C4-1D7CB 1DF00-1DF1E 1DF25-1DF2A 1E030-1E06D 1E100-1E12C 1E137-1E13D 1E14E
1E290-1E2AD 1E2C0-1E2EB 1E4D0-1E4EB 1E5D0-1E5ED 1E5F0 1E7E0-1E7E6 1E7E8-1E7EB 1E7ED-1E7EE
1E7F0-1E7FE 1E800-1E8C4 1E900-1E943 1E94B 1EE00-1EE03 1EE05-1EE1F 1EE21-1EE22 1EE24 1EE27
1EE29-1EE32 1EE34-1EE37 1EE39 1EE3B 1EE42 1EE47 1EE49 1EE4B 1EE4D-1EE4F 1EE51-1EE52 1EE54 1EE57
1EE59 1EE5B 1EE5D 1EE5F 1EE61-1EE62 1EE64 1EE67-1EE6A 1EE6C-1EE72 1EE74-1EE77 1EE79-1EE7C 1EE7E
1EE80-1EE89 1EE8B-1EE9B 1EEA1-1EEA3 1EEA5-1EEA9 1EEAB-1EEBB 20000-2A6DF 2A700-2B739 2B740-2B81D
2B820-2CEA1 2CEB0-2EBE0 2EBF0-2EE5D 2F800-2FA1D 30000-3134A 31350-323AF
"""

_NUMBER_RANGES = """
0030-0039 00B2-00B3 00B9 00BC-00BE 0660-0669 06F0-06F9 07C0-07C9 0966-096F 09E6-09EF 09F4-09F9
0A66-0A6F 0AE6-0AEF 0B66-0B6F 0B72-0B77 0BE6-0BF2 0C66-0C6F 0C78-0C7E 0CE6-0CEF 0D58-0D5E
0D66-0D78 0DE6-0DEF 0E50-0E59 0ED0-0ED9 0F20-0F33 1040-1049 1090-1099 1369-137C 16EE-16F0
17E0-17E9 17F0-17F9 1810-1819 1946-194F 19D0-19DA 1A80-1A89 1A90-1A99 1B50-1B59 1BB0-1BB9
1C40-1C49 1C50-1C59 2070 2074-2079 2080-2089 2150-2182 2185-2189 2460-249B 24EA-24FF 2776-2793
2CFD 3007 3021-3029 3038-303A 3192-3195 3220-3229 3248-324F 3251-325F 3280-3289 32B1-32BF
A620-A629 A6E6-A6EF A830-A835 A8D0-A8D9 A900-A909 A9D0-A9D9 A9F0-A9F9 AA50-AA59 ABF0-ABF9
FF10-FF19 10107-10133 10140-10178 1018A-1018B 102E1-102FB 10320-10323 10341 1034A 103D1-103D5
104A0-104A9 10858-1085F 10879-1087F 108A7-108AF 108FB-108FF 10916-1091B 109BC-109BD 109C0-109CF
109D2-109FF 10A40-10A48 10A7D-10A7E 10A9D-10A9F 10AEB-10AEF 10B58-10B5F 10B78-10B7F 10BA9-10BAF
10CFA-10CFF 10D30-10D39 10D40-10D49 10E60-10E7E 10F1D-10F26 10F51-10F54 10FC5-10FCB 11052-1106F
110F0-110F9 11136-1113F 111D0-111D9 111E1-111F4 112F0-112F9 11450-11459 114D0-114D9 11650-11659
116C0-116C9 116D0-116E3 11730-1173B 118E0-118F2 11950-11959 11BF0-11BF9 11C50-11C6C 11D50-11D59
11DA0-11DA9 11F50-11F59 11FC0-11FD4 12400-1246E 16130-16139 16A60-16A69 16AC0-16AC9 16B50-16B59
16B5B-16B61 16D70-16D79 16E80-16E96 1CCF0-1CCF9 1D2C0-1D2D3 1D2E0-1D2F3 1D360-1D378 1D7CE-1D7FF
1E140-1E149 1E2F0-1E2F9 1E4F0-1E4F9 1E5F1-1E5FA 1E8C7-1E8CF 1E950-1E959 1EC71-1ECAB 1ECAD-1ECAF
1ECB1-1ECB4 1ED01-1ED2D 1ED2F-1ED3D 1F100-1F10C 1FBF0-1FBF9
"""

_FULL_SPLIT = _full_split_pattern(_LETTER_RANGES, _NUMBER_RANGES)
