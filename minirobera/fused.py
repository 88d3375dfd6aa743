"""The encoder of layers.py rearranged for speed: the same math in fewer, larger steps.

What this file owns: the things that exist only for speed. The model classes run the
encoder through here (unless MINIROBERA_KERNELS=readable: then they run layers.py); layers.py
is the same encoder as a reader meets it, and tests/test_model_layers.py holds the two equal.

  * the weight layout (`compute_layout`, once, when a model is built): every Linear weight a
    C-contiguous [out, in] array (the checkpoint's own layout, so a loaded weight is not
    copied), and q, k, v stacked in one array, so attention projects with one matrix
    multiply; the params dict holds that layout itself (q, k and v, weights and biases, are
    views into the fused arrays), so an edit of a param is an edit the model sees;
  * the matrix multiply picked by shape (`linear`): a few rows (2 to FEW_ROWS) go to
    kernels.few_rows_linear, which streams the weights once on every core; others to BLAS;
  * the fused element-wise kernels of kernels.py (GELU, softmax, residual + LayerNorm, the
    embeddings) in place of layers.py's NumPy lines, on float32;
  * the q/k/v bias folded where BLAS multiplies (`_fold_qkv_bias`): a [B,H,T] term with the
    mask and the value bias added to the [B,T,D] context, instead of a pass over the
    [B,T,3D] projection;
  * temporaries reused by every layer (`_buffer`): one [B,T,3D] q/k/v array, one [B,H,T,T]
    score array and one [B,T,F] FFN array for all twelve layers, not twelve of each;
  * each layer's output written over its input when no hidden state is kept.

What it leaves out: the math (layers.py: `linear`, `split_heads` and the plain layer are its
functions; every kernel is held equal to its layers.py line, tests/test_fused.py holds the
rule and the folding equal to the plain math). bench/README.md says what
each of these is worth.

>>> from minirobera import layers
>>> params = compute_layout(layers.random_params(vocab=20, dim=8, heads=2, ffn=12, layers=2,
...                                              positions=16))
>>> ids = np.array([[0, 5, 6, 2, 1, 1]])
>>> x = layers.embeddings(params["embeddings"], ids, pad_token_id=1, eps=1e-5)
>>> bias = layers.attention_bias(ids != 1, causal=False)
>>> want, _, _ = layers.encoder(x, params["layers"], bias, n_head=2, act="gelu", eps=1e-5)
>>> got, _, _ = encoder(x.copy(), params["layers"], bias, n_head=2, act="gelu", eps=1e-5,
...                     keep_attentions=False, keep_hidden_states=False)
>>> bool(np.allclose(got, want, atol=1e-6))
True
"""

import math
import mmap

import numpy as np

from . import kernels, layers
from .layers import encoder_layer as plain_encoder_layer, split_heads


# ------------------------------------------------------------------------- the weight layout

def compute_layout(params):
    """Lay the Linear weights out for fast inference (in place; returns params). The model
    classes call it once, when they are built.

    Every `w` is a C-contiguous [out, in] array: the layout of the checkpoint (a loaded
    weight stays the file's pages, mapped copy-on-write) and the one kernels.few_rows_linear
    streams row by row. BLAS multiplies it 3-13% slower than [in, out] at 64-128 rows and
    3-6% faster from 512 (bench/README.md); one layout is kept, not two. Each layer also gets a `qkv` entry: the query, key and value weights
    stacked in ONE [3*out, in] array and their biases in one [3*out] array, with q, k and v
    (weights and biases) left as views into them,
    so `self_attention` below runs one GEMM instead of three and an in-place edit of q, k or
    v is an edit of `qkv`. A q, k or v array replaced by another one is noticed at the next
    forward (`_qkv`), which rebuilds `qkv`. Copied weights release their memory-mapped file
    pages, so the process does not hold the checkpoint twice. The tied decoder (the word
    embeddings, [V, D]) stays as it is. Every other array is made writable (`_writable`), so
    that an in-place edit of any param reaches the model instead of raising.
    """
    for layer in params.get("layers", []):
        layer["qkv"] = _fuse_qkv(layer)
    for node in _linear_nodes(params):  # a weight that came in another layout (rare)
        w = node["w"]
        node["w"] = np.ascontiguousarray(w)
        _release_pages(w)
    _make_writable(params, {})
    return params


