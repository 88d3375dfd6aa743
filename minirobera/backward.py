"""The backward pass: every gradient of RoBERTa written by hand in NumPy.

Owns a training forward that keeps what the backward needs (each `*_forward` returns its
output and a `cache`), the matching `*_backward` functions, the heads' losses with their
gradients, and `loss_and_grads`, which runs one model's forward and backward over the
params dict. The model classes call it through `model.loss_and_grads(...)`; the tests hold
every gradient equal to torch's autograd (tests/test_backward.py).

Leaves out: the optimiser, the schedule and the dropout RNG (training.py; a forward here
takes `drop`, a callable `drop(shape, kind) -> scaled keep-mask or None`, and uses no
dropout when it is None); gradients into `inputs_embeds`; the Numba kernels (this file is
the readable version, and the only one).

Shape legend as in layers.py (B batch, T tokens, D hidden, H heads, Dh = D/H, F FFN width,
V vocab, L labels, C choices). `dX` is the gradient of the loss with respect to `X`, and has
X's shape. The forward calls layers.py's functions (linear, erfc and the activations,
masked_softmax, split/merge_heads, the positions), so the math it differentiates is the one
inference runs; only LayerNorm is written again here, to keep its normalised input.

The chain rule, once, for the whole model (post-LN layer, as layers.encoder_layer):

    x -> attention -> attn_out -> (+x) -> LN -> h -> ffn_in -> act -> ffn_out -> (+h) -> LN

    backward runs it right to left; a residual add sends its gradient down both branches.

>>> from minirobera import layers
>>> params = layers.random_params(vocab=20, dim=8, heads=2, ffn=12, layers=1, positions=16)
>>> ids = np.array([[0, 5, 6, 2, 1]])
>>> h, cache = encoder_forward(params, ids, np.array([[1, 1, 1, 1, 0]]), n_head=2, act="gelu",
...                            eps=1e-5, pad_token_id=1)
>>> dx, grads = encoder_backward(np.ones_like(h), cache, params)
>>> grads["layers"][0]["q"]["w"].shape, grads["embeddings"]["word"].shape
((8, 8), (20, 8))
>>> float(np.abs(grads["embeddings"]["word"][1]).max())  # Quirk: the pad row gets nothing
0.0
"""

import math

import numpy as np

from . import layers
from .heads import IGNORE_INDEX, log_softmax
from .layers import linear, merge_heads, split_heads

# ------------------------------------------------------------------------------ the pieces


def linear_backward(dy, x, w):  # [..., Out], [..., In], [Out,In] -> [..., In], [Out,In], [Out]
    """y = x @ w.T + b, backwards: dx = dy @ w, dw = dy.T @ x, db = sum of dy over rows.

    >>> dx, dw, db = linear_backward(np.ones((2, 3)), np.ones((2, 4)), np.ones((3, 4)))
    >>> dx.tolist()[0], dw.shape, db.tolist()
    ([3.0, 3.0, 3.0, 3.0], (3, 4), [2.0, 2.0, 2.0])
    """
    dy2, x2 = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])
    return (dy2 @ w).reshape(x.shape), dy2.T @ x2, dy2.sum(axis=0)


def layer_norm_forward(x, g, b, eps):  # [..., D], [D], [D] -> [..., D], cache
    """layers.layer_norm, keeping the normalised x and 1/std for the backward.

    >>> y, _ = layer_norm_forward(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 0.0)
    >>> y.tolist()
    [[-1.0, 1.0]]
    """
    centred = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps)  # biased var
    xhat = centred * rstd
    return xhat * g + b, (xhat, rstd, g)


def layer_norm_backward(dy, cache):  # [..., D] -> [..., D], [D], [D]
    """dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std, with dxhat = dy * g:
    the mean and the variance both depend on every x of the row, hence the two means.

    >>> y, cache = layer_norm_forward(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), 0.0)
    >>> [a.tolist() for a in layer_norm_backward(np.array([[1.0, 1.0]]), cache)]
    [[[0.0, 0.0]], [-1.0, 1.0], [1.0, 1.0]]
    """
    xhat, rstd, g = cache
    rows = (-1, xhat.shape[-1])
    dg = (dy * xhat).reshape(rows).sum(axis=0)
    db = dy.reshape(rows).sum(axis=0)
    dxhat = dy * g
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dg, db


