"""Reading and writing RoBERTa checkpoints, and the ONE table of checkpoint key names.

Owns:
    read_safetensors      model.safetensors, memory-mapped: float32 tensors are read-only
                          views into the file (no copy); F16 / BF16 are upcast to float32
    read_torch_bin        pytorch_model.bin WITHOUT torch, zip and legacy formats, through a
                          restricted unpickler that builds tensors and refuses anything else
    read_tf_h5            tf_model.h5 (transformers 4.x TFRoberta*) WITHOUT TensorFlow, via h5py
    read_flax_msgpack     flax_model.msgpack (FlaxRoberta*) WITHOUT JAX / Flax, via msgpack
    tf_name_to_pt / flax_path_to_pt
                          their weight names as PyTorch spells them, so the table below is the
                          only one (h5py and msgpack are optional, imported only for such files)
    load_state_dict       find the weights of a folder / hub repo in transformers' order:
                          model.safetensors -> its index (shards) -> pytorch_model.bin -> index,
                          then tf_model.h5 -> flax_model.msgpack (or one: from_tf / from_flax)
    BASE_KEYS ... IGNORED the table: checkpoint name -> params path and shape, per model part,
                          and the reason for each key that is read and dropped
    params_from_state_dict / state_dict_from_params / init_params / save_safetensors

Leaves out: sharded TF / Flax checkpoints, TF1 `model.ckpt`, Rust checkpoints, quantised
weights, writing anything but safetensors.

The table is the only place that knows `attention.output.dense` or `LayerNorm.gamma`; the
math in layers.py / heads.py sees only the short params names (see their docstrings).

>>> from minirobera.config import RobertaConfig
>>> config = RobertaConfig(vocab_size=20, hidden_size=8, num_attention_heads=2,
...                        intermediate_size=12, num_hidden_layers=1, max_position_embeddings=16)
>>> params = init_params(config, ("encoder", "lm_head"), np.random.default_rng(0))
>>> sd = state_dict_from_params(config, params, ("encoder", "lm_head"), prefix="roberta.")
>>> sorted(sd)[:2]
['lm_head.bias', 'lm_head.dense.bias']
>>> back, report = params_from_state_dict(config, sd, ("encoder", "lm_head"))
>>> report
{'missing': [], 'unexpected': [], 'initialised': []}
>>> back["lm_head"]["decoder"]["w"] is back["embeddings"]["word"]   # tied: one array
True
"""

import collections
import copy
import fnmatch
import importlib
import io
import json
import os
import pickle
import re
import struct
import warnings
import zipfile
from typing import Dict, Iterable, Tuple

import numpy as np

from .hub import cached_file
from .limits import (BUDGET_FLOOR, MAX_DIMS, CheckpointError, ReadLimits, check_inflation,
                     check_strided, inflate_at_most, short)


# ===================================================================== the key table
# (checkpoint name without the `roberta.` prefix, params path, shape in config letters)
# Letters: V vocab, D hidden, F FFN, P positions, TT token types, L labels.
BASE_KEYS = [
    ("embeddings.word_embeddings.weight", "embeddings.word", "V D"),
    ("embeddings.position_embeddings.weight", "embeddings.position", "P D"),
    ("embeddings.token_type_embeddings.weight", "embeddings.token_type", "TT D"),
    ("embeddings.LayerNorm.weight", "embeddings.ln.g", "D"),
    ("embeddings.LayerNorm.bias", "embeddings.ln.b", "D"),
]
LAYER_KEYS = [  # repeated for every encoder layer i
    ("encoder.layer.{i}.attention.self.query.{wb}", "layers.{i}.q.{wb}", "D D"),
    ("encoder.layer.{i}.attention.self.key.{wb}", "layers.{i}.k.{wb}", "D D"),
    ("encoder.layer.{i}.attention.self.value.{wb}", "layers.{i}.v.{wb}", "D D"),
    ("encoder.layer.{i}.attention.output.dense.{wb}", "layers.{i}.attn_out.{wb}", "D D"),
    ("encoder.layer.{i}.attention.output.LayerNorm.{wb}", "layers.{i}.attn_ln.{gb}", "D"),
    ("encoder.layer.{i}.intermediate.dense.{wb}", "layers.{i}.ffn_in.{wb}", "F D"),
    ("encoder.layer.{i}.output.dense.{wb}", "layers.{i}.ffn_out.{wb}", "D F"),
    ("encoder.layer.{i}.output.LayerNorm.{wb}", "layers.{i}.ffn_ln.{gb}", "D"),
]
HEAD_KEYS = {  # part -> rows; a model class names the parts it has
    "pooler": [("pooler.dense.{wb}", "pooler.{wb}", "D D")],
    "lm_head": [("lm_head.dense.{wb}", "lm_head.dense.{wb}", "D D"),
                ("lm_head.layer_norm.{wb}", "lm_head.ln.{gb}", "D")],
    "sequence_classifier": [("classifier.dense.{wb}", "classifier.dense.{wb}", "D D"),
                            ("classifier.out_proj.{wb}", "classifier.out_proj.{wb}", "L D")],
    "token_classifier": [("classifier.{wb}", "classifier.{wb}", "L D")],
    "choice_classifier": [("classifier.{wb}", "classifier.{wb}", "1 D")],
    "qa_outputs": [("qa_outputs.{wb}", "qa_outputs.{wb}", "L D")],
}
# Quirk: the MLM decoder is tied to the word embeddings. Tied (tie_word_embeddings, as in
# roberta-base) the decoder IS the word-embedding matrix and its bias is `lm_head.bias`;
# untied, transformers 5 gives the decoder its own weight and bias (lm_head.bias is unused).
DECODER_KEYS = {True: [("lm_head.bias", "lm_head.decoder.b", "V")],
                False: [("lm_head.decoder.weight", "lm_head.decoder.w", "V D"),
                        ("lm_head.decoder.bias", "lm_head.decoder.b", "V")]}
# The decoder bias under its other name, read when the usual one is absent (older files).
DECODER_BIAS_ALIAS = {"lm_head.bias": "lm_head.decoder.bias",
                      "lm_head.decoder.bias": "lm_head.bias"}
# Parts whose parameters transformers creates fresh (with a warning) when a checkpoint
# lacks them, e.g. roberta-base has no pooler and no classifier. The encoder is never one.
FRESH_PARTS = ("pooler", "lm_head", "sequence_classifier", "token_classifier",
               "choice_classifier", "qa_outputs")
# Keys read and dropped on purpose: (pattern, when, reason). Anything else left over is
# reported as unexpected (e.g. cross-attention weights: this project has no decoder stack).
IGNORED = [
    ("embeddings.position_ids", "always",
     "a buffer holding arange(P); positions are computed from the padding instead"),
    ("embeddings.token_type_ids", "always", "a buffer of zeros; token type 0 is the default"),
    ("lm_head.decoder.weight", "tied", "tied: the word-embedding matrix is the decoder"),
    ("lm_head.decoder.bias", "tied", "tied: the same tensor as lm_head.bias"),
    ("lm_head.bias", "untied", "an untied decoder uses lm_head.decoder.bias instead"),
    ("pooler.dense.*", "no_pooler", "only RobertaModel and multiple choice have a pooler"),
]


