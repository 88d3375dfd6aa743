"""bpe.BytePairEncoder.merge_long compiled with Numba: the tokenizer's fast path for long pieces.

What this file owns: the heap-and-linked-list merge loop of `BytePairEncoder.merge_long`, on
integer arrays instead of strings, so Numba can compile it. It exists only for speed: a piece
of a million symbols (a run of one letter, a megabyte of spaces or digits) merges in a small
fraction of the time the Python loop takes. `merge_long` in bpe.py is its readable twin and
the tests hold the two equal on the real vocab.

What it leaves out: everything else (pre-tokenizing, the cache, special tokens). bpe.py
decides when to call it: pieces longer than bpe.COMPILED_PIECE symbols, with the kernel backend
"numba" (kernels.get_backend(), MINIROBERA_KERNELS); with "numpy" the Python twin runs.

The two tables it needs are built once per encoder (`MergeTable`): the id of each byte
symbol, and an open-addressing hash table from a pair of ids to (rank, id of the merged
token). Token ids stand in for the strings: a pair of ids is a merge exactly when the pair of
their strings is, because the vocab maps strings to ids one to one.

>>> from minirobera.bpe import BYTE_ENCODER, BytePairEncoder
>>> vocab = {s: i for i, s in enumerate(sorted(set(BYTE_ENCODER.values())))}
>>> vocab.update({"aa": 256, "aaaa": 257})
>>> bpe = BytePairEncoder(vocab, [("a", "a"), ("aa", "aa")])
>>> [bpe.decoder[i] for i in MergeTable(bpe).encode("a" * 11)]
['aaaa', 'aaaa', 'aa', 'a']
"""

from __future__ import annotations

import threading

import numpy as np

_EMPTY = -1  # an unused slot of the hash table
_COMPILED = {}
_COMPILING = threading.Lock()


def _slot(a, b, mask):  # two token ids -> the first slot to probe
    return ((a * 1000003) ^ b) & mask


def _insert_loops(keys, values, lefts, rights, packed, mask):  # fill the table; -> None
    for n in range(lefts.shape[0]):
        a, b = lefts[n], rights[n]
        s = _slot(a, b, mask)
        while keys[s] != _EMPTY and keys[s] != (a << 32 | b):
            s = (s + 1) & mask  # linear probing
        keys[s] = a << 32 | b
        values[s] = packed[n]  # a pair listed twice keeps its last rank, as in bpe.py


def _lookup(keys, values, mask, a, b):  # -> rank << 32 | merged id, or -1 (not a merge)
    s = _slot(a, b, mask)
    key = a << 32 | b
    while keys[s] != _EMPTY:
        if keys[s] == key:
            return values[s]
        s = (s + 1) & mask
    return -1


def _sift_down(heap, size, i):  # restore the heap below position i
    item = heap[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= item:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = item


def _push(heap, size, item):  # -> the new size
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= item:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = item
    return size + 1


def _merge_loops(ids, keys, values, mask):  # [n] int64 token ids -> [m] int64 token ids
    # As merge_long: nxt/prv link the live symbols; heap entries are rank << 32 | position,
    # so the smallest is the lowest rank, and among equal ranks the leftmost.
    n = ids.shape[0]
    sym, nxt, prv = ids.copy(), np.arange(1, n + 1), np.arange(-1, n - 1)
    nxt[n - 1] = -1
    heap, size = np.empty(3 * n, np.int64), 0
    for i in range(n - 1):
        v = _lookup(keys, values, mask, sym[i], sym[i + 1])
        if v >= 0:
            heap[size] = (v >> 32) << 32 | i
            size += 1
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, size, i)
    while size > 0:
        top = heap[0]
        size -= 1
        heap[0] = heap[size]
        _sift_down(heap, size, 0)
        i, rank = top & 0xFFFFFFFF, top >> 32
        j = nxt[i]
        if sym[i] < 0 or j < 0:
            continue  # stale: i was merged away, or has no right neighbour any more
        v = _lookup(keys, values, mask, sym[i], sym[j])
        if v < 0 or v >> 32 != rank:
            continue  # stale: the pair at i changed since this entry was pushed
        sym[i], sym[j] = v & 0xFFFFFFFF, -1
        k = nxt[j]
        nxt[i] = k
        if k >= 0:
            prv[k] = i
            v = _lookup(keys, values, mask, sym[i], sym[k])
            if v >= 0:
                size = _push(heap, size, (v >> 32) << 32 | i)
        h = prv[i]
        if h >= 0:
            v = _lookup(keys, values, mask, sym[h], sym[i])
            if v >= 0:
                size = _push(heap, size, (v >> 32) << 32 | h)
    return sym[sym >= 0]


def _kernels() -> dict:
    """Import Numba and compile (or load from its disk cache) the loops above; runs once."""
    if not _COMPILED:
        with _COMPILING:
            if not _COMPILED:
                import numba

                g = globals()
                for name in ("_slot", "_lookup", "_sift_down", "_push"):
                    g[name] = numba.njit(cache=True, inline="always")(g[name])
                _COMPILED.update({name: numba.njit(cache=True, nogil=True)(g[name])
                                  for name in ("_insert_loops", "_merge_loops")})
    return _COMPILED


class MergeTable:
    """A BytePairEncoder's vocab and merges as the integer tables the compiled loop reads."""

    def __init__(self, bpe):
        from minirobera.bpe import BYTE_ENCODER

        try:
            self.byte_ids = np.array([bpe.encoder[BYTE_ENCODER[b]] for b in range(256)], np.int64)
        except KeyError as e:
            raise ValueError(f"the vocab has no entry for the byte symbol {e.args[0]!r}; "
                             f"byte-level vocabs hold all 256") from None
        enc = bpe.encoder  # a merge whose parts are not tokens can never apply: left out
        pairs = np.array([(enc[a], enc[b], rank << 32 | enc[a + b])
                          for (a, b), rank in bpe.ranks.items() if a in enc and b in enc],
                         np.int64).reshape(-1, 3)
        lefts, rights, packed = (np.ascontiguousarray(column) for column in pairs.T)
        size = 1 << max(4, (2 * len(pairs)).bit_length())  # at most half full: short probes
        self.keys, self.values = np.full(size, _EMPTY, np.int64), np.zeros(size, np.int64)
        self.mask = size - 1
        _kernels()["_insert_loops"](self.keys, self.values, lefts, rights, packed, self.mask)

    def encode(self, word: str) -> np.ndarray:  # one pre-token -> [m] int64 token ids
        ids = self.byte_ids[np.frombuffer(word.encode("utf-8"), np.uint8)]
        if ids.shape[0] < 2:
            return ids
        return _kernels()["_merge_loops"](ids, self.keys, self.values, self.mask)
