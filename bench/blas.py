"""Which OpenBLAS kernels should NumPy run? minirobera's forward under each, taking turns.

    python bench/blas.py                               # SkylakeX vs Zen, 4 shapes (~4 min)
    python bench/blas.py --coretypes SkylakeX,Haswell --shapes 8x128 --rounds 8

minirobera/blas.py sets OPENBLAS_CORETYPE=Zen on AMD Zen 4, where OpenBLAS itself would pick
its AVX-512 "SkylakeX" kernels. This is the measurement behind that choice: minirobera's
RobertaModel (Numba kernels, bench/forward.py's random roberta-base checkpoint, 2 threads),
one worker process per kernel set (OPENBLAS_CORETYPE is read once, when NumPy loads OpenBLAS),
the processes taking turns shape by shape, medians; then the ratio to the first kernel set.
Each worker reports the kernels OpenBLAS says it runs, so a kernel set the CPU cannot run
(OpenBLAS falls back) shows up instead of passing for a result.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import forward  # noqa: E402  (workers, the checkpoint, the quiet-machine wait)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coretypes", default="SkylakeX,Zen",
                    help="OPENBLAS_CORETYPE values; ratios are to the first")
    ap.add_argument("--shapes", default="1x8,1x128,1x512,8x128")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", type=Path, default=forward.DEFAULT_CONFIG)
    args = ap.parse_args(argv)
    coretypes = args.coretypes.split(",")
    shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    ckpt = forward.make_checkpoint(args.config, forward.WORK / "roberta-base-random")
    workers = {}
    for ct in coretypes:  # forward._env keeps an OPENBLAS_CORETYPE that is already set
        os.environ[forward.blas.ENV] = ct
        workers[ct] = forward.Worker("minirobera-numba", ckpt, args.threads)
    os.environ.pop(forward.blas.ENV)
    times = {(ct, s): [] for ct in coretypes for s in shapes}
    try:
        for w in workers.values():
            for B, T in shapes:
                w.measure(B, T, 1)  # warm-up
        for r in range(args.rounds):
            order = coretypes if r % 2 == 0 else coretypes[::-1]
            for B, T in shapes:
                for ct in order:
                    time.sleep(0.3)
                    forward.wait_quiet(5.0)
                    times[ct, (B, T)] += workers[ct].measure(B, T, forward._reps(B, T))["times"]
    finally:
        for w in workers.values():
            w.close()
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    print("OPENBLAS_CORETYPE -> kernels OpenBLAS runs: "
          + ", ".join(f"{ct} -> {w.info.get('blas')}" for ct, w in workers.items()))
    head = ["shape"] + [f"{ct} ms" for ct in coretypes] + [f"{ct} / {coretypes[0]}"
                                                           for ct in coretypes[1:]]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for s in shapes:
        row = [f"{s[0]}x{s[1]}"] + [f"{med[ct, s]:,.1f}" for ct in coretypes]
        row += [f"{med[ct, s] / med[coretypes[0], s]:.3f}" for ct in coretypes[1:]]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