def activation_grad(x, act):  # [...], str -> [...]
    """d act(x) / dx for every config.hidden_act of layers.ACTIVATIONS.

    Quirk: RoBERTa's "gelu" is the exact erf form: d/dx x Phi(x) = Phi(x) + x phi(x).

    >>> [round(float(v), 6) for v in activation_grad(np.array([-1.0, 0.0, 2.0]), "gelu")]
    [-0.083315, 0.5, 1.085232]
    """
    x64 = np.asarray(x, np.float64)
    if act == "gelu":
        cdf = 0.5 * layers.erfc(-x64 / math.sqrt(2.0))
        d = cdf + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2.0 * math.pi)
    elif act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        c = math.sqrt(2.0 / math.pi) if act != "gelu_fast" else 0.7978845608
        t = np.tanh(c * (x64 + 0.044715 * x64 ** 3))
        d = 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * c * (1 + 3 * 0.044715 * x64 * x64)
    elif act in ("quick_gelu", "silu", "swish"):
        k = 1.702 if act == "quick_gelu" else 1.0
        s = 1.0 / (1.0 + np.exp(-k * x64))
        d = s + k * x64 * s * (1 - s)
    elif act == "relu":
        d = (x64 > 0).astype(np.float64)  # torch: the gradient at exactly 0 is 0
    elif act == "tanh":
        d = 1.0 - np.tanh(x64) ** 2
    else:
        raise ValueError(f"no gradient for hidden_act {act!r}; choose one of "
                         f"{sorted(layers.ACTIVATIONS)}")
    return d.astype(np.asarray(x).dtype, copy=False)


def activation_and_grad(x, act):  # [...], str -> [...], [...]
    """act(x) and d act(x) / dx together: for exact GELU both need Phi(x), the costly erfc,
    which is then evaluated once (the same formula as layers.gelu).

    >>> y, d = activation_and_grad(np.array([-1.0, 0.0, 2.0]), "gelu")
    >>> bool(np.allclose(y, layers.gelu(np.array([-1.0, 0.0, 2.0])))), d.round(4).tolist()
    (True, [-0.0833, 0.5, 1.0852])
    """
    if act != "gelu":
        return layers.ACTIVATIONS[act](x), activation_grad(x, act)
    x64 = np.asarray(x, np.float64)
    cdf = 0.5 * layers.erfc(-x64 / math.sqrt(2.0))
    d = cdf + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2.0 * math.pi)
    return (x64 * cdf).astype(x.dtype, copy=False), d.astype(x.dtype, copy=False)


def dropout(x, drop, kind):  # [...] -> [...], keep-mask or None
    """x * mask, the mask from `drop` already scaled by 1/(1-p) (inverted dropout); no
    dropout (mask None) when `drop` is None, as at inference."""
    mask = None if drop is None else drop(x.shape, kind)
    return (x if mask is None else x * mask.astype(x.dtype, copy=False)), mask


def _undrop(dy, mask):
    return dy if mask is None else dy * mask.astype(dy.dtype, copy=False)


# ------------------------------------------------------------------------------- attention

def attention_forward(x, p, bias, n_head, drop=None):  # [B,T,D], [B,1,1|T,T] -> [B,T,D], cache
    """layers.self_attention, with attention-probability dropout, keeping q, k, v and probs."""
    q = split_heads(linear(x, p["q"]["w"], p["q"]["b"]), n_head)  # [B,H,T,Dh]
    k = split_heads(linear(x, p["k"]["w"], p["k"]["b"]), n_head)
    v = split_heads(linear(x, p["v"]["w"], p["v"]["b"]), n_head)
    scale = 1.0 / math.sqrt(q.shape[-1])
    probs = layers.masked_softmax(q @ k.transpose(0, 1, 3, 2), bias, scale)  # [B,H,T,T]
    kept, mask = dropout(probs, drop, "attention")
    return merge_heads(kept @ v), (x, q, k, v, probs, kept, mask, scale)


