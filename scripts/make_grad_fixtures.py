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
        "checkpoints": names}, indent=1) + "\n")
    size = (OUT / "grads.npz").stat().st_size
    print(f"wrote gradients of {len(names)} checkpoints ({size / 1e3:.0f} KB)", file=sys.stderr)


if __name__ == "__main__":
    main()
