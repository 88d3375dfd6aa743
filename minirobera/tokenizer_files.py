"""The tokenizer's files: what from_pretrained reads and save_pretrained writes.

Owns:
  * finding the files in a folder or hub repo (through hub.cached_file): vocab.json +
    merges.txt, or tokenizer.json alone, plus tokenizer_config.json / special_tokens_map.json;
  * the options read from them (special tokens with their flags, add_prefix_space,
    trim_offsets, model_max_length, sides), and the ids tokenizer.json fixes for added tokens;
  * writing all five files so the folder loads here and in transformers alike.

Leaves out: parsing vocab.json / merges.txt and the BPE model in tokenizer.json (bpe.py),
downloading and caching (hub.py), and building the tokenizer from the options
(RobertaTokenizer.from_pretrained, which calls load_files). The functions that write take the
tokenizer as an argument; this module never imports tokenizer.py.

>>> from minirobera.tokenizer import RobertaTokenizer, _tiny
>>> spec = tokenizer_json(RobertaTokenizer(*_tiny()))
>>> spec["post_processor"]["cls"], [t["content"] for t in spec["added_tokens"]]
(['<s>', 0], ['<s>', '<pad>', '</s>', '<unk>', '<mask>'])
"""

import json
import os
from typing import Dict, Tuple

from . import bpe as _bpe
from .batching import VERY_LARGE_INTEGER
from .added_tokens import SPECIAL_TOKEN_ROLES, AddedToken, _as_added_token


def read_files(path_or_repo_id, names, kwargs) -> Tuple[Dict[str, str], dict, Dict[str, int]]:
    """Find `names` (model files, tokenizer.json among them) in a folder or hub repo; return
    ({name: path or None}, options, the ids tokenizer.json fixes for added tokens).

    The options come from tokenizer.json, then special_tokens_map.json and
    tokenizer_config.json, then `kwargs`, each overriding the one before; `revision`, `token`
    and `local_files_only` are taken out of kwargs for the hub (minirobera.hub.cached_file).
    """
    from .hub import cached_file
    hub_args = {k: kwargs.pop(k) for k in ("revision", "token", "local_files_only") if k in kwargs}

    def find(name):
        return cached_file(path_or_repo_id, name, required=False, **hub_args)

    paths = {name: find(name) for name in names}
    tokenizer_file = paths.get("tokenizer.json")
    options, fixed_ids = _options_from_tokenizer_json(tokenizer_file) if tokenizer_file else ({}, {})
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = find(name)
        if path:
            options.update(_read_config(path, options))
    options.update(kwargs)
    return paths, options, fixed_ids


def load_files(path_or_repo_id, **kwargs) -> Tuple[dict, list, Dict[str, int], dict]:
    """(vocab, merges, added_token_ids, options) for RobertaTokenizer from a folder or hub repo.

    kwargs override the options read from the files; `revision`, `token` and
    `local_files_only` go to the hub (minirobera.hub.cached_file).
    """
    paths, options, fixed_ids = read_files(path_or_repo_id,
                                           ("vocab.json", "merges.txt", "tokenizer.json"), kwargs)
    vocab_file, merges_file, tokenizer_file = paths.values()
    if vocab_file and merges_file:
        vocab, merges = _bpe.load_vocab(vocab_file), _bpe.read_merges_txt(merges_file)
    elif tokenizer_file:
        vocab, merges = _bpe.model_from_tokenizer_json(tokenizer_file)
    else:
        missing = "vocab.json" if not vocab_file else "merges.txt"
        raise FileNotFoundError(f"{missing!r} not found in {os.fspath(path_or_repo_id)!r} (and no "
                                f"tokenizer.json either); a RoBERTa tokenizer needs vocab.json "
                                f"and merges.txt")
    return vocab, merges, fixed_ids, options


def save_files(tok, save_directory) -> Tuple[str, ...]:
    """Write vocab.json, merges.txt, tokenizer.json, tokenizer_config.json and
    special_tokens_map.json for the tokenizer `tok`; return their paths."""
    return write_files(save_directory, {
        "vocab.json": json.dumps(tok.bpe.encoder, ensure_ascii=False),
        "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in tok.bpe.merges),
        "tokenizer.json": json.dumps(tokenizer_json(tok), ensure_ascii=False),
        "tokenizer_config.json": json.dumps(tokenizer_config(tok), indent=2,
                                            ensure_ascii=False) + "\n",
        "special_tokens_map.json": json.dumps(tok.special_tokens_map, indent=2) + "\n",
    })


def write_files(save_directory, files: Dict[str, str]) -> Tuple[str, ...]:
    """Write {file name: text} into `save_directory` (made if missing); return the paths."""
    os.makedirs(save_directory, exist_ok=True)
    paths = []
    for name, content in files.items():
        paths.append(os.path.join(os.fspath(save_directory), name))
        with open(paths[-1], "w", encoding="utf-8") as f:
            f.write(content)
    return tuple(paths)


def base_config(tok) -> dict:
    """The tokenizer_config.json entries every tokenizer here writes (its class's name too)."""
    return {"add_prefix_space": tok.add_prefix_space, "model_max_length": tok.model_max_length,
            "padding_side": tok.padding_side, "truncation_side": tok.truncation_side,
            "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
            **tok.special_tokens_map, "tokenizer_class": type(tok).__name__}


def tokenizer_config(tok) -> dict:
    """tokenizer_config.json: the options transformers reads besides the model files."""
    return {**base_config(tok), "trim_offsets": tok.trim_offsets, "errors": "replace"}


def added_tokens_json(tok) -> list:
    """tokenizer.json's `added_tokens`: every special token with its id and flags, by id."""
    added = [{"id": tok._added_ids[t.content], "content": t.content, "single_word": False,
              "lstrip": t.lstrip, "rstrip": t.rstrip, "normalized": t.normalized,
              "special": True} for t in tok._added.values()]
    return sorted(added, key=lambda t: t["id"])


def tokenizer_json(tok) -> dict:
    """The tokenizers-library JSON for this tokenizer (what transformers loads first)."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": tok.add_prefix_space,
                  "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added_tokens_json(tok), "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {"type": "RobertaProcessing", "sep": [tok.sep_token, tok.sep_token_id],
                           "cls": [tok.cls_token, tok.cls_token_id],
                           "trim_offsets": tok.trim_offsets,
                           "add_prefix_space": tok.add_prefix_space},
        "decoder": {**byte_level, "add_prefix_space": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": False,
                  "byte_fallback": False, "ignore_merges": False, "vocab": tok.bpe.encoder,
                  "merges": [list(m) for m in tok.bpe.merges]},
    }


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
    if pre.get("type") == "ByteLevel" and "add_prefix_space" in pre:  # (Metaspace has its own)
        options["add_prefix_space"] = pre["add_prefix_space"]
    if "trim_offsets" in post:
        options["trim_offsets"] = post["trim_offsets"]
    return options, {c: t["id"] for c, t in added.items()}