def _make_writable(node, done):  # every read-only array of a params dict, in place
    items = enumerate(node) if isinstance(node, list) else node.items()
    for key, value in list(items):
        if isinstance(value, (dict, list)) and key != "qkv":  # qkv: fresh arrays, writable
            _make_writable(value, done)
        elif isinstance(value, np.ndarray) and not value.flags.writeable:
            if id(value) not in done:  # a tied array (the decoder) becomes ONE writable array
                done[id(value)] = (value, _writable(value))
            node[key] = done[id(value)][1]


def _writable(a):
    """A writable array with a's values. A tensor read from a file is a read-only view of it
    (a memory map), and an edit a learner makes must reach the model, not raise. A mapped,
    contiguous tensor is mapped again copy-on-write (MAP_PRIVATE: the pages stay those of the
    file, shared and counted once, until one is written; a write never reaches the file);
    anything else is copied."""
    mm = a  # the np.memmap that owns the mapping: the last array down the .base chain (a
    while isinstance(mm.base, np.ndarray):  # slice of a memmap is a memmap too, and carries
        mm = mm.base  # its parent's .offset although its data starts elsewhere)
    if isinstance(mm, np.memmap) and mm.filename and a.flags.c_contiguous and a.size:
        offset = mm.offset + (a.ctypes.data - mm.ctypes.data)  # a's first byte in the file
        try:
            return np.asarray(np.memmap(mm.filename, dtype=a.dtype, mode="c", offset=offset,
                                        shape=a.shape))
        except (OSError, ValueError):  # the file is gone or shorter now: copy what we hold
            pass
    copy = np.array(a)
    _release_pages(a)
    return copy


def _fuse_qkv(layer):  # q, k, v: [out, in] each -> {"w": [3*out, in], "b": [3*out]}
    d_in = layer["q"]["w"].shape[1]
    outs = [layer[n]["w"].shape[0] for n in ("q", "k", "v")]
    fused = np.empty((sum(outs), d_in), np.float32)  # [3*out, in], C-contiguous
    bias = np.empty(sum(outs), np.float32)
    start = 0
    for name, n_out in zip(("q", "k", "v"), outs):
        rows = slice(start, start + n_out)
        fused[rows] = layer[name]["w"]
        bias[rows] = layer[name]["b"]
        _release_pages(layer[name]["w"])
        layer[name]["w"] = fused[rows]  # still [out, in], now a view into `fused`
        layer[name]["b"] = bias[rows]  # a view into `bias`
        start += n_out
    qkv = _FusedQKV(w=fused, b=bias)
    qkv.views = tuple(layer[n][wb] for n, wb in _QKV_ARRAYS)
    return qkv


class _FusedQKV(dict):
    """{"w": [3*out, in], "b": [3*out]}, a plain dict to whoever walks the params, that also
    remembers the q, k and v arrays made views into it (`views`)."""

    views = ()


def _qkv(layer):  # -> layer["qkv"], rebuilt first if q, k or v no longer are its views
    """The fused q/k/v weight and bias of a layer. In-place edits of q, k or v reach it (they
    are views into it); an array put in their place instead is noticed here (six identity
    checks) and `qkv` is built again from the params, so it is never a stale copy."""
    views = getattr(layer.get("qkv"), "views", ())
    if len(views) != len(_QKV_ARRAYS) or any(
            layer[n][wb] is not v for (n, wb), v in zip(_QKV_ARRAYS, views)):
        layer["qkv"] = _fuse_qkv(layer)
    return layer["qkv"]


_QKV_ARRAYS = tuple((n, wb) for n in ("q", "k", "v") for wb in ("w", "b"))


def _linear_nodes(params):  # the {"w": [out,in], ...} dicts not yet laid out, except the
    # decoder (the tied word embeddings) and q, k, v (views into the fused qkv array)
    stack = [(k, v) for k, v in params.items() if k != "embeddings"]
    while stack:
        name, node = stack.pop()
        if isinstance(node, list):
            stack.extend((name, v) for v in node)
        elif isinstance(node, dict):
            w = node.get("w")
            if (isinstance(w, np.ndarray) and w.ndim == 2 and name not in ("decoder", "q", "k", "v")
                    and not w.flags.c_contiguous):
                yield node
            stack.extend((k, v) for k, v in node.items() if isinstance(v, (dict, list)))


