"""XLMRobertaTokenizer and CamembertTokenizer: SentencePiece unigram under transformers' names.

Owns what sits around the unigram model for XLM-R and CamemBERT, matching the
tokenizers-backed transformers tokenizers (transformers 5) built from the same files:
  * the fairseq ids: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, SentencePiece's pieces from its
    id 3 on shifted by 1, `<mask>` last (XLM-R); CamemBERT's `<s>NOTUSED`, `<pad>`,
    `</s>NOTUSED`, `<unk>`, `<unk>NOTUSED` (score -100) before every piece but the first,
    its `<mask>` stripping the whitespace on its left;
  * text -> ids: special tokens matched whole, the rest normalized with the model's
    precompiled charsmap, split on whitespace, '▁' prepended, unigram Viterbi;
  * offsets (code points of the original text, through the normalization) and word ids;
  * decode (the Metaspace decoder), from_pretrained (`sentencepiece.bpe.model` or
    `tokenizer.json`, plus tokenizer_config.json / special_tokens_map.json);
  * `load_tokenizer`, which picks the tokenizer class from a folder's files and config.

The template (`<s> A </s></s> B </s>`), truncation, padding and BatchEncoding come from
batch_api.py / batching.py; special tokens from added_tokens.py.

Leaves out: the SentencePiece algorithms themselves (sentencepiece.py), writing a .model file
(save_pretrained writes tokenizer.json), adding tokens after construction, and SentencePiece
BPE models.

>>> tok = XLMRobertaTokenizer([("▁Hi", -1.0), ("▁", -2.0), ("!", -3.0)])
>>> enc = tok("Hi <mask>!", return_offsets_mapping=True)
>>> enc["input_ids"], enc.tokens(), enc["offset_mapping"]
([0, 4, 7, 5, 6, 2], ['<s>', '▁Hi', '<mask>', '▁', '!', '</s>'], [(0, 0), (0, 2), (3, 9), (9, 10), (9, 10), (0, 0)])
>>> tok.decode(enc["input_ids"], skip_special_tokens=True)
'Hi !'
"""

import base64
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from .added_tokens import split_on_added_tokens
from .batching import _Sequence
from .offsets import add_special
from .sentencepiece import (CharsMap, UnigramModel, metaspace_decode, metaspace_pieces, normalize,
                            read_model_proto)
from .tokenizer import RobertaTokenizer, _flag
from .batching import VERY_LARGE_INTEGER
from .tokenizer_files import (added_tokens_json, base_config, check_type, file_error, read_files,
                              read_json, read_tokenizer_json, write_files)

SPM_FILE = "sentencepiece.bpe.model"


