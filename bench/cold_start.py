"""Cold start: time from a fresh `python` process to its first fill-mask result.

    python bench/cold_start.py            # 3 runs per case (~30 s)
    python bench/cold_start.py --with-hf  # also transformers' pipeline, for comparison

A small RobertaForMaskedLM checkpoint (roberta-base's vocabulary and settings, hidden 128,
2 layers; ~27 MB) is written once by minirobera itself to bench/_work/cold-start-model, with
symlinks to the real vocab.json / merges.txt (../shared/roberta-base, never copied).
Cases, each a new process running `pipeline("fill-mask", model=...)("Hello I'm a <mask> model.")`:

    numba, warm cache   the compiled kernels load from Numba's on-disk cache (the normal case
                        from the second run on; the cache is warmed first)
    numba, cold cache   NUMBA_CACHE_DIR points at an empty temp folder: everything compiles
    numpy               MINIROBERA_KERNELS=numpy: Numba is never imported
    transformers        (--with-hf) the same with transformers' pipeline

Prints the wall time from process start to exit (interpreter start-up included) and, from
inside the process, the time spent importing minirobera + loading + the first call.
Target (issue 5): warm cache under 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work"
# the real roberta-base tokenizer files, as in tests/conftest.py
VOCAB_DIR = Path(os.environ.get("MINIROBERA_ROBERTA_BASE") or REPO.parent / "shared" / "roberta-base")
TEXT = "Hello I'm a <mask> model."

CHILD = r"""
import time, json, sys
t0 = time.perf_counter()
from minirobera import pipeline
t1 = time.perf_counter()
fill = pipeline("fill-mask", model=sys.argv[1])
t2 = time.perf_counter()
result = fill(sys.argv[2])
t3 = time.perf_counter()
from minirobera import kernels
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first_call": t3 - t2,
                  "backend": kernels.get_backend(), "top": result[0]["token_str"]}))
"""

CHILD_HF = r"""
import time, json, sys
t0 = time.perf_counter()
from transformers import pipeline, AutoTokenizer
from tokenizers import AddedToken
t1 = time.perf_counter()
tok = AutoTokenizer.from_pretrained(sys.argv[1], mask_token=AddedToken(
    "<mask>", lstrip=True, rstrip=False, normalized=False))
fill = pipeline("fill-mask", model=sys.argv[1], tokenizer=tok)
t2 = time.perf_counter()
result = fill(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first_call": t3 - t2,
                  "backend": "torch", "top": result[0]["token_str"]}))
"""


def make_model(out: Path) -> Path:
    """A small MLM checkpoint written by minirobera, with the real tokenizer files linked."""
    if (out / "model.safetensors").is_file():
        return out
    sys.path.insert(0, str(REPO))
    from minirobera import RobertaConfig, RobertaForMaskedLM
    base = json.loads((VOCAB_DIR / "config.json").read_text())
    base.update(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=512, architectures=["RobertaForMaskedLM"])
    config = RobertaConfig.from_dict(base)
    RobertaForMaskedLM(config, seed=0).save_pretrained(out)
    for name in ("vocab.json", "merges.txt"):
        link = out / name
        if not link.exists():
            link.symlink_to(VOCAB_DIR / name)
    return out


def run_once(model: Path, env_extra: dict, code: str = CHILD) -> dict:
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, str(model), TEXT], capture_output=True,
                       text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"the child process failed:\n{p.stderr}")
    return {"wall": wall, **json.loads(p.stdout.strip().splitlines()[-1])}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--with-hf", action="store_true", help="also time transformers' pipeline")
    ap.add_argument("--out", type=Path, default=WORK / "cold_start.md")
    args = ap.parse_args(argv)
    model = make_model(WORK / "cold-start-model")
    run_once(model, {"MINIROBERA_KERNELS": "numba"})  # warm the default Numba cache
    cases = [("minirobera, numba, warm cache", lambda: {"MINIROBERA_KERNELS": "numba"}, CHILD),
             ("minirobera, numba, cold cache",
              lambda: {"MINIROBERA_KERNELS": "numba",
                       "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-cold-")}, CHILD),
             ("minirobera, numpy", lambda: {"MINIROBERA_KERNELS": "numpy"}, CHILD)]
    if args.with_hf:
        cases.append(("transformers pipeline", lambda: {}, CHILD_HF))
    results = {name: [] for name, _, _ in cases}
    for _ in range(args.runs):  # alternate the cases
        for name, env, code in cases:
            results[name].append(run_once(model, env(), code))
    lines = [f"Cold start to the first fill-mask result (small checkpoint: hidden 128, 2 layers, "
             f"vocab 50265), median of {args.runs} fresh processes; loadavg "
             f"{os.getloadavg()[0]:.2f}.", "",
             "| case | process wall s | import s | load s | first call s | top token |",
             "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        med = {k: float(np.median([r[k] for r in runs]))
               for k in ("wall", "import", "load", "first_call")}
        lines.append(f"| {name} | {med['wall']:.2f} | {med['import']:.2f} | {med['load']:.2f} "
                     f"| {med['first_call']:.2f} | {runs[0]['top']!r} |")
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
