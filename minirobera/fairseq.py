"""fairseq checkpoints: RoBERTa's original release format, read without fairseq or torch.

RoBERTa was first released by fairseq as a folder `model.pt` + `dict.txt` (+ GPT-2's
`encoder.json` / `vocab.bpe` for roberta.base); so are models trained with fairseq since, such
as the Sapiens antibody models. This module owns:
  * reading a fairseq `.pt` through checkpoint.py's restricted unpickler, admitting in addition
    only `argparse.Namespace` (fairseq's `args`), which becomes a plain dict, and numpy
    scalars / arrays in its training records, which become inert placeholders: nothing from
    the file is imported or run, and only the tensors of its `model` entry are read (the
    optimizer state beside them never is);
  * `fairseq_name_to_pt`: a fairseq weight name as transformers spells it, so checkpoint.py's
    key table stays the only one (as tf_name_to_pt does for TensorFlow);
  * `config_from_args`: the RobertaConfig of the args (or newer fairseq's `cfg`), refusing the
    variants the encoder here does not run;
  * fairseq's `Dictionary` (dict.txt) and `FairseqDictTokenizer`, which splits text on
    whitespace as fairseq's `encode_line` does; `compose_gpt2_vocab` for the roberta.base layout,
    where dict.txt lists GPT-2 ids;
  * `from_pretrained` (a folder with model.pt + dict.txt, called by modeling.py), `load_tokenizer`
    and `convert` (config.json + model.safetensors + tokenizer files that transformers loads).

Leaves out: fairseq's pre-LN encoder (`encoder_normalize_before`), untied LM heads, the
sentencepiece / fastBPE variants of the dictionary, `omegaconf` objects pickled as such
(fairseq saves its `cfg` as plain containers), model-parallel and quantised checkpoints.

>>> fairseq_name_to_pt("decoder.sentence_encoder.layers.3.self_attn.q_proj.weight")
'roberta.encoder.layer.3.attention.self.query.weight'
>>> d = Dictionary(["A", "C"])
>>> d.symbols, d.encode_line("A C X")
(['<s>', '<pad>', '</s>', '<unk>', 'A', 'C', '<mask>'], [4, 5, 3, 2])
"""

import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .added_tokens import split_on_added_tokens
from .batching import _Sequence
from .checkpoint import (CheckpointError, _RestrictedUnpickler, _StandIn,
                         read_torch_pickle)
from .config import RobertaConfig
from .layers import ACTIVATIONS
from .offsets import add_special
from .tokenizer import RobertaTokenizer
from .tokenizer_files import (TokenizerFileError, added_tokens_json, base_config, check_type,
                              check_vocab, read_files, read_json, reading, write_files)

CHECKPOINT, DICT = "model.pt", "dict.txt"
GPT2_ENCODER, GPT2_MERGES = "encoder.json", "vocab.bpe"
LAYER_NORM_EPS = 1e-5  # fairseq's LayerNorm default (BERT's 1e-12 is not RoBERTa's)


# ====================================================================== dict.txt

class Dictionary:
    """fairseq's Dictionary: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, then dict.txt's symbols
    in file order, then `<mask>` (appended by the masked-LM task, as RoBERTa's was).

    dict.txt has one `symbol count` a line; the count is a training-data frequency the model
    never sees. `madeupword0000`... lines are fairseq's padding of the vocab to a multiple of
    8 and are symbols like any other. A line ending in `#fairseq:overwrite` gives an existing
    symbol a new id (fairseq's rule); any other repeated symbol is an error.

    >>> Dictionary(["a", "b"]).index("b"), Dictionary(["a"]).index("zz")  # unknown: <unk>
    (5, 3)
    """

    SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")

    def __init__(self, symbols: Sequence[str] = (), *, add_mask: bool = True):
        self.symbols, self.indices = [], {}
        for s in self.SPECIALS:
            self._add(s)
        for s in symbols:
            self._add(s)
        if add_mask and "<mask>" not in self.indices:
            self._add("<mask>")

    def _add(self, symbol, overwrite=False):
        if symbol in self.indices and not overwrite:
            return self.indices[symbol]
        self.indices[symbol] = len(self.symbols)
        self.symbols.append(symbol)
        return self.indices[symbol]

    @classmethod
    def load(cls, path, *, add_mask: bool = True) -> "Dictionary":
        """Read dict.txt; a malformed line is a ValueError naming the file and the line."""
        path = os.fspath(path)
        d = cls(add_mask=False)
        with reading(path), open(path, encoding="utf-8") as f:  # bad UTF-8: names the file
            for n, line in enumerate(f, 1):
                symbol, overwrite = _dict_line(line, path, n)
                if symbol in d.indices and not overwrite:
                    raise TokenizerFileError(
                        f"{path}, line {n}: duplicate symbol {symbol!r} (fairseq allows it only "
                        f"with '#fairseq:overwrite' at the line's end)")
                d._add(symbol, overwrite)
        if add_mask and "<mask>" not in d.indices:
            d._add("<mask>")
        return d

    def index(self, symbol: str) -> int:
        return self.indices.get(symbol, self.indices["<unk>"])

    def encode_line(self, line: str, append_eos: bool = True) -> List[int]:
        """fairseq's encode_line: whitespace runs split the line into symbols, `</s>` is
        appended (RoBERTa's hub interface writes the `<s> ` in front of the line itself)."""
        eos = [self.indices["</s>"]] if append_eos else []
        return [self.index(s) for s in line.split()] + eos

    def __len__(self):
        return len(self.symbols)


