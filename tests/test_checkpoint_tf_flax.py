"""tf_model.h5 and flax_model.msgpack (transformers 4.x's TFRoberta* / FlaxRoberta*), read with
h5py and msgpack alone: no TensorFlow, no JAX.

The fixtures sit beside the PyTorch ones in tests/fixtures/model/ (<name>/tf_h5,
<name>/flax_msgpack, versions in tf_flax_manifest.json). scripts/make_tf_flax_fixtures.py wrote
them with transformers 4.57 (TensorFlow 2.15, Flax 0.7) from the PyTorch weights, after checking
that TF's and Flax's own outputs equal PyTorch's recorded ones. Here each must load into the
minirobera class and give the PyTorch outputs of reference.npz within 1e-5: the very check of
tests/test_model.py, reused. Tests that read a file skip without h5py / msgpack.
"""

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import test_model  # tests/ is on sys.path (conftest.py): its parity check is reused as it is
from minirobera import modeling
from minirobera.checkpoint import WEIGHT_FILES, CheckpointError, load_state_dict, read_flax_msgpack
from minirobera.config import RobertaConfig
from hub_server import hub_server  # noqa: F401  (a fixture: the fake hub on 127.0.0.1)
from test_model import FIXTURES, backend  # noqa: F401  (backend: both kernel backends)

MANIFEST = json.loads((FIXTURES / "tf_flax_manifest.json").read_text())
ENTRIES = {e["name"]: e for e in test_model.MANIFEST["checkpoints"]}
# format folder -> (the package that reads it, file name, from_pretrained flag)
FORMATS = {"tf_h5": ("h5py", "tf_model.h5", "from_tf"),
           "flax_msgpack": ("msgpack", "flax_model.msgpack", "from_flax")}
CASES = [pytest.param(ENTRIES[c["name"]], c["format"], id=f"{c['name']}-{c['format']}")
         for framework in ("tf", "flax") for c in MANIFEST[framework]["checkpoints"]]
MLM = FIXTURES / "a-RobertaForMaskedLM"


def needs(fmt):
    """The package that reads `fmt` (h5py / msgpack), or a skip naming it."""
    package, filename, _ = FORMATS[fmt]
    return pytest.importorskip(package, reason=f"reading {filename} needs {package}: "
                                               f"pip install {package}")


def clean_load(cls_name, folder, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean checkpoint loads without any warning
        return getattr(modeling, cls_name).from_pretrained(folder, **kw)


def assert_parity(model, entry, monkeypatch):
    """tests/test_model.py's parity check (every recorded output within 1e-5) on `model`."""
    monkeypatch.setattr(test_model, "load", lambda *_: model)
    test_model.test_fixture_parity(entry, None, None)


def test_manifest_covers_every_class_in_both_frameworks():
    """Every class in both; Flax in all three configs, TF in one (its HDF5 files are large:
    scripts/make_tf_flax_fixtures.py, CONFIGS)."""
    classes = {e["class"] for e in ENTRIES.values()}
    for framework, configs in (("tf", 1), ("flax", 3)):
        done = MANIFEST[framework]["checkpoints"]
        assert {c["class"] for c in done} == classes and not MANIFEST[framework]["skipped"]
        assert len(done) == 7 * configs
        assert max(c["max_abs_diff_vs_pytorch"] for c in done) <= 1e-4


# -------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("entry,fmt", CASES)
def test_fixture_parity_from_a_folder_with_only_that_file(entry, fmt, backend):
    needs(fmt)
    assert set(os.listdir(FIXTURES / entry["name"] / fmt)) & set(WEIGHT_FILES) == {FORMATS[fmt][1]}
    test_model.test_fixture_parity(entry, fmt, backend)  # from_pretrained picks the file itself


@pytest.mark.parametrize("fmt", FORMATS)
def test_hub_repo_with_only_that_file(fmt, hub_server, monkeypatch, tmp_path):
    """By repo id through tests/hub_server.py: the PyTorch files are asked for first (404)."""
    needs(fmt)
    for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    hub_server.add_repo("tiny-org/only", {p.name: p.read_bytes() for p in (MLM / fmt).iterdir()})
    model = clean_load("RobertaForMaskedLM", "tiny-org/only")
    assert_parity(model, ENTRIES[MLM.name], monkeypatch)
    assert [r.status for r in hub_server.seen(method="HEAD", filename="pytorch_model.bin")] == [404]


@pytest.mark.parametrize("entry,fmt", CASES)
def test_flag_loads_that_file_from_a_folder_with_every_format(entry, fmt, tmp_path, monkeypatch):
    needs(fmt)
    src = FIXTURES / entry["name"]
    shutil.copytree(src / "safetensors", tmp_path, dirs_exist_ok=True)
    shutil.copy(src / "bin_zip" / "pytorch_model.bin", tmp_path)
    for folder, (_, filename, _) in FORMATS.items():  # TF: config "a" only
        if (src / folder / filename).is_file():
            shutil.copy(src / folder / filename, tmp_path)
    _, filename, flag = FORMATS[fmt]
    assert os.path.basename(load_state_dict(tmp_path)[1]) == "model.safetensors"
    assert os.path.basename(load_state_dict(tmp_path, **{flag: True})[1]) == filename
    model = clean_load(entry["class"], tmp_path, **{flag: True})
    assert_parity(model, entry, monkeypatch)
    # bit for bit the PyTorch weights: TF and Flax stored exact float32 copies
    theirs = clean_load(entry["class"], src / "safetensors").state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, theirs[key], err_msg=key)


