"""The RoBERTa encoder as pure NumPy functions over arrays and a params dict.

Owns the math of the encoder: layer norm, the embeddings with RoBERTa's padding-offset
positions, multi-head self-attention with the additive mask, the post-LN encoder layer and
the encoder stack; at the end of the file, the activations (with an exact, vectorised erf).
The task heads live in heads.py, the model classes in modeling.py, and checkpoint key names
only in checkpoint.py: this file never sees `attention.output.dense`, only the short names
of the params dict.

Leaves out: dropout (inference only), cross-attention, the key/value cache for generation.

Shape legend (every layer function's `def` line ends with its contract):

    B   batch size                      T   tokens per sequence
    D   hidden size (768 in roberta-base)
    H   attention heads (12)            Dh  head size = D / H (64)
    F   feed-forward width (3072)       V   vocabulary size (50265)
    P   rows of the position table (514 = 512 tokens + the padding offset of 2)

The params dict (filled by checkpoint.py; Linear weights are `w: [out, in]`, `b: [out]`):

    embeddings: word [V,D], position [P,D], token_type [types,D], ln {g [D], b [D]}
    layers[i]:  q, k, v, attn_out [D,D]; attn_ln; ffn_in [F,D]; ffn_out [D,F]; ffn_ln

Every line here is what runs when you call these functions, for every dtype: NumPy and
nothing else. The model classes run the same encoder through fused.py, which rearranges it
for speed (q, k, v in one matrix multiply, temporaries reused by every layer, the Numba
kernels of kernels.py for `bias_act`, `masked_softmax`, `bias_residual_layer_norm` and the
embeddings); the tests hold the two equal. To run the model classes on this file instead,
end to end, set `MINIROBERA_KERNELS=readable` (or `kernels.set_backend("readable")`).
roberta_on_one_screen.py is this whole file again, cut down to one screen.

>>> params = random_params(vocab=20, dim=8, heads=2, ffn=12, layers=2, positions=16)
>>> ids = np.array([[0, 5, 6, 2, 1, 1]])
>>> x = embeddings(params["embeddings"], ids, pad_token_id=1, eps=1e-5)
>>> bias = attention_bias(ids != 1, causal=False)
>>> h, hidden_states, attentions = encoder(x, params["layers"], bias, n_head=2, act="gelu",
...                                        eps=1e-5)
>>> h.shape, len(hidden_states), attentions[0].shape
((1, 6, 8), 3, (1, 2, 6, 6))
"""

import math

import numpy as np

# ------------------------------------------------------------------------- basic building blocks

def linear(x, w, b=None, out=None):  # [..., In], [Out, In], [Out] -> [..., Out]
    """x @ w.T + b, the torch.nn.Linear convention.

    Quirk: Linear weights are stored [out, in] (PyTorch layout), hence the transpose.

    >>> linear(np.ones((2, 3)), np.arange(6.0).reshape(2, 3), np.array([0.5, 0.0])).tolist()
    [[3.5, 12.0], [3.5, 12.0]]
    """
    rows = None if out is None else out.reshape(-1, w.shape[0])  # `out`: C-contiguous
    y = np.matmul(x.reshape(-1, x.shape[-1]), w.T, out=rows)  # one 2-D GEMM for all B*T rows
    y = y.reshape(*x.shape[:-1], w.shape[0])
    if b is None:
        return y
    if np.result_type(y, b) != y.dtype:
        return y + b  # e.g. a float64 bias on float32 activations: NumPy's promotion
    y += b  # y is fresh (or the caller's `out`): add in place, no second [..., Out] array
    return y


def layer_norm(x, g, b, eps):  # [..., D], [D], [D] -> [..., D]
    """Normalise the last axis to zero mean and unit (biased) variance, then scale and shift.

    >>> layer_norm(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), eps=0.0).tolist()
    [[-1.0, 1.0]]
    """
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)  # biased, as torch's LayerNorm
    return centred / np.sqrt(var + eps) * g + b