class XLMRobertaTokenizer(RobertaTokenizer):
    """XLM-R's tokenizer: SentencePiece unigram + special tokens + templates, transformers-style.

    Build it with `from_pretrained(folder_or_repo_id)`, or from the SentencePiece pieces
    [(piece, score)] in SentencePiece's order from its id 3 on (the fairseq ids are made here).
    """

    vocab_files_names = {"vocab_file": SPM_FILE}
    model_input_names = ["input_ids", "attention_mask"]
    trim_offsets = False  # the template does not move spans (no RobertaProcessing here)

    def __init__(self, pieces: Sequence[Tuple[str, float]] = (), *, precompiled_charsmap=b"",
                 vocab: Optional[Sequence[Tuple[str, float]]] = None, unk_id: int = 3,
                 bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                 unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                 add_prefix_space: bool = True, model_max_length: int = 512,
                 padding_side: str = "right", truncation_side: str = "right",
                 clean_up_tokenization_spaces: bool = False,
                 added_token_ids: Optional[Dict[str, int]] = None, added_tokens: Sequence = ()):
        if vocab is None:
            vocab = self.fairseq_vocab(pieces, pad_token, unk_token, mask_token,
                                       bos=str(bos_token), eos=str(eos_token))
        self.model = UnigramModel(vocab, unk_id)
        self.charsmap = precompiled_charsmap if isinstance(precompiled_charsmap, CharsMap) \
            else CharsMap(precompiled_charsmap)
        self.add_prefix_space = _flag("add_prefix_space", add_prefix_space)
        self._init_shared(self.model, locals())

    _mask_lstrip = False  # transformers 5 builds XLM-R's <mask> without lstrip from the .model

    @staticmethod
    def fairseq_vocab(pieces, pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
                      bos="<s>", eos="</s>") -> List[Tuple[str, float]]:
        """The id-ordered vocab: XLM-R's four fairseq specials, the pieces, `<mask>` last.

        >>> XLMRobertaTokenizer.fairseq_vocab([("▁a", -1.0)])
        [('<s>', 0.0), ('<pad>', 0.0), ('</s>', 0.0), ('<unk>', 0.0), ('▁a', -1.0), ('<mask>', 0.0)]
        """
        return ([(bos, 0.0), (str(pad_token), 0.0), (eos, 0.0), (str(unk_token), 0.0)]
                + [(p, float(s)) for p, s in pieces] + [(str(mask_token), 0.0)])

    @property
    def vocab_size(self) -> int:
        """Size of the unigram vocabulary (the fairseq specials and `<mask>` included)."""
        return len(self.model.vocab)

    def _model_vocab(self) -> Dict[str, int]:
        """{piece: id} of the unigram model (the fairseq specials and `<mask>` included).

        >>> XLMRobertaTokenizer([("▁a", -1.0)]).get_vocab()["▁a"]
        4
        """
        return self.model.token_to_id

    def _model_token(self, index: int) -> Optional[str]:
        return self.model.vocab[index][0] if 0 <= index < len(self.model.vocab) else None

    # -- text -> ids ---------------------------------------------------------------------------

    def _pieces(self, text: str):
        if self._maybe_added(text) is None:
            return [(text, 0, None)] if text else []
        return split_on_added_tokens(text, self._added_re, self._added)

    def _fast_rows(self, pairs, plan, special_mask):
        return None  # no shortcut: every text goes through _encode_sequence

    def _text_ids(self, text: str) -> List[int]:
        """Ids of one text, special tokens in it matched whole."""
        seq = _Sequence([], [], [], [])
        self._text_details(text, seq)
        return seq.ids

    def _text_details(self, text: str, seq: _Sequence, word: Optional[int] = None):
        """Append one text's tokens to `seq`, with spans in `text` and word indices.

        Every special token and every piece the pre-tokenizer makes is a word (unless
        `word` fixes the index, for pre-split input).
        """
        next_word = (seq.words[-1] + 1) if (word is None and seq.words) else 0
        for piece, start, token in self._pieces(text):
            if token is not None:
                add_special(seq, self._added_ids[token.content], piece, start,
                            next_word if word is None else word)
                next_word += 1
                continue
            normalized, spans = normalize(self.charsmap, piece)
            for pre, pre_spans in metaspace_pieces(normalized, spans, self.add_prefix_space):
                for i, s, e in self.model.encode_word(pre):
                    seq.ids.append(i)
                    seq.tokens.append(pre[s:e])
                    seq.spans.append((start + pre_spans[s][0], start + pre_spans[e - 1][1]))
                    seq.words.append(next_word if word is None else word)
                next_word += 1

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Token strings -> text: '▁' is a space, except in the first token (dropped there).

        >>> XLMRobertaTokenizer().convert_tokens_to_string(["▁Hello", "▁wor", "ld"])
        'Hello world'
        """
        return metaspace_decode(tokens, self.add_prefix_space)

    # -- files -------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_repo_id, **kwargs) -> "XLMRobertaTokenizer":
        """Load from a folder or hub repo: tokenizer.json, else sentencepiece.bpe.model, plus
        tokenizer_config.json / special_tokens_map.json; kwargs override what they say.

        >>> XLMRobertaTokenizer.from_pretrained("FacebookAI/xlm-roberta-base")("Hello")["input_ids"]
        ... # doctest: +SKIP
        [0, 35378, 2]
        """
        return cls(**_load_options(cls, path_or_repo_id, kwargs))

    @classmethod
    def _vocab_from_model(cls, pieces, options) -> List[Tuple[str, float]]:
        """XLMRobertaConverter.vocab: SentencePiece's <unk>, <s>, </s> give way to the fairseq four."""
        return cls.fairseq_vocab([(p, s) for p, s, _ in pieces[3:]], options.get("pad_token", "<pad>"),
                                 options.get("unk_token", "<unk>"), options.get("mask_token", "<mask>"))

    def explain(self, text: str) -> dict:
        """Every step from text to ids: special-token split, the charsmap normalization, the
        pre-tokens with '▁', each one's best segmentation (its pieces and their scores), the
        template. The same layout as RobertaTokenizer.explain.

        >>> steps = XLMRobertaTokenizer([("▁Hi", -1.0), ("▁", -2.0), ("!", -3.0)]).explain("Hi!")
        >>> steps["pieces"][0]["words"]
        [{'pre_token': '▁Hi!', 'pieces': [('▁Hi', -1.0), ('!', -3.0)], 'ids': [4, 6]}]
        >>> steps["input_ids"]
        [0, 4, 6, 2]
        """
        self._check_text(text)
        out = []
        for piece, start, token in self._pieces(text):
            if token is not None:
                out.append({"kind": "special", "text": piece, "start": start,
                            "lstrip": token.lstrip, "id": self._added_ids[token.content]})
                continue
            normalized, spans = normalize(self.charsmap, piece)
            words = [{"pre_token": pre, "pieces": [(pre[s:e], self.model.vocab[i][1])
                                                   for i, s, e in self.model.encode_word(pre)],
                      "ids": [i for i, _, _ in self.model.encode_word(pre)]}
                     for pre, _ in metaspace_pieces(normalized, spans, self.add_prefix_space)]
            out.append({"kind": "text", "text": piece, "start": start, "normalized": normalized,
                        "words": words, "ids": [i for w in words for i in w["ids"]]})
        ids = [i for p in out for i in ([p["id"]] if p["kind"] == "special" else p["ids"])]
        return {"text": text, "pieces": out, "ids": ids,
                "input_ids": self.build_inputs_with_special_tokens(ids)}

    def save_pretrained(self, save_directory) -> Tuple[str, ...]:
        """Write tokenizer.json (what transformers' converter makes of the .model file) and
        tokenizer_config.json; the folder loads here and in transformers alike.

        >>> import tempfile
        >>> tok = XLMRobertaTokenizer([("▁Hi", -1.0), ("!", -3.0)])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = tok.save_pretrained(folder)
        ...     XLMRobertaTokenizer.from_pretrained(folder)("Hi!")["input_ids"]
        [0, 4, 5, 2]
        """
        # extra_special_tokens as transformers writes it; without the key its
        # CamembertTokenizer would add <s>NOTUSED, </s>NOTUSED and <unk>NOTUSED as specials
        config = {**base_config(self), "extra_special_tokens": [self.cls_token, self.sep_token]}
        return write_files(save_directory, {
            "tokenizer.json": json.dumps(unigram_tokenizer_json(self), ensure_ascii=False),
            "tokenizer_config.json": json.dumps(config, indent=2, ensure_ascii=False) + "\n"})

    def save_vocabulary(self, save_directory, filename_prefix=None):
        """Not available: transformers writes a copy of sentencepiece.bpe.model here, and this
        package has no .model writer; save_pretrained writes the same vocab as tokenizer.json."""
        raise NotImplementedError(f"{type(self).__name__}.save_vocabulary would write "
                                  f"sentencepiece.bpe.model, which minirobera cannot write; use "
                                  f"save_pretrained (it writes tokenizer.json)")

    def __repr__(self):
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, model_max_length="
                f"{self.model_max_length}, add_prefix_space={self.add_prefix_space}, "
                f"padding_side={self.padding_side!r}, truncation_side={self.truncation_side!r})")


