"""minirobera's forward from two (or more) source trees, each in its own processes, taking turns.

    python bench/compare_trees.py before=/tmp/before after=. [--rounds 5] [--shapes 1x8,1x128,8x128]
    python bench/compare_trees.py now=. zen=.:OPENBLAS_CORETYPE=Zen     # same tree, other env

For a before / after of a change: check the old commit out beside this one (`git worktree add
/tmp/before <commit>`) and name both. Each round starts one fresh process per tree (its
`PYTHONPATH` pointing at that tree, plus any `VAR=value` given after a colon), in the order
given; a process imports minirobera first, then NumPy (the order older trees needed to set
OpenBLAS up), loads `RobertaModel` from the random roberta-base-shaped checkpoint
bench/forward.py writes, and times each shape (a warm-up call, then the median of several).
Prints every round's medians, the median over rounds, and each tree's ratio to the first,
paired by round. Wall time; run it on a quiet machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPS = {8: 40, 128: 15, 512: 5}  # calls per shape, by tokens (batches of 8+ get a third)


def worker(ckpt: str, shapes) -> dict:
    import warnings

    import minirobera  # first: older trees set OpenBLAS's kernels before NumPy loaded it
    import numpy as np

    warnings.simplefilter("ignore")  # a RobertaForMaskedLM checkpoint: LM head keys unused
    model = minirobera.RobertaModel.from_pretrained(ckpt)
    rng, out = np.random.default_rng(0), {"tree": str(Path(minirobera.__file__).parents[1])}
    for B, T in shapes:
        ids = rng.integers(3, 50000, (B, T))
        ids[:, 0], ids[:, -1] = 0, 2
        mask = np.ones((B, T), np.int64)
        model(input_ids=ids, attention_mask=mask)
        times = []
        for _ in range(max(3, REPS.get(T, 5) // (3 if B >= 8 else 1))):
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            times.append(time.perf_counter() - start)
        out[f"{B}x{T}"] = 1e3 * statistics.median(times)
    return out


def parse_tree(spec: str):  # "name=path[:VAR=value:...]" -> (name, path, extra env)
    name, _, rest = spec.partition("=")
    path, *settings = rest.split(":")
    if not name or not path:
        raise SystemExit(f"{spec!r}: expected name=path[:VAR=value...]")
    return name, str(Path(path).resolve()), dict(s.split("=", 1) for s in settings)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trees", nargs="*", help="name=path[:VAR=value...], the first is the base")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default="1x8,1x128,8x128")
    ap.add_argument("--ckpt", default=str(HERE / "_work" / "roberta-base-random"),
                    help="checkpoint folder (bench/forward.py writes this one)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    if args.worker:
        print(json.dumps(worker(args.ckpt, shapes)))
        return
    if len(args.trees) < 2:
        raise SystemExit("name at least two trees, e.g. before=/tmp/before after=.")
    if not Path(args.ckpt, "model.safetensors").is_file():
        raise SystemExit(f"no checkpoint in {args.ckpt}: run bench/forward.py once to write it")
    trees = [parse_tree(t) for t in args.trees]
    results = {name: [] for name, _, _ in trees}
    for r in range(args.rounds):
        for name, path, extra in trees:
            env = {**os.environ, "PYTHONPATH": path, **extra}
            done = subprocess.run([sys.executable, __file__, "--worker", "--ckpt", args.ckpt,
                                   "--shapes", args.shapes], env=env, capture_output=True,
                                  text=True, cwd="/")
            if done.returncode:
                raise SystemExit(f"{name}: {done.stderr.strip()[-2000:]}")
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    keys = [f"{B}x{T}" for B, T in shapes]
    base = trees[0][0]
    print("| tree | " + " | ".join(f"{k} ms (rounds)" for k in keys) + " | "
          + " | ".join(f"{k} / {base}, paired" for k in keys) + " |")
    print("|---" * (1 + 2 * len(keys)) + "|")
    for name, _, _ in trees:
        runs = results[name]
        cells = [f"{statistics.median(x[k] for x in runs):,.1f} ("
                 + ", ".join(f"{x[k]:.0f}" for x in runs) + ")" for k in keys]
        ratios = [statistics.median(x[k] / b[k] for x, b in zip(runs, results[base]))
                  for k in keys]
        print(f"| {name} | " + " | ".join(cells) + " | "
              + " | ".join(f"{q:.2f}" for q in ratios) + " |")
    print("trees: " + ", ".join(f"{n} = {results[n][0]['tree']}" for n, _, _ in trees))


if __name__ == "__main__":
    main()
