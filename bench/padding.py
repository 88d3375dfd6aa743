"""Padding: does a batch of mixed-length inputs cost its real tokens, or its padding?

    python bench/padding.py            # 32 inputs of 8-200 tokens, batches of 8 (~1 min)

roberta-base's shapes with random weights (bench/forward.py's checkpoint, written once),
minirobera's RobertaModel with the Numba kernels, 2 BLAS threads. The same inputs (random
token ids; lengths drawn once, seed 0) are run three ways:

    arrival order       batches of 8 in the order the inputs came, each padded to its longest
                        member: what a loop over `model(**tokenizer(batch, padding=True))` does
    length-sorted       pipelines.length_batches, what every minirobera pipeline does: sorted
                        by length, then cut into batches of 8 (and <= 8192 padded tokens)
    one at a time       no padding at all, but every matrix multiply is a small one

Prints the padded-token count (the work the model is asked to do) and the median seconds
of each way over --rounds rounds (alternating), and the ratio of each to the unpadded
token count. The issue's requirement: a padded batch should not cost much more than its
members' share, so length-sorted should be close to one at a time or better.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # before NumPy starts its BLAS
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import forward  # noqa: E402  (the random-weight checkpoint)


def plans(lengths, batch_size, max_tokens):
    from minirobera.pipelines import length_batches
    arrival = [list(range(i, min(i + batch_size, len(lengths))))
               for i in range(0, len(lengths), batch_size)]
    return {"arrival order": arrival,
            "length-sorted": length_batches(lengths, batch_size, max_tokens),
            "one at a time": [[i] for i in range(len(lengths))]}


def run_plan(model, id_lists, batches):
    from minirobera.pipelines import pad_ids
    for batch in batches:
        ids, mask = pad_ids([id_lists[i] for i in batch], pad_id=1)
        model(input_ids=ids, attention_mask=mask)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="number of inputs")
    ap.add_argument("--min-len", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--config", type=Path, default=forward.DEFAULT_CONFIG)
    args = ap.parse_args(argv)
    model = forward.random_base_model(args.config)
    from minirobera.pipelines import Pipeline
    rng = np.random.default_rng(0)
    lengths = rng.integers(args.min_len, args.max_len + 1, args.n).tolist()
    id_lists = [[0, *rng.integers(3, 50000, n - 2).tolist(), 2] for n in lengths]
    ways = plans(lengths, args.batch_size, Pipeline.max_batch_tokens)
    run_plan(model, id_lists, ways["one at a time"][:2])  # warm-up: kernels, buffers

    times = {name: [] for name in ways}
    for r in range(args.rounds):
        names = list(ways) if r % 2 == 0 else list(ways)[::-1]
        for name in names:
            t0 = time.perf_counter()
            run_plan(model, id_lists, ways[name])
            times[name].append(time.perf_counter() - t0)
    real = sum(lengths)
    base = float(np.median(times["one at a time"]))
    print(f"{args.n} inputs of {args.min_len}-{args.max_len} tokens ({real} real tokens), "
          f"batches of {args.batch_size}, {args.rounds} rounds, medians\n")
    print("| way | batches | padded tokens | padded / real | seconds | time / one-at-a-time |")
    print("|---|---|---|---|---|---|")
    for name, batches in ways.items():
        padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        sec = float(np.median(times[name]))
        print(f"| {name} | {len(batches)} | {padded} | {padded / real:.2f} | {sec:.2f} | "
              f"{sec / base:.2f} |")


if __name__ == "__main__":
    main()
