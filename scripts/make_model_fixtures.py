"""Write the model fixtures: tiny random RoBERTa checkpoints and transformers' outputs on them.

    pip install -e '.[reference]'        # torch==2.13.0, transformers>=5
    python scripts/make_model_fixtures.py

Writes tests/fixtures/model/:
    manifest.json            versions of torch / transformers / numpy, and one entry per checkpoint
    <name>/safetensors/      config.json + model.safetensors   (transformers' save_pretrained)
    <name>/bin_zip/          config.json + pytorch_model.bin   (torch.save, zip format)
    <name>/bin_legacy/       config.json + pytorch_model.bin   (torch.save, legacy pickle stream)
    <name>/reference.npz     inputs and every output transformers gives (eager attention,
                             float32): logits, hidden states, attention maps, losses
Every model class x three configs (different depth, heads, width, FFN width, vocab, eps,
pad id, token types), the hidden_act rotated so each one appears; plus F16 and BF16 copies
and sharded checkpoints. Weights are re-drawn with a larger scale than transformers' init
(0.02 would make attention nearly uniform and every bias zero, testing little).

The inputs have a right-padded row, a left-padded row, a row with the pad id inside the
text (attended to), and a full row. Deterministic: torch.manual_seed per checkpoint.
"""

import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "model"

CLASSES = ["RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM",
           "RobertaForSequenceClassification", "RobertaForTokenClassification",
           "RobertaForQuestionAnswering", "RobertaForMultipleChoice"]
ACTS = ["gelu", "gelu_new", "gelu_fast", "quick_gelu", "relu", "silu", "tanh",
        "gelu_pytorch_tanh", "swish"]
# three shapes; sizes deliberately not multiples of anything
CONFIGS = {
    "a": dict(num_hidden_layers=2, num_attention_heads=2, hidden_size=8, intermediate_size=13,
              vocab_size=99, max_position_embeddings=14, type_vocab_size=1,
              layer_norm_eps=1e-5, pad_token_id=1, tokens=8),
    "b": dict(num_hidden_layers=3, num_attention_heads=3, hidden_size=9, intermediate_size=23,
              vocab_size=107, max_position_embeddings=16, type_vocab_size=2,
              layer_norm_eps=1e-12, pad_token_id=1, tokens=9),
    "c": dict(num_hidden_layers=1, num_attention_heads=4, hidden_size=12, intermediate_size=29,
              vocab_size=113, max_position_embeddings=19, type_vocab_size=1,
              layer_norm_eps=1e-5, pad_token_id=3, tokens=7),
}
# the classification heads' labels per config
SEQ_LABELS = {"a": dict(num_labels=3),
              "b": dict(num_labels=1),  # regression
              "c": dict(num_labels=4, problem_type="multi_label_classification")}
TOKEN_LABELS = {"a": 5, "b": 2, "c": 7}


def hf_config(cfg_name, cls_name, act):
    kw = {k: v for k, v in CONFIGS[cfg_name].items() if k != "tokens"}
    kw.update(hidden_act=act, bos_token_id=0, eos_token_id=2)
    if cls_name == "RobertaForSequenceClassification":
        kw.update(SEQ_LABELS[cfg_name])
    elif cls_name == "RobertaForTokenClassification":
        kw.update(num_labels=TOKEN_LABELS[cfg_name])
    elif cls_name == "RobertaForCausalLM":
        kw.update(is_decoder=True)
    config = transformers.RobertaConfig(**kw)
    config._attn_implementation = "eager"  # transformers' reference attention, with maps
    return config


def build(cfg_name, cls_name, act, seed):
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(hf_config(cfg_name, cls_name, act)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.3)
    return model