def _dict_line(line, path, n) -> Tuple[str, bool]:
    line = line.rstrip("\n").rstrip()
    overwrite = line.endswith(" #fairseq:overwrite")
    if overwrite:
        line = line[:-len(" #fairseq:overwrite")]
    symbol, _, count = line.rpartition(" ")
    if not symbol or not count.lstrip("-").isdigit():
        raise TokenizerFileError(f"{path}, line {n}: expected '<symbol> <count>' (fairseq's "
                                 f"dict.txt), got {line!r:.60}")
    return symbol, overwrite


def compose_gpt2_vocab(dictionary: Dictionary, gpt2_encoder: Dict[str, int], *,
                       source: str = DICT) -> Dict[str, int]:
    """roberta.base's layout -> RobertaTokenizer's vocab {GPT-2 token string: RoBERTa id}.

    Quirk: this is why RoBERTa's ids are not GPT-2's. fairseq ran GPT-2's BPE, wrote each
    token as its GPT-2 id in decimal ("13"), and built dict.txt from those strings in order of
    frequency: a token's RoBERTa id is its line in dict.txt + 4 (after the four specials).
    Symbols that are not GPT-2 ids (madeupword0000...) and the specials keep their own name.

    >>> d = Dictionary(["13", "0", "madeupword0000"])
    >>> compose_gpt2_vocab(d, {"!": 0, ".": 13})
    {'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, '.': 4, '!': 5, 'madeupword0000': 6, '<mask>': 7}
    """
    by_id = {i: token for token, i in check_vocab(gpt2_encoder, GPT2_ENCODER).items()}
    vocab = {}
    for roberta_id, symbol in enumerate(dictionary.symbols):
        if re.fullmatch(r"[0-9]{1,9}", symbol) and roberta_id >= len(Dictionary.SPECIALS):
            if int(symbol) not in by_id:
                raise TokenizerFileError(f"{source}: symbol {symbol!r} (line {roberta_id - 3}) "
                                         f"is not an id of the GPT-2 {GPT2_ENCODER}")
            symbol = by_id[int(symbol)]
        if symbol in vocab:
            raise TokenizerFileError(f"{source}: token {symbol!r} has two ids, {vocab[symbol]} "
                                     f"and {roberta_id}")
        vocab[symbol] = roberta_id
    return vocab


# ====================================================================== the .pt file

class _Namespace:
    """What `argparse.Namespace` becomes in the pickle: an empty object whose BUILD state
    (the attributes, names -> plain values) is kept as a dict. Nothing is called."""

    def __setstate__(self, state):
        if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
            raise CheckpointError("an argparse.Namespace in the pickle has a state that is not "
                                  "a dict of names; refused")
        self.fields = dict(state)


class NumpyData:
    """An inert placeholder for a NumPy scalar or array in a checkpoint's training records
    (fairseq keeps e.g. a best loss as a numpy float in `extra_state`). Built by the pickle's
    calls to numpy's reconstructors, it keeps nothing and runs nothing: no model needs them.
    """

    def __init__(self, *args):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return f"<{type(self).__name__}: numpy data, not read>"


# numpy's own pickling of scalars and arrays: the reconstructors, the dtype and ndarray they
# name (numpy 1 spells the module numpy.core, numpy 2 numpy._core)
NUMPY_GLOBALS = {("numpy", "dtype"), ("numpy", "ndarray")} | {
    (m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
    for n in ("scalar", "_reconstruct")}


def _latin1_bytes(text, encoding="latin1"):
    """`_codecs.encode(text, "latin1")`: how protocol 2 pickles a bytes object under Python 3
    (numpy's raw data in a torch.save'd file). Any other codec or argument is refused."""
    if not (isinstance(text, str) and encoding in ("latin1", "latin-1")):
        raise CheckpointError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r:.20}): "
                              f"only latin1 text (protocol 2's bytes) is allowed")
    return text.encode("latin1")