class CamembertTokenizer(XLMRobertaTokenizer):
    """CamemBERT's tokenizer: XLM-R's, with CamemBERT's vocab layout and an lstrip `<mask>`.

    Its `pieces` are SentencePiece's from id 1 on, so `<s>` and `</s>` get the pieces' ids:

    >>> tok = CamembertTokenizer([("<s>", 0.0), ("</s>", 0.0), ("▁Hi", -1.0)])
    >>> tok("Hi <mask>")["input_ids"], tok.convert_ids_to_tokens([0, 4, 5])
    ([5, 7, 8, 6], ['<s>NOTUSED', '<unk>NOTUSED', '<s>'])
    """

    _mask_lstrip = True  # as transformers' CamembertTokenizer builds it

    @staticmethod
    def fairseq_vocab(pieces, pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
                      bos="<s>NOTUSED", eos="</s>NOTUSED") -> List[Tuple[str, float]]:
        """CamembertConverter.vocab: five fairseq entries ("<unk>NOTUSED" at -100, so never
        chosen), the pieces, `<mask>` last. (The `<s>`/`</s>` ids are the pieces' own, if any.)

        >>> [p for p, _ in CamembertTokenizer.fairseq_vocab([("▁a", -1.0)])]
        ['<s>NOTUSED', '<pad>', '</s>NOTUSED', '<unk>', '<unk>NOTUSED', '▁a', '<mask>']
        """
        return ([("<s>NOTUSED", 0.0), (str(pad_token), 0.0), ("</s>NOTUSED", 0.0),
                 (str(unk_token), 0.0), ("<unk>NOTUSED", -100.0)]
                + [(p, float(s)) for p, s in pieces] + [(str(mask_token), 0.0)])

    @classmethod
    def _vocab_from_model(cls, pieces, options) -> List[Tuple[str, float]]:
        return cls.fairseq_vocab([(p, s) for p, s, _ in pieces[1:]], options.get("pad_token", "<pad>"),
                                 options.get("unk_token", "<unk>"), options.get("mask_token", "<mask>"))


