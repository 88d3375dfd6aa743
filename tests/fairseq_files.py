"""Test helpers for fairseq checkpoints: finding Sapiens, and writing fairseq-shaped `.pt`
files WITHOUT torch (so the hostile and synthetic ones need nothing but the standard library).

`write_pt(path, tree, fmt)` pickles `tree` as torch.save would (the zip layout, or the legacy
stream of pickles followed by raw storages), where the tree may hold:
  Tensor(array)            -> torch._utils._rebuild_tensor_v2 over a torch.FloatStorage
  Namespace(dict)          -> argparse.Namespace, built by NEWOBJ + BUILD as Python pickles it
  Call(module, name, args) -> the global module.name called on args (REDUCE): hostile ones
  Build(target, state)     -> BUILD with `state` on `target` (to tamper with an object)
  Raw(bytes)               -> what pickle.dumps(value, protocol=2) wrote, spliced in
Nothing here imports torch or fairseq.
"""

import collections
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAPIENS_VERSION = "1.0.5"


# ============================================================ Sapiens (MIT, Merck): where it is

def find_sapiens():
    """(folder with checkpoint_vh.pt, checkpoint_vl.pt, dict.txt, or None, why not): the
    notebooks' walkthrough.find_sapiens, which looks in $MINIROBERA_SAPIENS, ../shared/sapiens
    beside the checkout (here and in CI), the cache, then runs `pip download sapiens==1.0.5`."""
    from minirobera import walkthrough
    try:
        return walkthrough.find_sapiens(), None
    except (OSError, subprocess.SubprocessError, StopIteration, zipfile.BadZipFile) as e:
        return None, (f"Sapiens not found in ../shared/sapiens or $MINIROBERA_SAPIENS, and "
                      f"`pip download sapiens=={SAPIENS_VERSION}` failed: {e!r:.200}")


def fairseq_folder(tmp, checkpoint, dict_txt):
    """fairseq's release layout: model.pt + dict.txt (symlinks to the given files)."""
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "model.pt").symlink_to(Path(checkpoint).resolve())
    (tmp / "dict.txt").symlink_to(Path(dict_txt).resolve())
    return tmp


# ============================================================ writing torch pickles by hand

class Tensor:
    def __init__(self, array):
        self.array = np.ascontiguousarray(array, dtype=np.float32)


class Namespace:
    def __init__(self, fields):
        self.fields = dict(fields)


class Call:
    def __init__(self, module, name, args=()):
        self.module, self.name, self.args = module, name, tuple(args)


class Build:
    def __init__(self, target, state):
        self.target, self.state = target, state


class Raw:
    """A value the real pickler wrote (`pickle.dumps(value, protocol=2)`), spliced in whole.
    Its memo ids are its own and may overwrite the tree's: put it last in the tree."""

    def __init__(self, data):
        assert data[:2] == b"\x80\x02" and data[-1:] == b"."
        self.data = data[2:-1]  # without PROTO and STOP


class _Global:
    def __init__(self, module, name):
        self.module, self.name = module, name


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Writer(pickle._Pickler):  # the pure-Python pickler: its save() can be extended
    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages = []

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _Global("torch", "FloatStorage"), obj.key, "cpu", obj.array.size)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        elif isinstance(obj, Call):
            self.save(_Global(obj.module, obj.name))
            self.save(obj.args)
            self.write(pickle.REDUCE)
        elif isinstance(obj, Build):
            self.save(obj.target)
            self.save(obj.state)
            self.write(pickle.BUILD)
        elif isinstance(obj, Namespace):
            self.save(_Global("argparse", "Namespace"))
            self.save(())
            self.write(pickle.NEWOBJ)
            self.save(obj.fields)
            self.write(pickle.BUILD)
        elif isinstance(obj, Raw):
            self.write(obj.data)
        elif isinstance(obj, Tensor):
            storage = _Storage(str(len(self.storages)), obj.array.ravel())
            self.storages.append(storage)
            shape = obj.array.shape
            stride = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
            self.save(_Global("torch._utils", "_rebuild_tensor_v2"))
            self.save((storage, 0, shape, stride, False, collections.OrderedDict()))
            self.write(pickle.REDUCE)
        else:
            super().save(obj, save_persistent_id)


def write_pt(path, tree, fmt="zip"):
    """Write `tree` as torch.save does: fmt "zip" (torch >= 1.6) or "legacy" (Sapiens')."""
    buf = io.BytesIO()
    writer = _Writer(buf)
    writer.dump(tree)
    storages = writer.storages
    if fmt == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", buf.getvalue())
            z.writestr("archive/byteorder", "little")
            for s in storages:
                z.writestr(f"archive/data/{s.key}", s.array.astype("<f4").tobytes())
            z.writestr("archive/version", "3\n")
        return
    with open(path, "wb") as f:
        f.write(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2))
        f.write(pickle.dumps(1001, protocol=2))
        f.write(pickle.dumps({"protocol_version": 1001, "little_endian": True,
                              "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
        f.write(buf.getvalue())
        f.write(pickle.dumps([s.key for s in storages], protocol=2))
        for s in storages:
            f.write(struct.pack("<q", s.array.size) + s.array.astype("<f4").tobytes())


# ============================================================ a small random fairseq RoBERTa

def fairseq_tensors(vocab=9, dim=8, ffn=12, layers=2, positions=12, prefix="encoder",
                    embed_ln="layernorm_embedding", heads=(), seed=0):
    """{fairseq name: float32 array} of a random RoBERTa with fairseq's names; the LM head's
    weight is the embedding matrix (tied), as fairseq saves it."""
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.normal(0, 0.5, size=shape).astype(np.float32)

    e = f"{prefix}.sentence_encoder."
    t = {e + "embed_tokens.weight": r(vocab, dim), e + "embed_positions.weight": r(positions, dim),
         e + f"{embed_ln}.weight": 1 + r(dim), e + f"{embed_ln}.bias": r(dim)}
    for i in range(layers):
        for name, shape in (("self_attn.q_proj", (dim, dim)), ("self_attn.k_proj", (dim, dim)),
                            ("self_attn.v_proj", (dim, dim)), ("self_attn.out_proj", (dim, dim)),
                            ("self_attn_layer_norm", (dim,)), ("fc1", (ffn, dim)),
                            ("fc2", (dim, ffn)), ("final_layer_norm", (dim,))):
            t[f"{e}layers.{i}.{name}.weight"] = r(*shape) + (1 if len(shape) == 1 else 0)
            t[f"{e}layers.{i}.{name}.bias"] = r(shape[0])
    lm = f"{prefix}.lm_head."
    t.update({lm + "dense.weight": r(dim, dim), lm + "dense.bias": r(dim),
              lm + "layer_norm.weight": 1 + r(dim), lm + "layer_norm.bias": r(dim),
              lm + "weight": t[e + "embed_tokens.weight"], lm + "bias": r(vocab)})
    for name, labels in heads:
        h = f"classification_heads.{name}."
        t.update({h + "dense.weight": r(dim, dim), h + "dense.bias": r(dim),
                  h + "out_proj.weight": r(labels, dim), h + "out_proj.bias": r(labels)})
    return t


def fairseq_args(dim=8, ffn=12, layers=2, positions=12, heads=2, **more):
    return {"arch": "roberta_small", "encoder_layers": layers, "encoder_embed_dim": dim,
            "encoder_ffn_embed_dim": ffn, "encoder_attention_heads": heads,
            "max_positions": positions - 2, "activation_fn": "gelu",
            "pooler_activation_fn": "tanh", **more}
