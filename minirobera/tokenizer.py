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

This file holds RobertaTokenizer itself (construction, special tokens, the vocabulary,
text -> ids, decode, explain); the rest is cut along its seams into modules of its own:
added_tokens.py (AddedToken, the special tokens' ids, finding them in text), batch_api.py
(__call__: the template, truncation, padding), batching.py (their arithmetic and records,
BatchEncoding), offsets.py (spans and word ids) and tokenizer_files.py (from_pretrained /
save_pretrained).

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

import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

from . import bpe as _bpe
from .batch_api import BatchAPIMixin
from .batching import _Sequence
from .bpe import BytePairEncoder, find_surrogate, tokens_to_bytes
from .offsets import text_details
from .added_tokens import (SPECIAL_TOKEN_ROLES, AddedToken, _as_added_token, build_added_vocab,
                       split_on_added_tokens)
from .tokenizer_files import load_files, save_files, save_vocabulary


# --- the tokenizer -------------------------------------------------------------------------

class RobertaTokenizer(BatchAPIMixin):
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
                 errors: str = "replace", added_token_ids: Optional[Dict[str, int]] = None,
                 added_tokens: Sequence = ()):
        if errors != "replace":
            raise ValueError(f"errors={errors!r}: only 'replace' (bad UTF-8 -> U+FFFD) is supported")
        if isinstance(vocab, (str, os.PathLike)):
            vocab = _bpe.load_vocab(os.fspath(vocab))
        if isinstance(merges, (str, os.PathLike)):
            merges = _bpe.read_merges_txt(os.fspath(merges))
        self.bpe = BytePairEncoder(vocab, _bpe.parse_merges(merges))
        self.add_prefix_space = _flag("add_prefix_space", add_prefix_space)
        self.trim_offsets = _flag("trim_offsets", trim_offsets)
        self._init_shared(self.bpe, locals())

    _mask_lstrip = True  # <mask> swallows the whitespace on its left unless a file says not

    def _init_shared(self, model, args: dict):
        """The end of every tokenizer's __init__ here (RobertaTokenizer, XLMRobertaTokenizer,
        FairseqDictTokenizer): `args` is that __init__'s locals(), whose parameters they share
        by name (the seven role tokens, model_max_length, padding_side, truncation_side,
        clean_up_tokenization_spaces, added_tokens, added_token_ids). Checks and keeps the
        options, then gives every special token an id on top of `model`'s vocab."""
        self._set_options(args["model_max_length"], args["padding_side"],
                          args["truncation_side"], args["clean_up_tokenization_spaces"], args,
                          args["added_tokens"])
        self._build_added_vocab(model, args["added_token_ids"] or {})
        self._warned_too_long = False

    def _set_options(self, model_max_length, padding_side, truncation_side,
                     clean_up_tokenization_spaces, roles: dict, added_tokens: Sequence = ()):
        """Check and keep the options every tokenizer here shares; `roles` (a mapping with
        every name of SPECIAL_TOKEN_ROLES) -> self._special, the other `added_tokens`
        (AddedToken, dict or str) -> self._extra_added."""
        if isinstance(model_max_length, (str, bool)):
            raise TypeError(f"model_max_length must be an int, got {model_max_length!r:.60}")
        self.model_max_length = int(model_max_length)
        for name, side in (("Padding", padding_side), ("Truncation", truncation_side)):
            if side not in ("right", "left"):  # transformers' check and message
                raise ValueError(f"{name} side should be selected between 'right' and 'left', "
                                 f"current value: {side}")
        self.padding_side, self.truncation_side = padding_side, truncation_side
        cleanup = clean_up_tokenization_spaces  # None is "unset" (False), as in transformers
        self.clean_up_tokenization_spaces = cleanup is not None and _flag(
            "clean_up_tokenization_spaces", cleanup)
        self._special = {}  # role -> AddedToken
        for role in SPECIAL_TOKEN_ROLES:
            lstrip = self._mask_lstrip and role == "mask_token"
            token = _as_added_token(roles[role], default_lstrip=lstrip)
            if token is not None and not (isinstance(token.content, str) and token.content):
                raise ValueError(f"{role} must be a non-empty string, got {token.content!r:.60}")
            if token is not None:
                self._special[role] = token
        self._extra_added = []  # added tokens besides the roles (tokenizer.json's added_tokens)
        for n, value in enumerate(added_tokens or ()):
            token = _as_added_token(value)
            if token is None or not (isinstance(token.content, str) and token.content):
                raise ValueError(f"added_tokens[{n}] must be a non-empty string or an "
                                 f"AddedToken, got {value!r:.60}")
            self._extra_added.append(token)

    # -- special tokens ------------------------------------------------------------------

    def _build_added_vocab(self, model, fixed_ids: Dict[str, int]):
        """Give every special token an id on top of `model`'s vocab (its `encoder` / `decoder`)
        and compile the regex that finds them in text."""
        (self._added, self._added_ids, self._added_by_id, self._added_re,
         self._maybe_added) = build_added_vocab(
            list(self._special.values()) + self.__dict__.get("_extra_added", []), model,
            fixed_ids)
        # decode(skip_special_tokens=True) drops these: the roles and every special=True token
        self._skip_ids = set(self.all_special_ids) | {
            self._added_ids[t.content] for t in self._added.values() if t.special}

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

    # The two hooks a tokenizer over another model (xlm_roberta.py's unigram, fairseq.py's
    # word list) overrides; the vocabulary methods below work through them.
    def _model_vocab(self) -> Dict[str, int]:
        """{token: id} of the model under the added tokens (here the BPE vocab)."""
        return self.bpe.encoder

    def _model_token(self, index: int) -> Optional[str]:
        """The model's token of an id, or None."""
        return self.bpe.decoder.get(index)

    @property
    def vocab_size(self) -> int:
        """Size of the BPE vocab (without special tokens that were added on top of it)."""
        return len(self._model_vocab())

    def __len__(self) -> int:
        return len(self.get_vocab())

    def get_vocab(self) -> Dict[str, int]:
        """{token string: id} for the whole vocabulary, special tokens included.

        >>> vocab = RobertaTokenizer(*_tiny()).get_vocab()
        >>> vocab["<mask>"], vocab["ab"], len(vocab)  # 5 specials + 256 byte symbols + "ab"
        (4, 261, 262)
        """
        return {**self._model_vocab(), **self._added_ids}

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
        return self._model_vocab().get(token, self.unk_token_id)

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
        return self._model_token(index)

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
        """[(piece, start, added token or None)]: special tokens matched whole, text between."""
        return split_on_added_tokens(text, self._added_re, self._added)

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
        """Append one text's tokens to `seq` with raw spans and word indices (offsets.py)."""
        pieces = self._split_on_added_tokens(text) if self._has_added_token(text) \
            else ([(text, 0, None)] if text else [])
        text_details(pieces, seq, self.bpe, self._added_ids, self.add_prefix_space, word)

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
        skip = self._skip_ids if skip_special_tokens else ()
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
        tokenizer_config.json / special_tokens_map.json when present (a fairseq folder's
        dict.txt goes to fairseq.load_tokenizer). kwargs override them;
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
        from . import fairseq
        if cls is RobertaTokenizer and fairseq.is_fairseq_tokenizer_folder(path_or_repo_id):
            return fairseq.load_tokenizer(path_or_repo_id, **kwargs)  # dict.txt (+ GPT-2 files)
        vocab, merges, fixed_ids, options = load_files(path_or_repo_id, **kwargs)
        return cls(vocab, merges, added_token_ids=fixed_ids, **options)

    def save_pretrained(self, save_directory) -> Tuple[str, ...]:
        """Write vocab.json, merges.txt, tokenizer.json, tokenizer_config.json and
        special_tokens_map.json; the folder loads here and in transformers alike."""
        return save_files(self, save_directory)

    def save_vocabulary(self, save_directory, filename_prefix: Optional[str] = None
                        ) -> Tuple[str, str]:
        """Write vocab.json and merges.txt (as `{prefix}-vocab.json` with a prefix) into the
        existing folder `save_directory`; return their paths, as transformers 4.x does.

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     paths = RobertaTokenizer(*_tiny()).save_vocabulary(folder, "tiny")
        ...     [os.path.basename(p) for p in paths], open(paths[1]).read()
        (['tiny-vocab.json', 'tiny-merges.txt'], '#version: 0.2\\na b\\n')
        """
        return save_vocabulary(self, save_directory, filename_prefix)

    def __repr__(self):
        return (f"RobertaTokenizer(vocab_size={self.vocab_size}, model_max_length="
                f"{self.model_max_length}, add_prefix_space={self.add_prefix_space}, "
                f"padding_side={self.padding_side!r}, truncation_side={self.truncation_side!r})")


# --- small helpers -------------------------------------------------------------------------

def _flag(name: str, value) -> bool:
    """An option that must be a bool (NumPy's too): "false" would otherwise be read as True.

    >>> _flag("add_prefix_space", "false")
    Traceback (most recent call last):
    ...
    TypeError: add_prefix_space must be True or False, got 'false'
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r:.60}")


def _to_list(ids):
    """NumPy arrays / scalars -> plain Python ints and lists."""
    if hasattr(ids, "tolist"):
        return ids.tolist()
    if isinstance(ids, (list, tuple)):
        return [_to_list(i) for i in ids]
    return ids


def _tiny():
    """A toy vocab + merges for the examples: 256 byte symbols, 'ab', and the added_tokens."""
    symbols = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + sorted(_bpe.BYTE_ENCODER.values())
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab["ab"] = len(vocab)
    return vocab, [("a", "b")]