class FairseqUnpickler(_RestrictedUnpickler):
    """checkpoint.py's restricted unpickler + what a fairseq training run pickles as data:
    `argparse.Namespace` (its args, read as a plain dict), numpy scalars and arrays (inert
    placeholders, see NumpyData) and protocol 2's latin1 bytes.

    Each lookup gets a new stand-in class, so a pickle cannot modify the one the next
    lookup sees. Every other global (os.system, eval, copyreg._reconstructor, omegaconf...)
    is refused before anything runs, as for a pytorch_model.bin.
    """

    WHAT = ("a fairseq .pt is a pickle, and only tensors, argparse.Namespace, numpy data and "
            "plain containers are allowed")

    def find_class(self, module, name):
        if (module, name) == ("argparse", "Namespace"):
            return type("Namespace", (_Namespace,), {})
        if (module, name) in NUMPY_GLOBALS:
            return type("NumpyData", (NumpyData,), {})
        if (module, name) == ("_codecs", "encode"):
            return _StandIn(_latin1_bytes)  # a BUILD on it is refused
        return super().find_class(module, name)


def plain_data(value, path, depth=0, memo=None):
    """An unpickled tree with every Namespace turned into a dict (tensors left lazy); `path`
    names the file in errors.

    Each object is converted once (`memo`, by id): a pickle's memo can make a small file
    hold a structure that shares one list many times over, and a naive walk of it would
    take exponential time. Nesting past 100 levels (or a cycle) is refused.
    """
    memo = {} if memo is None else memo
    if depth > 100:
        raise CheckpointError(f"{path}: the pickle nests deeper than 100 levels (or holds a cycle)")
    if id(value) in memo:
        return memo[id(value)]
    out = value
    if isinstance(value, _Namespace):
        out = plain_data(getattr(value, "fields", {}), path, depth + 1, memo)
    elif isinstance(value, dict):
        out = {k: plain_data(v, path, depth + 1, memo) for k, v in value.items()}
    elif isinstance(value, (list, tuple)):
        out = type(value)(plain_data(v, path, depth + 1, memo) for v in value)
    memo[id(value)] = out
    return out


def read_fairseq_checkpoint(path) -> Tuple[dict, Dict[str, np.ndarray]]:
    """(hyperparameters as a dict, {fairseq name: array}) of a fairseq `.pt`, without torch.

    The hyperparameters are `args` (older fairseq, an argparse.Namespace) or `cfg["model"]`
    (newer fairseq, plain containers). Only `model`'s tensors are read.
    """
    path = os.fspath(path)
    tree, tensors_of = read_torch_pickle(path, FairseqUnpickler)
    if not isinstance(tree, dict) or not isinstance(tree.get("model"), dict):
        found = sorted(map(str, tree))[:5] if isinstance(tree, dict) else type(tree).__name__
        raise CheckpointError(f"{path} is not a fairseq checkpoint: no 'model' state dict in it "
                              f"(found {found})")
    args = plain_data(tree.get("args"), path)
    cfg = plain_data(tree.get("cfg"), path)
    if not args and isinstance(cfg, dict):
        args = cfg.get("model")
    if not isinstance(args, dict):
        raise CheckpointError(f"{path} has neither 'args' nor cfg['model'] with the model's "
                              f"hyperparameters")
    return args, tensors_of(tree["model"])  # the optimizer's tensors are never read


# ====================================================================== names