def attention_backward(da, cache, p):  # [B,T,D] -> [B,T,D], {q, k, v: {w, b}}
    """Back through probs @ v, the softmax (ds = p * (dp - sum(dp * p))), q @ k.T and the
    three projections; the additive mask is a constant and gets nothing."""
    x, q, k, v, probs, kept, mask, scale = cache
    da = split_heads(da, q.shape[1])  # [B,H,T,Dh]
    dv = kept.transpose(0, 1, 3, 2) @ da
    dprobs = _undrop(da @ v.transpose(0, 1, 3, 2), mask)  # [B,H,T,T]
    dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True)) * scale
    dq, dk = dscores @ k, dscores.transpose(0, 1, 3, 2) @ q  # [B,H,T,Dh]
    dx, grads = np.zeros_like(x), {}
    for name, d in (("q", dq), ("k", dk), ("v", dv)):
        dxi, dw, db = linear_backward(merge_heads(d), x, p[name]["w"])
        dx += dxi
        grads[name] = {"w": dw, "b": db}
    return dx, grads


# ---------------------------------------------------------------------------- the layer

def encoder_layer_forward(x, p, bias, n_head, act, eps, drop=None):  # [B,T,D] -> [B,T,D], cache
    """layers.encoder_layer with dropout where transformers puts it (attention probs, and
    each sublayer's output before its residual add), keeping what the backward needs.

    Quirk: post-LN, h = LN(x + attn(x)), out = LN(h + ffn(h)).
    """
    a, attn = attention_forward(x, p, bias, n_head, drop)
    o, mask1 = dropout(linear(a, p["attn_out"]["w"], p["attn_out"]["b"]), drop, "hidden")
    h, ln1 = layer_norm_forward(o + x, p["attn_ln"]["g"], p["attn_ln"]["b"], eps)
    pre = linear(h, p["ffn_in"]["w"], p["ffn_in"]["b"])  # [B,T,F]
    f, dact = activation_and_grad(pre, act)  # keeps d act / d pre for the backward
    o2, mask2 = dropout(linear(f, p["ffn_out"]["w"], p["ffn_out"]["b"]), drop, "hidden")
    out, ln2 = layer_norm_forward(o2 + h, p["ffn_ln"]["g"], p["ffn_ln"]["b"], eps)
    return out, (attn, a, mask1, ln1, h, dact, f, mask2, ln2)


def encoder_layer_backward(dout, cache, p):  # [B,T,D] -> [B,T,D], grads of one layer
    """The layer, right to left; each residual add passes its gradient to both branches."""
    attn, a, mask1, ln1, h, dact, f, mask2, ln2 = cache
    g = {}
    dsum2, g["ffn_ln"] = _ln_back(dout, ln2)        # d(o2 + h)
    df, dw, db = linear_backward(_undrop(dsum2, mask2), f, p["ffn_out"]["w"])
    g["ffn_out"] = {"w": dw, "b": db}
    dpre = df * dact                                # [B,T,F]
    dh, dw, db = linear_backward(dpre, h, p["ffn_in"]["w"])
    g["ffn_in"] = {"w": dw, "b": db}
    dh = dh + dsum2                                 # the FFN's residual branch
    dsum1, g["attn_ln"] = _ln_back(dh, ln1)         # d(o + x)
    da, dw, db = linear_backward(_undrop(dsum1, mask1), a, p["attn_out"]["w"])
    g["attn_out"] = {"w": dw, "b": db}
    dx, qkv = attention_backward(da, attn, p)
    g.update(qkv)
    return dx + dsum1, g                            # + the attention's residual branch