def bias_act(x, b, act, out=None):  # [..., F], [F], str -> [..., F]
    """act(x + b): the FFN's bias and activation (`act` names one of ACTIVATIONS, below).

    `out`, if given, receives the result (fused.py's callers reuse their arrays).

    >>> bias_act(np.array([[-1.0, 1.0]]), np.array([0.0, 1.0]), "relu").tolist()
    [[0.0, 2.0]]
    """
    return _into(out, ACTIVATIONS[act](x + b))


def bias_residual_layer_norm(x, b, residual, g, beta, eps, out=None):
    # [..., D], [D], [..., D], [D], [D] -> [..., D]
    """LayerNorm(x + b + residual): a post-LN sublayer's exit.

    Quirk: post-LN, the residual is added *before* the norm.

    >>> bias_residual_layer_norm(np.array([[1.0, 1.0]]), np.array([0.0, 2.0]),
    ...                          np.zeros((1, 2)), np.ones(2), np.zeros(2), 0.0).tolist()
    [[-1.0, 1.0]]
    """
    return _into(out, layer_norm((x + b) + residual, g, beta, eps))


def masked_softmax(scores, bias, scale, out=None):  # [B,H,T,T], [B,1,1|T,T], float -> [B,H,T,T]
    """softmax(scores * scale + bias) over the last axis.

    `bias` holds 0 where a key may be attended and finfo(float32).min where not. A fully
    masked row is then all-equal (min + small = min in float32), so it comes out uniform
    (attention to the mean of V, as transformers' eager attention) and never NaN.

    >>> s = np.zeros((1, 1, 1, 3), np.float32)
    >>> masked_softmax(s, attention_bias(np.array([[1, 1, 0]]), causal=False), 1.0).round(3)
    array([[[[0.5, 0.5, 0. ]]]], dtype=float32)
    """
    s = scores * np.float32(scale) + bias
    s = s - s.max(axis=-1, keepdims=True)  # max-shift: exp never overflows
    e = np.exp(s)
    return _into(out, e / e.sum(axis=-1, keepdims=True))


def _into(out, y):
    if out is None:
        return y
    out[...] = y
    return out


# ------------------------------------------------------------------------------- embeddings

def position_ids_from_input_ids(input_ids, pad_token_id):  # [B,T] -> [B,T]
    """RoBERTa's positions: count real tokens from pad+1; pads get pad_token_id.

    Quirk: positions start at pad_token_id + 1 (2 in roberta-base), inherited from fairseq,
    so the position table has 2 extra rows; a pad anywhere (even mid-text) gets position
    `pad_token_id` and does not advance the count.

    >>> position_ids_from_input_ids(np.array([[0, 31414, 232, 2, 1, 1]]), 1).tolist()
    [[2, 3, 4, 5, 1, 1]]
    >>> position_ids_from_input_ids(np.array([[1, 1, 0, 31414, 232, 2]]), 1).tolist()
    [[1, 1, 2, 3, 4, 5]]
    """
    real = (input_ids != pad_token_id).astype(np.int64)
    return np.cumsum(real, axis=1) * real + pad_token_id


def position_ids_from_embeds(batch, tokens, pad_token_id):  # int, int -> [B,T]
    """Positions when only inputs_embeds are given: padding cannot be seen, so all count.

    >>> position_ids_from_embeds(1, 4, pad_token_id=1).tolist()
    [[2, 3, 4, 5]]
    """
    row = np.arange(pad_token_id + 1, pad_token_id + 1 + tokens, dtype=np.int64)
    return np.broadcast_to(row, (batch, tokens))