# fairseq's module names -> transformers'; applied to the part after `sentence_encoder.`
# (or after the encoder/decoder prefix for the heads). Older fairseq (0.9, Sapiens) keeps the
# encoder under `decoder.`, newer under `encoder.`; the names below are the same in both.
_ENCODER_NAMES = [
    (r"embed_tokens\.weight", "embeddings.word_embeddings.weight"),
    (r"embed_positions\.weight", "embeddings.position_embeddings.weight"),
    (r"(?:emb_layer_norm|layernorm_embedding)\.(weight|bias)", r"embeddings.LayerNorm.\1"),
    (r"layers\.(\d+)\.self_attn\.q_proj\.", r"encoder.layer.\1.attention.self.query."),
    (r"layers\.(\d+)\.self_attn\.k_proj\.", r"encoder.layer.\1.attention.self.key."),
    (r"layers\.(\d+)\.self_attn\.v_proj\.", r"encoder.layer.\1.attention.self.value."),
    (r"layers\.(\d+)\.self_attn\.out_proj\.", r"encoder.layer.\1.attention.output.dense."),
    (r"layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.layer.\1.attention.output.LayerNorm."),
    (r"layers\.(\d+)\.fc1\.", r"encoder.layer.\1.intermediate.dense."),
    (r"layers\.(\d+)\.fc2\.", r"encoder.layer.\1.output.dense."),
    (r"layers\.(\d+)\.final_layer_norm\.", r"encoder.layer.\1.output.LayerNorm."),
]
_HEAD_NAMES = [
    (r"lm_head\.(dense|layer_norm)\.", r"lm_head.\1."),
    (r"lm_head\.bias", "lm_head.bias"),
    (r"lm_head\.weight", "lm_head.decoder.weight"),  # tied: the word embeddings (checked)
    (r"classification_heads\.[^.]+\.(dense|out_proj)\.", r"classifier.\1."),
]
_PREFIX = re.compile(r"(?:encoder|decoder)\.")
# Read and dropped on purpose: (pattern, reason)
IGNORED = [(r".*\.version", "fairseq's state-dict format number, a buffer, not a weight")]


def fairseq_name_to_pt(name: str) -> Optional[str]:
    """A fairseq RoBERTa weight name as transformers spells it, None for one it has no
    counterpart for (then reported as unexpected).

    >>> fairseq_name_to_pt("encoder.sentence_encoder.layernorm_embedding.bias")
    'roberta.embeddings.LayerNorm.bias'
    >>> fairseq_name_to_pt("classification_heads.mnli.out_proj.weight")
    'classifier.out_proj.weight'
    >>> fairseq_name_to_pt("decoder.lm_head.dense.weight")
    'lm_head.dense.weight'
    """
    rest = name[_PREFIX.match(name).end():] if _PREFIX.match(name) else name
    if rest.startswith("sentence_encoder."):
        rest = rest[len("sentence_encoder."):]
        for pattern, replacement in _ENCODER_NAMES:
            m = re.match(pattern, rest)
            if m:
                return "roberta." + m.expand(replacement) + rest[m.end():]
        return None
    for pattern, replacement in _HEAD_NAMES:
        m = re.match(pattern, rest)
        if m:
            return m.expand(replacement) + rest[m.end():]
    return None