def test_flax_chunked_arrays_read_as_one(monkeypatch):
    """flax splits arrays over 2**30 bytes into chunks; the fixture script lowered that limit."""
    needs("flax_msgpack")
    chunked = MLM / "flax_msgpack_chunked"
    assert b"__msgpack_chunked_array__" in (chunked / "flax_model.msgpack").read_bytes()
    whole = read_flax_msgpack(MLM / "flax_msgpack" / "flax_model.msgpack")
    pieces = read_flax_msgpack(chunked / "flax_model.msgpack")
    assert sorted(pieces) == sorted(whole)
    for key, value in whole.items():
        np.testing.assert_array_equal(pieces[key], value, err_msg=key)
    assert_parity(clean_load("RobertaForMaskedLM", chunked), ENTRIES[MLM.name], monkeypatch)


def test_flax_bfloat16_params_become_float32_exactly():
    needs("flax_msgpack")
    bf16 = read_flax_msgpack(MLM / "flax_msgpack_bf16" / "flax_model.msgpack")
    f32 = read_flax_msgpack(MLM / "flax_msgpack" / "flax_model.msgpack")
    for key, value in bf16.items():
        assert value.dtype == np.float32, key
        assert not (value.view(np.uint32) & 0xFFFF).any(), key  # a bfloat16 value, bit exact
        np.testing.assert_allclose(value, f32[key], rtol=2 ** -8, err_msg=key)  # flax's rounding
    model = clean_load("RobertaForMaskedLM", MLM / "flax_msgpack_bf16")
    assert model(test_model.reference(MLM.name)["main"][0]["input_ids"]).logits.dtype == np.float32


def h5_copy(tmp_path, src=MLM / "tf_h5" / "tf_model.h5"):
    """A writable copy of a tf_model.h5 with its config, and the h5py File on it."""
    h5py = needs("tf_h5")
    shutil.copy(src.parent / "config.json", tmp_path)
    shutil.copy(src, tmp_path / "tf_model.h5")
    return h5py.File(tmp_path / "tf_model.h5", "r+")


@pytest.mark.parametrize("form", ["bytes", "split"])
def test_older_and_longer_keras_attributes(tmp_path, form, monkeypatch):
    """Older Keras wrote the name lists as fixed-length bytes; a list over 64 KB is split into
    `layer_names0`, `layer_names1`, ... (roberta-large's weight_names)."""
    with h5_copy(tmp_path) as f:
        names = [str(n) for n in f.attrs["layer_names"]]
        del f.attrs["layer_names"]
        if form == "bytes":
            f.attrs["layer_names"] = np.array([n.encode() for n in names])
        else:
            for i, name in enumerate(names):
                f.attrs[f"layer_names{i}"] = np.array([name.encode()])
    assert_parity(clean_load("RobertaForMaskedLM", tmp_path), ENTRIES[MLM.name], monkeypatch)


# -------------------------------------------------------------------------------- errors


def fixture_copy(tmp_path, fmt, data=None):
    """The MLM's config and weights file of `fmt` in tmp_path, its bytes replaced by `data`."""
    _, filename, _ = FORMATS[fmt]
    shutil.copy(MLM / fmt / "config.json", tmp_path)
    path = tmp_path / filename
    path.write_bytes((MLM / fmt / filename).read_bytes() if data is None else data)
    return path


def damaged(fmt, damage):
    data = (MLM / fmt / FORMATS[fmt][1]).read_bytes()
    return {"truncated": data[:len(data) // 2], "cut_at_the_end": data[:-100],
            "garbage": np.random.default_rng(0).bytes(3000), "text": b"not weights at all\n",
            "empty": b""}[damage]


@pytest.mark.parametrize("damage", ["truncated", "cut_at_the_end", "garbage", "text", "empty"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_file_is_a_checkpoint_error_naming_it(tmp_path, fmt, damage):
    needs(fmt)
    fixture_copy(tmp_path, fmt, damaged(fmt, damage))
    filename = FORMATS[fmt][1].replace(".", r"\.")
    with pytest.raises(CheckpointError, match=rf"{filename} is not a readable {filename}"):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)


def test_hdf5_that_is_not_keras_weights(tmp_path):
    h5py = needs("tf_h5")
    shutil.copy(MLM / "tf_h5" / "config.json", tmp_path)
    with h5py.File(tmp_path / "tf_model.h5", "w") as f:
        f["roberta/embeddings/word_embeddings/weight"] = np.zeros((99, 8), np.float32)
    with pytest.raises(CheckpointError, match="HDF5 file but not Keras weights"):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)


def test_two_different_copies_of_a_weight_are_an_error(tmp_path):
    """TF's lm_head group holds the embeddings again; equal copies are one weight, others not."""
    with h5_copy(tmp_path) as f:
        copy = "tf_roberta_for_masked_lm/roberta/embeddings/word_embeddings/weight:0"
        assert copy in [str(n) for n in f["lm_head"].attrs["weight_names"]]
        f["lm_head"][copy][0, 0] += 1.0
    with pytest.raises(CheckpointError, match="word_embeddings/weight:0' twice, with different"):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)