def _ln_back(dy, cache):
    dx, dg, db = layer_norm_backward(dy, cache)
    return dx, {"g": dg, "b": db}


# ------------------------------------------------------------------------------ embeddings

def embeddings_forward(p, input_ids, token_type_ids, position_ids, pad_token_id, eps,
                       inputs_embeds=None, drop=None):  # [B,T] -> [B,T,D], cache
    """layers.embeddings (word + token type + position, LayerNorm) then hidden dropout."""
    if position_ids is None:
        position_ids = (layers.position_ids_from_input_ids(input_ids, pad_token_id)
                        if inputs_embeds is None
                        else layers.position_ids_from_embeds(*inputs_embeds.shape[:2],
                                                             pad_token_id))
    if token_type_ids is None:  # Quirk: token-type row 0 is still added
        token_type_ids = np.zeros(position_ids.shape, np.int64)
    x = p["word"][input_ids] if inputs_embeds is None else inputs_embeds
    x = x + p["token_type"][token_type_ids] + p["position"][position_ids]
    y, ln = layer_norm_forward(x, p["ln"]["g"], p["ln"]["b"], eps)
    y, mask = dropout(y, drop, "hidden")
    return y, (input_ids, token_type_ids, position_ids, pad_token_id, ln, mask)


def embeddings_backward(dy, cache, p):  # [B,T,D] -> grads {word, position, token_type, ln}
    """Scatter-add each token's gradient into the rows it looked up.

    Quirk: word and position embeddings are nn.Embedding(padding_idx=pad_token_id) in
    transformers, so row `pad` of both gets no gradient from the lookup: pads never train
    the pad rows (the tied LM decoder still adds to the word row, see lm_head_backward).
    """
    ids, types, positions, pad, ln, mask = cache
    dx, dln = _ln_back(_undrop(dy, mask), ln)
    dx2 = dx.reshape(-1, dx.shape[-1])  # [B*T,D]
    g = {"ln": dln}
    for name, rows in (("word", ids), ("position", positions), ("token_type", types)):
        if rows is None:  # inputs_embeds: no word lookup
            g[name] = np.zeros_like(p[name])
            continue
        g[name] = np.zeros(p[name].shape, dx.dtype)
        np.add.at(g[name], rows.reshape(-1), dx2)
        if name != "token_type":
            g[name][pad] = 0.0
    return g


# ---------------------------------------------------------------------------- the encoder

def encoder_forward(params, input_ids, attention_mask, *, n_head, act, eps, pad_token_id,
                    causal=False, token_type_ids=None, position_ids=None, inputs_embeds=None,
                    drop=None):  # [B,T] -> [B,T,D], cache
    """embeddings -> every layer, keeping each layer's cache (see the module docstring)."""
    x, emb = embeddings_forward(params["embeddings"], input_ids, token_type_ids, position_ids,
                                pad_token_id, eps, inputs_embeds, drop)
    bias = layers.attention_bias(attention_mask, causal=causal)
    caches = []
    for p in params["layers"]:
        x, cache = encoder_layer_forward(x, p, bias, n_head, act, eps, drop)
        caches.append(cache)
    return x, (emb, caches)


def encoder_backward(dh, cache, params):  # [B,T,D] -> [B,T,D], grads {embeddings, layers}
    """Every layer from the last to the first, then the embeddings."""
    emb, caches = cache
    grads = {"layers": [None] * len(caches)}
    for i in reversed(range(len(caches))):
        dh, grads["layers"][i] = encoder_layer_backward(dh, caches[i], params["layers"][i])
    grads["embeddings"] = embeddings_backward(dh, emb, params["embeddings"])
    return dh, grads


# ---------------------------------------------------------------------------------- losses