def _split_in_proj(tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """fairseq before 0.9 stored q, k, v in one `in_proj_weight` [3D, D] (and bias [3D]);
    fairseq itself splits it into q_proj, k_proj, v_proj in that order when it loads one."""
    out = {}
    for name, value in tensors.items():
        m = re.fullmatch(r"(.*\.self_attn\.)in_proj_(weight|bias)", name)
        if not m:
            out[name] = value
            continue
        for part, piece in zip("qkv", np.split(value, 3, axis=0)):
            out[f"{m.group(1)}{part}_proj.{m.group(2)}"] = piece
    return out


# ====================================================================== config

# fairseq's activation names -> transformers' (layers.ACTIVATIONS); fairseq's "gelu" is the
# exact erf one, its "gelu_accurate" / "gelu_fast" the tanh approximation (transformers' gelu_new)
ACTIVATION_NAMES = {"gelu": "gelu", "gelu_accurate": "gelu_new", "gelu_fast": "gelu_new",
                    "relu": "relu", "tanh": "tanh", "swish": "silu"}


def config_from_args(args: dict, tensors: Dict[str, np.ndarray], *,
                     source: str = "the checkpoint") -> RobertaConfig:
    """RobertaConfig of a fairseq RoBERTa: sizes from the weights, checked against `args`.

    Position rows = max_positions + pad + 1 (fairseq counts positions from pad + 1 too).
    Refused with a CheckpointError: pre-LN (`encoder_normalize_before`), an activation this
    encoder lacks (or any but GELU where an LM head would apply it: transformers' LM head is
    always exact GELU), an untied LM head, a classification head with another pooler activation.
    """
    def arg(name, default=None):
        return args.get(name, default)

    for name in ("encoder_layers", "encoder_embed_dim", "encoder_ffn_embed_dim",
                 "encoder_attention_heads", "max_positions"):
        value = arg(name)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                      and 0 < value < 2 ** 31):
            raise CheckpointError(f"{source}: args {name}={value!r:.40} is not a positive integer")

    pre_ln_weights = any(".sentence_encoder.layer_norm." in k for k in tensors)
    if arg("encoder_normalize_before") or pre_ln_weights:
        raise CheckpointError(f"{source}: encoder_normalize_before=True (a pre-LN encoder) is not "
                              f"RoBERTa's post-LN layer and is not supported here")
    if arg("untie_weights_roberta"):
        raise CheckpointError(f"{source}: untie_weights_roberta=True (an LM head untied from the "
                              f"word embeddings) is not supported here")
    activation = arg("activation_fn", "gelu")
    if ACTIVATION_NAMES.get(activation) not in ACTIVATIONS:
        raise CheckpointError(f"{source}: activation_fn={activation!r} has no counterpart here; "
                              f"supported: {sorted(ACTIVATION_NAMES)}")
    has_lm = any(".lm_head." in "." + k for k in tensors)
    if has_lm and activation != "gelu":
        raise CheckpointError(f"{source}: activation_fn={activation!r} would also run in the LM "
                              f"head, which transformers (and this project) fix to exact GELU")
    heads = sorted({k.split(".")[1] for k in tensors if k.startswith("classification_heads.")})
    if heads and arg("pooler_activation_fn", "tanh") != "tanh":
        raise CheckpointError(f"{source}: classification heads with pooler_activation_fn="
                              f"{arg('pooler_activation_fn')!r}; transformers' head uses tanh")
    word = _find(tensors, "sentence_encoder.embed_tokens.weight", source)
    positions = _find(tensors, "sentence_encoder.embed_positions.weight", source)
    fc1 = _find(tensors, "sentence_encoder.layers.0.fc1.weight", source)
    n_layers = len({m.group(1) for k in tensors
                    for m in [re.search(r"sentence_encoder\.layers\.(\d+)\.", k)] if m})
    vocab, hidden = word.shape
    heads_n = arg("encoder_attention_heads")
    if heads_n is None:
        raise CheckpointError(f"{source}: the args lack encoder_attention_heads (the weights do "
                              f"not say how many heads there are)")
    for name, value in (("encoder_embed_dim", hidden), ("encoder_ffn_embed_dim", fc1.shape[0]),
                        ("encoder_layers", n_layers)):
        if arg(name) is not None and arg(name) != value:
            raise CheckpointError(f"{source}: args say {name}={arg(name)} but the weights "
                                  f"have {value}")
    pad = 1
    if arg("max_positions") is not None and positions.shape[0] != arg("max_positions") + pad + 1:
        raise CheckpointError(f"{source}: embed_positions has {positions.shape[0]} rows; "
                              f"max_positions={arg('max_positions')} needs "
                              f"{arg('max_positions') + pad + 1} (max_positions + pad + 1)")
    n_labels = {}
    if heads:
        out = _find(tensors, f"classification_heads.{heads[0]}.out_proj.weight", source)
        n_labels = {"num_labels": out.shape[0]}
    return RobertaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=n_layers,
                         num_attention_heads=int(heads_n), intermediate_size=fc1.shape[0],
                         hidden_act=ACTIVATION_NAMES[activation],
                         max_position_embeddings=positions.shape[0], type_vocab_size=1,
                         layer_norm_eps=LAYER_NORM_EPS, pad_token_id=pad, bos_token_id=0,
                         eos_token_id=2, **n_labels)


def _find(tensors, suffix, source):
    for key, value in tensors.items():
        if key.endswith(suffix):
            return value
    raise CheckpointError(f"{source} has no '*{suffix}': not a fairseq RoBERTa checkpoint")


def transformers_state_dict(config: RobertaConfig, tensors: Dict[str, np.ndarray], *,
                            head: Optional[str] = None, source: str = "the checkpoint"
                            ) -> Dict[str, np.ndarray]:
    """{fairseq name: array} -> {transformers name: array}, for checkpoint.py's key table.

    Quirk: fairseq's RoBERTa has no token-type embeddings (num_segments=0) but transformers
    always adds row 0 of its table: that row is zeros. `head` picks one of several
    classification heads (fairseq keeps any number side by side, by name).
    """
    tensors = _split_in_proj(tensors)
    heads = sorted({k.split(".")[1] for k in tensors if k.startswith("classification_heads.")})
    if head is None and len(heads) > 1:
        raise CheckpointError(f"{source} has {len(heads)} classification heads {heads}: pass "
                              f"head=... to pick one")
    if head is not None and head not in heads:
        raise CheckpointError(f"{source} has no classification head {head!r} (it has {heads})")
    out, word = {}, _find(tensors, "sentence_encoder.embed_tokens.weight", source)
    for name, value in tensors.items():
        if name.startswith("classification_heads.") and name.split(".")[1] != (head or heads[0]):
            continue
        if any(re.fullmatch(pattern, name) for pattern, _ in IGNORED):
            continue
        pt = fairseq_name_to_pt(name)
        if pt == "lm_head.decoder.weight":
            if value.shape != word.shape or not np.array_equal(value, word):
                raise CheckpointError(f"{source}: {name} differs from the word embeddings (an "
                                      f"untied LM head), which is not supported here")
            continue  # tied: the word-embedding matrix is the decoder
        out[pt or name] = value  # an unknown name stays as it is: reported as unexpected
    out["roberta.embeddings.token_type_embeddings.weight"] = np.zeros(
        (1, config.hidden_size), np.float32)
    return out


