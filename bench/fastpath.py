"""The fast encoder forward of minirobera/fused.py as one script, and its GEMM-only floor.

Every product here is BLAS's: this is fused.py's schedule as it was before issue 20 (no
few-row kernel, no folded q/k/v bias), kept as the BLAS-only reference, and its `gemm_floor`
is the "floor" row of bench/forward.py: OpenBLAS's matrix multiplies alone.

What it shows (each measured in bench/forward.py):
  * Linear weights transposed ONCE at load to [in, out] contiguous (the layout OpenBLAS is
    fastest with below ~48 rows; fused.py keeps [out, in] and sends few rows to its kernel);
  * Q, K, V fused into one [D, 3D] weight: one GEMM instead of three;
  * every activation buffer allocated once per forward and reused by all layers (`out=`), so
    no large temporaries are created, zeroed and page-faulted twelve times;
  * the work between GEMMs done by minirobera.kernels (fused, float32, in place);
  * attention batched over (B, H) with np.matmul, and -- for padded batches -- computed only
    over each sequence's real keys (exact: a masked key's probability is exactly 0).

Not part of the package: bench code only (it reads weights with safetensors directly).
"""

from __future__ import annotations

import numpy as np

from minirobera import kernels as K

_MIN = np.finfo(np.float32).min


def fast_params(sd: dict, n_layers: int, prefix: str = "roberta.") -> dict:
    """transformers-named float32 arrays -> the layout the fast forward wants.

    Weights [out, in] become contiguous [in, out] copies (qkv fused); vectors and the
    embedding tables are used as they are (views into the file when memory-mapped).
    """
    def w(key):  # [out, in] -> contiguous [in, out]
        return np.ascontiguousarray(sd[key].T)

    e = prefix + "embeddings."
    fp = {"word": sd[e + "word_embeddings.weight"], "pos": sd[e + "position_embeddings.weight"],
          "typ": sd[e + "token_type_embeddings.weight"], "emb_g": sd[e + "LayerNorm.weight"],
          "emb_b": sd[e + "LayerNorm.bias"], "layers": []}
    for i in range(n_layers):
        p = f"{prefix}encoder.layer.{i}."
        a = p + "attention.self."
        fp["layers"].append(dict(
            wqkv=np.concatenate([w(a + "query.weight"), w(a + "key.weight"),
                                 w(a + "value.weight")], axis=1),
            bqkv=np.concatenate([sd[a + n + ".bias"] for n in ("query", "key", "value")]),
            wo=w(p + "attention.output.dense.weight"), bo=sd[p + "attention.output.dense.bias"],
            g1=sd[p + "attention.output.LayerNorm.weight"],
            b1=sd[p + "attention.output.LayerNorm.bias"],
            wi=w(p + "intermediate.dense.weight"), bi=sd[p + "intermediate.dense.bias"],
            w2=w(p + "output.dense.weight"), b2=sd[p + "output.dense.bias"],
            g2=sd[p + "output.LayerNorm.weight"], b2n=sd[p + "output.LayerNorm.bias"]))
    return fp


def key_ranges(attention_mask):  # [B,T] -> [B,2] or None
    """Per sequence, the smallest [lo, hi) holding every attended key; None if all are full.

    Keys outside the range are masked, so leaving them out changes nothing (their
    probability is exactly 0); a sequence with no attended key keeps the full range.
    """
    m = np.asarray(attention_mask).astype(bool)
    B, T = m.shape
    if m.all():
        return None
    any_key = m.any(axis=1)
    lo = np.where(any_key, m.argmax(axis=1), 0)
    hi = np.where(any_key, T - m[:, ::-1].argmax(axis=1), T)
    return np.stack([lo, hi], axis=1)