def table_rows(config, parts) -> Iterable[Tuple[str, str, Tuple[int, ...], str]]:
    """Expand the table for a config: (checkpoint key, params path, shape, part) per tensor.

    >>> from minirobera.config import RobertaConfig
    >>> rows = list(table_rows(RobertaConfig(num_hidden_layers=1), ("encoder",)))
    >>> rows[5]
    ('encoder.layer.0.attention.self.query.weight', 'layers.0.q.w', (768, 768), 'encoder')
    """
    dims = {"V": config.vocab_size, "D": config.hidden_size, "F": config.intermediate_size,
            "P": config.max_position_embeddings, "TT": config.type_vocab_size,
            "L": config.num_labels, "1": 1}
    rows = []
    if "encoder" in parts:
        rows += [row + ("encoder",) for row in BASE_KEYS]
        rows += [(k.replace("{i}", str(i)), p.replace("{i}", str(i)), s, "encoder")
                 for i in range(config.num_hidden_layers) for k, p, s in LAYER_KEYS]
    for part in parts:
        rows += [row + (part,) for row in HEAD_KEYS.get(part, [])]
    if "lm_head" in parts:
        rows += [row + ("lm_head",) for row in DECODER_KEYS[bool(config.tie_word_embeddings)]]
    for key, path, shape, part in rows:
        shape = tuple(dims[c] for c in shape.split())
        if "{wb}" not in key:
            yield key, path, shape, part
            continue
        # a Linear has weight [out, in] + bias [out]; a LayerNorm has weight + bias [D]
        yield (key.replace("{wb}", "weight"), path.replace("{wb}", "w").replace("{gb}", "g"),
               shape, part)
        yield (key.replace("{wb}", "bias"), path.replace("{wb}", "b").replace("{gb}", "b"),
               shape[:1], part)


def normalise_key(key: str) -> str:
    """Strip the `roberta.` prefix and rename TF-era LayerNorm gamma/beta.

    >>> normalise_key("roberta.encoder.layer.0.output.LayerNorm.gamma")
    'encoder.layer.0.output.LayerNorm.weight'
    """
    if key.startswith("roberta."):  # head models keep the encoder under `roberta.`
        key = key[len("roberta."):]
    if key.endswith(".gamma"):  # old TF-converted checkpoints
        key = key[:-len("gamma")] + "weight"
    elif key.endswith(".beta"):
        key = key[:-len("beta")] + "bias"
    return key


def _ignored(key, config, parts):
    lm, tied = "lm_head" in parts, bool(config.tie_word_embeddings)
    when = {"always": True, "tied": lm and tied, "untied": lm and not tied,
            "no_pooler": "pooler" not in parts}
    return any(fnmatch.fnmatchcase(key, pattern) and when[cond] for pattern, cond, _ in IGNORED)


def read_limits(config, parts, source) -> ReadLimits:
    """What a checkpoint for a model with `parts` may hold, from the config alone: the shape
    of every tensor the table names (layer i's rows are layer 0's, so a config claiming 10**9
    layers costs nothing here), no other tensor larger than the largest of those, and twice
    their float32 bytes (+ BUDGET_FLOOR) for whatever the readers copy or inflate.

    >>> from minirobera.config import RobertaConfig
    >>> limits = read_limits(RobertaConfig(num_hidden_layers=10**9), ("encoder",), "x.bin")
    >>> limits.expected("roberta.encoder.layer.123456.output.dense.weight"), limits.largest
    ((768, 3072), 38603520)
    """
    one = copy.copy(config)
    one.num_hidden_layers = min(config.num_hidden_layers, 1)
    shapes = {name: shape for name, _path, shape, _part in table_rows(one, parts)}
    nbytes = {name: 4 * int(np.prod(shape, dtype=object)) for name, shape in shapes.items()}
    layer = sum(n for name, n in nbytes.items() if name.startswith("encoder.layer.0."))
    total = sum(nbytes.values()) + max(config.num_hidden_layers - 1, 0) * layer

    def expected(name):
        name = normalise_key(name)
        m = re.fullmatch(r"encoder\.layer\.(\d{1,9})\.(.*)", name)
        if m:
            if int(m[1]) >= config.num_hidden_layers:
                return None
            name = f"encoder.layer.0.{m[2]}"
        return shapes.get(name)
    layer_rows = sum(1 for name in shapes if name.startswith("encoder.layer.0."))
    rows = len(shapes) + max(config.num_hidden_layers - 1, 0) * layer_rows
    return ReadLimits(source, 2 * total + BUDGET_FLOOR, expected, max(nbytes.values()) // 4,
                      describe=f"hidden_size={config.hidden_size}, vocab_size="
                               f"{config.vocab_size}, num_labels={config.num_labels}",
                      max_tensors=4 * rows + 64)  # other heads, buffers, TF's duplicates


def checkpoint_layers(state_dict) -> int:
    """How many encoder layers a state dict holds: the layers 0, 1, 2, ... it has without a
    gap (one key at layer 999999999 does not make a billion layers).

    >>> checkpoint_layers({"roberta.encoder.layer.0.output.dense.bias": 0,
    ...                    "roberta.encoder.layer.1.output.dense.bias": 0, "lm_head.bias": 0})
    2
    >>> checkpoint_layers({"encoder.layer.0.x": 0, "encoder.layer.999999999.x": 0})
    1
    """
    found = {int(m[1]) for m in (re.match(r"encoder\.layer\.(\d{1,9})\.", normalise_key(k))
                                 for k in state_dict) if m}
    n = 0
    while n in found:
        n += 1
    return n


# ======================================================================= state dict <-> params

