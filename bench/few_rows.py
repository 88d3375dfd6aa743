"""Where kernels.few_rows_linear beats BLAS: roberta-base's 48 matrix multiplies at 1-64 rows.

    python bench/few_rows.py                 # rows 1, 2, 4, 8, 12, 16, 24, 32, 48, 64 (~2 min)
    python bench/few_rows.py --rows 8,24,32

The twelve layers' weights (q/k/v stacked [2304, 768], the output [768, 768], FFN in
[3072, 768], FFN out [768, 3072]; 340 MB, more than the last-level cache, as in a forward)
multiplied by `rows` rows of activations: by the kernel (fused.linear's choice up to
fused.FEW_ROWS rows) and by NumPy's BLAS on the same [out, in] weights, each in a fresh
process of its own, 2 threads, best of 5 passes. Prints ms per pass, GB/s of weights read,
the ratio kernel / BLAS, and the bandwidth of a plain read of the same bytes (bench/forward.py's
probe).

With --after-blas the kernel's passes each follow a one-row BLAS product: OpenBLAS's idle
threads then spin for ~0.1 s and share a core with the kernel's second thread. The model
keeps BLAS out of a few-row forward for that reason (fused.py routes its heads too); this
shows what a user's own BLAS call just before costs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

SHAPES = [(2304, 768), (768, 768), (3072, 768), (768, 3072)] * 12  # [out, in], one forward


def worker(impl: str, rows: int, after_blas: bool) -> None:
    import numpy as np

    sys.path.insert(0, str(REPO))
    from minirobera import kernels, layers

    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s, dtype=np.float32) for s in SHAPES]
    bs = [rng.standard_normal(s[0], dtype=np.float32) for s in SHAPES]
    xs = {k: rng.standard_normal((rows, k), dtype=np.float32) for k in (768, 3072)}
    spin = rng.standard_normal((768, 768), dtype=np.float32)
    mm = kernels.few_rows_linear if impl == "kernel" else layers.linear

    def one_pass():
        if after_blas:
            spin @ xs[768][0]  # a one-row BLAS product: OpenBLAS's threads wake, then spin
        t0 = time.perf_counter()
        for w, b in zip(ws, bs):
            mm(xs[w.shape[1]], w, b)
        return time.perf_counter() - t0

    one_pass()
    best = min(one_pass() for _ in range(5))
    print(json.dumps({"s": best, "bytes": sum(w.nbytes for w in ws)}), flush=True)


def run(impl, rows, threads, after_blas):
    sys.path.insert(0, str(HERE))
    import forward  # the workers' environment: forward.py's, thread counts set

    env = forward._env("few-rows", threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--rows", str(rows)]
    p = subprocess.run(cmd + (["--after-blas"] if after_blas else []), env=env,
                       capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1,2,4,8,12,16,24,32,48,64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--after-blas", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker, int(args.rows), args.after_blas)
    sys.path.insert(0, str(HERE))
    import forward
    from minirobera import fused

    probe = forward.measure_bandwidth(args)
    print(f"{forward.cpu_model()}; plain read: {probe:.1f} GB/s; fused.FEW_ROWS = "
          f"{fused.FEW_ROWS}{'; kernel after a BLAS call' if args.after_blas else ''}\n")
    print("| rows | kernel ms | kernel GB/s | BLAS ms | BLAS GB/s | kernel / BLAS |")
    print("|---|---|---|---|---|---|")
    for rows in map(int, args.rows.split(",")):
        k = run("kernel", rows, args.threads, args.after_blas)
        b = run("blas", rows, args.threads, False)
        print(f"| {rows} | {k['s'] * 1e3:.1f} | {k['bytes'] / k['s'] / 1e9:.1f} | "
              f"{b['s'] * 1e3:.1f} | {b['bytes'] / b['s'] / 1e9:.1f} | {k['s'] / b['s']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
