"""Checkpoint reading and writing: safetensors (memory-mapped), pytorch_model.bin without torch,
the key table's tolerance and its errors, unsafe pickles, corrupt files, save_pretrained.

Uses the transformers-written fixtures in tests/fixtures/model/ (scripts/make_model_fixtures.py,
versions in its manifest.json); needs neither torch nor transformers.
"""

import json
import os
import pickle
import shutil
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minirobera import modeling
from minirobera.checkpoint import (CheckpointError, load_state_dict, read_safetensors,
                                   read_torch_bin, save_safetensors)
from minirobera.config import RobertaConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "model"
MLM = FIXTURES / "a-RobertaForMaskedLM"
IDS = np.array([[0, 17, 42, 8, 91, 2, 1], [0, 33, 1, 54, 2, 1, 1]])
MASK = (IDS != 1).astype(int)


def logits(model):
    return model(IDS, attention_mask=MASK).logits


@pytest.fixture(scope="module")
def mlm():
    return modeling.RobertaForMaskedLM.from_pretrained(MLM / "safetensors")


def write_folder(folder, tensors, config_dir=MLM / "safetensors", config=None):
    """A checkpoint folder: config.json (copied or given) + model.safetensors of `tensors`."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is None:
        shutil.copy(config_dir / "config.json", folder / "config.json")
    else:
        config.save_pretrained(folder)
    save_safetensors(tensors, folder / "model.safetensors")
    return folder


# ------------------------------------------------------------------------- safetensors


def test_safetensors_float32_tensors_are_views_of_the_file():
    tensors = read_safetensors(MLM / "safetensors" / "model.safetensors")
    word = tensors["roberta.embeddings.word_embeddings.weight"]
    assert word.dtype == np.float32 and not word.flags.owndata and not word.flags.writeable
    base = word
    while not isinstance(base, np.memmap) and base.base is not None:
        base = base.base
    assert isinstance(base, np.memmap)  # no copy: pages come straight from the file


def test_tied_decoder_is_the_word_embedding_array(mlm):
    assert mlm.params["lm_head"]["decoder"]["w"] is mlm.params["embeddings"]["word"]


@pytest.mark.parametrize("fmt", ["bin_zip", "bin_legacy"])
def test_bin_matches_safetensors_and_keeps_ties(fmt):
    st = read_safetensors(MLM / "safetensors" / "model.safetensors")
    bin_ = read_torch_bin(MLM / fmt / "pytorch_model.bin")
    for key, value in st.items():
        np.testing.assert_array_equal(bin_[key], value)
    # torch.save wrote the tied decoder as a second view of the embeddings' storage
    word, decoder = bin_["roberta.embeddings.word_embeddings.weight"], bin_["lm_head.decoder.weight"]
    assert np.shares_memory(word, decoder)
    assert not word.flags.owndata  # memory-mapped, not copied


def test_bf16_bits_become_float32_exactly(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 0.0, -65280.0], np.float32)  # exact in bfloat16
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"w": {"dtype": "BF16", "shape": [5], "data_offsets": [0, 10]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bits.tobytes())
    out = read_safetensors(path)["w"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize("folder,fmt", [("a-RobertaForMaskedLM-float16", "safetensors"),
                                        ("b-RobertaForSequenceClassification-bfloat16", "safetensors"),
                                        ("b-RobertaForSequenceClassification-bfloat16", "bin_zip")])
def test_half_precision_checkpoints_load_as_float32(folder, fmt):
    cls = getattr(modeling, folder.split("-")[1])
    model = cls.from_pretrained(FIXTURES / folder / fmt)
    assert model.params["layers"][0]["q"]["w"].dtype == np.float32
    assert model(IDS[:, :5] % 90).logits.dtype == np.float32


def test_deflated_bin_zip_is_read_without_memory_map(tmp_path):
    src = MLM / "bin_zip" / "pytorch_model.bin"
    dst = tmp_path / "pytorch_model.bin"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
    expected = read_torch_bin(src)
    for key, value in read_torch_bin(dst).items():
        np.testing.assert_array_equal(value, expected[key])


# ---------------------------------------------------------------------- finding the files


def test_safetensors_is_preferred_over_bin(tmp_path, mlm):
    folder = tmp_path / "both"
    shutil.copytree(MLM / "safetensors", folder)
    (folder / "pytorch_model.bin").write_bytes(b"not read at all")
    np.testing.assert_array_equal(logits(modeling.RobertaForMaskedLM.from_pretrained(folder)),
                                  logits(mlm))


def test_no_weights_is_a_clear_error(tmp_path):
    shutil.copy(MLM / "safetensors" / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="model.safetensors.*pytorch_model.bin"):
        modeling.RobertaForMaskedLM.from_pretrained(tmp_path)


def test_shard_index_naming_missing_tensors(tmp_path):
    folder = tmp_path / "sharded"
    shutil.copytree(FIXTURES / "b-RobertaForTokenClassification-sharded" / "safetensors_sharded",
                    folder)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"]["roberta.ghost.weight"] = next(iter(index["weight_map"].values()))
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="ghost"):
        load_state_dict(folder)


# --------------------------------------------------------------------------- key handling


@pytest.fixture(scope="module")
def mlm_tensors():
    return dict(read_safetensors(MLM / "safetensors" / "model.safetensors"))


def rename(tensors, fn):
    return {fn(k): v for k, v in tensors.items()}


@pytest.mark.parametrize("change", [
    "no_prefix", "gamma_beta", "position_ids_buffer", "decoder_present", "unused_pooler",
    "decoder_bias_only",
])
def test_tolerated_key_variants_load_silently_and_identically(tmp_path, mlm, mlm_tensors, change):
    t = dict(mlm_tensors)
    if change == "no_prefix":
        t = rename(t, lambda k: k.removeprefix("roberta."))
    elif change == "gamma_beta":
        t = rename(t, lambda k: k.replace("LayerNorm.weight", "LayerNorm.gamma")
                   .replace("LayerNorm.bias", "LayerNorm.beta"))
    elif change == "position_ids_buffer":
        t["roberta.embeddings.position_ids"] = np.arange(14)[None]
    elif change == "decoder_present":
        t["lm_head.decoder.weight"] = t["roberta.embeddings.word_embeddings.weight"]
        t["lm_head.decoder.bias"] = t["lm_head.bias"]
    elif change == "unused_pooler":
        t["roberta.pooler.dense.weight"] = np.zeros((8, 8), np.float32)
        t["roberta.pooler.dense.bias"] = np.zeros(8, np.float32)
    elif change == "decoder_bias_only":
        t["lm_head.decoder.bias"] = t.pop("lm_head.bias")
    folder = write_folder(tmp_path / change, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = modeling.RobertaForMaskedLM.from_pretrained(folder)
    np.testing.assert_array_equal(logits(model), logits(mlm))


def test_bare_model_reads_prefixed_keys_and_head_model_reads_bare_keys(tmp_path):
    base = FIXTURES / "a-RobertaModel" / "safetensors"
    reference = modeling.RobertaModel.from_pretrained(base)
    t = rename(read_safetensors(base / "model.safetensors"), lambda k: "roberta." + k)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = modeling.RobertaModel.from_pretrained(write_folder(tmp_path / "p", t, base))
    np.testing.assert_array_equal(model(IDS).last_hidden_state, reference(IDS).last_hidden_state)


def test_unexpected_keys_are_listed_in_a_warning(tmp_path, mlm, mlm_tensors):
    t = dict(mlm_tensors, **{"roberta.encoder.layer.7.output.dense.weight": np.zeros(3, np.float32),
                             "something.else": np.zeros(1, np.float32)})
    with pytest.warns(UserWarning, match=r"not used when initializing RobertaForMaskedLM: "
                                         r"\['roberta.encoder.layer.7.output.dense.weight', "
                                         r"'something.else'\]"):
        model = modeling.RobertaForMaskedLM.from_pretrained(write_folder(tmp_path / "x", t))
    np.testing.assert_array_equal(logits(model), logits(mlm))


def test_missing_encoder_weight_is_an_error(tmp_path, mlm_tensors):
    t = dict(mlm_tensors)
    del t["roberta.encoder.layer.1.attention.self.key.bias"]
    with pytest.raises(CheckpointError, match=r"lacks weights RobertaForMaskedLM needs: "
                                              r"\['encoder.layer.1.attention.self.key.bias'\]"):
        modeling.RobertaForMaskedLM.from_pretrained(write_folder(tmp_path / "m", t))


def test_missing_head_is_initialised_like_transformers_with_a_warning(tmp_path, mlm):
    with pytest.warns(UserWarning) as record:
        model = modeling.RobertaForSequenceClassification.from_pretrained(MLM / "safetensors")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert ("Some weights of RobertaForSequenceClassification were not initialized from the "
            "model checkpoint at") in messages[1]
    assert ("newly initialized: ['classifier.dense.weight', 'classifier.dense.bias', "
            "'classifier.out_proj.weight', 'classifier.out_proj.bias']\nYou should probably "
            "TRAIN this model") in messages[1]
    # the checkpoint's MLM head is not used: listed as unexpected, as transformers does
    assert ("were not used when initializing RobertaForSequenceClassification: ['lm_head.bias', "
            "'lm_head.dense.bias', 'lm_head.dense.weight', 'lm_head.layer_norm.bias', "
            "'lm_head.layer_norm.weight']") in messages[0]
    head = model.params["classifier"]
    assert head["dense"]["w"].shape == (8, 8) and head["out_proj"]["w"].shape == (2, 8)
    assert not head["dense"]["b"].any() and not head["out_proj"]["b"].any()  # zero biases
    assert 0.0 < head["dense"]["w"].std() < 0.05  # normal(0, initializer_range=0.02)
    np.testing.assert_array_equal(model.params["layers"][1]["ffn_in"]["w"],
                                  mlm.params["layers"][1]["ffn_in"]["w"])


def test_bare_model_without_pooler_gets_a_fresh_pooler(tmp_path):
    base = FIXTURES / "a-RobertaModel" / "safetensors"
    t = {k: v for k, v in read_safetensors(base / "model.safetensors").items()
         if not k.startswith("pooler")}
    with pytest.warns(UserWarning, match=r"newly initialized: \['pooler.dense.weight', "
                                         r"'pooler.dense.bias'\]"):
        modeling.RobertaModel.from_pretrained(write_folder(tmp_path / "np", t, base))


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
    src = FIXTURES / "a-RobertaForSequenceClassification" / "safetensors"
    config = RobertaConfig.from_pretrained(src)
    config.id2label = {0: "x", 1: "y"}  # the checkpoint has 3 labels
    # shapes are checked as the file lists its tensors, before reading: the bias comes first
    with pytest.raises(CheckpointError, match=r"'classifier.out_proj.bias' has shape \(3,\) "
                                              r"but the config needs \(2,\)"):
        modeling.RobertaForSequenceClassification.from_pretrained(src, config=config)
    only_weight = {k: v for k, v in read_safetensors(src / "model.safetensors").items()
                   if k != "classifier.out_proj.bias"}
    with pytest.raises(CheckpointError, match=r"'classifier.out_proj.weight' has shape \(3, 8\) "
                                              r"but the config needs \(2, 8\)"):
        modeling.RobertaForSequenceClassification.from_pretrained(
            write_folder(tmp_path / "w", only_weight, src), config=config)


def test_config_with_other_sizes_is_an_error(tmp_path):
    config = RobertaConfig.from_pretrained(MLM / "safetensors")
    config.vocab_size = 120
    # checked in the file's order before reading: lm_head.bias [V] is the first with V in it
    with pytest.raises(CheckpointError, match=r"'lm_head.bias' has shape \(99,\) but "
                                              r"the config needs \(120,\)"):
        modeling.RobertaForMaskedLM.from_pretrained(MLM / "safetensors", config=config)
    with pytest.raises(CheckpointError, match=r"word_embeddings.weight' has shape \(99, 8\) but "
                                              r"the config needs \(120, 8\)"):
        modeling.RobertaModel.from_pretrained(MLM / "safetensors", config=config)


def test_same_key_with_and_without_prefix_is_an_error(tmp_path, mlm_tensors):
    t = dict(mlm_tensors)
    t["embeddings.LayerNorm.bias"] = t["roberta.embeddings.LayerNorm.bias"]
    with pytest.raises(CheckpointError, match="'embeddings.LayerNorm.bias' twice"):
        modeling.RobertaForMaskedLM.from_pretrained(write_folder(tmp_path / "d", t))


def test_integer_weight_is_an_error(tmp_path, mlm_tensors):
    t = dict(mlm_tensors, **{"lm_head.bias": np.zeros(99, np.int64)})
    with pytest.raises(CheckpointError, match="'lm_head.bias' has dtype int64"):
        modeling.RobertaForMaskedLM.from_pretrained(write_folder(tmp_path / "i", t))


def test_untied_decoder_is_loaded_from_its_own_key(tmp_path, mlm, mlm_tensors):
    config = RobertaConfig.from_pretrained(MLM / "safetensors")
    config.tie_word_embeddings = False
    decoder = np.ascontiguousarray(mlm_tensors["roberta.embeddings.word_embeddings.weight"][::-1])
    bias = np.arange(99, dtype=np.float32)
    t = dict(mlm_tensors, **{"lm_head.decoder.weight": decoder})
    model = modeling.RobertaForMaskedLM.from_pretrained(write_folder(tmp_path / "u", t, config=config))
    np.testing.assert_array_equal(model.params["lm_head"]["decoder"]["w"], decoder)
    assert model.params["lm_head"]["decoder"]["w"] is not model.params["embeddings"]["word"]
    # no lm_head.decoder.bias in the file: lm_head.bias stands in for it
    np.testing.assert_array_equal(model.params["lm_head"]["decoder"]["b"], t["lm_head.bias"])
    # transformers 5 gives an untied decoder its own bias; lm_head.bias is then unused
    t["lm_head.decoder.bias"] = bias
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = modeling.RobertaForMaskedLM.from_pretrained(
            write_folder(tmp_path / "u2", t, config=config))
    np.testing.assert_array_equal(model.params["lm_head"]["decoder"]["b"], bias)
    # saved back with its decoder, since it is not tied
    assert {"lm_head.decoder.weight", "lm_head.decoder.bias"} <= set(model.state_dict())


# --------------------------------------------------------------------------- corrupt files


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "huge_header"])
def test_corrupt_safetensors_names_the_file(tmp_path, damage):
    data = (MLM / "safetensors" / "model.safetensors").read_bytes()
    bad = {"truncated": data[:-10], "garbage": os.urandom(200), "empty": b"",
           "huge_header": struct.pack("<Q", 10 ** 12) + data[8:]}[damage]
    folder = tmp_path / damage
    folder.mkdir()
    shutil.copy(MLM / "safetensors" / "config.json", folder)
    (folder / "model.safetensors").write_bytes(bad)
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not a valid safetensors file"):
        modeling.RobertaForMaskedLM.from_pretrained(folder)


@pytest.mark.parametrize("fmt", ["bin_zip", "bin_legacy"])
@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_truncated_bin_names_the_file(tmp_path, fmt, cut):
    data = (MLM / fmt / "pytorch_model.bin").read_bytes()
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin"):
        read_torch_bin(path)


def test_bin_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="bad magic number"):
        read_torch_bin(path)


# ------------------------------------------------------------------------- unsafe pickles


class _CreatesFile:
    """Unpickling this would call open(path, "w"): the file appearing means code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsShell:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _legacy_bytes(payload):
    header = b"".join(pickle.dumps(x, protocol=2) for x in (
        0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))
    return header + payload