def params_from_state_dict(config, state_dict, parts, *, model_name="the model",
                           source="the checkpoint", rng=None):
    """Map a {checkpoint key: array} dict onto a params dict for a model with `parts`.

    Returns (params, report). Missing encoder weights are an error; missing head weights are
    initialised like transformers (normal(0, initializer_range), zero bias) with a warning;
    unexpected keys give a warning; a wrong shape is an error naming both shapes.
    """
    by_name = _by_name(state_dict, parts, source)
    have = checkpoint_layers(state_dict)
    if "encoder" in parts and have < config.num_hidden_layers:
        # before the table is expanded: a config claiming 10**9 layers fails here, at once
        fewer = copy.copy(config)
        fewer.num_hidden_layers = have + 1
        names = [name for name, *_ in table_rows(fewer, ("encoder",))]
        missing = [name for name in names if name not in by_name]
        raise _lacks(source, model_name, config, missing,
                     sorted({k for n, (k, _) in by_name.items() if n not in set(names)}), have)
    rows = list(table_rows(config, parts))  # bounded now: the checkpoint holds these layers
    _check_fresh_bytes(rows, by_name, state_dict, source)
    params, used, missing, fresh = {}, set(), [], []
    rng = np.random.default_rng() if rng is None else rng
    for name, path, shape, part in rows:
        if name not in by_name:
            (fresh if part in FRESH_PARTS else missing).append(name)
            _set(params, path, _fresh_value(path, shape, config, rng))
            continue
        key, value = by_name[name]
        used.add(name)
        _set(params, path, _as_float32(key, value, shape, source, config))
    if missing:
        # what the file has instead tells a BERT (`bert.`) or a deeper model (`layer.12`) apart
        raise _lacks(source, model_name, config, missing,
                     sorted(by_name[n][0] for n in by_name if n not in used))
    _layers_as_list(params)
    _tie(params, config, parts)
    unexpected = sorted({by_name[n][0] for n in by_name
                         if n not in used and not _ignored(n, config, parts)})
    _warn(model_name, source, unexpected, fresh)
    return params, {"missing": missing, "unexpected": unexpected, "initialised": fresh}


def _check_fresh_bytes(rows, by_name, state_dict, source):
    """Heads a checkpoint lacks are initialised fresh: bytes no file holds. Refuse more than
    the checkpoint's own tensors (or BUDGET_FLOOR) justify: a 160 KB file with a config of
    hidden_size 24000 would otherwise allocate a [D, D] LM head of 2.3 GB."""
    fresh = sum(4 * int(np.prod(shape, dtype=object)) for name, _path, shape, part in rows
                if name not in by_name and part in FRESH_PARTS)
    held = sum(getattr(v, "nbytes", 0) for v in state_dict.values())
    if fresh > max(BUDGET_FLOOR, held):
        raise CheckpointError(f"{source}: the model would initialise {fresh} bytes of weights "
                              f"the checkpoint does not hold (it holds {held}); refused: is "
                              f"config.json (hidden_size, num_labels) the checkpoint's own?")


def _lacks(source, model_name, config, missing, unused, have=None):
    instead = f" Unused in it: {_short(unused, 3)}." if unused else ""
    holds = "" if have is None else (f" It holds {have} encoder layers, not "
                                     f"{config.num_hidden_layers}.")
    return CheckpointError(f"{source} lacks weights {model_name} needs: {_short(missing)}.{holds} "
                           f"Is it a RoBERTa checkpoint with num_hidden_layers="
                           f"{config.num_hidden_layers}?{instead}")


def _by_name(state_dict, parts, source):  # {file key: array} -> {table name: (file key, array)}
    by_name = {}
    for key, value in state_dict.items():
        name = normalise_key(key)
        if name in by_name:
            raise CheckpointError(f"{source} holds {name!r} twice (with and without the "
                                  f"'roberta.' prefix?)")
        by_name[name] = (key, value)
    for name, other in DECODER_BIAS_ALIAS.items():
        if "lm_head" in parts and name not in by_name and other in by_name:
            by_name[name] = by_name[other]
    return by_name


def _warn(model_name, source, unexpected, fresh):
    # the wording of transformers' own load report, which users know
    if unexpected:
        warnings.warn(f"Some weights of the model checkpoint at {source} were not used when "
                      f"initializing {model_name}: {unexpected}", stacklevel=4)
    if fresh:
        warnings.warn(f"Some weights of {model_name} were not initialized from the model "
                      f"checkpoint at {source} and are newly initialized: {fresh}\nYou should "
                      f"probably TRAIN this model on a down-stream task to be able to use it "
                      f"for predictions and inference.", stacklevel=4)


def state_dict_from_params(config, params, parts, *, prefix="") -> Dict[str, np.ndarray]:
    """The transformers-named tensors of a model; `prefix` ("roberta.") goes on encoder and
    pooler keys of head models. The tied decoder is left out, as transformers does."""
    out = {}
    for name, path, _shape, part in table_rows(config, parts):
        key = prefix + name if part in ("encoder", "pooler") else name
        out[key] = np.ascontiguousarray(_get(params, path), dtype=np.float32)
    if "lm_head" in parts and not config.tie_word_embeddings:
        out["lm_head.bias"] = out["lm_head.decoder.bias"]  # unused, but transformers expects it
    return out


def init_params(config, parts, rng=None):
    """Fresh parameters as transformers initialises them (for models built from a config)."""
    rng = np.random.default_rng() if rng is None else rng
    params = {}
    for _name, path, shape, _part in table_rows(config, parts):
        _set(params, path, _fresh_value(path, shape, config, rng))
    _layers_as_list(params)
    _tie(params, config, parts)
    return params


def _fresh_value(path, shape, config, rng):
    # transformers' _init_weights: Linear / Embedding normal(0, initializer_range), biases 0,
    # LayerNorm weight 1; the padding row of an Embedding with padding_idx is zeroed
    if path.endswith(".g"):
        return np.ones(shape, np.float32)
    if path.endswith(".b"):
        return np.zeros(shape, np.float32)
    value = rng.normal(0.0, config.initializer_range, shape).astype(np.float32)
    if path in ("embeddings.word", "embeddings.position") and config.pad_token_id < shape[0]:
        value[config.pad_token_id] = 0.0
    return value


def _tie(params, config, parts):
    if "lm_head" in parts and config.tie_word_embeddings:
        # Quirk: the decoder is the word-embedding matrix itself (shared memory, not a copy)
        params["lm_head"]["decoder"]["w"] = params["embeddings"]["word"]


def _as_float32(key, value, shape, source, config):
    value = np.asarray(value)
    if tuple(value.shape) != shape:
        raise CheckpointError(f"{source}: tensor {key!r} has shape {tuple(value.shape)} but the "
                              f"config needs {shape} (hidden_size={config.hidden_size}, "
                              f"vocab_size={config.vocab_size}, num_labels={config.num_labels})")
    if value.dtype.kind != "f":
        raise CheckpointError(f"{source}: tensor {key!r} has dtype {value.dtype}, "
                              f"expected floating point")
    return value.astype(np.float32, copy=False)  # F16 / F64 upcast; float32 stays a view


def _set(tree, path, value):
    *parents, leaf = path.split(".")
    for name in parents:
        tree = tree.setdefault(name, {})
    tree[leaf] = value


def _get(tree, path):
    for name in path.split("."):
        tree = tree[int(name)] if isinstance(tree, list) else tree[name]
    return tree


def _short(names, n=8):
    return str(names if len(names) <= n else names[:n] + [f"... {len(names) - n} more"])


def _layers_as_list(params):
    """params["layers"] is built as {"0": {...}, "1": ...}; the math wants a list."""
    layers = params.get("layers", {})
    if isinstance(layers, dict) and (layers or "embeddings" in params):
        params["layers"] = [layers[str(i)] for i in range(len(layers))]
    return params