# --- files -------------------------------------------------------------------------------------

def unigram_tokenizer_json(tok) -> dict:
    """The tokenizers-library JSON of an XLM-R / CamemBERT tokenizer, as transformers'
    converter writes it: Precompiled normalizer, WhitespaceSplit + Metaspace, the
    `<s> A </s></s> B </s>` template, the Unigram vocab with its scores."""
    metaspace = {"type": "Metaspace", "replacement": "\u2581",
                 "prepend_scheme": "always" if tok.add_prefix_space else "never", "split": True}
    bos, eos = tok.cls_token, tok.sep_token
    a, b = ({"Sequence": {"id": name, "type_id": 0}} for name in "AB")
    s, e = ({"SpecialToken": {"id": token, "type_id": 0}} for token in (bos, eos))
    blob = tok.charsmap.blob
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added_tokens_json(tok),
        "normalizer": {"type": "Precompiled",
                       "precompiled_charsmap": base64.b64encode(blob).decode()} if blob else None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                                                                 metaspace]},
        "post_processor": {"type": "TemplateProcessing", "single": [s, a, e],
                           "pair": [s, a, e, e, b, e],
                           "special_tokens": {token: {"id": token, "ids": [tok._token_to_id(token)],
                                                      "tokens": [token]}
                                              for token in sorted({bos, eos})}},
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": tok.model.unk_id,
                  "vocab": [[piece, score] for piece, score in tok.model.vocab],
                  "byte_fallback": False},
    }


def _load_options(cls, path_or_repo_id, kwargs) -> dict:
    """The constructor arguments of `cls` from a folder or hub repo's tokenizer files.

    No model_max_length in any file or kwarg leaves it unset (int(1e30), "no limit"), as
    transformers 5 does for both routes: a bare sentencepiece.bpe.model has no limit.
    """
    paths, options, fixed_ids = read_files(path_or_repo_id, ("tokenizer.json", SPM_FILE), kwargs)
    tokenizer_file, spm_file = paths.values()
    if tokenizer_file:
        spec = read_tokenizer_json(tokenizer_file)
        options["vocab"], options["unk_id"] = _unigram_model(spec.get("model") or {}, cls,
                                                             tokenizer_file)
        options["precompiled_charsmap"] = CharsMap.from_base64(
            _precompiled(spec.get("normalizer"), tokenizer_file),
            source=f"{tokenizer_file}: normalizer.precompiled_charsmap")
        options["added_token_ids"] = fixed_ids
    elif spm_file:
        proto = read_model_proto(spm_file)
        if proto.model_type != 1:
            raise file_error(spm_file, "trainer_spec.model_type", f"is {proto.model_type}; only "
                             f"unigram SentencePiece models (type 1) are supported")
        options["vocab"] = cls._vocab_from_model(proto.pieces, options)
        options["precompiled_charsmap"] = proto.precompiled_charsmap
    else:
        raise FileNotFoundError(f"neither tokenizer.json nor {SPM_FILE} found in "
                                f"{os.fspath(path_or_repo_id)!r}")
    options.setdefault("model_max_length", VERY_LARGE_INTEGER)
    return options