def embeddings(p, input_ids=None, token_type_ids=None, position_ids=None, *,
               inputs_embeds=None, pad_token_id, eps):  # [B,T] (or [B,T,D]) -> [B,T,D]
    """word (or inputs_embeds) + token type + position, then LayerNorm.

    >>> p = random_params(vocab=10, dim=4, heads=1, ffn=4, layers=0, positions=8)["embeddings"]
    >>> embeddings(p, np.array([[0, 3, 2]]), pad_token_id=1, eps=1e-5).shape
    (1, 3, 4)
    """
    if inputs_embeds is None:
        if position_ids is None:
            position_ids = position_ids_from_input_ids(input_ids, pad_token_id)
        x = p["word"][input_ids]
    else:
        x = inputs_embeds
        if position_ids is None:
            position_ids = position_ids_from_embeds(*x.shape[:2], pad_token_id)
    if token_type_ids is None:
        # Quirk: roberta-base has a single token-type row, and that row 0 is still added.
        x = x + p["token_type"][0]
    else:
        x = x + p["token_type"][token_type_ids]
    x = x + p["position"][position_ids]
    return layer_norm(x, p["ln"]["g"], p["ln"]["b"], eps)


# -------------------------------------------------------------------------------- attention

def attention_bias(attention_mask, causal):  # [B,T] -> [B,1,1,T] or [B,1,T,T]
    """The additive mask: 0 where a key may be attended, finfo(float32).min where not.

    With `causal` (config.is_decoder), query i also may not see keys after i.

    >>> attention_bias(np.array([[1, 0]]), causal=False)
    array([[[[ 0.0000000e+00, -3.4028235e+38]]]], dtype=float32)
    >>> (attention_bias(np.array([[1, 1]]), causal=True)[0, 0] == 0).tolist()
    [[True, False], [True, True]]
    """
    allowed = np.asarray(attention_mask).astype(bool)[:, None, None, :]  # [B,1,1,T]
    if causal:
        T = allowed.shape[-1]
        allowed = allowed & np.tri(T, dtype=bool)  # [B,1,T,T]: key j <= query i
    return np.where(allowed, np.float32(0.0), np.finfo(np.float32).min).astype(np.float32)


def split_heads(x, n_head):  # [B,T,D] -> [B,H,T,Dh]
    """Cut the last axis into H heads of Dh and move heads before tokens: a strided view of
    x, not a copy (np.matmul hands such views to BLAS as they are).

    >>> split_heads(np.zeros((2, 5, 12)), 3).shape
    (2, 3, 5, 4)
    """
    B, T, D = x.shape
    return x.reshape(B, T, n_head, D // n_head).transpose(0, 2, 1, 3)


def merge_heads(x):  # [B,H,T,Dh] -> [B,T,D]
    """The inverse of split_heads.

    >>> x = np.arange(24.0).reshape(1, 4, 6)
    >>> bool((merge_heads(split_heads(x, 2)) == x).all())
    True
    """
    B, H, T, Dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * Dh)


def self_attention(x, p, bias, n_head):  # [B,T,D], [B,1,1|T,T] -> [B,T,D], [B,H,T,T]
    """Multi-head scaled dot-product attention; returns the heads merged (before the output
    projection) and the attention probabilities.

    >>> p = random_params(vocab=5, dim=8, heads=2, ffn=4, layers=1, positions=8)["layers"][0]
    >>> x = np.ones((1, 3, 8), np.float32)
    >>> a, probs = self_attention(x, p, attention_bias(np.ones((1, 3)), causal=True), n_head=2)
    >>> a.shape, probs[0, 0].round(2).tolist()[0]
    ((1, 3, 8), [1.0, 0.0, 0.0])
    """
    q = split_heads(linear(x, p["q"]["w"], p["q"]["b"]), n_head)  # [B,H,T,Dh]
    k = split_heads(linear(x, p["k"]["w"], p["k"]["b"]), n_head)
    v = split_heads(linear(x, p["v"]["w"], p["v"]["b"]), n_head)
    scores = q @ k.transpose(0, 1, 3, 2)  # [B,H,T,T]
    probs = masked_softmax(scores, bias, 1.0 / math.sqrt(q.shape[-1]))
    return merge_heads(probs @ v), probs


# ---------------------------------------------------------------------------------- encoder

