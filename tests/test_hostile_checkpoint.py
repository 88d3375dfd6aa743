"""Hostile weight files and configs (issue 22): each is refused with the library's own error,
fast, without reading outside the file and without allocating what it declares.

The memory bombs run in a fresh interpreter each, which reports its peak RSS over its own
baseline (taken after the imports): that must stay under 200 MB while the file asks for GBs.
"""

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from hostile_files import tensor_opcodes, torch_pickle, write_bin, zeros_stream
from minirobera import checkpoint, modeling
from minirobera.checkpoint import CheckpointError, read_torch_bin, read_weights, save_safetensors
from minirobera.config import ConfigError, RobertaConfig

REPO = Path(__file__).resolve().parents[1]
MLM = REPO / "tests" / "fixtures" / "model" / "a-RobertaForMaskedLM"
CONFIG = MLM / "safetensors" / "config.json"
MB = 1 << 20


def isolated(code, timeout=60):
    """Run `code` (which sets `call`, a function) in a fresh interpreter; return what the call
    raised (class name, message), its peak RSS over the baseline in MB, and its seconds."""
    script = textwrap.dedent("""
        import json, resource, sys, time
        sys.path.insert(0, {tests!r})
        import numpy, minirobera.checkpoint, minirobera.modeling
        {code}
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        try:
            call()
            error = [None, ""]
        except Exception as e:
            error = [type(e).__name__, str(e)]
        seconds = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(error + [(peak - base) / 1024, seconds]))
    """).format(tests=str(REPO / "tests"), code=textwrap.dedent(code))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=timeout, cwd=REPO)
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    name, message, mb, seconds = json.loads(out.stdout.strip().splitlines()[-1])
    return name, message, mb, seconds


def assert_refused_cheaply(code, match, attack_mb):
    name, message, mb, seconds = isolated(code)
    assert name == "CheckpointError", (name, message)
    assert match in message, message
    assert mb < min(200, attack_mb / 4), f"peak RSS grew by {mb:.0f} MB"
    assert seconds < 1.0, f"took {seconds:.2f} s"


def folder_with(tmp_path, filename, write):
    folder = tmp_path / "ckpt"
    folder.mkdir(exist_ok=True)
    shutil.copy(CONFIG, folder / "config.json")
    write(folder / filename)
    return folder


def one_tensor_bin(path, size, stride, offset=0, numel=16, legacy=False, key="0",
                   name="roberta.embeddings.LayerNorm.bias"):
    pkl = torch_pickle({name: tensor_opcodes(key, numel, offset, size, stride)})
    raw = np.arange(numel, dtype=np.float32).tobytes()
    return write_bin(path, pkl, {key: raw}, legacy=legacy)


# ------------------------------------------------------------------ 1. views outside storage

@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("size,stride,offset,numel,message", [
    ((24,), (-1,), 8, 16, "negative size or stride"),           # reads the bytes before it
    ((1_000_000,), (-1000,), 0, 16, "negative size or stride"),  # segfaulted the process
    ((-1,), (1,), 0, 16, "declares shape (-1,)"),
    ((4, 5), (5, 1), 0, 16, "reaches element 19 of a storage of 16"),
    ((8,), (1,), 9, 16, "reaches element 16 of a storage of 16"),
    ((2, 2), (1,), 0, 16, "malformed view"),
    ((8,), (1,), -1, 16, "starts at element -1"),
], ids=["neg-stride", "huge-neg-stride", "neg-size", "past-end", "offset-past-end",
        "rank-mismatch", "neg-offset"])
def test_bin_view_outside_its_storage_is_refused(tmp_path, legacy, size, stride, offset, numel,
                                                 message):
    path = one_tensor_bin(tmp_path / "pytorch_model.bin", size, stride, offset, numel, legacy)
    with pytest.raises(CheckpointError) as e:
        read_torch_bin(path)
    assert message in str(e.value) and "pytorch_model.bin" in str(e.value)


def test_bin_storage_shorter_than_declared_is_refused(tmp_path):
    pkl = torch_pickle({"w": tensor_opcodes("0", 1000, 0, (1000,), (1,))})
    write_bin(tmp_path / "pytorch_model.bin", pkl, {"0": bytes(16)})
    with pytest.raises(CheckpointError, match="truncated"):
        read_torch_bin(tmp_path / "pytorch_model.bin")