def cross_entropy_backward(logits, labels, ignore_index=IGNORE_INDEX):  # [N,K], [N] -> [], [N,K]
    """heads.cross_entropy and its gradient: (softmax - onehot) / n over the kept rows.

    >>> loss, d = cross_entropy_backward(np.zeros((2, 2)), np.array([1, -100]))
    >>> round(float(loss), 4), d.tolist()
    (0.6931, [[0.5, -0.5], [0.0, 0.0]])
    """
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"got {labels.shape[0]} labels for {logits.shape[0]} predictions: "
                         f"give one label per example (per token for the token-level heads)")
    keep = labels != ignore_index
    n, K = int(keep.sum()), logits.shape[-1]
    if ((labels[keep] < 0) | (labels[keep] >= K)).any():
        raise ValueError(f"labels must be in 0..{K - 1} or {ignore_index} (ignored), got "
                         f"{labels[keep].min()}..{labels[keep].max()}")
    logp = log_softmax(logits)
    rows = np.flatnonzero(keep)
    loss = -logp[rows, labels[rows]].sum() / n if n else np.nan  # torch: nan when all ignored
    d = np.exp(logp)
    d[rows, labels[rows]] -= 1.0
    d[~keep] = 0.0
    return loss, d / max(n, 1)


def mse_backward(x, y):  # [...], [...] -> [], [...]
    """heads.mse and its gradient 2 (x - y) / n."""
    diff = x - np.asarray(y, x.dtype)
    return (diff * diff).mean(), 2.0 * diff / diff.size


def bce_backward(x, y):  # [...], [...] -> [], [...]
    """heads.bce_with_logits and its gradient (sigmoid(x) - y) / n."""
    y = np.asarray(y, x.dtype)
    loss = (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))).mean()
    e = np.exp(-np.abs(x))
    sig = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # overflow-free sigmoid
    return loss, (sig - y) / x.size


# ----------------------------------------------------------------------------------- heads

def lm_head_forward(h, p, eps):  # [B,T,D] -> [B,T,V], cache
    """heads.lm_head: dense -> exact GELU (always, whatever hidden_act) -> LN -> decoder."""
    g, dgelu = activation_and_grad(linear(h, p["dense"]["w"], p["dense"]["b"]), "gelu")
    y, ln = layer_norm_forward(g, p["ln"]["g"], p["ln"]["b"], eps)
    return linear(y, p["decoder"]["w"], p["decoder"]["b"]), (h, dgelu, ln, y)


def lm_head_backward(dlogits, cache, p):  # [B,T,V] -> [B,T,D], grads of lm_head
    """Quirk: the decoder weight is the word-embedding matrix; its gradient `decoder.w` is
    added to the word embeddings' by loss_and_grads (tied parameters appear once)."""
    h, dgelu, ln, y = cache
    dy, dw_dec, db_dec = linear_backward(dlogits, y, p["decoder"]["w"])
    dg, dln = _ln_back(dy, ln)
    dh, dw, db = linear_backward(dg * dgelu, h, p["dense"]["w"])
    return dh, {"dense": {"w": dw, "b": db}, "ln": dln, "decoder": {"w": dw_dec, "b": db_dec}}


def masked_lm_loss(h, params, config, drop, labels):  # [B,T,D], [B,T] -> [], [B,T,D], grads
    """Cross entropy over the tokens whose label is not -100 (the masked ones).

    The head runs on those tokens only ([M,D] -> [M,V]): the others add nothing to the loss,
    so their gradient is exactly zero, and with 15% masking this skips 85% of the [.,V] work.
    """
    rows = np.flatnonzero(labels.reshape(-1) != IGNORE_INDEX)
    h_rows = h.reshape(-1, h.shape[-1])[rows]  # [M,D]
    logits, cache = lm_head_forward(h_rows, params["lm_head"], config.layer_norm_eps)
    loss, dlogits = cross_entropy_backward(logits, labels.reshape(-1)[rows])
    dh_rows, grads = lm_head_backward(dlogits, cache, params["lm_head"])
    dh = np.zeros_like(h)
    dh.reshape(-1, h.shape[-1])[rows] = dh_rows
    return loss, dh, {"lm_head": grads}