def encoder_layer(x, p, bias, n_head, act, eps):  # [B,T,D] -> [B,T,D], [B,H,T,T]
    """One post-LN transformer layer.

    Quirk: post-LN (BERT/RoBERTa), LayerNorm *after* each residual add,
    h = LN(x + attn(x)), out = LN(h + ffn(h)); GPT-2 and most newer models normalise before.

    >>> p = random_params(vocab=5, dim=8, heads=2, ffn=4, layers=1, positions=8)["layers"][0]
    >>> out, probs = encoder_layer(np.ones((1, 3, 8), np.float32), p,
    ...                            attention_bias(np.ones((1, 3)), False), 2, "gelu", 1e-5)
    >>> out.shape, probs.shape
    ((1, 3, 8), (1, 2, 3, 3))
    """
    a, probs = self_attention(x, p, bias, n_head)
    h = bias_residual_layer_norm(linear(a, p["attn_out"]["w"]), p["attn_out"]["b"], x,
                                 p["attn_ln"]["g"], p["attn_ln"]["b"], eps)
    f = bias_act(linear(h, p["ffn_in"]["w"]), p["ffn_in"]["b"], act)  # [B,T,F]
    out = bias_residual_layer_norm(linear(f, p["ffn_out"]["w"]), p["ffn_out"]["b"], h,
                                   p["ffn_ln"]["g"], p["ffn_ln"]["b"], eps)
    return out, probs


def encoder(x, layers, bias, n_head, act, eps):
    # [B,T,D] -> [B,T,D], L+1 x [B,T,D], L x [B,H,T,T]
    """Run the layer stack; also return every hidden state (embeddings first) and attention
    map. (See the module docstring for an example.)"""
    hidden_states, attentions = [x], []
    for p in layers:
        x, probs = encoder_layer(x, p, bias, n_head, act, eps)
        hidden_states.append(x)
        attentions.append(probs)
    return x, hidden_states, attentions


# ------------------------------------------------------------------------------ activations
# config.hidden_act names one of these; the encoder above only meets them through bias_act.

# erfc(z) = t * exp(-z^2 + poly(t)), t = 1 / (1 + z/2): the Chebyshev fit of Numerical Recipes
# (`erfcc`), relative error < 1.2e-7 for every z >= 0. Abramowitz-Stegun 7.1.26 (error 1.5e-7
# absolute, 1e-3 relative in the tail) is not good enough: torch's erf is within 1 ulp.
# kernels.py's GELU kernel evaluates the same fit in float32.
ERFC_COEFFS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,  # c0 .. c9
               0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def erfc(x):  # [...] -> [...]
    """Complementary error function, vectorised; float32 in, float32 out.

    Evaluated in float64 (float32 loses ~1e-5 relative in exp(-z^2) for large z), so the
    result is within 1.2e-7 relative of `math.erfc`.

    >>> [round(float(v), 7) for v in erfc(np.array([-1.0, 0.0, 0.5, 3.0], np.float32))]
    [1.8427008, 1.0, 0.4795001, 2.21e-05]
    """
    x = np.asarray(x)
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.5 * z)
    poly = ERFC_COEFFS[-1]
    for c in ERFC_COEFFS[-2::-1]:  # Horner, highest coefficient first
        poly = poly * t + c
    r = t * np.exp(-z * z + poly)
    return np.where(x >= 0, r, 2.0 - r).astype(_float_dtype(x), copy=False)


def erf(x):  # [...] -> [...]
    """The error function, vectorised (error < 1.2e-7 against `math.erf`).

    1 - erfc(x) for |x| >= 0.5; the Maclaurin series below that, where 1 - erfc would lose
    the relative precision of small values.

    >>> [round(float(v), 6) for v in erf(np.array([-2.0, 0.0, 0.5, 1.0], np.float32))]
    [-0.995322, 0.0, 0.5205, 0.842701]
    """
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    x2, term, series = x64 * x64, x64.copy(), x64.copy()
    for n in range(1, 12):  # erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        term = term * -x2 / n
        series = series + term / (2 * n + 1)
    small = 2.0 / math.sqrt(math.pi) * series
    out = np.where(np.abs(x64) < 0.5, small, 1.0 - erfc(x64))
    return out.astype(_float_dtype(x), copy=False)