def load_checkpoint(path, *, head: Optional[str] = None
                    ) -> Tuple[RobertaConfig, Dict[str, np.ndarray]]:
    """(RobertaConfig, {transformers name: array}) of a fairseq RoBERTa `.pt`."""
    path = os.fspath(path)
    args, tensors = read_fairseq_checkpoint(path)
    config = config_from_args(args, tensors, source=path)
    return config, transformers_state_dict(config, tensors, head=head, source=path)


def fairseq_files(path) -> Optional[Tuple[str, str]]:
    """(checkpoint, dict.txt) when `path` is fairseq's layout, else None: a local folder with
    model.pt + dict.txt and no config.json, or a `.pt` file with dict.txt beside it (as the
    sapiens wheel ships checkpoint_vh.pt and checkpoint_vl.pt).

    >>> fairseq_files("FacebookAI/roberta-base") is None   # a hub id: not a local fairseq layout
    True
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "config.json")):
            return None
        checkpoint, dict_path = os.path.join(path, CHECKPOINT), os.path.join(path, DICT)
    elif path.endswith(".pt") and os.path.isfile(path):
        checkpoint, dict_path = path, os.path.join(os.path.dirname(os.path.abspath(path)), DICT)
    else:
        return None
    return (checkpoint, dict_path) if os.path.isfile(checkpoint) and os.path.isfile(dict_path) \
        else None


def is_fairseq_folder(path) -> bool:
    """A fairseq layout (see fairseq_files) that modeling.from_pretrained hands to this module."""
    return fairseq_files(path) is not None


def from_pretrained(cls, path, *, config=None, head: Optional[str] = None):
    """`cls.from_pretrained(path)` for a fairseq layout (modeling.py sends it here)."""
    from .checkpoint import params_from_state_dict

    source, dict_path = fairseq_files(path)
    read_config, state_dict = load_checkpoint(source, head=head)
    config = config or read_config
    vocab = len(Dictionary.load(dict_path))
    if vocab != config.vocab_size:
        raise CheckpointError(f"{dict_path} gives {vocab} symbols (with the 4 specials and "
                              f"<mask>) but the embeddings of {source} have "
                              f"{config.vocab_size} rows")
    params, _report = params_from_state_dict(config, state_dict, cls.parts,
                                             model_name=cls.__name__, source=source)
    return cls(config, params)


def read_max_positions(checkpoint) -> Optional[int]:
    """The args' max_positions of a fairseq .pt (its pickle only; no tensor is read)."""
    tree, _ = read_torch_pickle(checkpoint, FairseqUnpickler)
    tree = tree if isinstance(tree, dict) else {}
    args = plain_data(tree.get("args"), checkpoint)
    if not args:
        cfg = plain_data(tree.get("cfg"), checkpoint)
        args = cfg.get("model") if isinstance(cfg, dict) else None
    value = args.get("max_positions") if isinstance(args, dict) else None
    return value if isinstance(value, int) and value > 0 else None


# ====================================================================== the tokenizer

class _WordLevel:
    """A whole-word vocabulary: `encoder` {symbol: id} and `decoder` {id: symbol}."""

    def __init__(self, symbols: Sequence[str]):
        self.decoder = dict(enumerate(symbols))
        self.encoder = {s: i for i, s in self.decoder.items()}


