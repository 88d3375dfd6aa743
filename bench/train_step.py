"""Training-step benchmark: minirobera (NumPy backward + AdamW) vs transformers + torch.

    python bench/train_step.py                 # roberta-base shape, 1x128 and 8x128, 5 rounds
    python bench/train_step.py --quick         # 2 rounds, 3 steps each
    python bench/train_step.py --tiny          # a 2-layer toy config: checks the script runs
    python bench/train_step.py --profile 8x128 # where minirobera's step spends its time

One training step = forward + backward + gradient clipping (norm 1) + AdamW update, on
RobertaForMaskedLM with roberta-base's config (../shared/roberta-base/config.json or
--config; random weights, the cost does not depend on the values), 15% of the tokens
labelled as in masked-LM pretraining, float32, dropout off on both sides (eval-mode
numerics; dropout's cost is a few element-wise multiplies).

  minirobera   model.loss_and_grads + training.clip_grad_norm + training.AdamW.step
  torch        transformers.RobertaForMaskedLM (eager attention), loss.backward(),
               clip_grad_norm_, torch.optim.AdamW (its default foreach implementation)

Note the heads differ in work: minirobera's MLM head runs on the labelled tokens only
(backward.masked_lm_loss: the others' gradient is exactly zero), transformers' computes
[B,T,V] logits for every token. That is a real saving of the readable code, not a trick of
the benchmark; `--all-labels` labels every token to compare equal work.

Each implementation runs in its own processes (torch's and NumPy's thread pools distort each
other in one process), with the same thread count (--threads, default 2), a fresh process per
(implementation, shape, round), the implementations alternating in order round by round.
Each process builds the model, runs --warmup steps, then times --steps steps and reports
every step's time and its peak RSS. Prints per shape the median ms of each, the ratio
minirobera / torch and the peak RSS, and writes the same as markdown to
bench/_work/train_step.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forward import DEFAULT_CONFIG, WORK, _env  # noqa: E402  (it puts the repository on sys.path)

SHAPES = [(1, 128), (8, 128)]
IMPLS = ["minirobera", "torch"]
TINY = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=128, max_position_embeddings=514, type_vocab_size=1,
            layer_norm_eps=1e-5, pad_token_id=1, hidden_act="gelu")


def config_dict(args) -> dict:
    if args.tiny:
        return dict(TINY)
    return json.loads(Path(args.config).read_text())


def make_batch(B: int, T: int, vocab: int, all_labels: bool, seed: int = 0) -> dict:
    """Random ids (no pads: every row full), 15% (or all) of them labelled."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, (B, T))
    ids[:, 0], ids[:, -1] = 0, 2
    chosen = np.ones(ids.shape, bool) if all_labels else rng.random(ids.shape) < 0.15
    chosen[:, 1] = True  # at least one label per row
    return {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "labels": np.where(chosen, ids, -100)}


# ------------------------------------------------------------------------------- workers

def minirobera_step_fn(cfg: dict, batch: dict):
    from minirobera import training
    from minirobera.config import RobertaConfig
    from minirobera.modeling import RobertaForMaskedLM

    model = RobertaForMaskedLM(RobertaConfig.from_dict(cfg), seed=0)
    optimizer = training.AdamW(training.parameters(model), betas=(0.9, 0.98), eps=1e-6)

    def step():
        return training.training_step(model, batch, optimizer, 1e-5, max_grad_norm=1.0)
    return step


def torch_step_fn(cfg: dict, batch: dict, threads: int):
    import torch
    import transformers

    torch.set_num_threads(threads)
    config = transformers.RobertaConfig(**{k: v for k, v in cfg.items()
                                           if k not in ("architectures", "transformers_version")})
    config._attn_implementation = "eager"
    model = transformers.RobertaForMaskedLM(config).eval()  # eval: dropout off, as minirobera
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.98), eps=1e-6,
                                  weight_decay=0.01)
    tensors = {k: torch.from_numpy(v) for k, v in batch.items()}

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**tensors).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return float(loss.detach())
    return step