def causal_lm_loss(h, params, config, drop, labels):  # [B,T,D], [B,T] -> [], [B,T,D], grads
    """Token t predicts label t+1: the labels shift left, the last token predicts nothing."""
    shifted = np.concatenate([labels[:, 1:], np.full_like(labels[:, :1], IGNORE_INDEX)], axis=1)
    return masked_lm_loss(h, params, config, drop, shifted)


def sequence_classification_loss(h, params, config, drop, labels):  # [B,T,D], [B]|[B,L] -> ...
    """<s> -> dropout -> dense -> tanh -> dropout -> out_proj, then the problem type's loss."""
    p = params["classifier"]
    x, mask1 = dropout(h[:, 0], drop, "classifier")
    t = np.tanh(linear(x, p["dense"]["w"], p["dense"]["b"]))
    td, mask2 = dropout(t, drop, "classifier")
    logits = linear(td, p["out_proj"]["w"], p["out_proj"]["b"])  # [B,L]
    loss, dlogits = problem_type_loss(logits, labels, config)
    dtd, dw2, db2 = linear_backward(dlogits, td, p["out_proj"]["w"])
    dpre = _undrop(dtd, mask2) * (1.0 - t * t)
    dx, dw1, db1 = linear_backward(dpre, x, p["dense"]["w"])
    dh = np.zeros_like(h)
    dh[:, 0] = _undrop(dx, mask1)
    return loss, dh, {"classifier": {"dense": {"w": dw1, "b": db1},
                                     "out_proj": {"w": dw2, "b": db2}}}


def problem_type_loss(logits, labels, config):  # [B,L], labels -> [], [B,L]
    """transformers' rule: regression (1 label), single-label (integer labels) or
    multi-label (float labels), unless config.problem_type says."""
    labels = np.asarray(labels)
    n, problem = logits.shape[-1], config.problem_type
    if problem is None:
        problem = ("regression" if n == 1 else "single_label_classification"
                   if labels.dtype.kind in "iu" else "multi_label_classification")
    if problem == "single_label_classification":
        return cross_entropy_backward(logits.reshape(-1, n), labels.reshape(-1))
    if problem == "regression" and n == 1:  # transformers squeezes both sides for one output
        if labels.size != logits.shape[0]:
            raise ValueError(f"regression needs one number per example ({logits.shape[0]}), "
                             f"got labels of shape {labels.shape}")
        loss, d = mse_backward(logits.squeeze(), labels.squeeze())
        return loss, d.reshape(logits.shape)
    if labels.shape != logits.shape:
        raise ValueError(f"{problem} needs labels of shape {logits.shape} (examples x "
                         f"num_labels), got {labels.shape}")
    return (mse_backward if problem == "regression" else bce_backward)(logits, labels)


def token_classification_loss(h, params, config, drop, labels):  # [B,T,D], [B,T] -> ...
    """dropout -> one Linear per token -> cross entropy (label -100 skipped)."""
    p = params["classifier"]
    x, mask = dropout(h, drop, "classifier")
    logits = linear(x, p["w"], p["b"])  # [B,T,L]
    L = logits.shape[-1]
    loss, dlogits = cross_entropy_backward(logits.reshape(-1, L), labels.reshape(-1))
    dx, dw, db = linear_backward(dlogits.reshape(logits.shape), x, p["w"])
    return loss, _undrop(dx, mask), {"classifier": {"w": dw, "b": db}}


def question_answering_loss(h, params, config, drop, start_positions, end_positions):
    # [B,T,D], [B], [B] -> [], [B,T,D], grads
    """Mean of the start and end cross entropies; positions outside the input are clamped
    to T and then ignored (transformers' ignored_index = T)."""
    p = params["qa_outputs"]
    logits = linear(h, p["w"], p["b"])  # [B,T,2]
    T = logits.shape[1]
    dlogits, loss = np.zeros_like(logits), 0.0
    for j, positions in enumerate((start_positions, end_positions)):
        where = np.clip(np.asarray(positions).reshape(-1), 0, T)
        lj, dj = cross_entropy_backward(logits[..., j], where, ignore_index=T)
        loss, dlogits[..., j] = loss + lj / 2, dj / 2
    dh, dw, db = linear_backward(dlogits, h, p["w"])
    return loss, dh, {"qa_outputs": {"w": dw, "b": db}}


