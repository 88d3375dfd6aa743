"""Write TensorFlow (tf_model.h5) and Flax (flax_model.msgpack) copies of the model fixtures.

transformers 5 has no TF or Flax classes any more, so this runs under transformers 4.x, one
framework per throwaway venv made OUTSIDE the repo (the pins that worked, Python 3.11):

    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install "tensorflow-cpu==2.15.1" \\
        "numpy<2" "transformers==4.57.*" "safetensors==0.6.2" h5py
    /work/venv-tf/bin/python scripts/make_tf_flax_fixtures.py tf

    python3 -m venv /work/venv-flax && /work/venv-flax/bin/pip install "jax==0.4.13" \\
        "jaxlib==0.4.13" "flax==0.7.0" "numpy<2" "transformers==4.57.*" "safetensors==0.6.2" msgpack
    /work/venv-flax/bin/python scripts/make_tf_flax_fixtures.py flax

For every checkpoint of tests/fixtures/model/manifest.json that has a `safetensors` folder
(scripts/make_model_fixtures.py: 7 classes x 3 configs, plus the F16 / BF16 / sharded extras,
which are skipped: TF and Flax would store them as float32 copies of checkpoints already covered;
TF takes config "a" only, see CONFIGS)
it puts the PyTorch weights into the matching TFRoberta* / FlaxRoberta* class through
transformers' own PT -> TF / PT -> Flax conversion, runs the calls recorded in reference.npz,
requires every output to equal PyTorch's within 1e-4 (the losses aside: TF computes them its
own way and Flax not at all), and saves with the class's own save_pretrained:

    <name>/tf_h5/                            config.json + tf_model.h5
    <name>/flax_msgpack/                     config.json + flax_model.msgpack
    a-RobertaForMaskedLM/flax_msgpack_chunked/  flax's chunked arrays (its chunk size lowered)
    a-RobertaForMaskedLM/flax_msgpack_bf16/  the params cast to bfloat16 (model.to_bf16)
    other-TFBertModel/tf_h5/                 a tiny random BERT, for the wrong-architecture error
    tf_flax_manifest.json                    versions, max diff per checkpoint, what was skipped

Where transformers 4.x lacks the checkpoint's activation in one framework (TF has no
`gelu_pytorch_tanh`, Flax no `gelu_fast`), the model runs with the same function under another
name (`gelu_new`: all three are 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))); the 1e-4
check is the proof, the manifest names the substitute, and config.json keeps the real name.
The weights file does not depend on the activation at all.

Notes: TF's from_pretrained on a PT safetensors file iterates `safe_open`, which no safetensors
release supports, so the TF side reads the file with safetensors.numpy and calls the function
from_pretrained would call, `load_pytorch_state_dict_in_tf2_model`. Flax uses from_pretrained.
"""

import inspect
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF's start-up chatter
MODEL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "model"
MANIFEST = MODEL / "tf_flax_manifest.json"
ATOL = 1e-4
LABELS = ("labels", "start_positions", "end_positions")
SAME_ACTIVATION = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # one function, three names


def recorded(name):
    """{call: (inputs, outputs)} from reference.npz (keys `call/in/field`, `call/out/field`)."""
    with np.load(MODEL / name / "reference.npz") as z:
        arrays = {tuple(key.split("/", 2)): z[key] for key in z.files}
    return {call: tuple({f: v for (c, k, f), v in arrays.items() if c == call and k == kind}
                        for kind in ("in", "out"))
            for call in sorted({c for c, _, _ in arrays})}