# ============================================================================ finding files

# transformers' order: safetensors first, shards next, the pickle-based .bin last; then the
# TensorFlow and Flax files of transformers 4.x (transformers itself asks for from_tf=True /
# from_flax=True there; this project reads them when nothing else is in the folder)
TF_WEIGHTS, FLAX_WEIGHTS = "tf_model.h5", "flax_model.msgpack"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "pytorch_model.bin.index.json", TF_WEIGHTS, FLAX_WEIGHTS)


def load_state_dict(path_or_repo_id, *, revision="main", from_tf=False, from_flax=False,
                    limits=None, **hub_kwargs):
    """Find and read the weights of a folder or hub repo; return ({key: array}, source path).

    With from_tf=True (from_flax=True) only tf_model.h5 (flax_model.msgpack) is looked for, as
    in transformers, even when the folder has PyTorch weights too. `limits` (read_limits of
    the config) bounds what the files may declare; without it each file is bounded by its size.
    """
    if from_tf and from_flax:
        raise ValueError("from_tf=True and from_flax=True exclude each other: pick the one file "
                         "to load")
    filenames = (TF_WEIGHTS,) if from_tf else (FLAX_WEIGHTS,) if from_flax else WEIGHT_FILES
    for filename in filenames:
        path = cached_file(path_or_repo_id, filename, revision=revision, required=False,
                           **hub_kwargs)
        if path is None:
            continue
        if filename.endswith(".index.json"):
            return _read_sharded(path_or_repo_id, path, revision, hub_kwargs, limits), path
        return read_weights(path, limits and limits.at(path)), path
    where = os.fspath(path_or_repo_id)
    if from_tf or from_flax:
        raise FileNotFoundError(f"{'from_tf' if from_tf else 'from_flax'}=True but there is no "
                                f"{filenames[0]} in {where!r}; without the flag any of "
                                f"{', '.join(WEIGHT_FILES)} is loaded")
    raise FileNotFoundError(f"no weights found in {where!r}: looked for {', '.join(WEIGHT_FILES)}")


def read_weights(path, limits=None) -> Dict[str, np.ndarray]:
    """Read one weight file by its name: .safetensors, .h5 (TF), .msgpack (Flax), else .bin.
    The TF and Flax names come back as PyTorch's, their kernels transposed."""
    path = os.fspath(path)
    limits = limits or ReadLimits.for_file(path)
    if path.endswith(".safetensors"):
        return read_safetensors(path, limits)
    if path.endswith(".h5"):
        return read_tf_h5(path, limits)
    if path.endswith(".msgpack"):
        return read_flax_msgpack(path, limits)
    return read_torch_bin(path, limits)


def _read_sharded(path_or_repo_id, index_path, revision, hub_kwargs, limits):
    weight_map = _shard_index(index_path)
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        path = cached_file(path_or_repo_id, shard, revision=revision, **hub_kwargs)
        tensors.update(read_weights(path, limits and limits.at(path)))
    absent = sorted(set(weight_map) - set(tensors))
    if absent:
        raise CheckpointError(f"{index_path} lists tensors its shards do not hold: "
                              f"{_short(absent)}")
    return tensors


def _shard_index(index_path) -> Dict[str, str]:
    """{tensor name: shard file name} of a *.index.json; a shard is a weight file in the same
    folder (no path: nothing outside the repo is read through an index)."""
    try:
        with open(index_path, encoding="utf-8") as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{index_path} is not a valid shard index (not JSON): {e}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index_path}: 'weight_map' must be an object mapping tensor names "
                              f"to shard files, got {type(weight_map).__name__}")
    for name, shard in weight_map.items():
        if not (isinstance(shard, str) and re.fullmatch(r"[\w.\-]{1,255}", shard)
                and shard not in (".", "..")
                and shard.endswith((".safetensors", ".bin", ".h5", ".msgpack"))):
            raise CheckpointError(f"{index_path}: weight_map[{name!r}] = {shard!r:.80} is not the "
                                  f"name of a weight file beside the index")
    return weight_map