def make_inputs(cfg_name, rng):
    """Four rows: right-padded, left-padded, pad id inside the text, full."""
    c = CONFIGS[cfg_name]
    T, pad = c["tokens"], c["pad_token_id"]

    def text(n):
        return list(rng.integers(4, c["vocab_size"], n))  # never 0..3: no bos/pad/eos/unk

    rows = [[0] + text(T - 5) + [2] + [pad] * 3,
            [pad] * 2 + [0] + text(T - 4) + [2],
            [0] + text(2) + [pad] + text(T - 6) + [2] + [pad],
            [0] + text(T - 2) + [2]]
    masks = [[1] * (T - 3) + [0] * 3, [0] * 2 + [1] * (T - 2), [1] * (T - 1) + [0], [1] * T]
    inputs = {"input_ids": np.array(rows, np.int64), "attention_mask": np.array(masks, np.int64)}
    if c["type_vocab_size"] > 1:
        inputs["token_type_ids"] = np.array([[0] * (T // 2) + [1] * (T - T // 2)] * 4, np.int64)
    return inputs


def make_labels(cls_name, config, inputs, rng):
    ids = inputs["input_ids"]
    B, T = ids.shape[0], ids.shape[-1]
    if cls_name == "RobertaForMaskedLM":
        labels = np.where(rng.random((B, T)) < 0.4, ids, -100)
        labels[0, 1] = ids[0, 1]  # at least one label
        return {"labels": labels}
    if cls_name == "RobertaForCausalLM":
        return {"labels": np.where(inputs["attention_mask"] == 1, ids, -100)}
    if cls_name == "RobertaForSequenceClassification":
        if config.problem_type == "multi_label_classification":
            return {"labels": (rng.random((B, config.num_labels)) < 0.5).astype(np.float32)}
        if config.num_labels == 1:
            return {"labels": rng.normal(size=B).astype(np.float32)}
        return {"labels": rng.integers(0, config.num_labels, B)}
    if cls_name == "RobertaForTokenClassification":
        labels = rng.integers(0, config.num_labels, (B, T))
        return {"labels": np.where(inputs["attention_mask"] == 1, labels, -100)}
    if cls_name == "RobertaForQuestionAnswering":  # one position past the end: clamped, ignored
        return {"start_positions": np.array([1, 3, T + 4, 2]), "end_positions": np.array([2, 5, 4, T])}
    if cls_name == "RobertaForMultipleChoice":
        return {"labels": np.array([1, 0])}
    return {}


def run(model, inputs, labels=None, full=True):
    """transformers' outputs as {name: float32 array}, tuples flattened to name/i; `full`
    adds every hidden state and attention map."""
    kw = {k: torch.from_numpy(v) for k, v in inputs.items()}
    kw.update({k: torch.from_numpy(v) for k, v in (labels or {}).items()})
    with torch.no_grad():
        out = model(**kw, output_hidden_states=full, output_attentions=full)
    flat = {}
    for key, value in out.items():
        if isinstance(value, tuple):
            flat.update({f"{key}/{i}": v.numpy().astype(np.float32) for i, v in enumerate(value)})
        elif value is not None:
            flat[key] = value.numpy().astype(np.float32)
    return flat


def reference(cls_name, model, cfg_name, rng):
    """Every call recorded for one checkpoint: {call: (inputs, outputs)}."""
    inputs = make_inputs(cfg_name, rng)
    if cls_name == "RobertaForMultipleChoice":  # 4 rows -> 2 examples x 2 choices
        inputs = {k: v.reshape(2, 2, -1) for k, v in inputs.items()}
    labels = make_labels(cls_name, model.config, inputs, rng)
    calls = {"main": ({**inputs, **labels}, run(model, inputs, labels))}
    if cls_name == "RobertaModel":
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        T, D = ids.shape[1], model.config.hidden_size
        calls["no_mask"] = ({"input_ids": ids}, run(model, {"input_ids": ids}, full=False))
        embeds = {"inputs_embeds": rng.normal(size=(2, T, D)).astype(np.float32),
                  "attention_mask": mask[:2]}
        calls["embeds"] = (embeds, run(model, embeds, full=False))
        pos = {"input_ids": ids, "attention_mask": mask,
               "position_ids": rng.integers(0, model.config.max_position_embeddings, ids.shape)}
        calls["positions"] = (pos, run(model, pos, full=False))
    return calls


def save_reference(path, calls):
    arrays = {}
    for call, (inputs, outputs) in calls.items():
        arrays.update({f"{call}/in/{k}": v for k, v in inputs.items()})
        arrays.update({f"{call}/out/{k}": v for k, v in outputs.items()})
    np.savez_compressed(path, **arrays)


def save_bins(model, folder):
    """pytorch_model.bin as transformers 4 wrote it (torch.save of the state dict, tied
    decoder included and sharing the embeddings' storage), zip and legacy."""
    sd = model.state_dict()
    for fmt, zip_format in (("bin_zip", True), ("bin_legacy", False)):
        (folder / fmt).mkdir(parents=True)
        model.config.to_json_file(folder / fmt / "config.json")
        torch.save(sd, folder / fmt / "pytorch_model.bin", _use_new_zipfile_serialization=zip_format)


def save_sharded_bin(model, folder, n_shards=2):
    folder.mkdir(parents=True)
    model.config.to_json_file(folder / "config.json")
    sd = model.state_dict()
    keys = list(sd)
    weight_map = {}
    for s in range(n_shards):
        name = f"pytorch_model-{s + 1:05d}-of-{n_shards:05d}.bin"
        part = {k: sd[k] for k in keys[s::n_shards]}
        torch.save(part, folder / name)
        weight_map.update({k: name for k in part})
    index = {"metadata": {"total_size": sum(v.numel() * 4 for v in sd.values())},
             "weight_map": weight_map}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2))


def checkpoint_entry(name, cls_name, model, formats, calls):
    c = model.config
    return {"name": name, "class": cls_name, "formats": formats, "calls": sorted(calls),
            "config": {k: getattr(c, k) for k in (
                "num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size",
                "vocab_size", "max_position_embeddings", "type_vocab_size", "hidden_act",
                "layer_norm_eps", "pad_token_id", "is_decoder", "num_labels", "problem_type")}}


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    entries, seed = [], 0
    for j, cls_name in enumerate(CLASSES):
        for k, cfg_name in enumerate(CONFIGS):
            seed += 1
            act = ACTS[(3 * j + k) % len(ACTS)]  # every activation appears somewhere
            model = build(cfg_name, cls_name, act, seed)
            name = f"{cfg_name}-{cls_name}"
            folder = OUT / name
            model.save_pretrained(folder / "safetensors")
            save_bins(model, folder)
            calls = reference(cls_name, model, cfg_name, np.random.default_rng(seed))
            save_reference(folder / "reference.npz", calls)
            entries.append(checkpoint_entry(name, cls_name, model,
                                            ["safetensors", "bin_zip", "bin_legacy"], calls))
    entries += extras(seed)
    manifest = {"script": "scripts/make_model_fixtures.py",
                "reference": {"transformers": transformers.__version__,
                              "torch": torch.__version__, "numpy": np.__version__,
                              "python": platform.python_version()},
                "attention": "eager", "dtype": "float32", "checkpoints": entries}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {len(entries)} checkpoints to {OUT} ({total / 1e6:.2f} MB)", file=sys.stderr)


def extras(seed):
    """Half-precision copies (weights rounded first, so the reference is exact) and shards."""
    entries = []
    for dtype, cfg_name, cls_name in ((torch.float16, "a", "RobertaForMaskedLM"),
                                      (torch.bfloat16, "b", "RobertaForSequenceClassification")):
        seed += 1
        model = build(cfg_name, cls_name, "gelu", seed)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(dtype).float())  # exactly representable in half precision
        calls = reference(cls_name, model, cfg_name, np.random.default_rng(seed))
        tag = str(dtype).split(".")[-1]
        folder = OUT / f"{cfg_name}-{cls_name}-{tag}"
        model.to(dtype)
        model.save_pretrained(folder / "safetensors")
        formats = ["safetensors"]
        if dtype == torch.bfloat16:  # BFloat16Storage in a .bin
            (folder / "bin_zip").mkdir()
            model.config.to_json_file(folder / "bin_zip" / "config.json")
            torch.save(model.state_dict(), folder / "bin_zip" / "pytorch_model.bin")
            formats.append("bin_zip")
        save_reference(folder / "reference.npz", calls)
        entries.append(checkpoint_entry(folder.name, cls_name, model, formats, calls))
    seed += 1
    model = build("b", "RobertaForTokenClassification", "gelu", seed)
    folder = OUT / "b-RobertaForTokenClassification-sharded"
    model.save_pretrained(folder / "safetensors_sharded", max_shard_size="4KB")
    save_sharded_bin(model, folder / "bin_sharded")
    calls = reference("RobertaForTokenClassification", model, "b", np.random.default_rng(seed))
    save_reference(folder / "reference.npz", calls)
    entries.append(checkpoint_entry(folder.name, "RobertaForTokenClassification", model,
                                    ["safetensors_sharded", "bin_sharded"], calls))
    return entries


if __name__ == "__main__":
    main()