class FairseqDictTokenizer(RobertaTokenizer):
    """A fairseq dictionary as a tokenizer: text split on whitespace, each piece one symbol.

    This is fairseq's `encode_line` with RoBERTa's template and transformers' batch API
    (padding, truncation, offsets, pairs). transformers loads the same vocabulary from the
    tokenizer.json `save_pretrained` writes (a WordLevel model after a WhitespaceSplit).

    >>> tok = FairseqDictTokenizer(Dictionary(["A", "C"]).symbols)
    >>> enc = tok("A <mask> C", return_offsets_mapping=True)
    >>> enc["input_ids"], enc["offset_mapping"]  # <mask>'s span keeps the space it strips
    ([0, 4, 6, 5, 2], [(0, 0), (0, 1), (1, 8), (9, 10), (0, 0)])
    >>> tok.decode(enc["input_ids"], skip_special_tokens=True)
    'A C'
    """

    vocab_files_names = {"vocab_file": DICT}
    trim_offsets = False

    def __init__(self, symbols: Sequence[str], *, bos_token="<s>", eos_token="</s>",
                 sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                 mask_token="<mask>", model_max_length: int = 512, padding_side: str = "right",
                 truncation_side: str = "right", clean_up_tokenization_spaces: bool = False,
                 added_token_ids: Optional[Dict[str, int]] = None, added_tokens: Sequence = (),
                 **_ignored):
        self.model = _WordLevel(symbols)
        self.add_prefix_space = False  # whitespace is a separator here, never part of a token
        self._init_shared(self.model, locals())

    def _model_vocab(self) -> Dict[str, int]:
        return self.model.encoder

    def _model_token(self, index: int) -> Optional[str]:
        return self.model.decoder.get(index)

    def _fast_rows(self, pairs, plan, special_mask):
        return None  # every text goes through _encode_sequence

    def _text_ids(self, text: str) -> List[int]:
        seq = _Sequence([], [], [], [])
        self._text_details(text, seq)
        return seq.ids

    def _text_details(self, text: str, seq: _Sequence, word: Optional[int] = None):
        """Special tokens matched whole, the rest split on whitespace; each symbol a word."""
        next_word = (seq.words[-1] + 1) if (word is None and seq.words) else 0
        pieces = (split_on_added_tokens(text, self._added_re, self._added)
                  if self._maybe_added(text) is not None else [(text, 0, None)])
        for piece, start, token in pieces:
            if token is not None:
                add_special(seq, self._added_ids[token.content], piece, start,
                            next_word if word is None else word)
                next_word += 1
                continue
            for m in re.finditer(r"\S+", piece):
                seq.ids.append(self._token_to_id(m.group()))
                seq.tokens.append(m.group())
                seq.spans.append((start + m.start(), start + m.end()))
                seq.words.append(next_word if word is None else word)
                next_word += 1

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Symbols joined by single spaces (what tokenizers does without a decoder)."""
        return " ".join(tokens)

    @classmethod
    def from_pretrained(cls, path_or_repo_id, **kwargs) -> "FairseqDictTokenizer":
        """From tokenizer.json (a WordLevel model, as save_pretrained writes it) or dict.txt."""
        paths, options, fixed_ids = read_files(path_or_repo_id, ("tokenizer.json", DICT), kwargs)
        if paths["tokenizer.json"]:
            spec = paths["tokenizer.json"]
            model = check_type(read_json(spec).get("model"), dict, spec, "model")
            if model.get("type") != "WordLevel":
                raise TokenizerFileError(f"{spec} holds a {model.get('type')!r:.40} model; "
                                         f"{cls.__name__} needs a WordLevel one")
            by_id = {i: s for s, i in check_vocab(model.get("vocab"), spec, "model.vocab").items()}
            if not by_id:
                raise TokenizerFileError(f"{spec}: model.vocab is empty")
            symbols = [by_id.get(i, f"<unused{i}>") for i in range(max(by_id) + 1)]
            return cls(symbols, added_token_ids=fixed_ids, **options)
        if paths[DICT]:
            return cls(Dictionary.load(paths[DICT]).symbols, **options)
        raise FileNotFoundError(f"neither tokenizer.json nor {DICT} in {path_or_repo_id!r}")

    def save_pretrained(self, save_directory) -> Tuple[str, ...]:
        """tokenizer.json + tokenizer_config.json that transformers (AutoTokenizer) loads."""
        config = {**base_config(self), "tokenizer_class": "PreTrainedTokenizerFast"}
        return write_files(save_directory, {
            "tokenizer.json": json.dumps(word_level_tokenizer_json(self), ensure_ascii=False),
            "tokenizer_config.json": json.dumps(config, indent=2, ensure_ascii=False) + "\n"})

    def __repr__(self):
        return (f"FairseqDictTokenizer(vocab_size={self.vocab_size}, model_max_length="
                f"{self.model_max_length})")


def word_level_tokenizer_json(tok: FairseqDictTokenizer) -> dict:
    """The tokenizers-library JSON: WhitespaceSplit, a WordLevel model, RoBERTa's template
    (`<s> A </s>` and `<s> A </s></s> B </s>`), no decoder (tokens joined by spaces)."""
    a, b = ({"Sequence": {"id": name, "type_id": 0}} for name in "AB")
    s, e = ({"SpecialToken": {"id": t, "type_id": 0}} for t in (tok.cls_token, tok.sep_token))
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added_tokens_json(tok), "normalizer": None,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": {"type": "TemplateProcessing", "single": [s, a, e],
                           "pair": [s, a, e, e, b, e],
                           "special_tokens": {t: {"id": t, "ids": [tok._token_to_id(t)],
                                                  "tokens": [t]}
                                              for t in sorted({tok.cls_token, tok.sep_token})}},
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": tok.model.encoder, "unk_token": tok.unk_token},
    }


def load_tokenizer(path, **kwargs):
    """The tokenizer of a fairseq layout (a folder, or a .pt with dict.txt beside it):
    RobertaTokenizer where GPT-2's encoder.json + vocab.bpe sit beside dict.txt (the
    roberta.base layout), else FairseqDictTokenizer. Its model_max_length is the checkpoint's
    max_positions where there is one (Sapiens: 144), else 512."""
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    checkpoint = path if path.endswith(".pt") else os.path.join(folder, CHECKPOINT)
    if "model_max_length" not in kwargs and os.path.isfile(checkpoint):
        kwargs["model_max_length"] = read_max_positions(checkpoint) or 512
    encoder, merges = (os.path.join(folder, n) for n in (GPT2_ENCODER, GPT2_MERGES))
    dict_path = os.path.join(folder, DICT)
    if os.path.isfile(encoder) and os.path.isfile(merges) and os.path.isfile(dict_path):
        vocab = compose_gpt2_vocab(Dictionary.load(dict_path), read_json(encoder), source=dict_path)
        kwargs = {k: v for k, v in kwargs.items() if k not in ("revision", "token",
                                                                "local_files_only")}
        return RobertaTokenizer(vocab, merges, **kwargs)
    return FairseqDictTokenizer.from_pretrained(folder, **kwargs)


def is_fairseq_tokenizer_folder(path) -> bool:
    """A fairseq layout, a folder with dict.txt and no vocab.json, or a folder whose
    tokenizer.json holds a WordLevel model (what convert writes). Local paths only."""
    path = os.fspath(path)
    if fairseq_files(path):
        return True
    if not os.path.isdir(path):
        return False
    spec = os.path.join(path, "tokenizer.json")
    if os.path.isfile(spec):  # a malformed file: the tokenizer's own error, naming it
        model = read_json(spec).get("model")
        return isinstance(model, dict) and model.get("type") == "WordLevel"
    return os.path.isfile(os.path.join(path, DICT)) and not os.path.isfile(
        os.path.join(path, "vocab.json"))


# ====================================================================== convert

def convert(src, out_dir, *, dict_path=None, model_class: str = "RobertaForMaskedLM",
            head: Optional[str] = None) -> List[str]:
    """A fairseq `.pt` (+ the dict.txt beside it) -> a folder transformers loads as it is:
    config.json, model.safetensors and the tokenizer files. Returns the paths written.

    Everything is written to a temporary folder first and moved into place at the end, so a
    refused checkpoint leaves nothing behind.
    """
    import shutil
    import tempfile

    from . import modeling

    src, out_dir = os.fspath(src), os.fspath(out_dir)
    folder = os.path.dirname(os.path.abspath(src))
    dict_path = os.fspath(dict_path) if dict_path else os.path.join(folder, DICT)
    if not os.path.isfile(dict_path):
        raise FileNotFoundError(f"no {DICT} beside {src}; pass dict_path=")
    config, state_dict = load_checkpoint(src, head=head)
    cls = getattr(modeling, model_class)
    from .checkpoint import params_from_state_dict
    params, _ = params_from_state_dict(config, state_dict, cls.parts, model_name=model_class,
                                       source=src)
    with tempfile.TemporaryDirectory() as staging:
        os.symlink(os.path.abspath(dict_path), os.path.join(staging, DICT))
        for name in (GPT2_ENCODER, GPT2_MERGES):
            if os.path.isfile(os.path.join(folder, name)):
                os.symlink(os.path.join(folder, name), os.path.join(staging, name))
        tokenizer = load_tokenizer(staging)
        if len(tokenizer.get_vocab()) != config.vocab_size:
            raise CheckpointError(f"{dict_path} gives {len(tokenizer.get_vocab())} symbols but "
                                  f"the embeddings of {src} have {config.vocab_size} rows")
        # the positions the model has (fairseq's max_positions), not RoBERTa's 512
        tokenizer.model_max_length = config.max_position_embeddings - config.pad_token_id - 1
        out = os.path.join(staging, "out")
        cls(config, params).save_pretrained(out)
        tokenizer.save_pretrained(out)
        os.makedirs(out_dir, exist_ok=True)
        written = []
        for name in sorted(os.listdir(out)):
            shutil.move(os.path.join(out, name), os.path.join(out_dir, name))
            written.append(os.path.join(out_dir, name))
    return written