def test_bin_views_inside_their_storage_still_load(tmp_path):
    """The checks refuse only what lies outside: a transposed view, a slice, an empty one."""
    pkl = torch_pickle({"t": tensor_opcodes("0", 16, 1, (3, 5), (1, 3)),
                        "s": tensor_opcodes("0", 16, 15, (1,), (1,)),
                        "e": tensor_opcodes("0", 16, 16, (0, 4), (4, 1))})
    write_bin(tmp_path / "pytorch_model.bin", pkl, {"0": np.arange(16, dtype=np.float32).tobytes()})
    out = read_torch_bin(tmp_path / "pytorch_model.bin")
    np.testing.assert_array_equal(out["t"], np.arange(1, 16, dtype=np.float32).reshape(5, 3).T)
    assert out["s"].tolist() == [15.0] and out["e"].shape == (0, 4)


def test_cli_on_the_segfaulting_file_exits_with_a_message(tmp_path):
    # a name the model does not use and a size the config allows: only the stride is wrong
    folder = folder_with(tmp_path, "pytorch_model.bin",
                         lambda p: one_tensor_bin(p, (500,), (-1000,), name="junk"))
    for name in ("vocab.json", "merges.txt"):  # a tokenizer, so the model file is reached
        (folder / name).write_text('{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}'
                                   if name == "vocab.json" else "#version: 0.2\n")
    out = subprocess.run([sys.executable, "-m", "minirobera", "fill-mask", "--model", str(folder),
                          "a <mask>"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode not in (0, -11, 139), out
    assert "negative size or stride" in out.stderr, out.stderr[-1500:]


# ------------------------------------------------------------------------ 3. memory bombs

def test_stride_zero_view_of_40000_squared_is_refused_before_allocating(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    write_bin(path, torch_pickle({"x": tensor_opcodes("0", 1, 0, (40000, 40000), (0, 0))}),
              {"0": bytes(4)})
    assert path.stat().st_size < 1000
    assert_refused_cheaply(f"call = lambda: minirobera.checkpoint.read_weights({str(path)!r})",
                           "more than the largest tensor", attack_mb=6400)
    folder = folder_with(tmp_path, "pytorch_model.bin", lambda p: shutil.copy(path, p))
    assert_refused_cheaply(f"call = lambda: minirobera.modeling.RobertaForMaskedLM"
                           f".from_pretrained({str(folder)!r})", "more than the largest tensor",
                           attack_mb=6400)


def test_deflate_bomb_is_refused_before_inflating(tmp_path):
    """A ~1 MB zip .bin whose storage member inflates to 1 GiB of zeros."""
    numel = (1 << 30) // 4
    path = write_bin(tmp_path / "pytorch_model.bin",
                     torch_pickle({"big": tensor_opcodes("0", numel, 0, (numel,), (1,))}),
                     {"0": zeros_stream(1 << 30)}, compress=True)
    assert path.stat().st_size < 3 * MB
    assert_refused_cheaply(f"call = lambda: minirobera.checkpoint.read_weights({str(path)!r})",
                           "more than the largest tensor", attack_mb=1024)
    limits = checkpoint.ReadLimits(path, budget=2 << 30, expected=lambda name: None,
                                   largest=1 << 30)  # a config that would justify the size
    with pytest.raises(CheckpointError, match=r"would inflate \d+ stored bytes to 1073741824"):
        read_torch_bin(path, limits)


def test_compressed_member_reading_stops_at_its_tensors(tmp_path):
    """A 10-element tensor over a 256 MiB member: only its 40 bytes are inflated."""
    pkl = torch_pickle({"small": tensor_opcodes("0", 1 << 26, 0, (10,), (1,))})
    path = write_bin(tmp_path / "pytorch_model.bin", pkl, {"0": zeros_stream(1 << 28)},
                     compress=True)
    name, message, mb, seconds = isolated(f"""
        def call():
            out = minirobera.checkpoint.read_weights({str(path)!r})
            assert out["small"].tolist() == [0.0] * 10, out
    """)
    assert name is None, message
    assert mb < 50 and seconds < 1.0, (mb, seconds)


def needs_h5py():
    return pytest.importorskip("h5py")


def keras_h5(path, write_dataset, layer="embeddings", name="tf_roberta_model/roberta/embeddings/"
                                                               "LayerNorm/beta:0"):
    """A Keras weights file with one layer holding one weight; write_dataset(group, name)
    makes the dataset (or link) under that name."""
    h5py = needs_h5py()
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.encode()])
        group = f.create_group(layer)
        group.attrs["weight_names"] = np.array([name.encode()])
        write_dataset(f, group, name)
    return path


def test_h5_chunked_dataset_never_written_is_refused(tmp_path):
    path = keras_h5(tmp_path / "tf_model.h5", lambda f, g, n: g.create_dataset(
        n, shape=(50000, 50000), dtype="f4", chunks=(1000, 1000), fillvalue=1.0))
    assert path.stat().st_size < 20_000
    assert_refused_cheaply(f"call = lambda: minirobera.checkpoint.read_weights({str(path)!r})",
                           "declares shape (50000, 50000)", attack_mb=9600)


def _repeated_gzip_chunks(f, group, name, shape=(32768, 32768), chunk=(1024, 1024)):
    """A gzip dataset of 4 GiB zeros: one compressed chunk written at every chunk position."""
    h5py = needs_h5py()
    dset = group.create_dataset(name, shape=shape, dtype="f4", chunks=chunk, compression="gzip")
    raw = zlib.compress(bytes(chunk[0] * chunk[1] * 4), 9)
    for i in range(0, shape[0], chunk[0]):
        for j in range(0, shape[1], chunk[1]):
            dset.id.write_direct_chunk((i, j), raw)
    assert dset.compression == "gzip" and h5py


def test_h5_gzip_bomb_is_refused_before_inflating(tmp_path):
    path = keras_h5(tmp_path / "tf_model.h5", _repeated_gzip_chunks)
    assert path.stat().st_size < 8 * MB
    assert_refused_cheaply(f"call = lambda: minirobera.checkpoint.read_weights({str(path)!r})",
                           "declares shape (32768, 32768)", attack_mb=4096)


def test_h5_gzip_bomb_of_a_justified_shape_is_refused_by_its_inflation(tmp_path):
    """Even a shape the config asks for is refused when 16x its stored bytes would not do."""
    name = "tf_roberta_for_masked_lm/roberta/embeddings/word_embeddings/weight:0"
    path = keras_h5(tmp_path / "tf_model.h5", lambda f, g, n: _repeated_gzip_chunks(
        f, g, n, shape=(8192, 8192), chunk=(1024, 1024)), name=name)
    config = RobertaConfig(vocab_size=8192, hidden_size=8192, num_attention_heads=1,
                           intermediate_size=8, num_hidden_layers=1)
    limits = checkpoint.read_limits(config, ("encoder",), path)
    with pytest.raises(CheckpointError, match=r"would inflate \d+ stored bytes to 268435456"):
        checkpoint.read_tf_h5(path, limits)


# ------------------------------------------------------------- 2. HDF5 links out of the file

@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(b"SECRET-HOST-FILE" * 4)
    return path


def _external_storage(secret):
    return lambda f, g, n: g.create_dataset(n, shape=(8,), dtype="f4",
                                            external=[(str(secret), 0, 32)])


def _external_link(secret_h5):
    def write(f, g, n):
        h5py = needs_h5py()
        *parents, leaf = n.split("/")
        sub = g.require_group("/".join(parents))
        sub[leaf] = h5py.ExternalLink(str(secret_h5), "/data")
    return write


def _soft_link(f, g, n):
    h5py = needs_h5py()
    f.create_dataset("elsewhere", data=np.ones(8, np.float32))
    *parents, leaf = n.split("/")
    g.require_group("/".join(parents))[leaf] = h5py.SoftLink("/elsewhere")


def _virtual(secret_h5):
    def write(f, g, n):
        h5py = needs_h5py()
        layout = h5py.VirtualLayout(shape=(8,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(secret_h5), "data", shape=(8,))
        *parents, leaf = n.split("/")
        g.require_group("/".join(parents)).create_virtual_dataset(leaf, layout)
    return write


@pytest.mark.parametrize("kind", ["external_storage", "external_link", "soft_link", "virtual"])
def test_h5_never_follows_a_link_out_of_the_file(tmp_path, secret, kind):
    h5py = needs_h5py()
    secret_h5 = tmp_path / "secret.h5"
    with h5py.File(secret_h5, "w") as f:
        f["data"] = np.frombuffer(secret.read_bytes()[:32], np.float32)
    write = {"external_storage": _external_storage(secret), "soft_link": _soft_link,
             "external_link": _external_link(secret_h5), "virtual": _virtual(secret_h5)}[kind]
    path = keras_h5(tmp_path / "tf_model.h5", write)
    expected = {"external_storage": "outside the file", "external_link": "ExternalLink",
                "soft_link": "SoftLink", "virtual": "outside the file"}[kind]
    with pytest.raises(CheckpointError, match=expected):
        read_weights(path)
    with h5py.File(path, "r") as f:  # h5py itself would have read the secret
        name = "embeddings/tf_roberta_model/roberta/embeddings/LayerNorm/beta:0"
        if kind != "soft_link":
            assert f[name][()].tobytes() == secret.read_bytes()[:32]


def test_h5_non_float_dataset_is_refused(tmp_path):
    path = keras_h5(tmp_path / "tf_model.h5", lambda f, g, n: g.create_dataset(
        n, data=np.array([b"abc", b"def"], dtype=object), dtype=needs_h5py().string_dtype()))
    with pytest.raises(CheckpointError, match="expected float"):
        read_weights(path)


# ------------------------------------------------------------------- 4. absurd config values

def test_a_billion_layers_in_config_fails_fast(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(MLM / "safetensors", folder)
    config = json.loads(CONFIG.read_text())
    config["num_hidden_layers"] = 1_000_000_000
    (folder / "config.json").write_text(json.dumps(config))
    name, message, mb, seconds = isolated(
        f"call = lambda: minirobera.modeling.RobertaForMaskedLM.from_pretrained({str(folder)!r})")
    assert name == "CheckpointError" and "It holds 2 encoder layers" in message, message
    assert "It holds 2 encoder layers, not 1000000000" in message
    assert "num_hidden_layers=1000000000" in message
    assert mb < 200 and seconds < 1.0, (mb, seconds)


def test_a_hundred_million_labels_is_refused(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(MLM / "safetensors", folder)
    config = json.loads(CONFIG.read_text())
    config["num_labels"] = 100_000_000
    config.pop("id2label", None), config.pop("label2id", None)
    (folder / "config.json").write_text(json.dumps(config))
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=r"config\.json: num_labels must be at most 100000"):
        modeling.RobertaForSequenceClassification.from_pretrained(folder)
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("field,value,message", [
    ("tie_word_embeddings", "no", "tie_word_embeddings must be true or false, got 'no'"),
    ("is_decoder", 1, "is_decoder must be true or false, got 1"),
    ("position_embedding_type", "relative_key", "position_embedding_type 'relative_key' is not "
                                                "supported"),
    ("id2label", {"a": "X"}, "id2label has the key 'a'"),
    ("id2label", {"0": "X", "2": "Y"}, "id2label's ids must be 0..1"),
    ("id2label", {"0": ["X"]}, "id2label['0'] must be a string label"),
    ("id2label", ["X"], "id2label must be an object"),
    ("hidden_act", ["gelu"], "hidden_act ['gelu'] is not supported"),
    ("hidden_size", 8.0, "hidden_size must be an integer, got 8.0"),
    ("layer_norm_eps", "1e-5", "layer_norm_eps must be a number"),
    ("hidden_dropout_prob", 2, "hidden_dropout_prob must be in [0, 1]"),
    ("bos_token_id", -3, "bos_token_id must be at least 0"),
    ("num_hidden_layers", 10 ** 30, "It holds 2 encoder layers"),
])
def test_malformed_config_field_names_file_and_field(tmp_path, field, value, message):
    folder = tmp_path / "m"
    shutil.copytree(MLM / "safetensors", folder)
    config = json.loads(CONFIG.read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises((ConfigError, CheckpointError)) as e:
        modeling.RobertaForMaskedLM.from_pretrained(folder)
    assert message in str(e.value) and str(folder) in str(e.value), str(e.value)


@pytest.mark.parametrize("text", ["{", "[1, 2]", "\xff\xfe", '{"hidden_size": ' + "[" * 100000])
def test_config_that_is_not_a_json_object(tmp_path, text):
    (tmp_path / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match="config.json"):
        RobertaConfig.from_pretrained(tmp_path)


# --------------------------------------------------------------------------- shard indexes

@pytest.mark.parametrize("weight_map,message", [
    (["model-1.safetensors"], "'weight_map' must be an object"),
    ({"w": "../../etc/passwd.safetensors"}, "is not the name of a weight file beside the index"),
    ({"w": "/abs/model.safetensors"}, "is not the name of a weight file beside the index"),
    ({"w": "config.json"}, "is not the name of a weight file beside the index"),
    ({"w": 3}, "is not the name of a weight file beside the index"),
])
def test_bad_shard_index_is_refused(tmp_path, weight_map, message):
    shutil.copy(CONFIG, tmp_path / "config.json")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointError, match=message):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)


# ----------------------------------------------------------------- the unpickler allow-list

def test_unpickler_allow_list_is_exactly_three_names():
    assert set(checkpoint._RestrictedUnpickler.ALLOWED) == {
        ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter")}
    unpickler = checkpoint._RestrictedUnpickler(io.BytesIO(), "x.bin", {})
    assert isinstance(unpickler.find_class("torch", "FloatStorage"), checkpoint._StorageType)
    for module, name in [("builtins", "getattr"), ("builtins", "eval"), ("builtins", "exec"),
                         ("builtins", "__import__"), ("copyreg", "_reconstructor"),
                         ("torch", "load"), ("torch", "Tensor"), ("torch._utils", "os"),
                         ("collections", "namedtuple"), ("numpy.core.multiarray", "_reconstruct")]:
        with pytest.raises(CheckpointError, match=f"refusing to load global '{module}.{name}'"):
            unpickler.find_class(module, name)


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _hostile_pickles(target):
    """Pickles that run code when their globals are admitted; those with a command touch
    `target` (so plain pickle.loads of them shows they are real exploits)."""
    cmd = f"open({str(target)!r}, 'w').close()".encode()
    s = lambda b: b"X" + len(b).to_bytes(4, "little") + b  # noqa: E731 (BINUNICODE)
    call = lambda fn, *args: fn + b"(" + b"".join(args) + b"tR"  # noqa: E731 (fn(*args))
    builtin = lambda name: _global("builtins", name)  # noqa: E731
    return {  # kind -> (payload, runs the command under plain pickle)
        # getattr(__import__('os'), 'system')('touch target'): the route to os.system
        "getattr": (b"\x80\x02" + call(call(builtin("getattr"), call(builtin("__import__"),
                                                                        s(b"os")), s(b"system")),
                                       s(b"touch " + str(target).encode())) + b".", True),
        "eval": (b"\x80\x02" + call(builtin("eval"), s(cmd)) + b".", True),
        "exec": (b"\x80\x02" + call(builtin("exec"), s(cmd)) + b".", True),
        "__import__": (b"\x80\x02" + call(builtin("__import__"), s(b"os")) + b".", False),
        "copyreg._reconstructor": (b"\x80\x02" + call(_global("copyreg", "_reconstructor"),
                                                       builtin("object"), builtin("object"),
                                                       b"N") + b".", False),
        # inside an allowed call: OrderedDict(eval(...))
        "nested": (b"\x80\x02}" + s(b"w") + call(_global("collections", "OrderedDict"),
                                                  call(builtin("eval"), s(cmd))) + b"s.", True),
    }


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("kind", ["getattr", "eval", "exec", "__import__",
                                  "copyreg._reconstructor", "nested"])
def test_hostile_pickles_are_refused_and_nothing_runs(tmp_path, legacy, kind):
    proof = tmp_path / "proof"
    payload, runs = _hostile_pickles(proof)[kind]
    try:  # the same bytes under plain pickle: a working exploit
        pickle.loads(payload)
    except Exception:
        pass
    assert proof.exists() == runs
    target = tmp_path / "pwned"
    path = tmp_path / "pytorch_model.bin"
    write_bin(path, _hostile_pickles(target)[kind][0], {}, legacy=legacy)
    with pytest.raises(CheckpointError, match=r"refusing to load global .*Nothing from the file "
                                              r"was executed"):
        read_torch_bin(path)
    assert not target.exists()


def test_pickle_larger_than_a_state_dict_needs_is_refused(tmp_path):
    # BINBYTES8 declaring 2**40 bytes: never read, never allocated
    payload = b"\x80\x04\x8e" + (1 << 40).to_bytes(8, "little") + b"abc"
    write_bin(tmp_path / "pytorch_model.bin", payload, {})
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin.*truncated") as e:
        read_torch_bin(tmp_path / "pytorch_model.bin")
    assert "MemoryError" not in str(e.value)
    write_bin(tmp_path / "pytorch_model.bin", payload, {}, legacy=True)
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin.*truncated") as e:
        read_torch_bin(tmp_path / "pytorch_model.bin")
    assert "MemoryError" not in str(e.value)


# ------------------------------------------- what a red-team review found past the issue
# Each of these beat an earlier version of the readers (reproducers by a review of the
# hardened code): a small file that hung, crashed, or allocated GBs before any check.

def _shared_tuple(levels):
    """Pickle opcodes of a tuple holding the same tuple twice, `levels` deep, through the
    memo: O(levels) bytes, 2**levels leaves to hash() or repr()."""
    ops = b")r" + struct.pack("<I", 0) + b"0"  # EMPTY_TUPLE, LONG_BINPUT 0, POP
    for i in range(levels):
        get = b"j" + struct.pack("<I", i)  # LONG_BINGET i
        ops += get + get + b"\x86r" + struct.pack("<I", i + 1) + b"0"  # TUPLE2, PUT, POP
    return ops + b"j" + struct.pack("<I", levels)


def _refused_isolated(tmp_path, payload, match, storages=None):
    path = write_bin(tmp_path / "pytorch_model.bin", payload, storages or {"0": bytes(16)})
    name, message, mb, seconds = isolated(
        f"call = lambda: minirobera.checkpoint.read_weights({str(path)!r})")
    assert name == "CheckpointError" and match in message, (name, message[:300])
    assert mb < 200 and seconds < 1.0, (mb, seconds)


def test_tuple_key_shared_at_every_level_is_refused_before_hashing(tmp_path):
    _refused_isolated(tmp_path, b"\x80\x02}" + _shared_tuple(64)
                      + tensor_opcodes("0", 4, 0, (4,), (1,)) + b"s.", "as a dict key")


def test_tuple_key_nested_deeper_than_the_c_stack_is_refused(tmp_path):
    # ) then TUPLE1 200,000 times: hashing it overflowed CPython's C stack (SIGSEGV)
    _refused_isolated(tmp_path, b"\x80\x02}" + b")" + b"\x85" * 200_000 + b"K\x01s.",
                      "as a dict key")


def test_tuple_size_shared_at_every_level_is_refused_without_repr(tmp_path):
    payload = (b"\x80\x02}" + torch_pickle({})[3:-1] + b"X\x01\x00\x00\x00w"
               + b"ctorch._utils\n_rebuild_tensor_v2\n(" + tensor_opcodes("0", 4, 0, (4,), (1,))
               .split(b"ctorch._utils\n_rebuild_tensor_v2\n(")[1].split(b"\x8a\x01\x00(")[0]
               + b"\x8a\x01\x00(" + _shared_tuple(64) + b"t(\x8a\x01\x01t\x89"
               + b"ccollections\nOrderedDict\n)Rt" + b"Rs.")
    _refused_isolated(tmp_path, payload, "declares shape")


def test_a_million_element_size_list_is_refused_before_copying(tmp_path):
    # one memoised list of a million zeros as size and stride of 150 tensors
    zeros = b"]r" + struct.pack("<I", 0) + b"(" + b"K\x00" * 1_000_00 + b"e0"
    body = b"".join(_str_op(f"t{i}") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + _pid()
                    + b"K\x00j\x00\x00\x00\x00j\x00\x00\x00\x00\x89ccollections\nOrderedDict\n)"
                      b"RtRs" for i in range(150))
    _refused_isolated(tmp_path, b"\x80\x02" + zeros + b"}" + body + b".", "at most 8 dimensions")


def _str_op(s):
    return b"X" + struct.pack("<I", len(s)) + s.encode()


def _pid(key="0", numel=4):
    return (b"(" + _str_op("storage") + b"ctorch\nFloatStorage\n" + _str_op(key) + _str_op("cpu")
            + b"\x8a\x01" + bytes([numel]) + b"tQ")


def test_a_pickle_of_sets_is_refused(tmp_path):
    _refused_isolated(tmp_path, b"\x80\x04}" + b"\x8f0" * 100_000 + b".", "builds a set")


def test_a_pickle_over_the_limit_is_refused_unparsed(tmp_path):
    # a million EMPTY_DICT + POP: past PICKLE_LIMIT, refused before a single opcode runs
    _refused_isolated(tmp_path, b"\x80\x02}" + b"}0" * 1_000_000 + b".", "runs past 524288 bytes")


def test_hundreds_of_thousands_of_names_for_one_tensor_are_refused(tmp_path):
    tensor = tensor_opcodes("0", 4, 0, (4,), (1,)) + b"r" + struct.pack("<I", 0)
    names = b"".join(_str_op(f"n{i}") + b"j" + struct.pack("<I", 0) for i in range(30_000))
    _refused_isolated(tmp_path, b"\x80\x02}" + _str_op("first") + tensor + b"s(" + names + b"u.",
                      "entries in its state dict")


def test_zip_member_whose_compress_size_lies_is_refused_while_inflating(tmp_path):
    numel = (1 << 28) // 4  # 256 MiB of zeros, deflated to ~256 KB
    path = write_bin(tmp_path / "pytorch_model.bin",
                     torch_pickle({"w": tensor_opcodes("0", numel, 0, (numel,), (1,))}),
                     {"0": zeros_stream(1 << 28)}, compress=True)
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x01\x02")  # the last central-directory entry: archive/data/0
    assert data[at + 46:at + 46 + 14] == b"archive/data/0"
    struct.pack_into("<I", data, at + 20, 1 << 28)  # compress_size: "it is not compressed"
    path.write_bytes(bytes(data))
    limits = checkpoint.ReadLimits(path, budget=1 << 30, expected=lambda name: None,
                                   largest=1 << 28)  # a config that would justify the size
    t = time.perf_counter()
    with pytest.raises(CheckpointError, match="inflates past 16x the"):
        read_torch_bin(path, limits)
    assert time.perf_counter() - t < 1.0


def test_a_fresh_head_no_file_justifies_is_refused(tmp_path):
    config = {"model_type": "roberta", "vocab_size": 2, "hidden_size": 24000,
              "num_attention_heads": 1, "intermediate_size": 4, "num_hidden_layers": 0,
              "max_position_embeddings": 3}
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_safetensors({"embeddings.word_embeddings.weight": np.zeros((2, 24000), np.float32),
                      "embeddings.position_embeddings.weight": np.zeros((3, 24000), np.float32),
                      "embeddings.token_type_embeddings.weight": np.zeros((1, 24000), np.float32),
                      "embeddings.LayerNorm.weight": np.ones(24000, np.float32),
                      "embeddings.LayerNorm.bias": np.zeros(24000, np.float32)},
                     tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"would initialise 2304\d+ bytes of weights the "
                                              r"checkpoint does not hold"):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)  # lm_head.dense: [D, D] fresh


def test_one_key_at_layer_999999999_does_not_make_a_billion_layers(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(MLM / "safetensors", folder)
    tensors = dict(checkpoint.read_safetensors(folder / "model.safetensors"))
    tensors["roberta.encoder.layer.999999999.output.LayerNorm.bias"] = np.zeros(8, np.float32)
    save_safetensors(tensors, folder / "model.safetensors")
    config = json.loads(CONFIG.read_text())
    config["num_hidden_layers"] = 1_000_000_000
    (folder / "config.json").write_text(json.dumps(config))
    t = time.perf_counter()
    with pytest.raises(CheckpointError, match="It holds 2 encoder layers, not 1000000000"):
        modeling.RobertaForMaskedLM.from_pretrained(folder)
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("shape", [[0, 2 ** 62], [0] * 65, [0, 2 ** 64 - 1]])
def test_empty_safetensors_tensor_of_absurd_shape_is_refused(tmp_path, shape):
    header = json.dumps({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        read_weights(tmp_path / "model.safetensors")


def test_h5_names_sharing_one_huge_heap_string_are_never_read(tmp_path):
    """Keras' name lists are variable-length strings; 300 of them naming one 2 MB heap string
    is 600 MB to read, all of it before anything can check. The reader walks the groups by
    hard links instead and never reads those attributes."""
    h5py = needs_h5py()
    path, big, n = tmp_path / "tf_model.h5", 2 << 20, 300
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array(["A" * big] + ["b%05d" % i for i in range(1, n)],
                                          dtype=h5py.string_dtype())
    data = bytearray(path.read_bytes())
    start = next(i for i in range(len(data) - 32) if data[i:i + 4] == struct.pack("<I", big)
                 and struct.unpack_from("<I", data, i + 16)[0] == 6)
    for i in range(1, n):  # every element now names the 2 MB heap string: 600 MB to read
        data[start + 16 * i:start + 16 * (i + 1)] = data[start:start + 16]
    path.write_bytes(bytes(data))
    name, message, mb, seconds = isolated(f"""
        def call():
            assert minirobera.checkpoint.read_weights({str(path)!r}) == {{}}  # no layer group
    """)
    assert name is None and mb < 50 and seconds < 1.0, (name, message, mb, seconds)


def test_h5_chunks_that_claim_more_than_they_hold_are_refused(tmp_path):
    h5py = needs_h5py()
    rows, width, window = 256, 1024, 128 << 10
    stream = zlib.compress(bytes(rows * width * 4), 9)
    name = "tf_roberta_model/roberta/embeddings/word_embeddings/weight:0"

    def write(f, group, n):
        d = group.create_dataset(n, shape=(rows * 64, width), dtype="<f4", chunks=(rows, width),
                                 compression="gzip")
        for i in range(64):
            d.id.write_direct_chunk((i * rows, 0), stream if i < 63 else stream + bytes(window))
    path = keras_h5(tmp_path / "tf_model.h5", write, name=name)
    data = bytearray(path.read_bytes())
    for i in range(63):  # each chunk's index entry now claims 128 KB (v1 B-tree chunk keys)
        key = struct.pack("<II", len(stream), 0) + struct.pack("<QQQ", i * rows, 0, 0)
        struct.pack_into("<I", data, data.find(key), window)
    path.write_bytes(bytes(data))
    with h5py.File(path) as f:  # HDF5 itself believes the index
        assert f["embeddings"][name].id.get_storage_size() > 63 * window
    limits = checkpoint.ReadLimits(path, budget=1 << 30, expected=lambda n: None, largest=1 << 28)
    with pytest.raises(CheckpointError, match="chunks that overlap"):
        checkpoint.read_tf_h5(path, limits)


def test_h5_layer_listed_many_times_is_read_once(tmp_path):
    h5py = needs_h5py()
    path = keras_h5(tmp_path / "tf_model.h5", lambda f, g, n: g.create_dataset(
        n, data=np.arange(8, dtype=np.float32)))
    with h5py.File(path, "a") as f:  # Keras' list names the group 4,000 times (once took 2 s)
        f.attrs["layer_names"] = np.array([b"embeddings"] * 4_000)
    t = time.perf_counter()
    out = read_weights(path)
    assert time.perf_counter() - t < 1.0
    assert list(out) == ["roberta.embeddings.LayerNorm.bias"]
    assert out["roberta.embeddings.LayerNorm.bias"].tolist() == list(range(8))


def test_h5_objects_past_the_count_are_refused(tmp_path):
    h5py = needs_h5py()

    def many(f, group, name):
        for i in range(25_000):
            group.create_group(f"g{i}")
    path = keras_h5(tmp_path / "tf_model.h5", many)
    with pytest.raises(CheckpointError, match="HDF5 objects"):
        read_weights(path)


def test_msgpack_of_ten_million_maps_is_refused_while_unpacking(tmp_path):
    msgpack = pytest.importorskip("msgpack")
    path = tmp_path / "flax_model.msgpack"
    n = 2_000_000  # {"0": {}, "1": {}, ...}: a map of maps, 4 bytes each
    body = b"".join(msgpack.packb(str(i)) + b"\x80" for i in range(n))
    path.write_bytes(b"\xdf" + struct.pack(">I", n) + body)
    assert_refused_cheaply(f"call = lambda: minirobera.checkpoint.read_weights({str(path)!r})",
                           "flax_model.msgpack", attack_mb=400)
