"""Where one forward's time goes: every step of an encoder layer timed in place.

    python bench/breakdown.py                 # 1x8, 1x128, 1x512, 8x128 (~1 min)
    python bench/breakdown.py --shapes 8x128 --reps 10

roberta-base's shapes with random weights (bench/forward.py's checkpoint), minirobera's
RobertaModel with the active kernels (MINIROBERA_KERNELS, default numba), 2 BLAS threads.
The twelve layers run as model() runs them (fused.encoder_layer, no attention maps or hidden
states kept: each layer's output written over its input), with the same calls on the same
buffers, a clock read between steps; the sums per step over the twelve layers are printed
with the whole model call measured in the same process, and the GEMM share. This is the
measurement behind the README's "non-GEMM work" figures: what is left above the GEMM floor.
"""

from __future__ import annotations

import argparse
import math
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

GEMMS = ("QKV projection", "QK^T", "probs @ V", "attention output", "FFN in", "FFN out")


def profile_layers(model, B, T, reps):
    """-> {step: seconds per forward}, summed over the layers, median of `reps` passes."""
    from minirobera import fused, kernels, layers
    c = model.config
    H, D = c.num_attention_heads, c.hidden_size
    ids = np.random.default_rng(0).integers(3, c.vocab_size - 1, (B, T))
    mask = np.ones((B, T), np.int64)
    x0 = fused.embeddings(model.params["embeddings"], ids, pad_token_id=c.pad_token_id,
                          eps=c.layer_norm_eps)
    bias = layers.attention_bias(mask, causal=False)
    eps, buf = c.layer_norm_eps, {}
    passes = []
    for _ in range(reps + 1):  # the first pass fills the buffers
        t = {}
        x = x0.copy()  # written over by the first layer's output, as in model()
        for p in model.params["layers"]:
            clock = [time.perf_counter()]

            def tick(step):
                now = time.perf_counter()
                t[step] = t.get(step, 0.0) + now - clock[0]
                clock[0] = now
            qkv_p = fused._qkv(p)
            few = B * T <= fused.FEW_ROWS  # kernels.few_rows_linear, bias added in the kernel
            qkv = fused.linear(x, qkv_p["w"], qkv_p["b"] if few else None,
                               out=fused._buffer(buf, "qkv", (B, T, 3 * D)))
            tick("QKV projection")
            heads = layers.split_heads(qkv, 3 * H)
            q, k, v = heads[:, :H], heads[:, H:2 * H], heads[:, 2 * H:]
            scale = 1.0 / math.sqrt(D // H)
            madd = bias if few else fused._fold_qkv_bias(qkv, qkv_p["b"], bias, H, scale)
            tick("QKV bias (folded: key terms, + bv on the context)" if not few else
                 "heads (views; the kernel added the bias)")
            s = np.matmul(q, k.transpose(0, 1, 3, 2),
                          out=fused._buffer(buf, "scores", (B, H, T, T)))
            tick("QK^T")
            s = kernels.masked_softmax(s, madd, scale, out=s)
            tick("masked softmax")
            a = fused._buffer(buf, "ctx", (B, T, D))
            np.matmul(s, v, out=layers.split_heads(a, H))
            tick("probs @ V")
            if not few:
                a += qkv_p["b"][2 * D:]
                tick("QKV bias (folded: key terms, + bv on the context)")
            h = fused.linear(a, p["attn_out"]["w"], out=fused._buffer(buf, "h", (B, T, D)))
            tick("attention output")
            h = kernels.bias_residual_layernorm(h, p["attn_out"]["b"], x, p["attn_ln"]["g"],
                                                p["attn_ln"]["b"], eps, out=h)
            tick("bias + residual + LayerNorm (x2)")
            F = p["ffn_in"]["w"].shape[0]
            f = fused.linear(h, p["ffn_in"]["w"], out=fused._buffer(buf, "f", (B, T, F)))
            tick("FFN in")
            f = fused._bias_act(f, p["ffn_in"]["b"], c.hidden_act)
            tick("bias + exact GELU")
            o = fused.linear(f, p["ffn_out"]["w"], out=x)  # x: dead since the 1st residual
            tick("FFN out")
            x = kernels.bias_residual_layernorm(o, p["ffn_out"]["b"], h, p["ffn_ln"]["g"],
                                                p["ffn_ln"]["b"], eps, out=o)
            tick("bias + residual + LayerNorm (x2)")
        passes.append(t)
    # the steps above copy fused.encoder_layer as model() runs it: if they drift, this says so
    want = fused.encoder(x0.copy(), model.params["layers"], bias, H, c.hidden_act, eps,
                         keep_attentions=False, keep_hidden_states=False)[0]
    if not np.array_equal(x, want):
        raise SystemExit("bench/breakdown.py no longer runs what fused.encoder_layer runs: "
                         f"max difference {np.abs(x - want).max():.3g}; update its steps")
    return {k: float(np.median([t[k] for t in passes[1:]])) for k in passes[1]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="1x8,1x128,1x512,8x128")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--config", type=Path, default=forward.DEFAULT_CONFIG)
    args = ap.parse_args(argv)
    model = forward.random_base_model(args.config)
    from minirobera import kernels
    print(f"kernels: {kernels.get_backend()}; ms per forward (12 layers), median of {args.reps}")
    for shape in args.shapes.split(","):
        B, T = map(int, shape.split("x"))
        steps = profile_layers(model, B, T, args.reps)
        ids = np.random.default_rng(1).integers(3, 50000, (B, T))
        mask = np.ones((B, T), np.int64)
        model(input_ids=ids, attention_mask=mask)
        whole = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            whole.append(time.perf_counter() - t0)
        gemm = sum(v for k, v in steps.items() if k in GEMMS)
        rest = sum(v for k, v in steps.items() if k not in GEMMS)
        print(f"\n{B}x{T}: model() {np.median(whole) * 1e3:.1f} ms; steps {1e3 * (gemm + rest):.1f} "
              f"ms = GEMMs {1e3 * gemm:.1f} + the rest {1e3 * rest:.1f} "
              f"({100 * rest / gemm:.1f}% of the GEMMs)")
        for k, v in sorted(steps.items(), key=lambda kv: -kv[1]):
            print(f"  {k:34s} {'GEMM' if k in GEMMS else '    '} {v * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