def multiple_choice_loss(h, params, config, drop, labels, n_choices):  # [B*C,T,D], [B] -> ...
    """pooler (dense + tanh on <s>) -> dropout -> Linear(D, 1) -> [B,C] -> cross entropy."""
    pooled = np.tanh(linear(h[:, 0], params["pooler"]["w"], params["pooler"]["b"]))  # [B*C,D]
    x, mask = dropout(pooled, drop, "hidden")
    p = params["classifier"]
    logits = linear(x, p["w"], p["b"]).reshape(-1, n_choices)  # [B,C]
    loss, dlogits = cross_entropy_backward(logits, labels)
    dx, dw, db = linear_backward(dlogits.reshape(-1, 1), x, p["w"])
    dpre = _undrop(dx, mask) * (1.0 - pooled * pooled)
    dh0, dwp, dbp = linear_backward(dpre, h[:, 0], params["pooler"]["w"])
    dh = np.zeros_like(h)
    dh[:, 0] = dh0
    return loss, dh, {"classifier": {"w": dw, "b": db}, "pooler": {"w": dwp, "b": dbp}}


# model class -> its head's loss (every class that takes labels)
HEAD_LOSSES = {
    "RobertaForMaskedLM": masked_lm_loss,
    "RobertaForCausalLM": causal_lm_loss,
    "RobertaForSequenceClassification": sequence_classification_loss,
    "RobertaForTokenClassification": token_classification_loss,
    "RobertaForQuestionAnswering": question_answering_loss,
    "RobertaForMultipleChoice": multiple_choice_loss,
}


# ------------------------------------------------------------------------------- the model

def loss_and_grads(params, config, head, inputs, labels, drop=None):
    """One forward and backward of model class `head` -> (loss, grads in params layout).

    `inputs` as modeling.prepare_inputs returns them; `labels` the head's keyword arguments.
    Quirk: tied parameters appear once: the decoder's gradient joins the word embeddings'.

    >>> from minirobera import layers
    >>> from minirobera.config import RobertaConfig
    >>> config = RobertaConfig(vocab_size=20, hidden_size=8, num_attention_heads=2,
    ...                        intermediate_size=12, num_hidden_layers=1)
    >>> params = layers.random_params(vocab=20, dim=8, heads=2, ffn=12, layers=1, positions=16)
    >>> params["classifier"] = {"w": np.ones((3, 8), np.float32), "b": np.zeros(3, np.float32)}
    >>> inputs = {"input_ids": np.array([[0, 5, 2]]), "attention_mask": np.ones((1, 3))}
    >>> loss, grads = loss_and_grads(params, config, "RobertaForTokenClassification", inputs,
    ...                              {"labels": np.array([[-100, 2, -100]])})
    >>> grads["classifier"]["w"].shape, sorted(grads)
    ((3, 8), ['classifier', 'embeddings', 'layers'])
    """
    c = config
    h, cache = encoder_forward(params, inputs["input_ids"], inputs["attention_mask"],
                               n_head=c.num_attention_heads, act=c.hidden_act,
                               eps=c.layer_norm_eps, pad_token_id=c.pad_token_id,
                               causal=c.is_decoder, token_type_ids=inputs.get("token_type_ids"),
                               position_ids=inputs.get("position_ids"),
                               inputs_embeds=inputs.get("inputs_embeds"), drop=drop)
    loss, dh, grads = HEAD_LOSSES[head](h, params, config, drop, **labels)
    _, encoder_grads = encoder_backward(dh, cache, params)
    grads.update(encoder_grads)
    if "lm_head" in grads and config.tie_word_embeddings:
        grads["embeddings"]["word"] += grads["lm_head"]["decoder"].pop("w")
    return np.asarray(loss, h.dtype)[()], grads