def _zip_bytes(path, payload):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("evil,name", [(_CreatesFile, r"(builtins|io|_io)\.open"),
                                       (_RunsShell, r"(posix|os|nt)\.system")])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, fmt, evil, name):
    target = tmp_path / "pwned"
    payload = pickle.dumps({"roberta.embeddings.word_embeddings.weight": evil(str(target))},
                           protocol=2)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    shutil.copy(MLM / "safetensors" / "config.json", folder)
    path = folder / "pytorch_model.bin"
    if fmt == "zip":
        _zip_bytes(path, payload)
    else:
        path.write_bytes(_legacy_bytes(payload))
    with pytest.raises(CheckpointError, match=rf"refusing to load global '{name}'.*Nothing from "
                                              rf"the file was executed"):
        modeling.RobertaForMaskedLM.from_pretrained(folder)
    assert not target.exists()


def test_other_torch_globals_are_refused(tmp_path):
    payload = b"\x80\x02ctorch\nload\nq\x00."  # GLOBAL torch.load, never an allowed name
    path = tmp_path / "pytorch_model.bin"
    _zip_bytes(path, payload)
    with pytest.raises(CheckpointError, match=r"refusing to load global 'torch.load'"):
        read_torch_bin(path)


def test_pickle_cannot_modify_an_allowed_global(tmp_path):
    # GLOBAL torch._utils._rebuild_tensor_v2; {"abc": 1}; BUILD (setattr on the global)
    payload = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}X\x03\x00\x00\x00abcK\x01sb."
    path = tmp_path / "pytorch_model.bin"
    _zip_bytes(path, payload)
    with pytest.raises(CheckpointError, match="modify an allowed global"):
        read_torch_bin(path)