def worker(args) -> None:
    B, T = parse_shape(args.shape)
    cfg = config_dict(args)
    batch = make_batch(B, T, cfg["vocab_size"], args.all_labels)
    step = (minirobera_step_fn(cfg, batch) if args.worker == "minirobera"
            else torch_step_fn(cfg, batch, args.threads))
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB
    print(json.dumps({"times": times, "peak_rss_mb": peak_mb}))


def profile(args) -> None:
    """cProfile of minirobera's step, top functions by own time: where the time goes."""
    import cProfile
    import pstats

    B, T = parse_shape(args.profile)
    cfg = config_dict(args)
    step = minirobera_step_fn(cfg, make_batch(B, T, cfg["vocab_size"], args.all_labels))
    step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(max(1, args.steps)):
        step()
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(20)


# -------------------------------------------------------------------------------- driver

def parse_shape(text: str) -> tuple:
    B, T = text.lower().split("x")
    return int(B), int(T)


def run_one(args, impl: str, shape: tuple) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl,
           "--shape", f"{shape[0]}x{shape[1]}", "--threads", str(args.threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--config", str(args.config)]
    cmd += ["--tiny"] if args.tiny else []
    cmd += ["--all-labels"] if args.all_labels else []
    out = subprocess.run(cmd, env=_env("train-step", args.threads), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} {shape} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--shapes", default=",".join(f"{b}x{t}" for b, t in SHAPES))
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="2 rounds of 3 steps")
    p.add_argument("--tiny", action="store_true", help="a toy config instead of roberta-base")
    p.add_argument("--all-labels", action="store_true", help="label every token (equal work)")
    p.add_argument("--out", default=str(WORK / "train_step.md"))
    p.add_argument("--profile", metavar="BxT", help="profile minirobera's step at this shape")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--shape", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.profile:
        profile(args)
        return 0
    if args.quick:
        args.rounds, args.steps, args.warmup = 2, 3, 1
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    impls = args.impls.split(",")
    results = {(i, s): {"times": [], "rss": []} for i in impls for s in shapes}
    for r in range(args.rounds):
        for shape in shapes:
            for impl in (impls if r % 2 == 0 else impls[::-1]):  # alternate the order
                res = run_one(args, impl, shape)
                results[impl, shape]["times"].append(float(np.median(res["times"])))
                results[impl, shape]["rss"].append(res["peak_rss_mb"])
                print(f"round {r + 1}/{args.rounds} {impl:10s} {shape[0]}x{shape[1]}: "
                      f"{1e3 * np.median(res['times']):8.1f} ms/step, "
                      f"peak RSS {res['peak_rss_mb']:.0f} MB", flush=True)
    table = report(results, impls, shapes, args)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")
    return 0


def report(results, impls, shapes, args) -> str:
    what = "toy config" if args.tiny else "roberta-base"
    lines = [f"Training step (forward + backward + clip + AdamW), RobertaForMaskedLM, {what}, "
             f"fp32, {args.threads} threads, median over {args.rounds} rounds of "
             f"{args.steps} steps; labels: {'all' if args.all_labels else '15%'}", "",
             "| shape | " + " | ".join(f"{i} ms" for i in impls)
             + (" | minirobera / torch" if {"minirobera", "torch"} <= set(impls) else "")
             + " | " + " | ".join(f"{i} peak RSS MB" for i in impls) + " |",
             "|---" * (1 + 2 * len(impls) + ({"minirobera", "torch"} <= set(impls))) + "|"]
    for s in shapes:
        ms = {i: 1e3 * float(np.median(results[i, s]["times"])) for i in impls}
        row = f"| {s[0]}x{s[1]} | " + " | ".join(f"{ms[i]:.0f}" for i in impls)
        if {"minirobera", "torch"} <= set(impls):
            row += f" | {ms['minirobera'] / ms['torch']:.2f}x"
        row += " | " + " | ".join(f"{max(results[i, s]['rss']):.0f}" for i in impls) + " |"
        lines.append(row)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