def flax_array(values):
    """One array as flax.serialization packs it: ext type 1 of (shape, dtype, bytes)."""
    import msgpack

    values = np.asarray(values, np.float32)
    return msgpack.ExtType(1, msgpack.packb((values.shape, "float32", values.tobytes()),
                                            use_bin_type=True))


BAD_TREES = {  # id -> (the msgpack tree, given the msgpack module; the error it gives)
    "list": (lambda m: [1, 2, 3], "holds a msgpack list, not the map of params"),
    "int_leaf": (lambda m: {"roberta": {"embeddings": {"LayerNorm": {"bias": 3}}}},
                 "roberta/embeddings/LayerNorm/bias is not an array but int 3"),
    "other_names": (lambda m: {"bert": {"pooler": {"dense": {"kernel": flax_array(np.eye(8))}}}},
                    r"lacks weights RobertaForMaskedLM needs: .* Unused in it: "
                    r"\['bert.pooler.dense.weight'\]"),
    "other_ext_type": (lambda m: {"roberta": m.ExtType(5, b"")}, "ext type 5 is not a flax array"),
}


@pytest.mark.parametrize("bad", BAD_TREES)
def test_msgpack_without_the_expected_tree(tmp_path, bad):
    msgpack = needs("flax_msgpack")
    tree, message = BAD_TREES[bad]
    fixture_copy(tmp_path, "flax_msgpack", msgpack.packb(tree(msgpack), use_bin_type=True))
    with pytest.raises(CheckpointError, match=message):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)


def test_tf_checkpoint_of_another_architecture():
    needs("tf_h5")
    bert = FIXTURES / "other-TFBertModel" / "tf_h5"
    assert json.loads((bert / "config.json").read_text())["model_type"] == "bert"
    with pytest.raises(ValueError, match="bert"):  # its config.json says so first
        modeling.RobertaModel.from_pretrained(bert)
    config = RobertaConfig.from_pretrained(FIXTURES / "a-RobertaModel" / "tf_h5")
    with pytest.raises(CheckpointError, match=r"tf_model\.h5 lacks weights RobertaModel needs: "
                                              r".* Unused in it: \['bert\.embeddings\."):
        modeling.RobertaModel.from_pretrained(bert, config=config)


@pytest.mark.parametrize("fmt", FORMATS)
def test_flag_without_that_file_is_a_clear_error(tmp_path, fmt):
    _, filename, flag = FORMATS[fmt]
    shutil.copytree(MLM / "safetensors", tmp_path, dirs_exist_ok=True)
    with pytest.raises(FileNotFoundError, match=rf"{flag}=True but there is no {filename} in"):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path, **{flag: True})


def test_both_flags_are_an_error():
    with pytest.raises(ValueError, match="exclude each other"):
        modeling.RobertaForMaskedLM.from_pretrained(MLM / "tf_h5", from_tf=True, from_flax=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_reader_package_names_the_pip_install(tmp_path, fmt, monkeypatch):
    package, filename, _ = FORMATS[fmt]
    fixture_copy(tmp_path, fmt)
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed: import raises
    with pytest.raises(ImportError, match=rf"reading {filename} needs the {package} package, "
                                          rf"which is not installed: pip install {package}"):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)


# ---------------------------------------------------------------------------- laziness


def test_readers_are_imported_only_for_their_files():
    """safetensors loading never imports h5py or msgpack; TF and Flax files never import
    TensorFlow, JAX or Flax, even where they are installed."""
    code = (
        "import sys; from minirobera import modeling; "
        f"modeling.RobertaForMaskedLM.from_pretrained({str(MLM / 'safetensors')!r}); "
        "bad = [n for n in ('h5py', 'msgpack') if n in sys.modules]; assert not bad, bad; "
        "import importlib.util as u; "
        "ok = [f for f, p in (('tf_h5', 'h5py'), ('flax_msgpack', 'msgpack')) if u.find_spec(p)]; "
        f"[modeling.RobertaForMaskedLM.from_pretrained({str(MLM)!r} + '/' + f) for f in ok]; "
        "bad = [n for n in ('tensorflow', 'keras', 'jax', 'flax', 'torch') if n in sys.modules]; "
        "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