# ----------------------------------------------------------------------------- saving


@pytest.mark.parametrize("cls_name", ["RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM",
                                      "RobertaForSequenceClassification",
                                      "RobertaForTokenClassification",
                                      "RobertaForQuestionAnswering", "RobertaForMultipleChoice"])
def test_save_pretrained_writes_transformers_key_names_and_round_trips(tmp_path, cls_name):
    src = FIXTURES / f"c-{cls_name}" / "safetensors"
    model = getattr(modeling, cls_name).from_pretrained(src)
    model.save_pretrained(tmp_path)
    theirs = read_safetensors(src / "model.safetensors")
    ours = read_safetensors(tmp_path / "model.safetensors")
    assert sorted(ours) == sorted(theirs)  # the very names transformers wrote
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [cls_name] and config["model_type"] == "roberta"
    assert RobertaConfig.from_pretrained(tmp_path) == RobertaConfig.from_pretrained(src)
    with open(tmp_path / "model.safetensors", "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        assert json.loads(f.read(n))["__metadata__"] == {"format": "pt"}


def test_bin_loading_never_imports_torch():
    """Reading pytorch_model.bin must not need (or touch) torch, even when it is installed."""
    import subprocess
    import sys

    code = ("import sys; from minirobera import modeling; "
            f"m = modeling.RobertaForMaskedLM.from_pretrained({str(MLM / 'bin_legacy')!r}); "
            f"m([0, 5, 2]); "
            "bad = [n for n in ('torch', 'transformers') if n in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