def _release_pages(a):
    """Drop a memory-mapped tensor's pages from this process once it has been copied (they
    stay in the OS page cache; without this they would count in the RSS a second time)."""
    base = a  # np.asarray() strips the np.memmap subclass: find it down the .base chain
    while base is not None and getattr(base, "_mmap", None) is None:
        base = getattr(base, "base", None)
    mm = getattr(base, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise"):
        return
    start = np.frombuffer(mm, np.uint8).ctypes.data
    lo = a.ctypes.data - start
    hi = lo + a.nbytes
    page = mmap.PAGESIZE
    lo, hi = -(-lo // page) * page, hi // page * page  # whole pages inside the tensor only
    if hi > lo:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


# ------------------------------------------------------------ the matrix multiply, by shape

# From 2 to this many rows (tokens in the batch) go to kernels.few_rows_linear, others to
# BLAS. There a matrix multiply is bound by reading the weights, which the kernel does at
# close to the machine's bandwidth on every core; above, the multiply-adds dominate, where
# BLAS is the faster; one row is a matrix-vector product, which BLAS already streams at the
# bandwidth limit, without the hand-overs to the kernel's threads. `python bench/few_rows.py`
# measures both on the running CPU at 1-64 rows (bench/README.md: on the machine it was
# chosen on, the whole model ties at 32 rows).
FEW_ROWS = 24


def linear(x, w, b=None, out=None, *, rows=None):  # [..., In], [Out, In], [Out] -> [..., Out]
    """layers.linear (x @ w.T + b), by kernels.few_rows_linear for 2 to FEW_ROWS rows of
    float32 against a C-contiguous float32 weight (compute_layout's), else by BLAS.

    `rows` makes the choice on another row count than x's: a head passes its encoder's, so
    that a forward runs on one side of the rule. After BLAS's matrix multiplies OpenBLAS's
    idle threads spin for ~0.1 s, and the kernel's second thread would share a core with
    one (bench/few_rows.py --after-blas): a few-row head after a many-row encoder stays on
    BLAS.

    >>> x = np.ones((1, 3, 2), np.float32); w = np.arange(4, dtype=np.float32).reshape(2, 2)
    >>> bool(np.allclose(linear(x, w), layers.linear(x, w)))
    True
    """
    own = x.size // x.shape[-1] if x.ndim and x.shape[-1] else 0
    rows = own if rows is None else max(rows, own)
    if (1 < rows <= FEW_ROWS and x.dtype == w.dtype == np.float32 and w.flags.c_contiguous
            and (b is None or b.dtype == np.float32)):
        return kernels.few_rows_linear(x, w, b, out=out)
    return layers.linear(x, w, b, out=out)


# ------------------------------------------------------------------- the encoder, fused

def _buffer(scratch, name, shape):  # -> a reusable float32 array, or None (allocate)
    """Scratch space lent by `encoder`: the layers reuse one set of large temporaries instead
    of allocating, zeroing and page-faulting them once a layer."""
    if scratch is None:
        return None
    buf = scratch.get(name)
    if buf is None or buf.shape != shape:
        buf = scratch[name] = np.empty(shape, np.float32)
    return buf


def self_attention(x, p, bias, n_head, scratch=None, keep_probs=True):
    # [B,T,D], [B,1,1|T,T] -> [B,T,D], [B,H,T,T]
    """layers.self_attention with q, k, v from one GEMM over the fused `qkv` weight.

    The heads are strided views into that one [B,T,3D] output, never copied (BLAS takes
    them as they are), and the context is written straight into its [B,T,D] place.

    Where BLAS runs the projection (more than FEW_ROWS rows) and the mask is one row per
    sequence (not causal), the q/k/v bias is folded instead of added to all B*T*3D outputs
    (`_fold_qkv_bias`); where the few-row kernel runs it, the kernel adds the bias for free.
    """
    B, T, D = x.shape
    qkv_p = _qkv(p)
    fold = B * T > FEW_ROWS and bias.shape[2] == 1
    qkv = linear(x, qkv_p["w"], None if fold else qkv_p["b"],
                 out=_buffer(scratch, "qkv", (B, T, 3 * D)))
    heads = split_heads(qkv, 3 * n_head)  # [B,3H,T,Dh]: q heads, then k, then v
    q, k, v = heads[:, :n_head], heads[:, n_head:2 * n_head], heads[:, 2 * n_head:]
    scale = 1.0 / math.sqrt(q.shape[-1])
    if fold:
        bias = _fold_qkv_bias(qkv, qkv_p["b"], bias, n_head, scale)  # [B,H,1,T]
    scores = np.matmul(q, k.transpose(0, 1, 3, 2),  # [B,H,T,T]
                       out=None if keep_probs else _buffer(scratch, "scores", (B, n_head, T, T)))
    # layers.masked_softmax as one kernel, in place
    probs = kernels.masked_softmax(scores, bias, scale, out=scores)
    # merge_heads for free: the GEMM writes each head's [T,Dh] block straight into its
    # columns of a [B,T,H,Dh] array, which is [B,T,D] without a copy
    ctx = _buffer(scratch, "ctx", (B, T, D))
    ctx = np.empty((B, T, D), np.float32) if ctx is None else ctx
    np.matmul(probs, v, out=split_heads(ctx, n_head))
    if fold:  # probs @ (v + bv) = probs @ v + bv: each row of probs sums to 1
        ctx += qkv_p["b"][2 * D:]
    return ctx, probs


def _fold_qkv_bias(qkv, b, mask, n_head, scale):
    # [B,T,3D] (without bias), [3D], [B,1,1,T] -> [B,H,1,T]: the mask plus the bias's share
    """What the q/k/v bias adds to the scores, moved to where it costs a [B,H,T] array instead
    of a pass over the [B,T,3D] projection:

      * (q_i + bq).(k_j + bk) = q_i.k_j + bq.k_j + (q_i + bq).bk. The last term is the same
        for every key j of query i, and softmax over j does not change when a row is
        shifted: bk drops out. bq.k_j is one number per key and head, added to the mask here
        ([B,H,1,T], the mask kernels.masked_softmax takes one row of per head);
      * the value bias goes to the context, a third of the projection's size: probs @ (v + bv)
        = probs @ v + bv, as each row of probs sums to 1 (self_attention).

    Equal to adding the bias to every output up to float32 rounding (tests/test_fused.py).
    """
    B, T, D3 = qkv.shape
    D = D3 // 3
    k = split_heads(qkv[:, :, D:2 * D], n_head)  # [B,H,T,Dh], a strided view
    bq = b[:D].reshape(n_head, D // n_head, 1)  # [H,Dh,1]
    key_terms = np.matmul(k, bq)[..., 0]  # [B,H,T]: bq_h . k_j, one small product per head
    return (mask[:, :, 0, :] + np.float32(scale) * key_terms)[:, :, None, :]


def _bias_act(x, b, act):  # [..., F], [F] -> [..., F], in place: layers.bias_act
    if act == "gelu":
        return kernels.gelu_bias(x, b, out=x)  # exact GELU, one fused kernel
    return layers.bias_act(x, b, act, out=x)


def encoder_layer(x, p, bias, n_head, act, eps, scratch=None, keep_probs=True, out=None):
    # [B,T,D] -> [B,T,D], [B,H,T,T]
    """layers.encoder_layer (post-LN), each step writing into a reused buffer or in place."""
    a, probs = self_attention(x, p, bias, n_head, scratch, keep_probs)
    h = linear(a, p["attn_out"]["w"], out=_buffer(scratch, "h", x.shape))  # then in place
    h = kernels.bias_residual_layernorm(h, p["attn_out"]["b"], x, p["attn_ln"]["g"],
                                        p["attn_ln"]["b"], eps, out=h)
    f = linear(h, p["ffn_in"]["w"],  # [B,T,F]
               out=_buffer(scratch, "f", x.shape[:-1] + (p["ffn_in"]["w"].shape[0],)))
    f = _bias_act(f, p["ffn_in"]["b"], act)
    out = linear(f, p["ffn_out"]["w"], out=out)  # `out` may be x: dead since the 1st residual
    out = kernels.bias_residual_layernorm(out, p["ffn_out"]["b"], h, p["ffn_ln"]["g"],
                                          p["ffn_ln"]["b"], eps, out=out)
    return out, probs


def encoder(x, layers, bias, n_head, act, eps, keep_attentions=True, keep_hidden_states=True):
    # [B,T,D] -> [B,T,D], L+1 x [B,T,D] (or None), L x [B,H,T,T] (or L x None)
    """layers.encoder, fused where it can be: float32 x and float32 weights laid out by
    compute_layout.

    With `keep_attentions=False` the maps are not kept (None) and their buffer is reused.
    With `keep_hidden_states=False` the hidden states are not kept (None) and each layer
    writes its output over its input: x itself is overwritten (pass a copy to keep it).
    Anything else (float64 weights, a params dict without `qkv`) runs layers.encoder_layer.
    """
    fused = x.dtype == np.float32 and all(_float32_layer(p) for p in layers)
    # one [B,T,D] array for every layer's output when nothing else holds them
    in_place = fused and not keep_hidden_states and x.flags.c_contiguous
    scratch = {} if fused else None
    hidden_states, attentions = [x], []
    for p in layers:
        if fused:
            x, probs = encoder_layer(x, p, bias, n_head, act, eps, scratch, keep_attentions,
                                     out=x if in_place else None)
        else:
            x, probs = plain_encoder_layer(x, p, bias, n_head, act, eps)
        attentions.append(probs if keep_attentions else None)
        if keep_hidden_states:
            hidden_states.append(x)
    return x, hidden_states if keep_hidden_states else None, attentions


def _float32_layer(p):  # every array of a layer float32, and q/k/v laid out (`qkv`)?
    return "qkv" in p and all(p[name][k].dtype == np.float32 for name in _LAYER_PARTS
                              for k in p[name])


_LAYER_PARTS = ("q", "k", "v", "attn_out", "attn_ln", "ffn_in", "ffn_out", "ffn_ln")


# ------------------------------------------------------------ embeddings and the heads, fused

def embeddings(p, input_ids=None, token_type_ids=None, position_ids=None, *,
               inputs_embeds=None, pad_token_id, eps):  # [B,T] (or [B,T,D]) -> [B,T,D]
    """layers.embeddings; on float32 tables the gather, sum and LayerNorm are one kernel
    (row by row, no [B,T,D] temporaries)."""
    tables = (p["word"], p["position"], p["token_type"], p["ln"]["g"], p["ln"]["b"])
    if not all(t.dtype == np.float32 for t in tables) or (
            inputs_embeds is not None and inputs_embeds.dtype != np.float32):
        return layers.embeddings(p, input_ids, token_type_ids, position_ids,
                                 inputs_embeds=inputs_embeds, pad_token_id=pad_token_id, eps=eps)
    if inputs_embeds is None:
        if position_ids is None:
            position_ids = layers.position_ids_from_input_ids(input_ids, pad_token_id)
        return kernels.embed_layernorm(input_ids, position_ids, token_type_ids, *tables, eps)
    if position_ids is None:
        position_ids = layers.position_ids_from_embeds(*inputs_embeds.shape[:2], pad_token_id)
    types = 0 if token_type_ids is None else token_type_ids  # Quirk: row 0 is still added
    x = inputs_embeds + p["token_type"][types]
    x = x + p["position"][position_ids]
    return kernels.layer_norm(x, p["ln"]["g"], p["ln"]["b"], eps, out=x)


def pooler(h, p):  # [B,T,D] -> [B,D]
    """heads.pooler with fused.linear, on the side of the rule the encoder's B*T rows took."""
    return np.tanh(linear(h[:, 0], p["w"], p["b"], rows=h.shape[0] * h.shape[1]))


def sequence_classification_head(h, p):  # [B,T,D] -> [B,L]
    """heads.sequence_classification_head with fused.linear, as pooler."""
    rows = h.shape[0] * h.shape[1]
    x = np.tanh(linear(h[:, 0], p["dense"]["w"], p["dense"]["b"], rows=rows))
    return linear(x, p["out_proj"]["w"], p["out_proj"]["b"], rows=rows)


def lm_head(h, p, eps, rows=None):  # [..., D] -> [..., V]
    """heads.lm_head (dense -> exact GELU -> LayerNorm -> tied decoder) with the GELU and the
    LayerNorm as kernels, in place, on float32. `rows`: the encoder's row count, when h is a
    gather of some of its rows (fill-mask's <mask> positions; see `linear`)."""
    from . import heads

    if not all(a.dtype == np.float32 for a in (h, p["dense"]["b"], p["ln"]["g"], p["ln"]["b"])):
        return heads.lm_head(h, p, eps)
    x = linear(h, p["dense"]["w"], rows=rows)
    x = kernels.gelu_bias(x, p["dense"]["b"], out=x)  # Quirk: always exact GELU
    x = kernels.layer_norm(x, p["ln"]["g"], p["ln"]["b"], eps, out=x)
    return linear(x, p["decoder"]["w"], p["decoder"]["b"], rows=rows)
