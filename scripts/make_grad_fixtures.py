"""Write the gradient fixtures: torch autograd's loss and gradients on the model fixtures.

    pip install -e '.[reference]'        # torch==2.13.0, transformers>=5
    python scripts/make_grad_fixtures.py

Reads tests/fixtures/model/ (made by scripts/make_model_fixtures.py): for every checkpoint
of a class that takes labels (masked / causal LM, sequence / token classification, QA,
multiple choice; configs a, b, c), it loads the safetensors folder into transformers
(eager attention, float32, eval mode: no dropout), runs the recorded "main" call with its
labels (right / left / mid-text padding, token types in config b, the causal mask of the
causal LM) and records the loss and the gradient of every parameter under its
named_parameters() name (tied parameters once, as transformers lists them).

Writes tests/fixtures/grads/grads.npz (compressed; `<checkpoint>/loss`,
`<checkpoint>/grad/<parameter name>`) and tests/fixtures/grads/manifest.json (versions).
tests/test_backward.py compares minirobera's loss_and_grads with them, without torch.

Also tests/fixtures/grads/adamw.npz: ten steps of torch.optim.AdamW (no-decay group for
biases and LayerNorm weights, clipping at global norm 1, LambdaLR with linear warmup then
linear decay) on a-RobertaForMaskedLM, from its fixture weights, on ten recorded batches:
`batch/<i>/<input>`, `loss/<i>`, `param/<name>` (the weights after the last step).
tests/test_training.py runs minirobera.training on the same batches.
"""

import json
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import transformers

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "model"
OUT = ROOT / "tests" / "fixtures" / "grads"
LABEL_NAMES = ("labels", "start_positions", "end_positions")


def torch_loss_and_grads(model, call):
    """autograd's (loss, {named_parameters() name: grad}) for one call {input: array}, in
    the model's dtype (float inputs such as regression labels are cast to it)."""
    model.zero_grad(set_to_none=True)
    dtype = next(model.parameters()).dtype
    kw = {k: torch.from_numpy(np.asarray(v)) for k, v in call.items()}
    kw = {k: v.to(dtype) if v.is_floating_point() else v for k, v in kw.items()}
    loss = model(**kw).loss
    loss.backward()
    grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)).numpy().copy()
             for name, p in model.named_parameters()}
    return float(loss.detach()), grads


def load_model(name, cls_name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(transformers, cls_name).from_pretrained(
            MODELS / name / "safetensors", attn_implementation="eager")
    return model.float().eval()


def main_call(name):
    with np.load(MODELS / name / "reference.npz") as z:
        return {k.split("/", 2)[2]: z[k] for k in z.files if k.startswith("main/in/")}


# the ten-step AdamW run (tests/test_training.py uses the same numbers)
ADAMW = dict(checkpoint="a-RobertaForMaskedLM", steps=10, warmup_steps=3, lr=1e-2,
             betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, max_grad_norm=1.0, seed=19)


def no_decay(name):
    return name.endswith("bias") or "LayerNorm." in name or "layer_norm." in name


def adamw_batches(vocab, pad, rng, n, batch=3, tokens=7):
    """n masked-LM batches: random ids, one right-padded row, ~30% of real tokens labelled."""
    out = []
    for _ in range(n):
        ids = rng.integers(4, vocab, (batch, tokens))
        ids[:, 0], ids[:, -1] = 0, 2
        mask = np.ones((batch, tokens), np.int64)
        mask[0, tokens - 2:] = 0
        ids[mask == 0] = pad
        labels = np.where((rng.random(ids.shape) < 0.3) & (mask == 1), ids, -100)
        labels[:, 1] = ids[:, 1]
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return out


def torch_train(model, batches, steps, warmup_steps, lr, betas, eps, weight_decay,
                max_grad_norm):
    """torch's loop: AdamW with a no-decay group, clip_grad_norm_, LambdaLR (linear
    warmup, linear decay). Returns the losses."""
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if not no_decay(n)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    sched = transformers.get_linear_schedule_with_warmup(opt, warmup_steps, steps)
    losses = []
    for batch in batches[:steps]:
        opt.zero_grad(set_to_none=True)
        loss = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses


def adamw_reference():
    a = ADAMW
    model = load_model(a["checkpoint"], "RobertaForMaskedLM")
    c = model.config
    batches = adamw_batches(c.vocab_size, c.pad_token_id, np.random.default_rng(a["seed"]),
                            a["steps"])
    losses = torch_train(model, batches, a["steps"], a["warmup_steps"], a["lr"], a["betas"],
                         a["eps"], a["weight_decay"], a["max_grad_norm"])
    arrays = {f"batch/{i}/{k}": v for i, b in enumerate(batches) for k, v in b.items()}
    arrays.update({f"loss/{i}": np.float32(v) for i, v in enumerate(losses)})
    arrays.update({f"param/{n}": p.detach().numpy().copy() for n, p in model.named_parameters()})
    np.savez_compressed(OUT / "adamw.npz", **arrays)


def main():
    manifest = json.loads((MODELS / "manifest.json").read_text())
    arrays, names = {}, []
    for entry in manifest["checkpoints"]:
        name, cls_name = entry["name"], entry["class"]
        if cls_name == "RobertaModel" or name.count("-") > 1:  # base model, f16/bf16/sharded copies
            continue
        call = main_call(name)
        if not any(k in call for k in LABEL_NAMES):
            continue
        loss, grads = torch_loss_and_grads(load_model(name, cls_name), call)
        arrays[f"{name}/loss"] = np.float32(loss)
        arrays.update({f"{name}/grad/{k}": v for k, v in grads.items()})
        names.append(name)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "grads.npz", **arrays)
    (OUT / "manifest.json").write_text(json.dumps({
        "script": "scripts/make_grad_fixtures.py",
        "reference": {"transformers": transformers.__version__, "torch": torch.__version__,
                      "numpy": np.__version__, "python": platform.python_version()},
        "attention": "eager", "dtype": "float32", "mode": "eval (no dropout)",
        "checkpoints": names, "adamw": ADAMW}, indent=1) + "\n")
    adamw_reference()
    size = (OUT / "grads.npz").stat().st_size + (OUT / "adamw.npz").stat().st_size
    print(f"wrote gradients of {len(names)} checkpoints ({size / 1e3:.0f} KB)", file=sys.stderr)


if __name__ == "__main__":
    main()