# ============================================================================ safetensors

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64,
                       "BF16": np.uint16, "I64": np.int64, "I32": np.int32, "I16": np.int16,
                       "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path, limits=None) -> Dict[str, np.ndarray]:
    """All tensors of a .safetensors file; float32 ones are read-only views of a memory map.

    The safetensors package validates the file (header, offsets without holes, size); the
    views are then cut from one np.memmap with the offsets of the header, so no tensor is
    copied. BF16 has no NumPy dtype: its bits are the top half of a float32, so it is
    shifted left 16 bits and viewed as float32 (a copy, as is F16's upcast).

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> save_safetensors({"w": np.eye(2, dtype=np.float32)}, path)
    >>> w = read_safetensors(path)["w"]
    >>> w.tolist(), w.flags.writeable   # a read-only view of the mapped file
    ([[1.0, 0.0], [0.0, 1.0]], False)
    """
    from safetensors import safe_open

    path = os.fspath(path)
    limits = limits or ReadLimits.for_file(path)
    try:
        with safe_open(path, framework="numpy") as f:  # validates; raises on a bad file
            names = set(f.keys())
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
    except Exception as e:  # SafetensorError, OSError, ValueError, struct.error
        raise CheckpointError(f"{path} is not a valid safetensors file (truncated or "
                              f"corrupt?): {e}") from None
    header.pop("__metadata__", None)
    if set(header) != names:
        raise CheckpointError(f"{path}: header and safetensors disagree on the tensor names")
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n) if header else None
    out = {}
    limits.admit_count(len(header))
    for name, info in header.items():
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        limits.admit(name, info["shape"])
        begin, end = info["data_offsets"]
        try:  # the package validated offsets against shapes; numpy's own limits remain
            array = data[begin:end].view(_SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
        except (ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: tensor {short(name)} cannot be cut out: {e}") from None
        if info["dtype"] == "BF16":
            limits.charge(4 * array.size, f"tensor {name!r} as float32")
            array = _bf16_to_f32(array)
        out[name] = array
    return out


def _bf16_to_f32(bits):  # uint16 [...] -> float32 [...]
    return (bits.astype(np.uint32) << 16).view(np.float32)


def save_safetensors(tensors: Dict[str, np.ndarray], path) -> None:
    """Write tensors with the metadata transformers expects ({"format": "pt"})."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.fspath(path),
              metadata={"format": "pt"})


# ===================================================================== pytorch_model.bin

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16,
                   "BFloat16Storage": "bf16", "DoubleStorage": np.float64,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                   "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
# The pickle of a state dict is a list of names and views (~60 KB for roberta-large, 25 KB
# for a fairseq checkpoint with its optimizer state); a pickle of more than this is refused,
# which bounds what its opcodes can build (a million empty dicts at most, well under a
# second and 100 MB in the pure-Python unpickler below).
PICKLE_LIMIT = 512 << 10


class _StorageType:
    """Stands in for torch.FloatStorage & co.: only remembers the dtype."""

    def __init__(self, name):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


class _LazyTensor:
    """What `_rebuild_tensor_v2` returns: a strided view description, filled in later
    (the legacy format stores the bytes after the pickle)."""

    def __init__(self, storage_key, offset, size, stride):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, str):  # only a persistent id (a storage key) may be viewed
        raise CheckpointError("the pickle builds a tensor on something that is not a storage")
    if not all(isinstance(v, (tuple, list)) and len(v) <= MAX_DIMS for v in (size, stride)):
        raise CheckpointError(f"the pickle builds a tensor of size {short(size)}, stride "
                              f"{short(stride)}: at most {MAX_DIMS} dimensions")
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


def _ordered_dict(*args, **kwargs):
    """collections.OrderedDict as torch pickles it: called empty, filled by SETITEMS (whose
    keys are checked); with arguments it would hash whatever the pickle built."""
    if args or kwargs:
        raise CheckpointError("the pickle calls OrderedDict with arguments; torch never does")
    return collections.OrderedDict()


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data  # an nn.Parameter is just its tensor here


class _StandIn:
    """An allowed global as the pickle sees it: a fresh callable per lookup that the pickle
    cannot modify (a BUILD opcode on it is refused), so no load can tamper with the next."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __setstate__(self, state):
        raise CheckpointError("the pickle tries to modify an allowed global; refused")


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickles a state dict and nothing else: every global is looked up in an allow-list
    of harmless stand-ins. Nothing from the file is ever imported or called.

    ALLOWED is the whole list (a test holds it to exactly these three); the storage types
    (torch.FloatStorage & co.) are answered with _StorageType, which only names a dtype.
    It is pickle's pure-Python unpickler, reading the pickle from memory (_pickle_bytes): a
    length the pickle declares (BINBYTES8 of 2**40) is asked of that buffer, which gives what
    it has, where the C unpickler allocates it first; and its dispatch table below checks dict
    keys before they are hashed.
    """

    ALLOWED = {("collections", "OrderedDict"): _ordered_dict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
               # transformers' files hold plain tensors; older ones may hold nn.Parameters
               ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}
    WHAT = "a .bin file is a pickle, and only tensors (OrderedDict, " \
           "torch._utils._rebuild_tensor_v2, torch.*Storage) are allowed"

    def __init__(self, file, path, storages):
        super().__init__(file)
        self.path, self.storages = path, storages  # storages: key -> (dtype, numel)

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return _StandIn(self.ALLOWED[(module, name)])
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"{self.path}: refusing to load global '{module}.{name}': "
                              f"{self.WHAT}. Nothing from the file was executed.")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata (legacy only)])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage")
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], (str, bytes))
                and isinstance(pid[4], int) and not isinstance(pid[4], bool) and pid[4] >= 0):
            raise CheckpointError(f"{self.path}: unknown persistent id {short(pid)}")
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError(f"{self.path}: storage views (torch < 0.4 files) are not "
                                  f"supported")
        key = pid[2].decode("ascii", "replace") if isinstance(pid[2], bytes) else pid[2]
        self.storages[key] = (pid[1].dtype, pid[4])
        return key


def _plain_keys(keys, path):
    """Dict keys a state dict can have: str (tensor names) or int (an optimizer's parameter
    ids). Checked BEFORE the dict hashes them: a tuple key nested a million deep crashes
    CPython's tuple hash (no recursion guard), one shared at every level never returns."""
    for key in keys:
        if type(key) not in (str, int):
            raise CheckpointError(f"{path}: the pickle uses a {type(key).__name__} as a dict key; "
                                  f"only names (str) and ids (int) are allowed")


def _setitem(self):  # SETITEM: stack [..., dict, key, value]
    _plain_keys(self.stack[-2:-1], self.path)
    pickle._Unpickler.dispatch[pickle.SETITEM[0]](self)


def _setitems(self):  # SETITEMS / DICT: the items after the mark are key, value, key, ...
    _plain_keys(self.stack[0::2], self.path)
    pickle._Unpickler.dispatch[pickle.SETITEMS[0]](self)


def _dict(self):
    _plain_keys(self.stack[0::2], self.path)
    pickle._Unpickler.dispatch[pickle.DICT[0]](self)


def _no_sets(self):  # EMPTY_SET, FROZENSET, ADDITEMS: torch never pickles a set
    raise CheckpointError(f"{self.path}: the pickle builds a set; a state dict holds none")


_RestrictedUnpickler.dispatch = {**pickle._Unpickler.dispatch,
                                 pickle.SETITEM[0]: _setitem, pickle.SETITEMS[0]: _setitems,
                                 pickle.DICT[0]: _dict, pickle.EMPTY_SET[0]: _no_sets,
                                 pickle.FROZENSET[0]: _no_sets, pickle.ADDITEMS[0]: _no_sets}


def _pickle_bytes(stream, path, legacy=False) -> io.BytesIO:
    """The pickle part of a torch file, read whole into memory but never more than
    PICKLE_LIMIT bytes of it: no length a pickle declares (BINBYTES8 of 2**40 ...) is then
    ever read or allocated, and the unpickler reads from memory, not a byte at a time from
    a zip member. A legacy file's five pickles come first, then the storages' bytes."""
    data = stream.read(PICKLE_LIMIT + 1)
    if len(data) > PICKLE_LIMIT and not legacy:
        raise CheckpointError(f"{path}: its pickle runs past {PICKLE_LIMIT} bytes, far more than "
                              f"a state dict needs; refused")
    return io.BytesIO(data[:PICKLE_LIMIT])


def read_torch_bin(path, limits=None) -> Dict[str, np.ndarray]:
    """All tensors of a pytorch_model.bin (zip or legacy format), without torch.

    Storages are views of a memory map where the file stores them uncompressed; tensors
    sharing a storage (tied weights) share memory. Every tensor's shape is checked against
    `limits` (what the config justifies; the file's size without one) and its view against
    its storage BEFORE anything is read or copied (minirobera/limits.py).
    """
    tree, tensors = read_torch_pickle(path, limits=limits)
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path} holds a {type(tree).__name__}, not a state dict")
    return tensors(tree)


def read_torch_pickle(path, unpickler=_RestrictedUnpickler, limits=None):
    """(tree, tensors): the unpickled tree of a torch file, read through `unpickler` (a
    _RestrictedUnpickler subclass may admit more plain data: fairseq.py's args), and
    tensors(d) -> {str(key): array} for the tensor values of a dict d in that tree; no other
    tensor of the file (a training checkpoint's optimizer state) is ever read."""
    path = os.fspath(path)
    limits = limits or ReadLimits.for_file(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        reader = _read_zip_bin if magic == b"PK\x03\x04" else _read_legacy_bin
        tree, storages, load_all = reader(path, unpickler)
    except CheckpointError:
        raise
    except Exception as e:  # a truncated pickle, zip or data section; junk arguments
        raise _unreadable(path, e) from None

    def tensors(d):
        try:
            return _tensors_from(d, storages, load_all, limits, path)
        except CheckpointError:
            raise
        except Exception as e:
            raise _unreadable(path, e) from None
    return tree, tensors


def _unreadable(path, e):
    return CheckpointError(f"{path} is not a readable torch checkpoint (truncated or corrupt?): "
                           f"{type(e).__name__}: {e}")


def _tensors_from(d, storages, load_all, limits, path):
    """Admit every tensor's shape, check its view against its storage, then read only the
    part of each storage its tensors reach, and cut the tensors out of it."""
    limits.admit_count(len(d), "entries in its state dict")
    lazy = {str(k): v for k, v in d.items() if isinstance(v, _LazyTensor)}
    need = {}
    for key, t in lazy.items():
        if t.storage_key not in storages:
            raise CheckpointError(f"{path}: tensor {key!r} views an unknown storage")
        limits.admit(key, t.size)
        reach = check_strided(path, key, t.size, t.stride, t.offset, storages[t.storage_key][1])
        need[t.storage_key] = max(need.get(t.storage_key, 0), reach)
    arrays = load_all(need, limits)
    return {key: _materialise(t, arrays[t.storage_key], limits, key) for key, t in lazy.items()}


def _raw_dtype(dtype, big_endian=False):  # a storage's element type as stored in the file
    raw = np.dtype(np.uint16 if isinstance(dtype, str) else dtype)  # "bf16": its uint16 bits
    return raw.newbyteorder(">") if big_endian else raw


def _read_zip_bin(path, unpickler):
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise CheckpointError(f"{path}: a zip without exactly one data.pkl is not a "
                                  f"torch checkpoint")
        root = pkl[0][:-len("data.pkl")]
        storages = {}
        with z.open(pkl[0]) as stream:
            tree = unpickler(_pickle_bytes(stream, path), path, storages).load()
        big = (root + "byteorder" in z.namelist()
               and z.open(root + "byteorder").read(8).strip() == b"big")

    def load_all(need, limits):  # {storage key: the first n elements it must have}
        with zipfile.ZipFile(path) as z:
            return {key: _zip_storage(z, path, root + "data/" + key,
                                      _raw_dtype(storages[key][0], big), n, limits)
                    for key, n in need.items()}
    return tree, storages, load_all


def _zip_storage(z, path, name, raw, numel, limits):
    nbytes = numel * raw.itemsize
    info = z.getinfo(name)
    with open(path, "rb") as f:  # the member's bytes start after its local header and extras
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{path}: storage {name!r} has no local zip header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        if info.compress_type == zipfile.ZIP_STORED:  # a view of the file, nothing allocated
            if info.file_size < nbytes or start + nbytes > os.path.getsize(path):
                raise CheckpointError(f"{path}: storage {name!r} is truncated ("
                                      f"{info.file_size} bytes, needs {nbytes})")
            data = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(nbytes,))
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            # inflate only what the tensors reach, a chunk at a time, never more than 16x
            # what was read of the file (compress_size is the writer's word, not a fact)
            check_inflation(path, name, nbytes, info.compress_size)
            limits.charge(nbytes, f"compressed storage {name!r}")
            f.seek(start)
            data = np.frombuffer(inflate_at_most(f, nbytes, path, name), np.uint8)
        else:
            raise CheckpointError(f"{path}: storage {name!r} is compressed with zip method "
                                  f"{info.compress_type}; torch writes stored members")
    return data.view(raw)


def _read_legacy_bin(path, unpickler):
    storages = {}
    with open(path, "rb") as raw_file:
        f = _pickle_bytes(raw_file, path, legacy=True)
        for expected in (_LEGACY_MAGIC, _LEGACY_PROTOCOL):
            if unpickler(f, path, storages).load() != expected:
                raise CheckpointError(f"{path} is neither a zip nor a legacy torch checkpoint "
                                      f"(bad magic number or protocol)")
        sys_info = unpickler(f, path, storages).load()
        tree = unpickler(f, path, storages).load()
        keys = unpickler(f, path, storages).load()
        offset = f.tell()  # where the pickles end in the file: the storages follow
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise CheckpointError(f"{path}: big-endian legacy checkpoints are not supported")
    if not isinstance(keys, list) or set(keys) - set(storages):
        raise CheckpointError(f"{path}: its list of storages does not match its tensors")
    whole = np.memmap(path, dtype=np.uint8, mode="r")
    spans = {}
    for key in keys:  # each storage: int64 element count, then its raw bytes
        (count,) = struct.unpack("<q", bytes(whole[offset:offset + 8]))
        nbytes = count * _raw_dtype(storages[key][0]).itemsize
        if count < 0 or offset + 8 + nbytes > whole.shape[0]:
            raise CheckpointError(f"{path}: storage {key!r} is truncated or has a negative size")
        spans[key] = (offset + 8, count)
        offset += 8 + nbytes

    def load_all(need, limits):  # views of the memory map, nothing allocated
        for key, numel in need.items():
            if numel > spans[key][1]:
                raise CheckpointError(f"{path}: storage {key!r} holds {spans[key][1]} elements, "
                                      f"its tensors reach {numel}")
        return {key: whole[spans[key][0]:][:numel * _raw_dtype(storages[key][0]).itemsize]
                .view(_raw_dtype(storages[key][0])) for key, numel in need.items()}
    return tree, storages, load_all


def _materialise(t, storage, limits, key):
    """The tensor a view describes; check_strided has already put it inside `storage`."""
    size, stride = t.size, t.stride
    n = int(np.prod(size, dtype=np.int64))
    row_major = tuple(int(np.prod(size[i + 1:], dtype=np.int64)) for i in range(len(size)))
    if stride == row_major or n == 0:
        array = storage[t.offset:t.offset + n].reshape(size)  # a view, no copy
    else:  # e.g. a transposed tensor: copy out of the strided view (its size was admitted)
        limits.charge(n * storage.dtype.itemsize, f"tensor {key!r}")
        view = np.lib.stride_tricks.as_strided(storage[t.offset:], shape=size, writeable=False,
                                               strides=[s * storage.dtype.itemsize for s in stride])
        array = np.array(view)
    if not array.dtype.isnative:  # a big-endian file
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype == np.uint16:  # uint16 = BF16 bits
        limits.charge(n * 4, f"tensor {key!r} as float32")
        return _bf16_to_f32(array)
    return array


# ================================================================ TensorFlow and Flax names
# Keras and Flax store a Dense kernel [in, out] (x @ kernel) where PyTorch's Linear stores its
# weight [out, in]: kernels, and nothing else, are transposed. The renames of the last name
# part are transformers 4.x's (convert_tf_weight_name_to_pt_weight_name for TF, the Flax ->
# PyTorch loader for Flax); after them a name is PyTorch's and the key table above takes over.
TF_LEAF_NAMES = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias"}
FLAX_LEAF_NAMES = {"kernel": "weight", "embedding": "weight", "scale": "weight"}


def tf_name_to_pt(tf_name: str) -> Tuple[str, bool]:
    """A Keras variable name as PyTorch spells it, and whether its value must be transposed.

    >>> tf_name_to_pt("tf_roberta_for_masked_lm/roberta/encoder/layer_._0/attention/self/query/kernel:0")
    ('roberta.encoder.layer.0.attention.self.query.weight', True)
    >>> tf_name_to_pt("tf_roberta_model_1/roberta/embeddings/position_embeddings/embeddings:0")
    ('roberta.embeddings.position_embeddings.weight', False)
    """
    # ':0' is the variable's output index; `layer_._3` is how transformers' TF names list items
    parts = tf_name.replace(":0", "").replace("_._", "/").split("/")
    if len(parts) > 1:  # level zero: the Keras model's name, `_1`, `_2`... once a process made two
        parts = parts[1:]
    leaf = parts[-1]
    return ".".join(parts[:-1] + [TF_LEAF_NAMES.get(leaf, leaf)]), leaf == "kernel"


def flax_path_to_pt(path: Tuple[str, ...]) -> Tuple[str, bool]:
    """A Flax params path as PyTorch spells it, and whether its value must be transposed.

    >>> flax_path_to_pt(("roberta", "encoder", "layer", "0", "output", "LayerNorm", "scale"))
    ('roberta.encoder.layer.0.output.LayerNorm.weight', False)
    >>> flax_path_to_pt(("qa_outputs", "kernel"))
    ('qa_outputs.weight', True)
    """
    *parents, leaf = path
    return ".".join([*parents, FLAX_LEAF_NAMES.get(leaf, leaf)]), leaf == "kernel"


def _optional_import(module, path):
    """h5py and msgpack are imported when such a file is read, never by `import minirobera`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"reading {os.path.basename(path)} needs the {module} package, which "
                          f"is not installed: pip install {module}") from None


def _pt_named(pairs, limits):  # (TF/Flax name, array, PyTorch name, transpose) -> {name: array}
    tensors = {}
    for own_name, value, name, transpose in pairs:
        limits.admit(name, value.shape[::-1] if transpose else value.shape)
        if transpose:
            limits.charge(value.nbytes, f"{own_name!r} transposed")
            value = np.ascontiguousarray(value.T)
        if name in tensors:  # TF's lm_head saves the embeddings it is tied to a second time
            if not np.array_equal(tensors[name], value):
                raise CheckpointError(f"{limits.path} holds {own_name!r} twice, with different "
                                      f"values")
            continue
        tensors[name] = value
    return tensors


# =============================================================================== tf_model.h5

def read_tf_h5(path, limits=None) -> Dict[str, np.ndarray]:
    """All weights of a tf_model.h5 (TFRoberta*.save_pretrained), under PyTorch's names.

    The file is Keras' save_weights HDF5: the root attribute `layer_names` lists the model's
    layers, each a group whose attribute `weight_names` lists its variables by full name
    ("tf_roberta_model/roberta/encoder/layer_._0/.../kernel:0"), each a dataset at that path in
    the group. Layers without weights (dropout) list none; `top_level_model_weights` is empty.
    The model then runs as PyTorch runs it: TFRobertaEmbeddings counted positions from a
    hard-coded padding_idx 1, which only differs for checkpoints with another pad_token_id.

    HDF5 can point out of the file: external links, soft links, external raw storage (bytes of
    any local file) and virtual datasets. Only hard links to plain datasets inside the file are
    followed; a dataset's shape, dtype, chunks and filters are checked before it is read.
    """
    h5py = _optional_import("h5py", path)
    path = os.fspath(path)
    limits = limits or ReadLimits.for_file(path)
    try:
        with h5py.File(path, "r") as f:
            return _pt_named(((name, value) + tf_name_to_pt(name)
                              for name, value in _keras_weights(h5py, f, limits)), limits)
    except CheckpointError:
        raise
    except Exception as e:  # h5py's OSError for a truncated or non-HDF5 file, a KeyError, ...
        raise CheckpointError(f"{path} is not a readable tf_model.h5 (truncated, corrupt or not "
                              f"HDF5?): {type(e).__name__}: {e}") from None


def _keras_weights(h5py, f, limits):  # -> (variable name, array), in the file's name order
    """Every dataset of the Keras layer groups, found by walking hard links only. The names
    Keras lists in the `layer_names` / `weight_names` attributes are the same as those paths,
    but those attributes are not read: an array of variable-length strings can name one 2 MB
    heap string 300 times, 600 MB to read, and HDF5 reads it all before anything can check."""
    if "layer_names" not in f.attrs and "layer_names0" not in f.attrs:  # (over 64 KB: split)
        raise CheckpointError(f"{limits.path} is an HDF5 file but not Keras weights (no "
                              f"'layer_names' attribute): was it saved by a TFRoberta* model's "
                              f"save_pretrained?")
    seen = [0]
    for layer in f:
        group = _inside(h5py, f, layer, limits.path)
        if not isinstance(group, h5py.Group):  # Keras keeps every layer in a group of its own
            continue
        for name, dataset in _datasets(h5py, group, "", limits, seen):
            pt_name, transpose = tf_name_to_pt(name)
            yield name, _h5_read(h5py, dataset, pt_name, transpose, limits)


def _datasets(h5py, group, prefix, limits, seen):  # -> (path below the layer, dataset)
    for part in group:
        seen[0] += 1
        limits.admit_count(seen[0], "HDF5 objects")
        obj = _inside(h5py, group, part, limits.path)
        if isinstance(obj, h5py.Group):
            yield from _datasets(h5py, obj, f"{prefix}{part}/", limits, seen)
        else:
            yield prefix + part, obj


def _inside(h5py, group, name, path):
    """group[name], following hard links only (no soft or external link leaves the file)."""
    obj = group
    for part in name.split("/"):
        link = obj.get(part, getlink=True) if isinstance(obj, h5py.Group) else None
        if not isinstance(link, h5py.HardLink):
            what = "missing" if link is None else f"a {type(link).__name__}"
            raise CheckpointError(f"{path}: {short(name)} is {what} at {short(part)}; only "
                                  f"objects stored in the file itself (hard links) are read")
        obj = obj[part]
    return obj


_H5_FILTERS = {"gzip", "shuffle", "fletcher32", "lzf"}  # what h5py writes; no plugin is loaded


def _h5_read(h5py, dataset, pt_name, transpose, limits):
    path, name = limits.path, dataset.name
    if not isinstance(dataset, h5py.Dataset):
        raise CheckpointError(f"{path}: {name!r} is not a dataset")
    if dataset.is_virtual or dataset.external:
        raise CheckpointError(f"{path}: {name!r} keeps its data outside the file (virtual "
                              f"dataset or external storage); refused")
    if dataset.dtype.kind != "f" or dataset.dtype.itemsize not in (2, 4, 8):
        raise CheckpointError(f"{path}: {name!r} has dtype {dataset.dtype}, expected float")
    unknown = set(dataset._filters) - _H5_FILTERS
    if unknown:
        raise CheckpointError(f"{path}: {name!r} needs HDF5 filters {sorted(unknown)}; only "
                              f"{sorted(_H5_FILTERS)} are read")
    shape = tuple(dataset.shape or ())
    limits.admit(pt_name, shape[::-1] if transpose else shape)
    nbytes = int(np.prod(shape, dtype=object)) * dataset.dtype.itemsize
    chunk = int(np.prod(dataset.chunks or (0,), dtype=object)) * dataset.dtype.itemsize
    if chunk > max(nbytes, 1 << 20):
        raise CheckpointError(f"{path}: {name!r} declares chunks of {chunk} bytes for {nbytes} "
                              f"bytes of data; refused")
    check_inflation(path, name, nbytes, _h5_stored_bytes(dataset, nbytes, chunk, path))
    limits.charge(nbytes, f"dataset {name!r}")
    return dataset[()]


def _h5_stored_bytes(dataset, nbytes, chunk, path):
    """The bytes a dataset really has in the file. Chunked: every chunk inside the file and
    no two overlapping, summed from their extents (HDF5's get_storage_size adds the sizes the
    chunk index claims, which a writer can inflate so that chunks overlap)."""
    if not dataset.chunks:
        return dataset.id.get_storage_size()
    count = dataset.id.get_num_chunks()
    if count > nbytes // max(chunk, 1) + 1 + (1 << 16):
        raise CheckpointError(f"{path}: {dataset.name!r} lists {count} chunks for {nbytes} bytes")
    extents = sorted((info.byte_offset, info.size)
                     for info in map(dataset.id.get_chunk_info, range(count)))
    end, file_size = 0, os.path.getsize(path)
    for offset, size in extents:
        if offset < end or offset + size > file_size:
            raise CheckpointError(f"{path}: {dataset.name!r} has chunks that overlap or run past "
                                  f"the end of the file; refused")
        end = offset + size
    return sum(size for _, size in extents)


# ======================================================================== flax_model.msgpack

_FLAX_ARRAY = 1  # flax.serialization's msgpack ext type code for an ndarray
_FLAX_CHUNKED = "__msgpack_chunked_array__"


def read_flax_msgpack(path, limits=None) -> Dict[str, np.ndarray]:
    """All params of a flax_model.msgpack (FlaxRoberta*.save_pretrained), under PyTorch's names.

    The file is flax.serialization's msgpack: nested maps of str keys ("roberta", "encoder",
    "layer", "0", ..., "kernel") down to arrays, each an ext type 1 whose payload is msgpack of
    (shape, dtype name, raw C-order bytes). An array over 2**30 bytes is split into the map
    {"__msgpack_chunked_array__": True, "shape": {"0": d0, ...}, "chunks": {"0": flat0, ...}}.
    FlaxRobertaModel's params have no "roberta" level (normalise_key takes both).
    """
    msgpack = _optional_import("msgpack", path)
    path = os.fspath(path)
    limits = limits or ReadLimits.for_file(path)
    with open(path, "rb") as f:
        data = f.read()
    maps = [0]

    def count_map(d):  # every map, counted as it is built: a 10 MB file can hold 10**7 of them
        maps[0] += 1
        if maps[0] > 4 * limits.max_tensors:  # a params tree has a map or two per tensor
            raise CheckpointError(f"{path} holds more than {4 * limits.max_tensors} maps, far "
                                  f"more than a params tree of {limits.max_tensors} tensors")
        return d
    try:
        tree = msgpack.unpackb(data, ext_hook=lambda code, payload: _flax_array(
            msgpack, code, payload, limits), raw=False, strict_map_key=False,
            object_hook=count_map, max_array_len=MAX_DIMS, max_map_len=limits.max_tensors)
        if not isinstance(tree, dict):
            raise CheckpointError(f"{path} holds a msgpack {type(tree).__name__}, not the map of "
                                  f"params a FlaxRoberta* model saves")
        return _pt_named((("/".join(keys), value) + flax_path_to_pt(keys)
                          for keys, value in _flax_leaves(tree, (), limits)), limits)
    except CheckpointError:
        raise
    except Exception as e:  # msgpack's errors for a cut or junk file, a bad payload, ...
        raise CheckpointError(f"{path} is not a readable flax_model.msgpack (truncated or "
                              f"corrupt?): {type(e).__name__}: {e}") from None


def _flax_array(msgpack, code, payload, limits):  # an ext type -> ndarray (a read-only view)
    if code != _FLAX_ARRAY:  # (flax's 2 and 3, complex numbers and scalars, are no params)
        raise CheckpointError(f"{limits.path}: msgpack ext type {code} is not a flax array")
    shape, dtype, buffer = msgpack.unpackb(payload, raw=True,  # as flax reads it
                                           max_array_len=MAX_DIMS, max_map_len=0)
    dtype = dtype.decode()
    if dtype == "bfloat16":  # flax's to_bf16 params; NumPy has no bfloat16
        limits.charge(2 * len(buffer), "a bfloat16 array as float32")
        return _bf16_to_f32(np.frombuffer(buffer, "<u2")).reshape(shape)
    if np.dtype(dtype).kind not in "fiub":  # an object or void dtype is no param
        raise CheckpointError(f"{limits.path}: msgpack array of dtype {dtype!r} is not a param")
    return np.frombuffer(buffer, np.dtype(dtype).newbyteorder("<")).reshape(shape)


def _flax_leaves(tree, prefix, limits):  # -> (key path, array) for every leaf
    path = limits.path
    for key, value in tree.items():
        keys = prefix + (str(key),)
        if isinstance(value, dict) and value.get(_FLAX_CHUNKED):  # 1-D pieces of a C-order array
            pieces, shape = value["chunks"], value["shape"]
            pieces = [np.asarray(pieces[str(i)]) for i in range(len(pieces))]
            limits.charge(sum(p.nbytes for p in pieces), f"chunked array {'/'.join(keys)!r}")
            value = np.concatenate(pieces).reshape([shape[str(i)] for i in range(len(shape))])
        if isinstance(value, dict):
            yield from _flax_leaves(value, keys, limits)
        elif isinstance(value, np.ndarray):
            yield keys, value
        else:
            raise CheckpointError(f"{path}: {'/'.join(keys)[:200]} is not an array but "
                                  f"{type(value).__name__} {short(value)}: not a FlaxRoberta* "
                                  f"checkpoint")
