"""The tokenizer's files: what from_pretrained reads and save_pretrained writes.

Owns:
  * finding the files in a folder or hub repo (through hub.cached_file): vocab.json +
    merges.txt, or tokenizer.json alone, plus tokenizer_config.json / special_tokens_map.json;
  * the options read from them (special tokens with their flags, add_prefix_space,
    trim_offsets, model_max_length, sides), the ids tokenizer.json fixes for added tokens,
    and every other added token it lists (with its flags), which is matched in text too;
  * writing all five files so the folder loads here and in transformers alike.

Every file is untrusted input: a malformed field is a TokenizerFileError (a ValueError) that
names the file and the field, never a TypeError / KeyError from deep inside, and never a value
silently read as something else (`"add_prefix_space": "false"` is refused, not taken as True).

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
import math
import os
from contextlib import contextmanager
from typing import Dict, Tuple

from . import bpe as _bpe
from .batching import VERY_LARGE_INTEGER
from .added_tokens import SPECIAL_TOKEN_ROLES, AddedToken, _as_added_token


MAX_ID = 2 ** 31 - 1  # ids are int32 for the model (and u32 in the reference): larger is refused
# At most this many added tokens in one file: every one joins the regex that scans each text
# (compiling it costs ~16 us a token), so a file of millions is refused before it is built.
# RoBERTa and XLM-R ship 5; a tokenizer with tens of thousands of added tokens still loads.
MAX_ADDED_TOKENS = 100_000
BOOL_OPTIONS = ("add_prefix_space", "trim_offsets", "clean_up_tokenization_spaces")
SIDE_OPTIONS = ("padding_side", "truncation_side")


class TokenizerFileError(ValueError):
    """A tokenizer file (vocab.json, merges.txt, tokenizer.json, tokenizer_config.json,
    special_tokens_map.json, sentencepiece.bpe.model) is malformed. The message names the
    file and the field.

    >>> check_bool(True, "tokenizer_config.json", "add_prefix_space")
    True
    >>> check_bool("false", "tokenizer_config.json", "add_prefix_space")
    Traceback (most recent call last):
    ...
    minirobera.tokenizer_files.TokenizerFileError: tokenizer_config.json: add_prefix_space must be true or false (a JSON boolean), got 'false'
    """


def file_error(path, field: str, problem: str) -> TokenizerFileError:
    """The error for one bad `field` of the file at `path`: "<path>: <field> <problem>"."""
    return TokenizerFileError(f"{os.fspath(path)}: {field} {problem}")


@contextmanager
def reading(path):
    """Turn what a parser raises on a malformed file (bad UTF-8, bad JSON, a ValueError of
    bpe.py's readers) into a TokenizerFileError that names the file."""
    try:
        yield
    except TokenizerFileError:
        raise
    except (UnicodeDecodeError, RecursionError, ValueError, TypeError) as e:
        what = ("is not valid UTF-8" if isinstance(e, UnicodeDecodeError)
                else "nests too deeply" if isinstance(e, RecursionError) else "")
        message = str(e) if not what else f"{what} ({e})"
        name = os.fspath(path)
        raise TokenizerFileError(message if message.startswith(name) else f"{name}: {message}") \
            from e


def read_json(path, what: type = dict):
    """The JSON value in the file at `path`, which must be a `what` (a JSON object by default).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "tokenizer.json")
    ...     _ = open(path, "w").write("[1, 2]")
    ...     read_json(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    minirobera.tokenizer_files.TokenizerFileError: .../tokenizer.json: the file must be a JSON object, got a list
    """
    with reading(path), open(path, "rb") as f:
        value = json.loads(f.read().decode("utf-8"))
    check_type(value, what, path, "the file")
    return value


_JSON_NAMES = {dict: "a JSON object", list: "a JSON list", str: "a string", int: "an integer",
               bool: "true or false (a JSON boolean)", float: "a number"}


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def check_type(value, what: type, path, field: str):
    """`value` if it is a `what` (bool is not an int here), else a TokenizerFileError."""
    if not isinstance(value, what) or (what is int and isinstance(value, bool)):
        raise file_error(path, field, f"must be {_JSON_NAMES.get(what, what.__name__)}, "
                                      f"got {_json_type(value)}")
    return value


def check_bool(value, path, field: str) -> bool:
    """A JSON boolean, as the reference wants it: "false", 0 or null are refused (transformers 5
    raises a TypeError on them; reading "false" as True would give other ids)."""
    if not isinstance(value, bool):
        raise file_error(path, field, f"must be true or false (a JSON boolean), got {value!r:.60}")
    return value


def check_id(value, path, field: str) -> int:
    """A token id: an integer in 0 .. 2**31 - 1 (not a float, string, null or bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise file_error(path, field, f"must be a token id (an integer from 0 to {MAX_ID}), "
                                      f"got {value!r:.60}")
    return value


def check_vocab(vocab, path, field: str = "the vocab") -> Dict[str, int]:
    """{token: id} with valid, distinct ids (two tokens on one id would decode ambiguously).

    >>> check_vocab({"a": 0, "b": 0}, "vocab.json")
    Traceback (most recent call last):
    ...
    minirobera.tokenizer_files.TokenizerFileError: vocab.json: the vocab gives id 0 to both 'a' and 'b'
    """
    check_type(vocab, dict, path, field)
    seen: Dict[int, str] = {}
    for token, i in vocab.items():
        check_id(i, path, f"{field} entry {token!r:.60}:")
        if i in seen:
            raise file_error(path, field, f"gives id {i} to both {seen[i]!r:.60} and {token!r:.60}")
        seen[i] = token
    return vocab


def check_merges(merges, vocab: Dict[str, int], path):
    """Every merge makes a token of the vocab (the reference refuses such files too)."""
    for n, (a, b) in enumerate(merges, 1):
        if a + b not in vocab:
            raise file_error(path, f"merge {n} ({a!r:.30} + {b!r:.30})",
                             f"makes {a + b!r:.60}, which is not in the vocab")
    return merges


def _model_max_length(value, path) -> int:
    """A positive integer; an integral float (1e+30) is taken, as transformers takes it."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise file_error(path, "model_max_length", f"must be a positive integer, got {value!r:.60}")
    return min(value, VERY_LARGE_INTEGER)


def _special_token(value, path, field: str):
    """A special token from a file: a non-empty string, or an object with a non-empty
    string `content` and boolean flags (as transformers 4 saved them)."""
    if isinstance(value, dict):
        content = value.get("content")
        check_type(content, str, path, f"{field}.content")
        for flag in ("lstrip", "rstrip", "normalized", "single_word", "special"):
            if flag in value:
                check_bool(value[flag], path, f"{field}.{flag}")
    elif isinstance(value, str):
        content = value
    else:
        raise file_error(path, field, f"must be a string or an object with a content, "
                                      f"got {_json_type(value)}")
    if not content:
        raise file_error(path, field, "is an empty string; a special token needs content")
    return value


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
    extra = []  # (AddedToken, id) from tokenizer_config.json / added_tokens.json
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = find(name)
        if path:
            options.update(_read_config(path, options))
            if name == "tokenizer_config.json":
                extra += _added_tokens_decoder(read_json(path), path)
    path = find("added_tokens.json")
    if path:
        extra += _added_tokens_file(read_json(path), path)
    _merge_added_tokens(options, extra)
    options.update(kwargs)
    return paths, options, fixed_ids


def _check_added_count(tokens, path, field: str):
    if len(tokens) > MAX_ADDED_TOKENS:
        raise file_error(path, field, f"holds {len(tokens):,} added tokens, more than the "
                                      f"{MAX_ADDED_TOKENS:,} this package accepts")


def _added_tokens_decoder(config: dict, path) -> list:
    """[(AddedToken, id)] of tokenizer_config.json's `added_tokens_decoder` ({"id": {content,
    flags}}, as transformers 4.x saves it), each entry checked."""
    decoder = config.get("added_tokens_decoder")
    if decoder is None:
        return []
    check_type(decoder, dict, path, "added_tokens_decoder")
    _check_added_count(decoder, path, "added_tokens_decoder")
    out = []
    for key, entry in decoder.items():
        field = f"added_tokens_decoder[{key!r:.30}]"
        if not (key.isascii() and key.isdigit() and len(key) <= 10):
            raise file_error(path, field, "must be keyed by a token id (a decimal string)")
        check_id(int(key), path, field)
        check_type(entry, dict, path, field)
        _special_token(entry, path, field)
        out.append((_as_added_token(entry), int(key)))
    return out


def _added_tokens_file(tokens: dict, path) -> list:
    """[(AddedToken, id)] of added_tokens.json ({content: id}): tokens added without flags,
    so not special, matched anywhere (as transformers reads them)."""
    _check_added_count(tokens, path, "the file")
    out = []
    for content, i in tokens.items():
        field = f"entry {content!r:.60}"
        if not content:
            raise file_error(path, field, "is an empty string; an added token needs content")
        check_id(i, path, field)
        out.append((AddedToken(content, special=False), i))
    return out


def _merge_added_tokens(options: dict, extra: list):
    """Add the (token, id) pairs of the config files to what tokenizer.json gave (which wins
    where both name a token): a role given as a bare string takes the token's flags (the
    `<mask>` lstrip), every other token joins options["added_tokens"].

    Quirk (transformers 5's): the ids these files give only order the tokens; each gets the
    next free id after the vocab, as if added with add_tokens, so a file cannot put a token
    on an id of its choosing."""
    roles = {str(options.get(role)): role for role in SPECIAL_TOKEN_ROLES if role in options}
    listed = {t.content for t in options.get("added_tokens", [])}
    added = list(options.get("added_tokens", []))
    for token, _ in sorted(extra, key=lambda pair: pair[1]):
        if token.content in roles:
            role = roles[token.content]
            if isinstance(options[role], str):
                options[role] = token
        elif token.content not in listed and token.content not in _DEFAULT_ROLE_NAMES:
            listed.add(token.content)
            added.append(token)
    if added:
        options["added_tokens"] = added


def load_files(path_or_repo_id, **kwargs) -> Tuple[dict, list, Dict[str, int], dict]:
    """(vocab, merges, added_token_ids, options) for RobertaTokenizer from a folder or hub repo.

    kwargs override the options read from the files; `revision`, `token` and
    `local_files_only` go to the hub (minirobera.hub.cached_file).
    """
    paths, options, fixed_ids = read_files(path_or_repo_id,
                                           ("vocab.json", "merges.txt", "tokenizer.json"), kwargs)
    vocab_file, merges_file, tokenizer_file = paths.values()
    if vocab_file and merges_file:
        with reading(vocab_file):
            vocab = check_vocab(_bpe.load_vocab(vocab_file), vocab_file)
        with reading(merges_file):
            merges = check_merges(_bpe.read_merges_txt(merges_file), vocab, merges_file)
    elif tokenizer_file:
        vocab, merges = _bpe_model(tokenizer_file)
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


def save_vocabulary(tok, save_directory, filename_prefix=None) -> Tuple[str, str]:
    """vocab.json (sorted keys, indented) and merges.txt as transformers 4.x's
    RobertaTokenizer.save_vocabulary writes them, into an existing folder."""
    if not os.path.isdir(save_directory):
        raise NotADirectoryError(f"save_vocabulary writes into an existing folder; "
                                 f"{os.fspath(save_directory)!r} is not one")
    prefix = f"{filename_prefix}-" if filename_prefix else ""
    return write_files(save_directory, {
        f"{prefix}vocab.json": json.dumps(tok.bpe.encoder, indent=2, sort_keys=True,
                                          ensure_ascii=False) + "\n",
        f"{prefix}merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in tok.bpe.merges),
    })


def write_files(save_directory, files: Dict[str, str]) -> Tuple[str, ...]:
    """Write {file name: text} into `save_directory` (made if missing); return the paths.

    Each file is written to a temporary name beside it and renamed into place, so a
    failure (a full disk) never leaves a half-written file under the real name.
    """
    os.makedirs(save_directory, exist_ok=True)
    paths = []
    for name, content in files.items():
        paths.append(os.path.join(os.fspath(save_directory), name))
        partial = paths[-1] + ".partial"
        try:
            with open(partial, "w", encoding="utf-8") as f:
                f.write(content)
            os.replace(partial, paths[-1])
        finally:
            if os.path.exists(partial):
                os.remove(partial)
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
    """tokenizer.json's `added_tokens`: every added token (the roles' and the others) with
    its id and flags, by id."""
    added = [{"id": tok._added_ids[t.content], "content": t.content,
              "single_word": t.single_word, "lstrip": t.lstrip, "rstrip": t.rstrip,
              "normalized": t.normalized, "special": t.special} for t in tok._added.values()]
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
    """The options we understand from tokenizer_config.json / special_tokens_map.json, each
    checked (a null value counts as absent, except for the booleans, where the reference
    refuses it).

    A special token given as a bare string keeps the flags (lstrip...) already `known` for
    that content from tokenizer.json: transformers saves "<mask>" as a string there.
    """
    config = read_json(path)
    out = {}
    for name in BOOL_OPTIONS:
        if name in config and not (name == "clean_up_tokenization_spaces" and config[name] is None):
            out[name] = check_bool(config[name], path, name)
    for name in SIDE_OPTIONS:
        side = config.get(name)
        if side is not None and side not in ("right", "left"):  # transformers' message
            raise file_error(path, f"{name}:", f"{name.split('_')[0].capitalize()} side should be "
                             f"selected between 'right' and 'left', current value: {str(side):.60}")
        if side is not None:
            out[name] = side
    if config.get("model_max_length") is not None:
        out["model_max_length"] = _model_max_length(config["model_max_length"], path)
    by_content = {str(t): t for t in known.values() if isinstance(t, AddedToken)}
    for role in SPECIAL_TOKEN_ROLES:
        if config.get(role) is not None:
            token = _special_token(config[role], path, role)
            out[role] = by_content.get(token, token) if isinstance(token, str) else token
    return out


def read_tokenizer_json(path: str) -> dict:
    """tokenizer.json as a dict whose parts this package reads have the right JSON types
    (pre_tokenizer, post_processor, normalizer, decoder and model objects or null,
    added_tokens a list); the rest is checked where it is read."""
    spec = read_json(path)
    for part in ("pre_tokenizer", "post_processor", "normalizer", "decoder", "model"):
        if spec.get(part) is not None:
            check_type(spec[part], dict, path, part)
    check_type(spec.get("added_tokens", []), list, path, "added_tokens")
    return spec


def added_token_ids(spec: dict, path: str) -> Dict[str, dict]:
    """{content: entry} of tokenizer.json's added_tokens, each entry checked (an object with a
    non-empty string content, a valid id and boolean flags)."""
    added = {}
    _check_added_count(spec.get("added_tokens", []), path, "added_tokens")
    for n, entry in enumerate(spec.get("added_tokens", [])):
        field = f"added_tokens[{n}]"
        check_type(entry, dict, path, field)
        if "content" not in entry:
            raise file_error(path, field, "has no content")
        _special_token(entry, path, field)
        check_id(entry.get("id"), path, f"{field}.id")
        added[entry["content"]] = entry
    return added


_DEFAULT_ROLE_NAMES = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                       "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>",
                       "mask_token": "<mask>"}