def forward(fp, input_ids, attention_mask=None, *, n_head=12, pad=1, eps=1e-5):
    # [B,T] ids, [B,T] mask -> [B,T,D]
    """The encoder forward (last hidden state) with the fast schedule."""
    B, T = input_ids.shape
    D = fp["word"].shape[1]
    F = fp["layers"][0]["wi"].shape[1]
    Dh, N = D // n_head, B * T
    real = input_ids != pad
    pos = np.cumsum(real, axis=1) * real + pad  # RoBERTa: positions start at pad + 1
    x = K.embed_layernorm(input_ids, pos, None, fp["word"], fp["pos"], fp["typ"], fp["emb_g"],
                          fp["emb_b"], eps).reshape(N, D)
    if attention_mask is None:
        attention_mask = np.ones((B, T), np.int64)
    madd = np.where(np.asarray(attention_mask).astype(bool), np.float32(0), _MIN)
    ranges = key_ranges(attention_mask)
    qkv = np.empty((N, 3 * D), np.float32)
    scores = np.empty(B * n_head * T * T, np.float32)
    ctx = np.empty((N, D), np.float32)
    ctx_h = ctx.reshape(B, T, n_head, Dh).transpose(0, 2, 1, 3)  # heads written in place
    tmp = np.empty((N, D), np.float32)
    inter = np.empty((N, F), np.float32)
    scale = 1.0 / np.sqrt(Dh)
    for lp in fp["layers"]:
        np.matmul(x, lp["wqkv"], out=qkv)
        qkv += lp["bqkv"]
        q, k, v = qkv.reshape(B, T, 3, n_head, Dh).transpose(2, 0, 3, 1, 4)  # strided views
        _attention(q, k, v, madd, ranges, scale, scores, ctx_h)
        np.matmul(ctx, lp["wo"], out=tmp)
        K.bias_residual_layernorm(tmp, lp["bo"], x, lp["g1"], lp["b1"], eps, out=x)
        np.matmul(x, lp["wi"], out=inter)
        K.gelu_bias(inter, lp["bi"], out=inter)
        np.matmul(inter, lp["w2"], out=tmp)
        K.bias_residual_layernorm(tmp, lp["b2"], x, lp["g2"], lp["b2n"], eps, out=x)
    return x.reshape(B, T, D)


def _attention(q, k, v, madd, ranges, scale, scores, ctx):
    # q,k,v [B,H,T,Dh], madd [B,T], ranges [B,2] | None, flat buffer, ctx [B,H,T,Dh] (out)
    B, H, T, _ = q.shape
    if ranges is None:  # every key real: one batched matmul each side
        s = scores[:B * H * T * T].reshape(B, H, T, T)
        np.matmul(q, k.transpose(0, 1, 3, 2), out=s)
        K.masked_softmax(s, madd, scale, out=s)
        np.matmul(s, v, out=ctx)
        return
    for b in range(B):  # padded batch: only the keys each sequence really has
        lo, hi = ranges[b]
        s = scores[:H * T * (hi - lo)].reshape(1, H, T, hi - lo)
        np.matmul(q[b], k[b, :, lo:hi].transpose(0, 2, 1), out=s[0])
        K.masked_softmax(s, madd[b:b + 1, lo:hi], scale, out=s)
        np.matmul(s[0], v[b, :, lo:hi], out=ctx[b])


def gemm_floor(fp, B, T, *, n_head=12):  # -> [B*T, D] (values meaningless)
    """Only the matrix multiplies of `forward` (same shapes, same layout, same calls)."""
    D = fp["word"].shape[1]
    F = fp["layers"][0]["wi"].shape[1]
    Dh, N = D // n_head, B * T
    x = np.full((N, D), 0.01, np.float32)
    qkv = np.full((N, 3 * D), 0.01, np.float32)
    q, k, v = qkv.reshape(B, T, 3, n_head, Dh).transpose(2, 0, 3, 1, 4)
    s = np.empty((B, n_head, T, T), np.float32)
    ctx = np.full((N, D), 0.01, np.float32)
    ctx_h = ctx.reshape(B, T, n_head, Dh).transpose(0, 2, 1, 3)
    tmp = np.empty((N, D), np.float32)
    inter = np.full((N, F), 0.01, np.float32)
    for lp in fp["layers"]:
        np.matmul(x, lp["wqkv"], out=qkv)
        np.matmul(q, k.transpose(0, 1, 3, 2), out=s)
        np.matmul(s, v, out=ctx_h)
        np.matmul(ctx, lp["wo"], out=tmp)
        np.matmul(x, lp["wi"], out=inter)
        np.matmul(inter, lp["w2"], out=tmp)
    return tmp
