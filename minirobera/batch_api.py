"""The batch API of the tokenizer: tokenizer(...), with the template, truncation and padding.

Owns BatchAPIMixin, the methods of RobertaTokenizer that turn texts into output rows and so
need the tokenizer's state (its special-token ids, sides, model_max_length, encoder):
  * the templates `<s> A </s>` and `<s> A </s></s> B </s>`, and the special-tokens mask;
  * resolving padding / truncation / max_length as transformers does (the _Plan);
  * cutting each text into windows (the kept row, then overflow rows with a stride), wrapping
    them in the template, trimming offsets, and padding every row;
  * __call__ and encode, with a fast path for the common case (single texts, ids only).

Leaves out: the arithmetic and records these methods use (batching.py), text -> ids and the
special tokens themselves (tokenizer.py, added_tokens.py), the spans and word ids of tokens
(offsets.py). RobertaTokenizer inherits the mixin; this module never imports tokenizer.py.
"""

import warnings
from typing import List, Optional

from .batching import (LARGE_INTEGER, PADDING_STRATEGIES, TRUNCATION_STRATEGIES, BatchEncoding,
                       _check_side, _columns, _gc_paused, _pad_row, _Plan, _Row, _Sequence,
                       _strategy, _to_numpy, as_batch, check_plan, kept_lengths,
                       pair_window_order, window_ranges)
from .offsets import trim_offsets


class BatchAPIMixin:
    """tokenizer(...) and encode(): the template, truncation and padding (RobertaTokenizer's).

    Needs from the class that inherits it: cls/sep/pad token ids, pad_token, all_special_ids,
    _id_to_token, add_prefix_space, trim_offsets, model_max_length, padding_side,
    truncation_side, _warned_too_long, bpe, _maybe_added, _check_text, _text_ids and
    _encode_sequence.
    """

    # -- the template and truncation --------------------------------------------------------

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many tokens the template adds: 2 for `<s> A </s>`, 4 for `<s> A </s></s> B </s>`.

        >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
        >>> tok = RobertaTokenizer(*_tiny())
        >>> tok.num_special_tokens_to_add(), tok.num_special_tokens_to_add(pair=True)
        (2, 4)
        """
        return 4 if pair else 2

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None) -> List[int]:
        """`<s> A </s>` or `<s> A </s></s> B </s>`.

        >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
        >>> RobertaTokenizer(*_tiny()).build_inputs_with_special_tokens([261], [70])
        [0, 261, 2, 2, 70, 2]
        """
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + sep + list(token_ids_1) + sep

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None) -> List[int]:
        """The token type ids of the template: all zeros, for a pair too (RoBERTa has one token
        type, so B gets no type 1 as in BERT), as transformers 4.x returns them.

        >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
        >>> RobertaTokenizer(*_tiny()).create_token_type_ids_from_sequences([261], [70, 71])
        [0, 0, 0, 0, 0, 0, 0]
        """
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None,
                                already_has_special_tokens: bool = False) -> List[int]:
        """1 where the template puts a special token, 0 for text tokens.

        With already_has_special_tokens, marks every id that is a special token. (Without it,
        transformers 5 raises NotImplementedError; this gives the template mask, as v4 did.)

        >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
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

        >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
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
        pairs, is_batched = as_batch(text, text_pair, is_split_into_words)
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
        check_plan(plan)
        return plan

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> List[int]:
        """Ids of a text (or pair), template included by default.

        >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
        >>> RobertaTokenizer(*_tiny()).encode("ab")
        [0, 261, 2]
        """
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]
