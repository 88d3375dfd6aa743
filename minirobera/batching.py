"""Batching: the arithmetic of truncation windows and padding, and the records it works on.

Owns:
  * the truncation windows: how long each text of a pair may stay (longest_first,
    only_first, only_second), the overflow windows with their stride, left or right, and the
    order in which the windows of a pair become rows (the reference's);
  * the records: _Sequence (one text after BPE), _Row (one output row), _Plan (the resolved
    options of one call), and BatchEncoding, the dict a call returns;
  * padding a row, checking a plan, telling a batch from a single text, the output columns
    and their NumPy form (return_tensors="np"), and pausing the garbage collector meanwhile.

Leaves out: everything that needs the tokenizer's state, i.e. the template, resolving the
options and building the rows (batch_api.py); text -> ids (tokenizer.py); offsets and word
ids (offsets.py). Nothing here imports another minirobera module.

>>> window_ranges(6, 4, 2)   # keep 4 tokens, each overflow window repeats the last 2
[(0, 4), (2, 6)]
"""

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("only_first", "only_second", "longest_first", "do_not_truncate")
VERY_LARGE_INTEGER = int(1e30)  # transformers' "no limit" model_max_length
LARGE_INTEGER = int(1e20)  # above this, model_max_length means "no limit" (transformers' test)


# --- truncation windows -------------------------------------------------------------------

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


# --- checking and shaping a call --------------------------------------------------------

def check_plan(plan: _Plan):
    """Reject the option mixes transformers rejects (bad max_length, stride, pad multiple)."""
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


def as_batch(text, text_pair, is_split_into_words: bool):
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


# --- padding and the output columns -----------------------------------------------------

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
