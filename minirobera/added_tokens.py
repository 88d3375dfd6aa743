"""Special tokens: the tokens matched whole in the text before BPE runs ("added tokens").

Owns:
  * AddedToken (content + lstrip/rstrip...), and turning a str, a JSON dict or a
    tokenizers AddedToken into one;
  * the seven special-token roles, in transformers' order;
  * giving each added token an id on top of the BPE vocab, and the regex that finds them;
  * splitting a text on them: longest match first, an lstrip token (`<mask>`) swallowing the
    whitespace on its left (Rust's char::is_whitespace, kept here as _WHITESPACE).

Besides the seven roles, a tokenizer holds every other added token its files list (a
tokenizer.json `added_tokens` entry, a tokenizer_config.json `added_tokens_decoder` entry),
matched in text the same way with its flags: single_word, lstrip, rstrip, special (only
special=True tokens are dropped by decode(skip_special_tokens=True)).

Leaves out: the BPE of the text between them (bpe.py), add_prefix_space and the tokenizer
that holds them (tokenizer.py), offsets (offsets.py), adding tokens after construction, and
`normalized`: every added token is matched in the raw text (the reference matches a
normalized=True token after the normalizer, which for XLM-R's charsmap differs only where
normalization changes the token's characters, e.g. full-width letters).

>>> tokens = {"<s>": AddedToken("<s>"), "<mask>": AddedToken("<mask>", lstrip=True)}
>>> pieces = split_on_added_tokens("<s>Hi <mask> !", re.compile("<mask>|<s>"), tokens)
>>> [(piece, start, str(token)) for piece, start, token in pieces]
[('<s>', 0, '<s>'), ('Hi', 3, 'None'), (' <mask>', 5, '<mask>'), (' !', 12, 'None')]
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

SPECIAL_TOKEN_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                       "cls_token", "mask_token")  # transformers' order (all_special_tokens)

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
        fields = {k: value[k] for k in ("lstrip", "rstrip", "normalized", "single_word", "special")
                  if k in value}
        return AddedToken(value["content"], **fields)
    if hasattr(value, "content"):  # tokenizers.AddedToken, without importing it
        return AddedToken(value.content, bool(value.lstrip), bool(value.rstrip),
                          special=bool(getattr(value, "special", True)),
                          normalized=bool(getattr(value, "normalized", False)),
                          single_word=bool(getattr(value, "single_word", False)))
    raise TypeError(f"a special token must be a string or an AddedToken, got {type(value).__name__}")


def build_added_vocab(special: Iterable[AddedToken], bpe, fixed_ids: Dict[str, int]):
    """Give every special token an id and compile the regex that finds them in text.

    An id comes from `fixed_ids` (tokenizer.json), else from the BPE vocab, else it is the
    next free one. Returns (added, added_ids, added_by_id, added_re, maybe_added): content ->
    AddedToken, content -> id, id -> content, the regex (None if there are no added tokens),
    and a cheap search whose None means "no added token can be in this text".
    """
    added: Dict[str, AddedToken] = {}
    added_ids: Dict[str, int] = {}
    next_id = max(bpe.decoder) + 1 if bpe.decoder else 0
    for token in special:
        if token.content in added_ids:
            continue
        if token.content in fixed_ids:
            added_ids[token.content] = fixed_ids[token.content]
        elif token.content in bpe.encoder:
            added_ids[token.content] = bpe.encoder[token.content]
        else:
            added_ids[token.content] = next_id
            next_id = max(next_id, added_ids[token.content]) + 1
        added[token.content] = token
    added_by_id = {i: t for t, i in added_ids.items()}
    # longest first, so the leftmost match is also the longest (the reference's rule)
    contents = sorted(added, key=len, reverse=True)
    added_re = re.compile("|".join(map(re.escape, contents))) if contents else None
    # cheap pre-check (one C-level scan): can this text contain an added token at all?
    firsts = "".join(sorted({re.escape(c[0]) for c in contents}))
    maybe_added = re.compile(f"[{firsts}]").search if contents else (lambda text: None)
    return added, added_ids, added_by_id, added_re, maybe_added


def split_on_added_tokens(text: str, added_re: "re.Pattern", added: Dict[str, AddedToken]
                          ) -> List[Tuple[str, int, Optional[AddedToken]]]:
    """[(piece, start, added token or None)]: special tokens matched whole, text between.

    Quirk: only an lstrip token (<mask>) takes the whitespace before it (never past the
    previous match); before <s>, </s>, <pad>, <unk> the space stays in the text piece and
    becomes a lone 'Ġ' (id 1437). A single_word token matches only where no word character
    touches it on either side ("a <w> b", not "a<w>b").
    """
    pieces, pos = [], 0
    for m in added_re.finditer(text):
        token, start, stop = added[m.group()], m.start(), m.end()
        if token.single_word and (_is_word_char(text, start - 1) or _is_word_char(text, stop)):
            continue  # inside a word: not this token, and the text stays whole (the reference's)
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


def _is_word_char(text: str, i: int) -> bool:
    """Whether text[i] exists and is a word character as the reference's regex `\\w` has it
    (Unicode: a letter, a mark, a decimal or letter number, connector punctuation such as
    '_', a joiner), which makes a single_word token's match part of a longer word.

    >>> [_is_word_char(t, 0) for t in ("é", "\u0301", "_", "²", "·", "")]
    [True, True, True, False, False, False]
    """
    if not 0 <= i < len(text):
        return False
    category = unicodedata.category(text[i])
    return category[0] in "LM" or category in ("Nd", "Nl", "Pc") or text[i] in "\u200c\u200d"