def _float_dtype(x):
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def gelu(x):  # [...] -> [...]
    """Exact GELU, x * Phi(x), as torch.nn.functional.gelu and transformers' "gelu".

    Quirk: RoBERTa uses the exact erf form; the tanh form is off by up to 4.7e-4.
    Written as x/2 * erfc(-x/sqrt 2) = x/2 * (1 + erf(x/sqrt 2)), which keeps full relative
    precision in the negative tail where 1 + erf cancels.

    >>> [round(float(v), 6) for v in gelu(np.array([-3.0, -1.0, 0.0, 1.0, 3.0], np.float32))]
    [-0.00405, -0.158655, 0.0, 0.841345, 2.99595]
    """
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    return (0.5 * x64 * erfc(-x64 / math.sqrt(2.0))).astype(x.dtype, copy=False)


def gelu_new(x):  # [...] -> [...]
    """The tanh approximation of GELU (GPT-2's "gelu_new"; torch's approximate="tanh").

    >>> round(float(gelu_new(np.float32(1.0))), 6)
    0.841192
    """
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_fast(x):  # [...] -> [...]
    """transformers' "gelu_fast": the tanh form with its own rounded constant.

    >>> round(float(gelu_fast(np.float32(1.0))), 6)
    0.841192
    """
    return 0.5 * x * (1.0 + np.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x):  # [...] -> [...]
    """x * sigmoid(1.702 x) (CLIP's "quick_gelu").

    >>> round(float(quick_gelu(np.float32(1.0))), 6)
    0.845796
    """
    return x * _sigmoid(1.702 * x)


def silu(x):  # [...] -> [...]
    """x * sigmoid(x), also called swish.

    >>> round(float(silu(np.float32(1.0))), 6)
    0.731059
    """
    return x * _sigmoid(x)


def relu(x):  # [...] -> [...]
    """max(x, 0).

    >>> relu(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return np.maximum(x, 0)


def _sigmoid(x):  # [...] -> [...]
    # 1/(1+exp(-x)) overflows exp for x < -88 in float32; the two-branch form never does
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


# config.hidden_act -> function; the names transformers' ACT2FN uses
ACTIVATIONS = {
    "gelu": gelu,
    "gelu_new": gelu_new,
    "gelu_fast": gelu_fast,
    "gelu_pytorch_tanh": gelu_new,  # the same formula as gelu_new, in torch's C code
    "quick_gelu": quick_gelu,
    "relu": relu,
    "silu": silu,
    "swish": silu,
    "tanh": np.tanh,
}



# ------------------------------------------------------------------------ random parameters

def random_params(vocab, dim, heads, ffn, layers, positions, types=1, seed=0):
    """A params dict of the right shapes with random values (for examples and tests).

    >>> p = random_params(vocab=10, dim=4, heads=2, ffn=6, layers=1, positions=8)
    >>> p["layers"][0]["ffn_in"]["w"].shape
    (6, 4)
    """
    rng = np.random.default_rng(seed)

    def lin(n_out, n_in):
        return {"w": rng.normal(0, 0.3, (n_out, n_in)).astype(np.float32),
                "b": rng.normal(0, 0.1, n_out).astype(np.float32)}

    def ln():
        return {"g": (1 + rng.normal(0, 0.1, dim)).astype(np.float32),
                "b": rng.normal(0, 0.1, dim).astype(np.float32)}

    emb = {name: rng.normal(0, 0.5, (n, dim)).astype(np.float32)
           for name, n in (("word", vocab), ("position", positions), ("token_type", types))}
    emb["ln"] = ln()
    blocks = [{"q": lin(dim, dim), "k": lin(dim, dim), "v": lin(dim, dim),
               "attn_out": lin(dim, dim), "attn_ln": ln(),
               "ffn_in": lin(ffn, dim), "ffn_out": lin(dim, ffn), "ffn_ln": ln()}
              for _ in range(layers)]
    return {"embeddings": emb, "layers": blocks}
