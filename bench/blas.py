"""Which OpenBLAS kernels should NumPy run? minirobera's forward under each, taking turns.

    python bench/blas.py                               # SkylakeX vs Zen (~5 min)
    python bench/blas.py --coretypes SkylakeX,Haswell --shapes 8x128 --rounds 8

OpenBLAS picks its kernels from the CPU when NumPy loads it (on AMD Zen 4, its AVX-512
"SkylakeX" ones); a user can pick others by setting OPENBLAS_CORETYPE before Python starts.
minirobera sets nothing: this measures what a user gets by setting it themselves.
minirobera's RobertaModel (Numba kernels, bench/forward.py's random roberta-base checkpoint,
2 threads), one worker process per kernel set (OPENBLAS_CORETYPE is read once, when NumPy
loads OpenBLAS), the processes taking turns shape by shape, medians; then the ratio to the
first kernel set. Each worker reports the kernels OpenBLAS runs (threadpoolctl's
`architecture`; "None" without threadpoolctl), so a name OpenBLAS does not know (it falls
back to a default) shows up instead of passing for a result; a kernel set the CPU cannot run
is not checked by OpenBLAS and crashes the worker. Ratios are printed twice: of the
medians, and paired by round (each round's medians, then the median over rounds).

First, the single GEMMs behind it (--no-gemms skips them): every matrix multiply shape of a
roberta-base layer at 8, 128 and 1,024 rows, with the weights as fused.compute_layout lays
them out, and the per-head attention products, in a fresh process per kernel set and round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import forward  # noqa: E402  (workers, the checkpoint, the quiet-machine wait)

CORETYPE = "OPENBLAS_CORETYPE"  # read by OpenBLAS when it loads: set per worker process


def gemm_shapes():
    """-> [(label, a, b, out)]: operands laid out as minirobera's forward lays them out."""
    rng = np.random.default_rng(0)
    cases = []
    for M in (8, 128, 1024):
        for K, N in ((768, 2304), (768, 768), (768, 3072), (3072, 768)):
            w = np.ascontiguousarray(rng.standard_normal((N, K), dtype=np.float32).T)  # [in, out]
            a = rng.standard_normal((M, K), dtype=np.float32)
            cases.append((f"{M}x{K} @ {K}x{N}", a, w, np.empty((M, N), np.float32)))
    for B, T in ((8, 128), (1, 512)):
        qkv = rng.standard_normal((B, T, 36, 64), dtype=np.float32).transpose(0, 2, 1, 3)
        q, k, v = qkv[:, :12], qkv[:, 12:24], qkv[:, 24:]
        s = np.empty((B, 12, T, T), np.float32)
        ctx = np.empty((B, T, 12, 64), np.float32).transpose(0, 2, 1, 3)
        cases.append((f"QK^T {B}x{T}, 12 heads", q, k.transpose(0, 1, 3, 2), s))
        cases.append((f"probs @ V {B}x{T}, 12 heads", s, v, ctx))
    return cases


def gemm_worker():
    """In a fresh process: median ms of each GEMM shape (JSON on stdout)."""
    res = {}
    for label, a, b, out in gemm_shapes():
        np.matmul(a, b, out=out)
        reps = max(5, min(50, int(2e9 / (2 * a.size * out.shape[-1]))))
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            ts.append(time.perf_counter() - t0)
        res[label] = float(np.median(ts)) * 1e3
    print(json.dumps({"blas": forward.openblas_kernels(), "ms": res}))


def gemm_table(coretypes, rounds, threads):
    runs = {ct: [] for ct in coretypes}
    names = {}
    for r in range(rounds):
        for ct in (coretypes if r % 2 == 0 else coretypes[::-1]):
            forward.wait_quiet(5.0)
            env = dict(forward._env("floor", threads), **{CORETYPE: ct})
            out = subprocess.run([sys.executable, __file__, "--gemm-worker"], env=env,
                                 capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            names[ct] = got["blas"]
            runs[ct].append(got["ms"])
    labels = list(runs[coretypes[0]][0])
    print("single GEMMs, ms (median over rounds of each process's median); "
          + ", ".join(f"{ct} -> {names[ct]}" for ct in coretypes))
    head = ["GEMM"] + [f"{ct} ms" for ct in coretypes] + [f"{ct} / {coretypes[0]}"
                                                         for ct in coretypes[1:]]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for lab in labels:
        med = {ct: float(np.median([run[lab] for run in runs[ct]])) for ct in coretypes}
        row = [lab] + [f"{med[ct]:.3f}" for ct in coretypes]
        row += [f"{med[ct] / med[coretypes[0]]:.3f}" for ct in coretypes[1:]]
        print("| " + " | ".join(row) + " |")
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coretypes", default="SkylakeX,Zen",
                    help="OPENBLAS_CORETYPE values; ratios are to the first")
    ap.add_argument("--shapes", default="1x8,1x128,1x512,8x128")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", type=Path, default=forward.DEFAULT_CONFIG)
    ap.add_argument("--no-gemms", action="store_true", help="only the whole forward")
    ap.add_argument("--gemm-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.gemm_worker:
        return gemm_worker()
    coretypes = args.coretypes.split(",")
    if not args.no_gemms:
        gemm_table(coretypes, 4, args.threads)
    shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    ckpt = forward.make_checkpoint(args.config, forward.WORK / "roberta-base-random")
    workers = {}
    user = os.environ.get(CORETYPE)
    try:
        for ct in coretypes:  # forward._env passes this process's environment on
            os.environ[CORETYPE] = ct
            workers[ct] = forward.Worker("minirobera-numba", ckpt, args.threads)
    finally:
        if user is None:
            os.environ.pop(CORETYPE, None)
        else:
            os.environ[CORETYPE] = user
    times = {(ct, s, r): [] for ct in coretypes for s in shapes for r in range(args.rounds)}
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
                    times[ct, (B, T), r] += workers[ct].measure(B, T, forward._reps(B, T))["times"]
    finally:
        for w in workers.values():
            w.close()
    rounds = range(args.rounds)
    med = {(ct, s): float(np.median([t for r in rounds for t in times[ct, s, r]])) * 1e3
           for ct in coretypes for s in shapes}
    def round_ratio(ct, s, r):
        return np.median(times[ct, s, r]) / np.median(times[coretypes[0], s, r])
    paired = {(ct, s): float(np.median([round_ratio(ct, s, r) for r in rounds]))
              for ct in coretypes[1:] for s in shapes}
    print("OPENBLAS_CORETYPE -> kernels OpenBLAS runs: "
          + ", ".join(f"{ct} -> {w.info.get('blas')}" for ct, w in workers.items()))
    head = ["shape"] + [f"{ct} ms" for ct in coretypes] + [
        f"{ct} / {coretypes[0]}{kind}" for ct in coretypes[1:] for kind in ("", ", paired")]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for s in shapes:
        row = [f"{s[0]}x{s[1]}"] + [f"{med[ct, s]:,.1f}" for ct in coretypes]
        for ct in coretypes[1:]:
            row += [f"{med[ct, s] / med[coretypes[0], s]:.3f}", f"{paired[ct, s]:.3f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
