"""Offsets and word ids: where in the text each token came from.

Owns:
  * the raw span of each token, in code points of the original text: tokens that split one
    character (é is 2 bytes, an emoji 4) share its span, and a prefix space that
    add_prefix_space added is mapped onto the first real character, as the reference does;
  * the word id of each token (every pre-token and every special token is a word, or the
    index of the word in pre-split input);
  * trim_offsets: moving spans off the spaces at a token's ends (the reference's quirks).

Leaves out: finding the special tokens in the text (added_tokens.py), the BPE itself
(bpe.py), cutting the spans into windows and the template's (0, 0) spans (batch_api.py).

>>> from minirobera.bpe import BYTE_ENCODER, BytePairEncoder
>>> bpe = BytePairEncoder({s: i for i, s in enumerate(sorted(BYTE_ENCODER.values()))}, [])
>>> seq = _Sequence([], [], [], [])
>>> text_details([("hé y", 0, None)], seq, bpe, {}, add_prefix_space=False)
>>> seq.tokens, seq.spans, seq.words
(['h', 'Ã', '©', 'Ġ', 'y'], [(0, 1), (1, 2), (1, 2), (2, 3), (3, 4)], [0, 0, 0, 1, 1])
>>> trim_offsets(seq.tokens, seq.spans, False)[3]  # 'Ġ' alone: an empty span after the space
(3, 3)
"""

from typing import Dict, List, Optional, Sequence, Tuple

from .batching import _Sequence
from .bpe import pre_tokenize_spans
from .added_tokens import _WHITESPACE


def text_details(pieces, seq: _Sequence, bpe, added_ids: Dict[str, int], add_prefix_space: bool,
                 word: Optional[int] = None):
    """Append one text's tokens to `seq` with raw spans and word indices.

    `pieces` is the text split on its added tokens, [(piece, start, added token or None)]
    (added_tokens.split_on_added_tokens); `added_ids` gives their ids.
    `word` fixes the word index (pre-split input); otherwise every special token and
    every pre-token counts as a word, numbered on from the last one in `seq`.
    """
    next_word = (seq.words[-1] + 1) if (word is None and seq.words) else 0
    for piece, start, token in pieces:
        if token is not None:
            add_special(seq, added_ids[token.content], piece, start,
                        next_word if word is None else word)
            next_word += 1
            continue
        shift = 1 if add_prefix_space and piece[0] != " " else 0
        for pre, s, e in pre_tokenize_spans(" " * shift + piece):
            word_details(bpe, pre, s, start, shift, seq, next_word if word is None else word)
            next_word += 1


def add_special(seq: _Sequence, token_id: int, piece: str, start: int, word: int):
    """Append one special token, as written in the text at `start`, to `seq` (it is a word)."""
    seq.ids.append(token_id)
    seq.tokens.append(piece)
    seq.spans.append((start, start + len(piece)))
    seq.words.append(word)


def word_details(bpe, pre: str, s: int, base: int, shift: int, seq: _Sequence, word: int):
    """Tokens of one pre-token with their code-point spans in the original text.

    Tokens that split one character (an emoji is 4 bytes) share its span; an added
    prefix space is mapped onto the first real character, as the reference does.
    """
    if pre.isascii():
        char_of_byte = range(s, s + len(pre))
    else:
        char_of_byte = [s + k for k, ch in enumerate(pre) for _ in range(len(ch.encode()))]
    b = 0
    for i in bpe.encode_word(pre):
        token = bpe.decoder[i]
        first, last = char_of_byte[b], char_of_byte[b + len(token) - 1]
        b += len(token)
        seq.ids.append(i)
        seq.tokens.append(token)
        seq.spans.append((base + max(first - shift, 0), base + max(last - shift, 0) + 1))
        seq.words.append(word)


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
