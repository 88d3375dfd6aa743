"""The Numba kernels equal their NumPy twins; GELU equals math.erfc's; the switch works.

Known answers here come from the standard library (math.erfc) and from the NumPy twins, whose
formulas are the readable definitions; the model parity tests (test_model*.py) hold the
whole forward equal to transformers under both backends.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from minirobera import kernels as K

pytest.importorskip("numba")

RTOL = 1e-6  # kernel vs twin, fp32: relative to each element and to the array's scale
MIN = np.finfo(np.float32).min


def both(fn, *args, **kwargs):
    """fn under the numba backend and under the numpy backend (inputs copied for each)."""
    out = []
    for backend in ("numba", "numpy"):
        old = K.set_backend(backend)
        try:
            copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            out.append(fn(*copies, **kwargs))
        finally:
            K.set_backend(old)
    return out


def assert_close(a, b, rtol=RTOL):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    assert np.isfinite(a).all()
    scale = np.abs(b).max() if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------------------- erf / gelu

def exact_gelu(z):  # float64 GELU from the standard library: z/2 * erfc(-z/sqrt 2)
    # (the erfc form: 1 + erf(z/sqrt 2) cancels to 0 in float64 below z ~ -8)
    return np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in z])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_gelu_is_exact_erf_gelu_on_a_dense_grid_tails_and_tiny_values(backend, rng):
    # float32 erfc-based GELU (kernels._erfc32): within 1e-6 relative + 1e-7 absolute
    grid = np.concatenate([np.linspace(-12, 12, 480_001), rand(rng, 5_000, scale=4)])
    tiny = np.geomspace(1e-30, 1e-3, 200)  # gelu(z) ~ z/2: relative error
    far = np.array([-1e4, -50, -20, -14, 10, 12, 50, 1e4])
    x = np.concatenate([grid, tiny, -tiny, far]).astype(np.float32).reshape(1, -1)
    old = K.set_backend(backend)
    try:
        got = K.gelu_bias(x, np.zeros(x.shape[1], np.float32))[0].astype(np.float64)
    finally:
        K.set_backend(old)
    want = exact_gelu(x[0].astype(np.float64))
    n, m = grid.size, grid.size + 2 * tiny.size
    np.testing.assert_allclose(got[:n], want[:n], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got[n:m], want[n:m], rtol=1e-6, atol=0)
    # the negative tail: relative error bounded (2e-5) down to |gelu| ~ 1e-30, then 0
    tail = (want < -1e-30) & (x[0] < -5)
    assert tail.sum() > 10_000
    np.testing.assert_allclose(got[tail], want[tail], rtol=2e-5, atol=0)
    # far tails: exactly z above ~10, and 0 (not a NaN, not a growing error) far below
    assert got[-4:].tolist() == far[-4:].tolist()
    assert np.all(np.abs(got[-8:-4]) < 1e-40)


@pytest.mark.parametrize("shape", [(1, 1), (1, 3072), (5, 7), (2, 3, 13)], ids=str)
def test_gelu_bias_kernel_equals_twin(shape, rng):
    x, b = rand(rng, *shape, scale=3), rand(rng, shape[-1])
    assert_close(*both(K.gelu_bias, x, b))


def test_gelu_bias_in_place_and_strided(rng):
    base = rand(rng, 6, 40, scale=3)
    b = rand(rng, 20)
    for backend in ("numba", "numpy"):
        old = K.set_backend(backend)
        try:
            x = base.copy()
            view = x[:, ::2]  # non-contiguous, written in place
            want = K.gelu_bias(view.copy(), b)
            got = K.gelu_bias(view, b, out=view)
            assert got is view
            assert_close(x[:, ::2], want)
            assert_close(x[:, 1::2], base[:, 1::2])  # untouched
            y = base[:, :20].copy()
            assert K.gelu_bias(y, b, out=y) is y
        finally:
            K.set_backend(old)


# ---------------------------------------------------------------------------------- softmax

@pytest.mark.parametrize("B,H,Tq,Tk", [(1, 1, 1, 1), (2, 3, 5, 5), (2, 12, 17, 33),
                                       (1, 2, 9, 129)], ids=str)
def test_masked_softmax_kernel_equals_twin(B, H, Tq, Tk, rng):
    scores = rand(rng, B, H, Tq, Tk, scale=4)
    mask = np.zeros((B, Tk), np.float32)
    mask[-1, Tk // 2 + 1:] = MIN  # right padding in the last sequence
    a, b = both(K.masked_softmax, scores, mask, 0.125)
    assert_close(a, b)
    assert np.all(a[-1, :, :, Tk // 2 + 1:] == 0)  # masked keys get exactly 0
    np.testing.assert_allclose(a.sum(-1), 1, rtol=1e-6)
    c, _ = both(K.masked_softmax, scores, mask[:, None, None, :], 0.125)  # [B,1,1,Tk] form
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("T", [6, 19, 37])  # shorter than one 16-float vector, longer with tails
def test_masked_softmax_full_mask_causal_and_fully_masked_rows(T, rng):
    B, H = 2, 3
    scores = rand(rng, B, H, T, T, scale=4)
    causal = np.where(np.tri(T, dtype=bool), 0, MIN).astype(np.float32)
    mask = np.broadcast_to(causal, (B, T, T)).copy()
    mask[1] = MIN  # every key masked: uniform, as transformers' eager attention, never NaN
    a, b = both(K.masked_softmax, scores, mask, 1.0)
    assert_close(a, b)
    c, _ = both(K.masked_softmax, scores, mask[:, None], 1.0)  # [B,1,Tq,Tk] form
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(a[1], 1.0 / T, rtol=1e-6)
    assert np.all(a[0][:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)


def test_masked_softmax_row_max_over_signs_zeros_and_extremes():
    # the kernel's row max goes through int32 order keys: rows whose max is negative, -0.0
    # against +0.0, the largest finite floats, a lone masked key, mixed magnitudes
    rows = [[-3.0, -1.5, -7.0, -1.25] * 5,
            [-0.0, 0.0, -0.0, -1e-30] * 5,
            [-0.0, -1.0, -2.0, -3.0] * 5,
            [3e38, -3e38, 1e38, 2.9e38] * 5,
            [-3e38, -2e38, -3.4e38, -1e38] * 5,
            [1e-38, -1e-38, 1e-45, 0.0] * 5,
            list(np.linspace(-40, 3, 20))]
    scores = np.array(rows, np.float32)[None, None]  # [1,1,7,20]
    mask = np.zeros((1, 20), np.float32)
    mask[0, 3] = MIN
    with np.errstate(over="ignore"):  # -3e38 + MIN and 3e38 - (-3e38) overflow to -inf: 0
        a, b = both(K.masked_softmax, scores, mask, 1.0)
    assert_close(a, b)
    want = scores.astype(np.float64) + mask[:, None, None, :]
    want = np.exp(want - want.max(-1, keepdims=True))
    np.testing.assert_allclose(a, want / want.sum(-1, keepdims=True), rtol=1e-6, atol=1e-7)


def test_masked_softmax_strided_scores_and_no_mask(rng):
    big = rand(rng, 2, 4, 5, 14, scale=3)
    scores = big[:, ::2, :, ::2]  # non-contiguous input, out=None
    a, b = both(K.masked_softmax, scores, None, 0.5)
    assert_close(a, b)
    want = np.exp(scores * 0.5 - (scores * 0.5).max(-1, keepdims=True))
    assert_close(a, want / want.sum(-1, keepdims=True))


# ------------------------------------------------------------------------------ layer norms

@pytest.mark.parametrize("shape", [(1, 1), (1, 768), (3, 7), (2, 5, 771)], ids=str)
def test_bias_residual_layernorm_kernel_equals_twin(shape, rng):
    d = shape[-1]
    x, r = rand(rng, *shape, scale=2), rand(rng, *shape)
    b, g, beta = rand(rng, d), rand(rng, d), rand(rng, d)
    assert_close(*both(K.bias_residual_layernorm, x, b, r, g, beta, 1e-5))
    want = (x + b) + r
    want = (want - want.mean(-1, keepdims=True)) / np.sqrt(want.var(-1, keepdims=True) + 1e-5)
    assert_close(both(K.bias_residual_layernorm, x, b, r, g, beta, 1e-5)[0],
                 want * g + beta, rtol=1e-5)


def test_bias_residual_layernorm_out_may_be_x_or_residual_or_strided(rng):
    x, r = rand(rng, 4, 9, scale=2), rand(rng, 4, 9)
    b, g, beta = rand(rng, 9), rand(rng, 9), rand(rng, 9)
    for backend in ("numba", "numpy"):
        old = K.set_backend(backend)
        try:
            want = K.bias_residual_layernorm(x, b, r, g, beta, 1e-5)
            x1, r1 = x.copy(), r.copy()
            assert K.bias_residual_layernorm(x1, b, r1, g, beta, 1e-5, out=x1) is x1
            assert_close(x1, want)
            assert_close(r1, r)
            x2, r2 = x.copy(), r.copy()
            assert K.bias_residual_layernorm(x2, b, r2, g, beta, 1e-5, out=r2) is r2
            assert_close(r2, want)
            assert_close(x2, x)
            wide = np.zeros((4, 18), np.float32)
            K.bias_residual_layernorm(x, b, r, g, beta, 1e-5, out=wide[:, ::2])
            assert_close(wide[:, ::2], want)
            assert_close(K.bias_residual_layernorm(np.asfortranarray(x), b, r[:, :], g, beta,
                                                   1e-5), want)
        finally:
            K.set_backend(old)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3, 13), (4, 768)], ids=str)
def test_layer_norm_kernel_equals_twin(shape, rng):
    d = shape[-1]
    x, g, beta = rand(rng, *shape, scale=3), rand(rng, d), rand(rng, d)
    assert_close(*both(K.layer_norm, x, g, beta, 1e-12))


# ------------------------------------------------------------------------------ embeddings

@pytest.mark.parametrize("B,T,D", [(1, 1, 8), (2, 7, 13), (3, 33, 768)], ids=str)
def test_embed_layernorm_kernel_equals_twin(B, T, D, rng):
    V, P, TT = 50, 40, 2
    word, pos, typ = rand(rng, V, D), rand(rng, P, D), rand(rng, TT, D)
    g, beta = rand(rng, D), rand(rng, D)
    ids = rng.integers(0, V, (B, T))
    pos_ids = rng.integers(0, P, (B, T))
    types = rng.integers(0, TT, (B, T))
    for tt in (None, types):
        a, b = both(K.embed_layernorm, ids, pos_ids, tt, word, pos, typ, g, beta, 1e-5)
        assert_close(a, b)
    v = (word[ids] + typ[types]) + pos[pos_ids]
    v = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-5) * g + beta
    assert_close(a, v, rtol=1e-5)


def test_embed_layernorm_rejects_out_of_range_ids(rng):
    word, pos, typ = rand(rng, 10, 4), rand(rng, 6, 4), rand(rng, 1, 4)
    g, b = np.ones(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 10\)"):
        K.embed_layernorm([[0, 10]], [[2, 3]], None, word, pos, typ, g, b, 1e-5)
    with pytest.raises(ValueError, match="position_ids"):
        K.embed_layernorm([[0, 1]], [[2, 6]], None, word, pos, typ, g, b, 1e-5)
    with pytest.raises(TypeError, match="integer"):
        K.embed_layernorm([[0.0, 1.0]], [[2, 3]], None, word, pos, typ, g, b, 1e-5)


# --------------------------------------------------------------------------- input checking

def test_kernels_reject_wrong_dtypes_and_shapes(rng):
    x = rand(rng, 2, 4)
    with pytest.raises(TypeError, match="x must be float32, got float64"):
        K.gelu_bias(x.astype(np.float64), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        K.gelu_bias(x, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="mask must have shape"):
        K.masked_softmax(rand(rng, 1, 2, 3, 3), np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="residual must have the shape of x"):
        K.bias_residual_layernorm(x, x[0], x[:1], x[0], x[0], 1e-5)
    with pytest.raises(ValueError, match="out must have shape"):
        K.layer_norm(x, x[0], x[0], 1e-5, out=np.empty((4, 2), np.float32))


# ----------------------------------------------------------------------------- the switch

def test_set_backend_switches_and_rejects_unknown_names():
    old = K.set_backend("numpy")
    try:
        assert K.get_backend() == "numpy"
        assert K.set_backend("numba") == "numpy"
        assert K.get_backend() == "numba"
        with pytest.raises(ValueError, match=r"must be one of \('numba', 'numpy', 'readable'\), "
                                             r"got 'cuda'"):
            K.set_backend("cuda")
        assert K.get_backend() == "numba"  # unchanged by the failed call
    finally:
        K.set_backend(old)


def _python(code, **env):
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)


def test_environment_variable_picks_the_backend_and_numpy_never_imports_numba():
    code = ("import sys, numpy as np; import minirobera; assert 'numba' not in sys.modules; "
            "from minirobera import kernels as K; "
            "K.gelu_bias(np.ones((1, 3), np.float32), np.ones(3, np.float32)); "
            "print(K.get_backend(), 'numba' in sys.modules)")
    p = _python(code, MINIROBERA_KERNELS="numpy")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["numpy", "False"]
    p = _python(code, MINIROBERA_KERNELS="NUMBA")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["numba", "True"]
    p = _python(code, MINIROBERA_KERNELS="readable")  # a direct kernel call runs its twin
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["readable", "False"]
    p = _python("import minirobera.kernels", MINIROBERA_KERNELS="fortran")
    assert p.returncode != 0
    assert ("MINIROBERA_KERNELS must be one of ('numba', 'numpy', 'readable'), got 'fortran'"
            in p.stderr)


def test_every_kernel_is_cached_on_disk_and_single_threaded_by_default():
    compiled = K._numba_kernels()
    team = set(K._TEAM_LOOPS)  # few_rows_linear's threads
    assert set(compiled) == set(K._TWINS) | team
    for name, dispatcher in compiled.items():
        assert dispatcher._cache.__class__.__name__ == "FunctionCache", name
        parallel = dispatcher.targetoptions.get("parallel", False)
        assert parallel == (K.THREADED and name not in team), name


def _run_every_kernel():  # one call of each public function: each kernel gets a signature
    f = lambda *shape: np.ones(shape, np.float32)  # noqa: E731
    K.gelu_bias(f(2, 8), f(8))
    K.masked_softmax(f(1, 2, 3, 4), f(1, 4))
    K.layer_norm(f(2, 8), f(8), f(8), 1e-5)
    x, r = f(2, 8), f(2, 8)
    K.bias_residual_layernorm(x, f(8), r, f(8), f(8), 1e-5)  # into a new array
    K.bias_residual_layernorm(x, f(8), r, f(8), f(8), 1e-5, out=r)  # into the residual
    K.adamw_update(f(2, 8), f(2, 8), f(2, 8), f(2, 8), decay=1.0, b1=0.9, b2=0.999,
                   step_size=1e-3, root_bc2=1.0, eps=1e-8)
    K.embed_layernorm(np.zeros((1, 3), np.int64), np.arange(3)[None], np.zeros((1, 3), np.int64),
                      f(5, 8), f(4, 8), f(1, 8), f(8), f(8), 1e-5)
    K.few_rows_linear(f(2, 8), f(4, 8), f(4))


@pytest.mark.parametrize("name", sorted(K._TWINS))
def test_every_kernel_asks_llvm_for_the_widest_vectors(name):
    # _wide_vectors() puts "prefer-vector-width"="512" on the kernel's LLVM function (a CPU
    # without AVX-512 ignores it); compiled afresh here, as cached code cannot be inspected
    import numba

    old = K.set_backend("numba")
    try:
        _run_every_kernel()
    finally:
        K.set_backend(old)
    fresh = numba.njit(error_model="numpy", fastmath=True)(getattr(K, name))
    if name == "_few_rows_loops":  # with the threads opt-in the team runs its own copy
        fresh(*(np.ones(shape, np.float32) for shape in [(2, 8), (4, 8), (4,), (2, 4)]))
    else:
        fresh.compile(K._numba_kernels()[name].signatures[0])
    header = [line for line in next(iter(fresh.inspect_llvm().values())).splitlines()
              if line.startswith("attributes #") and "prefer-vector-width" in line]
    assert header and all('"prefer-vector-width"="512"' in line for line in header), name


# ------------------------------------------------------------------ the model, both backends

def test_model_forward_is_the_same_under_both_backends():
    from minirobera import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(vocab_size=50, hidden_size=24, num_attention_heads=3,
                           intermediate_size=40, num_hidden_layers=2, max_position_embeddings=40)
    model = RobertaForMaskedLM(config, seed=0)
    ids = np.array([[0, 5, 6, 7, 8, 2], [0, 9, 2, 1, 1, 1]])
    mask = (ids != 1).astype(np.int64)
    a, b = both(lambda: model(ids, attention_mask=mask, output_hidden_states=True))
    assert_close(a.logits, b.logits, rtol=1e-5)
    for ha, hb in zip(a.hidden_states, b.hidden_states):
        assert_close(ha, hb, rtol=1e-5)


def test_softmax_exp_is_accurate_over_the_whole_float32_range():
    # rows [0, v]: p1 / p0 = exp(v) for every v the max-shifted scores can take
    v = np.linspace(-87, 0, 100_001).astype(np.float32)
    scores = np.stack([np.zeros_like(v), v], axis=-1)[None, None]  # [1,1,N,2]
    for backend in ("numba", "numpy"):
        old = K.set_backend(backend)
        try:
            p = K.masked_softmax(scores, None, 1.0).astype(np.float64)[0, 0]
        finally:
            K.set_backend(old)
        np.testing.assert_allclose(p[:, 1] / p[:, 0], np.exp(v.astype(np.float64)), rtol=1e-6)
    old = K.set_backend("numba")
    try:  # below float32's normal range: exactly 0, as the reference's masked keys
        assert K.masked_softmax(np.array([[[[0.0, -100.0]]]], np.float32))[0, 0, 0, 1] == 0.0
    finally:
        K.set_backend(old)