def _options_from_tokenizer_json(path: str) -> Tuple[dict, Dict[str, int]]:
    """Special-token flags (e.g. <mask> lstrip) and ids, add_prefix_space and trim_offsets."""
    spec = read_tokenizer_json(path)
    added = added_token_ids(spec, path)
    options = {}
    for role, content in _DEFAULT_ROLE_NAMES.items():
        if content in added:
            options[role] = _as_added_token(added[content])
    # every entry is matched in text with its flags, as the reference does, not only the roles
    roles = set(_DEFAULT_ROLE_NAMES.values())
    options["added_tokens"] = [_as_added_token(entry) for content, entry in added.items()
                               if content not in roles]
    pre = spec.get("pre_tokenizer") or {}
    post = spec.get("post_processor") or {}
    if pre.get("type") == "ByteLevel" and "add_prefix_space" in pre:  # (Metaspace has its own)
        options["add_prefix_space"] = check_bool(pre["add_prefix_space"], path,
                                                 "pre_tokenizer.add_prefix_space")
    if "trim_offsets" in post:
        options["trim_offsets"] = check_bool(post["trim_offsets"], path,
                                             "post_processor.trim_offsets")
    return options, {c: t["id"] for c, t in added.items()}


def _bpe_model(path: str):
    """(vocab, merges) of the BPE model inside tokenizer.json, checked."""
    model = read_tokenizer_json(path).get("model") or {}
    if model.get("type", "BPE") != "BPE" or "vocab" not in model:
        raise file_error(path, "model", f"must be a BPE model with a vocab, got type "
                                        f"{model.get('type')!r:.60}")
    vocab = check_vocab(model["vocab"], path, "model.vocab")
    merges = check_type(model.get("merges", []), list, path, "model.merges")
    for n, merge in enumerate(merges):
        if not isinstance(merge, (str, list)):
            raise file_error(path, f"model.merges[{n}]", f"must be 'left right' or [left, right], "
                                                         f"got {merge!r:.60}")
    with reading(path):
        merges = _bpe.parse_merges(merges, source=f"{path}: model.merges")
    return vocab, check_merges(merges, vocab, path)