def _unigram_model(model: dict, cls, path) -> Tuple[List[Tuple[str, float]], Optional[int]]:
    """(vocab, unk_id) of tokenizer.json's Unigram model, checked: the vocab a list of
    [piece, score] pairs (a string and a number that is not NaN), unk_id null or an index of it."""
    if model.get("type") != "Unigram":
        raise file_error(path, "model", f"holds a {model.get('type')!r:.40} model; {cls.__name__} "
                                        f"needs a Unigram one")
    vocab = check_type(model.get("vocab"), list, path, "model.vocab")
    for n, entry in enumerate(vocab):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], (int, float)) and not isinstance(entry[1], bool)
                and entry[1] == entry[1]):
            raise file_error(path, f"model.vocab[{n}]", f"must be a [piece, score] pair, "
                                                        f"got {entry!r:.60}")
    unk_id = model.get("unk_id")
    if unk_id is not None and (isinstance(unk_id, bool) or not isinstance(unk_id, int)
                               or not 0 <= unk_id < len(vocab)):
        raise file_error(path, "model.unk_id", f"must be null or an index into the "
                                               f"{len(vocab)} pieces, got {unk_id!r:.40}")
    return [(p, float(s)) for p, s in vocab], unk_id


def _precompiled(normalizer, path, field: str = "normalizer") -> Optional[str]:
    """The base64 charsmap of a tokenizer.json normalizer (Precompiled, maybe in a Sequence)."""
    if not normalizer:
        return None
    check_type(normalizer, dict, path, field)
    if normalizer.get("type") == "Precompiled":
        return normalizer.get("precompiled_charsmap")
    if normalizer.get("type") == "Sequence":
        inner = check_type(normalizer.get("normalizers", []), list, path, f"{field}.normalizers")
        for n, each in enumerate(inner):
            found = _precompiled(each, path, f"{field}.normalizers[{n}]")
            if found:
                return found
        return None
    raise file_error(path, field, f"is of type {normalizer.get('type')!r:.40}, which is not "
                                  f"supported; only Precompiled is implemented")


TOKENIZER_CLASSES = {"xlm-roberta": XLMRobertaTokenizer, "camembert": CamembertTokenizer,
                     "XLMRobertaTokenizer": XLMRobertaTokenizer,
                     "XLMRobertaTokenizerFast": XLMRobertaTokenizer,
                     "CamembertTokenizer": CamembertTokenizer,
                     "CamembertTokenizerFast": CamembertTokenizer}


def tokenizer_class_for(path_or_repo_id, **hub_args):
    """The tokenizer class a folder or repo wants: tokenizer_config.json's tokenizer_class,
    else config.json's model_type, else XLM-R's if it has sentencepiece.bpe.model, else
    RobertaTokenizer."""
    from .hub import cached_file
    for name, key in (("tokenizer_config.json", "tokenizer_class"), ("config.json", "model_type")):
        path = cached_file(path_or_repo_id, name, required=False, **hub_args)
        if path:
            value = read_json(path).get(key)
            if not isinstance(value, str):
                continue
            if value in TOKENIZER_CLASSES:
                return TOKENIZER_CLASSES[value]
            if value in ("roberta", "RobertaTokenizer", "RobertaTokenizerFast"):
                return RobertaTokenizer
    if cached_file(path_or_repo_id, SPM_FILE, required=False, **hub_args):
        return XLMRobertaTokenizer
    return RobertaTokenizer


def load_tokenizer(path_or_repo_id, **kwargs):
    """from_pretrained of the class tokenizer_class_for picks.

    >>> load_tokenizer("FacebookAI/xlm-roberta-base")  # doctest: +SKIP
    XLMRobertaTokenizer(vocab_size=250002, model_max_length=512, ...)
    """
    from . import fairseq
    if fairseq.is_fairseq_tokenizer_folder(path_or_repo_id):  # dict.txt, or its tokenizer.json
        return fairseq.load_tokenizer(path_or_repo_id, **kwargs)
    hub_args = {k: kwargs[k] for k in ("revision", "token", "local_files_only") if k in kwargs}
    return tokenizer_class_for(path_or_repo_id, **hub_args).from_pretrained(path_or_repo_id, **kwargs)