def dead_queries(inputs, causal):  # -> [B,T] bool: query rows that may attend to no key
    if "attention_mask" not in inputs:
        ids = inputs["input_ids"]
        return np.zeros((ids.size // ids.shape[-1], ids.shape[-1]), bool)
    mask = inputs["attention_mask"].reshape(-1, inputs["attention_mask"].shape[-1]) != 0
    seen = np.cumsum(mask, 1) > 0 if causal else np.broadcast_to(mask.any(1, keepdims=True),
                                                                 mask.shape)
    return ~seen


def field_diff(field, ours, theirs, dead):
    """max |ours - theirs|, leaving out the rows whose attention has nothing to attend to
    (frameworks disagree there, and no model output depends on them)."""
    ours = np.asarray(ours, np.float32)
    assert ours.shape == theirs.shape, (field, ours.shape, theirs.shape)
    if field.startswith("attentions"):  # [B,H,T,T] -> [B,T,H,T]: query rows first
        ours, theirs = ours.transpose(0, 2, 1, 3), theirs.transpose(0, 2, 1, 3)
    if ours.shape[:2] == dead.shape:
        ours, theirs = ours[~dead], theirs[~dead]
    return float(np.abs(ours - theirs).max()) if ours.size else 0.0


def check(model, name, causal, run):
    """Run every recorded call the framework can take; the largest difference to PyTorch."""
    worst, skipped, absent = 0.0, [], set()
    params = inspect.signature(model.call if hasattr(model, "call") else model.__call__).parameters
    for call, (inputs, expected) in recorded(name).items():
        inputs = {k: v for k, v in inputs.items() if k not in LABELS}
        if not set(inputs) <= set(params):
            skipped.append(call)  # Flax takes no inputs_embeds
            continue
        full = any(k.startswith("hidden_states") for k in expected)
        out = run(model, inputs, full)
        compared = 0
        for field, theirs in expected.items():
            key, _, i = field.partition("/")
            # Not given: the loss (no labels are passed), and TFRobertaForMultipleChoice's hidden
            # states and attentions (4.x passes its output flags into the wrong parameters)
            if key not in out:
                absent.add(key)
                continue
            ours = out[key][int(i)] if i else out[key]
            diff = field_diff(field, ours, theirs, dead_queries(inputs, causal))
            if not diff <= ATOL:
                raise SystemExit(f"{name} {call} {field}: differs from PyTorch by {diff:.3g}")
            worst, compared = max(worst, diff), compared + 1
        assert compared, f"{name} {call}: no output to compare"
    return worst, skipped, sorted(absent - {"loss"})


def config_for(transformers, name, supported):
    """The checkpoint's config; an activation the framework lacks swapped for the same function."""
    config = transformers.AutoConfig.from_pretrained(MODEL / name / "safetensors")
    act = config.hidden_act
    if act not in supported:
        same = SAME_ACTIVATION if act in SAME_ACTIVATION else ()
        config.hidden_act = next(a for a in same if a in supported)  # StopIteration: none
    return config, act


def save(model, config, act, folder):
    """save_pretrained, then config.json again with the checkpoint's own activation name."""
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    config.hidden_act = act
    config.save_pretrained(folder)


def convert_all(entries, prefix, fmt, supported, build, run):
    """Each checkpoint into the TF / Flax class (`build`), checked by `check`, then saved."""
    import transformers

    done, skipped, models = [], [], {}
    for entry in entries:
        name, cls_name = entry["name"], prefix + entry["class"]
        if not hasattr(transformers, cls_name):
            skipped.append({"name": name, "reason": f"transformers has no {cls_name}"})
            continue
        config, act = config_for(transformers, name, supported)
        model = models[name] = build(getattr(transformers, cls_name), name, config)
        diff, calls_skipped, absent = check(model, name, config.is_decoder, run)
        ran_with = config.hidden_act
        save(model, config, act, MODEL / name / fmt)
        done.append(record(entry, fmt, diff, calls_skipped, absent, act, ran_with))
    return done, skipped, models


# ============================================================================= TensorFlow

def pytorch_positions(inputs, pad):  # -> [B,T] (or [B,C,T]) position ids as PyTorch makes them
    """TFRobertaEmbeddings counts positions from a hard-coded padding_idx = 1, PyTorch from
    config.pad_token_id: for the pad id 3 checkpoints the check passes PyTorch's positions."""
    if "input_ids" in inputs:
        mask = inputs["input_ids"] != pad
        return np.cumsum(mask, -1) * mask + pad
    B, T = inputs["inputs_embeds"].shape[:2]
    return np.broadcast_to(np.arange(pad + 1, pad + 1 + T), (B, T))


def make_tf(entries):
    import h5py
    import tensorflow as tf
    import transformers
    from safetensors.numpy import load_file
    from transformers.activations_tf import ACT2FN
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    def build(cls, name, config):
        state_dict = load_file(MODEL / name / "safetensors" / "model.safetensors")
        model, info = load_pytorch_state_dict_in_tf2_model(cls(config), state_dict,
                                                           output_loading_info=True)
        assert not info["missing_keys"] and not info["mismatched_keys"], info
        return model

    def run(model, inputs, full):
        pad = model.config.pad_token_id
        if pad != 1 and "position_ids" not in inputs:  # TF 4.x hard-codes padding_idx = 1
            inputs = dict(inputs, position_ids=pytorch_positions(inputs, pad))
        # Keras wants the first argument positional: transformers' TF models take a dict there
        return model(dict(inputs), output_hidden_states=full, output_attentions=full,
                     training=False)

    done, skipped, models = convert_all(entries, "TF", "tf_h5", ACT2FN, build, run)
    for rec in done:
        if models[rec["name"]].config.pad_token_id != 1:
            rec["position_ids"] = "PyTorch's, passed in: TF 4.x hard-codes padding_idx 1"
    bert = transformers.TFBertModel(transformers.BertConfig(
        vocab_size=99, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=13, max_position_embeddings=14))
    bert(bert.dummy_inputs)
    rng = np.random.default_rng(0)  # seeded weights: a rerun writes the same file
    bert.set_weights([rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in bert.get_weights()])
    bert.save_pretrained(MODEL / "other-TFBertModel" / "tf_h5")
    versions = {"tensorflow": tf.__version__, "keras": _version("keras"), "h5py": h5py.__version__}
    return done, skipped, versions


# =================================================================================== Flax

def make_flax(entries):
    import flax
    import jax
    import msgpack
    from flax import serialization
    from transformers.modeling_flax_utils import ACT2FN

    def build(cls, name, config):  # transformers' own PT -> Flax loading of the safetensors
        return cls.from_pretrained(MODEL / name / "safetensors", config=config)

    def run(model, inputs, full):
        return model(**inputs, output_hidden_states=full, output_attentions=full)

    done, skipped, models = convert_all(entries, "Flax", "flax_msgpack", ACT2FN, build, run)
    if "a-RobertaForMaskedLM" in models:
        flax_variants(models["a-RobertaForMaskedLM"], serialization)
    versions = {"jax": jax.__version__, "flax": flax.__version__,
                "msgpack": ".".join(map(str, msgpack.version))}
    return done, skipped, versions


def flax_variants(model, serialization):
    """The same MLM written with flax's chunked arrays (chunk size lowered from 2**30 bytes to
    256, so the word embeddings come in 13 chunks) and with bfloat16 params."""
    folder = MODEL / "a-RobertaForMaskedLM"
    old, serialization.MAX_CHUNK_SIZE = serialization.MAX_CHUNK_SIZE, 256
    try:
        save(model, model.config, model.config.hidden_act, folder / "flax_msgpack_chunked")
    finally:
        serialization.MAX_CHUNK_SIZE = old
    data = (folder / "flax_msgpack_chunked" / "flax_model.msgpack").read_bytes()
    assert b"__msgpack_chunked_array__" in data
    model.params = model.to_bf16(model.params)
    save(model, model.config, model.config.hidden_act, folder / "flax_msgpack_bf16")


# ================================================================================== main

def record(entry, fmt, diff, calls_skipped, absent, act, ran_with):
    out = {"name": entry["name"], "class": entry["class"], "format": fmt,
           "max_abs_diff_vs_pytorch": diff}
    if calls_skipped:
        out["calls_not_run"] = calls_skipped
    if absent:
        out["outputs_not_given"] = absent
    if ran_with != act:
        out["ran_with_activation"] = f"{ran_with} (the same function as {act})"
    return out


def _version(package):
    from importlib.metadata import version

    return version(package)


# Which of the three configs each framework gets. A Keras HDF5 file is 50-100 KB even for these
# tiny models (mostly its own structure), so TF gets one config per class (seven files); the
# name mapping does not depend on the config, and the Flax files (5-25 KB) cover all three.
CONFIGS = {"tf": ("a",), "flax": ("a", "b", "c")}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("tf", "flax"):
        raise SystemExit("usage: make_tf_flax_fixtures.py tf|flax  (its docstring: the venvs)")
    framework = sys.argv[1]
    import transformers

    entries = [e for e in json.loads((MODEL / "manifest.json").read_text())["checkpoints"]
               if "safetensors" in e["formats"] and e["name"].count("-") == 1
               and e["name"].split("-")[0] in CONFIGS[framework]]
    done, skipped, versions = (make_tf if framework == "tf" else make_flax)(entries)
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest["script"] = "scripts/make_tf_flax_fixtures.py"
    manifest[framework] = {
        "reference": {"transformers": transformers.__version__, **versions,
                      "numpy": np.__version__, "safetensors": _version("safetensors"),
                      "python": platform.python_version()},
        "atol_vs_pytorch": ATOL, "checkpoints": done, "skipped": skipped}
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    worst = max(d["max_abs_diff_vs_pytorch"] for d in done)
    print(f"{framework}: wrote {len(done)} checkpoints (max diff vs PyTorch {worst:.2g}), "
          f"skipped {len(skipped)}", file=sys.stderr)


if __name__ == "__main__":
    main()
