"""The encoder's hot loops as Numba kernels, each beside its readable NumPy twin.

What this file owns: the row-wise and elementwise work between the matrix multiplies of an
encoder layer, fused so that each array is read once:

    gelu_bias                  exact (erf) GELU of x + bias, in place
    masked_softmax             softmax(scores * scale + mask) over the last axis, in place
    bias_residual_layernorm    LayerNorm(x + bias + residual)
    layer_norm                 LayerNorm(x)
    embed_layernorm            LayerNorm(word[ids] + type[type_ids] + pos[pos_ids])
    few_rows_linear            x @ w.T + b for a few rows of x: the weights streamed once
    adamw_update               one AdamW step of one parameter (training.AdamW's hot loop)

What it leaves out: the matrix multiplies of more than a few rows (NumPy's BLAS runs them
near the CPU's peak; Numba cannot call BLAS without SciPy), and the model itself (fused.py
calls these kernels and decides which matrix multiply runs where; layers.py, the readable
encoder, never calls them).

One switch picks the implementation: the environment variable
``MINIROBERA_KERNELS=numba|numpy|readable`` read at import (default: numba when it is
installed), or ``set_backend(...)`` at run time; ``get_backend()`` says which is active.
"numba" and "numpy" run the model classes on fused.py with these kernels (compiled, or their
NumPy twins); the two take the same arguments and agree to float32 rounding
(tests/test_kernels.py holds them equal). "readable" runs the model classes on layers.py and
heads.py end to end, the code a reader steps through (no fused layout, no kernel); a direct
call of a function of this file then runs its NumPy twin. Numba is imported and the
kernels compiled only on the first call that needs them, and compiled code is cached on disk
(``cache=True``), so ``import minirobera`` stays cheap and a second process does not recompile.

Threads: one kernel, few_rows_linear, runs on every core, on a team of threads of its own
(`_SemaphoreTeam`, which hands over through POSIX semaphores without the GIL, or the plain
Python `_Team` where those are missing; they sleep when idle, and Numba's threading layers
are left alone, see there why): for a few rows nothing else runs, so the cores are free, and
reading the weights on one core would take twice as long. The others run on the calling thread: they sit between BLAS's matrix multiplies, and after each one OpenBLAS's
idle threads keep spinning for ~0.1 s, so a second thread of ours would share a core with
one of them: measured, that made GELU 8x slower, not 2x faster (bench/README.md, issue 20).
``MINIROBERA_KERNEL_THREADS=2`` is an opt-in that compiles them all with ``parallel=True``
on Numba's ``workqueue`` layer; bench/forward.py's ``-par`` rows re-measure it.

Shape legend (as in layers.py): B batch, T tokens, D hidden, H heads, Dh = D/H, F FFN width,
V vocabulary, N = B*T rows.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import threading

import numpy as np

from .layers import ERFC_COEFFS

__all__ = [
    "get_backend", "set_backend", "gelu_bias", "masked_softmax", "adamw_update",
    "bias_residual_layernorm", "layer_norm", "embed_layernorm", "few_rows_linear",
]

BACKENDS = ("numba", "numpy", "readable")
_ENV = "MINIROBERA_KERNELS"


# ---------------------------------------------------------------------------------------------
# The switch
# ---------------------------------------------------------------------------------------------

def _numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


def _check_backend(name, source: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{source} must be one of {BACKENDS}, got {name!r}")
    if name == "numba" and not _numba_installed():
        raise ValueError(f"{source} asks for 'numba' but numba is not installed: "
                         f"pip install numba, or use 'numpy'")
    return name


def _backend_from_env() -> str:
    name = os.environ.get(_ENV, "").strip().lower()
    if not name:
        return "numba" if _numba_installed() else "numpy"
    return _check_backend(name, f"the environment variable {_ENV}")


_BACKEND = _backend_from_env()


def get_backend() -> str:
    """The active kernel implementation, ``"numba"``, ``"numpy"`` or ``"readable"``.

    >>> get_backend() in BACKENDS
    True
    """
    return _BACKEND


def set_backend(name: str) -> str:
    """Switch every kernel to ``"numba"``, ``"numpy"`` or ``"readable"`` (the model classes on
    layers.py, see the module docstring); returns the previous backend.

    >>> old = set_backend("numpy"); get_backend()
    'numpy'
    >>> _ = set_backend(old)
    >>> set_backend("cuda")
    Traceback (most recent call last):
    ...
    ValueError: set_backend() backend must be one of ('numba', 'numpy', 'readable'), got 'cuda'
    """
    global _BACKEND
    old, _BACKEND = _BACKEND, _check_backend(name, "set_backend() backend")
    return old


# ---------------------------------------------------------------------------------------------
# exp: float32, vectorisable (Cephes expf polynomial); the softmax and GELU use it
# ---------------------------------------------------------------------------------------------
# exp(x) = 2^n * exp(r), n = round(x / ln2), r = x - n*ln2 (Cody-Waite: ln2 in two parts)
# in [-ln2/2, ln2/2]; 2^n is built from its bits. Measured against float64 exp on [-87, 0]:
# relative error <= 3.0e-7 (1.2e-7 for x >= -20; NumPy's float32 exp: 2.0e-7). Below -87.33
# the result is 0, as the reference's exp of a masked score (finfo.min - max) is. A scalar
# math.exp would be a libm call per element, which LLVM cannot vectorise.
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)  # few mantissa bits: n * _LN2_HI is exact
_LN2_LO = np.float32(-2.12194440e-4)


def _exp32(x):  # float32 -> float32, x <= ~0 (a max-shifted score; GELU's -w^2 + poly(t))
    n = np.floor(x * _LOG2E + np.float32(0.5))
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    ni = max(np.int32(n), np.int32(-126))
    two_n = _bits_as_f32((ni + np.int32(127)) << np.int32(23))
    return p * two_n if x >= np.float32(-87.33654) else np.float32(0.0)


def _bits_as_f32(i):  # int32 -> float32 with the same bits; replaced by Numba's bitcast
    return np.frombuffer(np.int32(i).tobytes(), np.float32)[0]


def _bits_as_i32(x):  # float32 -> int32 with the same bits; replaced by Numba's bitcast
    return np.frombuffer(np.float32(x).tobytes(), np.int32)[0]


# Ordering float32 values as int32: a float's bits read as an int32 sort like the float for
# x >= 0; for x < 0 flipping the 31 magnitude bits makes them sort like the float too. The
# map is its own inverse. LLVM vectorises an integer max reduction but not a float one.
def _order_key(bits):  # int32 bits of a float32 -> int32 key, monotone in the float
    return np.int32(bits ^ ((bits >> np.int32(31)) & np.int32(0x7FFFFFFF)))


# ---------------------------------------------------------------------------------------------
# erfc for GELU: float32, vectorisable
# ---------------------------------------------------------------------------------------------
# erfc(w) = t * exp(-w^2 + poly(t)), t = 1 / (1 + w/2), w >= 0: the Chebyshev fit of Numerical
# Recipes (`erfcc`, relative error < 1.2e-7; layers.erfc is the same fit in float64), here in
# float32 with _exp32. GELU takes it at w = |z|/sqrt 2, where it is 2*Phi(-|z|):
#     gelu(z) = z/2 * erfc(|z|/sqrt 2)         for z < 0  (no 1 + erf cancelling in the tail)
#     gelu(z) = z/2 * (2 - erfc(|z|/sqrt 2))   for z >= 0
# Measured against math.erf in float64 on 2.2M points of [-12, 12]: within 1e-7 + 1e-6 |gelu|
# everywhere (a third of that bound at worst). Relative error: <= 2 ulp where |gelu| >= 0.5,
# <= 6e-7 where it is >= 0.1, <= 1.5e-6 where it is >= 1e-3; below 1e-4 only the absolute
# bound holds (relative error up to ~2e-5). torch's float32 GELU, 1 + erf in float32, does
# worse in the negative tail. -inf and NaN give NaN (so does +inf here, as in torch; the
# NumPy twin gives inf: fastmath promises nothing for infinities). One path for every z (a
# select at the end), so LLVM vectorises it 16 floats wide: ~1.4x faster than a float64 erf,
# which matters because GELU is the largest cost between the matrix multiplies.
# ERFC_COEFFS (c0 .. c9) come from layers.py, whose erfc evaluates the same fit in float64.
_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9 = (np.float32(c) for c in ERFC_COEFFS)
_SQRT1_2 = np.float32(0.7071067811865476)


def _erfc32(w):  # float32 w >= 0 -> float32 erfc(w)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * w)
    p = _C9 * t + _C8  # Horner, highest coefficient first
    p = p * t + _C7
    p = p * t + _C6
    p = p * t + _C5
    p = p * t + _C4
    p = p * t + _C3
    p = p * t + _C2
    p = p * t + _C1
    p = p * t + _C0
    return t * _exp32(p - w * w)


# ---------------------------------------------------------------------------------------------
# The loops Numba compiles. Plain Python here (they also run, slowly, without Numba); each
# works in place on its first argument, because a loop that reads one array and writes
# another that might overlap it is not vectorised by LLVM.
# Each starts with _wide_vectors(): compiled, it lets LLVM vectorise that loop as wide as the
# CPU goes. LLVM's default on CPUs with AVX-512 is 256-bit vectors (older Intel parts lower
# their clock under 512-bit work); for these loops 512 bits measured faster (bench/README.md,
# issue 20: few-row products ~10%, GELU 1.6x, softmax 1.3x on a Sapphire Rapids Xeon). On a
# CPU without AVX-512 it changes nothing. With MINIROBERA_KERNEL_THREADS=2 Numba moves each
# prange loop into a function of its own, which the attribute does not reach (256 bits).
# ---------------------------------------------------------------------------------------------

def _wide_vectors():  # replaced by an LLVM function attribute when the loops are compiled
    pass


def _gelu_bias_loops(x, bias):  # [N,F], [F] -> None (x = gelu(x + bias))
    _wide_vectors()
    for i in prange(x.shape[0]):
        row = x[i]
        for j in range(row.shape[0]):
            z = row[j] + bias[j]  # float32 add, as the reference's Linear does
            e = _erfc32(abs(z) * _SQRT1_2)  # 2 * Phi(-|z|)
            row[j] = np.float32(0.5) * z * (e if z < np.float32(0.0) else np.float32(2.0) - e)


def _masked_softmax_loops(s, mask, mode, scale):
    # [B,H,Tq,Tk], mask rows (C-contiguous) [B,Tk] (mode 0: one per sequence), [B*Tq,Tk]
    # (mode 1: one per query) or [B*H,Tk] (mode 2: one per head), int, f32 -> None
    _wide_vectors()
    B, H, Tq, Tk = s.shape
    for bh in prange(B * H):
        b = bh // H
        h = bh % H
        for i in range(Tq):
            row = s[b, h, i]
            r = b if mode == 0 else (b * Tq + i if mode == 1 else bh)
            m = mask[r]  # one contiguous row: SIMD loads
            # pass 1: scale + mask, then the row max, each loop 16 floats wide (the max over
            # order keys: see _order_key; the float max of the same values is not vectorised)
            for j in range(Tk):
                row[j] = row[j] * scale + m[j]
            top = np.int32(-2147483648)
            for j in range(Tk):
                key = _order_key(_bits_as_i32(row[j]))
                top = key if key > top else top
            mx = _bits_as_f32(_order_key(top))
            # pass 2: exp of the max-shifted scores (never overflows) and their sum
            total = np.float32(0.0)
            for j in range(Tk):
                e = _exp32(row[j] - mx)
                row[j] = e
                total += e
            # pass 3: normalise
            inv = np.float32(1.0) / total
            for j in range(Tk):
                row[j] *= inv


def _layer_norm_row(v, gamma, beta, eps):  # [D], [D], [D], float -> None (v normalised)
    # statistics in float64, in one pass: sum and sum of squares. var = E[v^2] - mean^2
    # cancels only when |mean| >> std, and float64 keeps ~8 more digits than the float32
    # inputs have, so that costs nothing here. Then the normalisation in float32, as torch's
    # LayerNorm: 16 floats wide instead of 8 doubles (the kernel runs ~2x faster)
    d = v.shape[0]
    total = 0.0
    squares = 0.0
    for j in range(d):
        x = np.float64(v[j])
        total += x
        squares += x * x
    mean = total / d
    var = max(squares / d - mean * mean, 0.0)
    m = np.float32(mean)
    rstd = np.float32(1.0 / np.sqrt(var + eps))
    for j in range(d):
        v[j] = (v[j] - m) * rstd * gamma[j] + beta[j]


def _layer_norm_loops(x, gamma, beta, eps):  # [N,D] -> None (x = LN(x))
    _wide_vectors()
    for i in prange(x.shape[0]):
        _layer_norm_row(x[i], gamma, beta, eps)


def _bias_residual_layernorm_loops(x, bias, residual, gamma, beta, eps):  # [N,D] x2 -> None
    _wide_vectors()
    for i in prange(x.shape[0]):
        row = x[i]
        res = residual[i]
        for j in range(row.shape[0]):
            row[j] = (row[j] + bias[j]) + res[j]  # (x W + b) + residual, the reference's order
        _layer_norm_row(row, gamma, beta, eps)


def _residual_bias_layernorm_loops(res, bias, x, gamma, beta, eps):  # same sum, into residual
    _wide_vectors()
    for i in prange(res.shape[0]):
        row = res[i]
        xr = x[i]
        for j in range(row.shape[0]):
            row[j] = (xr[j] + bias[j]) + row[j]
        _layer_norm_row(row, gamma, beta, eps)


def _adamw_loops(p, g, m, v, decay, b1, c1, b2, c2, step_size, root_bc2, eps):  # [R,C] x4
    # training.AdamW's update in one pass over the four arrays (the readable twin below
    # makes ten): p *= decay; m = b1 m + c1 g; v = b2 v + c2 g^2 (c = 1 - b, rounded once
    # from float64: 1 - float32(0.999) is 1.3e-5 off); p -= step_size * m / (sqrt(v) /
    # root_bc2 + eps), each in float32 as the twin does it
    _wide_vectors()
    for i in range(p.shape[0]):
        pr, gr, mr, vr = p[i], g[i], m[i], v[i]
        for j in range(pr.shape[0]):
            gj = gr[j]
            mj = mr[j] * b1 + c1 * gj
            vj = vr[j] * b2 + c2 * gj * gj
            mr[j], vr[j] = mj, vj
            pr[j] = pr[j] * decay - step_size * (mj / (np.sqrt(vj) / root_bc2 + eps))


def _embed_layernorm_loops(ids, pos_ids, type_ids, word, pos, typ, gamma, beta, eps, out):
    # [N], [N], [N], [V,D], [P,D], [Tt,D], [D], [D], float, [N,D] -> None
    _wide_vectors()
    for i in prange(out.shape[0]):
        row = out[i]
        w = word[ids[i]]
        p = pos[pos_ids[i]]
        t = typ[type_ids[i]]
        for j in range(row.shape[0]):
            row[j] = (w[j] + t[j]) + p[j]  # (inputs_embeds + token_type) + position, as HF
        _layer_norm_row(row, gamma, beta, eps)


def _few_rows_loops(x, w, b, y):  # [M,K], [N,K], [N], [M,N] -> None (y = x @ w.T + b)
    # A matrix multiply of a few rows (fused.linear sends at most FEW_ROWS here) reads every
    # weight once and does only M multiply-adds with it: memory traffic is the whole cost,
    # and BLAS's tiled GEMM is built for the opposite case. Here each thread streams its own
    # contiguous run of weight rows ([out, in], the checkpoint's layout) exactly once, and
    # takes all M dot products from each row while it is in cache: four weight rows against
    # four input rows at a time, sixteen running sums that LLVM keeps in vector registers.
    # few_rows_linear runs it on every core, each thread on its own run of rows (the team).
    _wide_vectors()
    M, K = x.shape
    N = w.shape[0]
    for jb in range(N // 4):
        j = 4 * jb
        w0, w1, w2, w3 = w[j], w[j + 1], w[j + 2], w[j + 3]
        b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
        m = 0
        while m + 4 <= M:  # a 4x4 tile: rows m..m+3 of x against weight rows j..j+3
            x0, x1, x2, x3 = x[m], x[m + 1], x[m + 2], x[m + 3]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.float32(0.0)
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = np.float32(0.0)
            for k in range(K):
                u0, u1, u2, u3 = w0[k], w1[k], w2[k], w3[k]
                s00 += x0[k] * u0; s01 += x0[k] * u1; s02 += x0[k] * u2; s03 += x0[k] * u3  # noqa: E702
                s10 += x1[k] * u0; s11 += x1[k] * u1; s12 += x1[k] * u2; s13 += x1[k] * u3  # noqa: E702
                s20 += x2[k] * u0; s21 += x2[k] * u1; s22 += x2[k] * u2; s23 += x2[k] * u3  # noqa: E702
                s30 += x3[k] * u0; s31 += x3[k] * u1; s32 += x3[k] * u2; s33 += x3[k] * u3  # noqa: E702
            y[m, j], y[m, j + 1], y[m, j + 2], y[m, j + 3] = s00 + b0, s01 + b1, s02 + b2, s03 + b3
            y[m + 1, j], y[m + 1, j + 1], y[m + 1, j + 2], y[m + 1, j + 3] = (
                s10 + b0, s11 + b1, s12 + b2, s13 + b3)
            y[m + 2, j], y[m + 2, j + 1], y[m + 2, j + 2], y[m + 2, j + 3] = (
                s20 + b0, s21 + b1, s22 + b2, s23 + b3)
            y[m + 3, j], y[m + 3, j + 1], y[m + 3, j + 2], y[m + 3, j + 3] = (
                s30 + b0, s31 + b1, s32 + b2, s33 + b3)
            m += 4
        while m < M:  # the last M % 4 rows of x, one at a time
            xm = x[m]
            s0 = s1 = s2 = s3 = np.float32(0.0)
            for k in range(K):
                s0 += xm[k] * w0[k]; s1 += xm[k] * w1[k]; s2 += xm[k] * w2[k]; s3 += xm[k] * w3[k]  # noqa: E702
            y[m, j], y[m, j + 1], y[m, j + 2], y[m, j + 3] = s0 + b0, s1 + b1, s2 + b2, s3 + b3
            m += 1
    for j in range(N - N % 4, N):  # the last N % 4 weight rows
        for m in range(M):
            s = np.float32(0.0)
            for k in range(K):
                s += x[m, k] * w[j, k]
            y[m, j] = s + b[j]


# few_rows_linear's threads (_SemaphoreTeam below): the caller and each helper run the loop
# above on their own run of weight rows, and hand over through POSIX semaphores without the
# GIL. A helper sleeps in sem_wait; after each share it first polls sem_trywait `spin` times
# (_SPIN_POLLS, ~0.1 ms), because a forward's next product follows within that and waking a
# sleeping thread costs tens of microseconds (more in a VM); the caller polls for "done" the
# same way. Nothing polls longer than that: no thread of ours spins beside BLAS's.
# The board is one int64 row a helper:
_GO, _DONE, _TRYWAIT, _WAIT, _POST, _SPIN, _X, _W, _B, _Y, _M, _K, _N, _LO, _HI, _STOP = range(16)


def _sem_take(board, slot):  # [16], _GO or _DONE -> None: take that semaphore (poll, sleep)
    for _ in range(board[_SPIN]):
        if _ccall(board[_TRYWAIT], board[slot]) == 0:
            return
    while _ccall(board[_WAIT], board[slot]) != 0:  # -1 is EINTR (a signal): wait again
        pass


def _team_helper_loop(board):  # [16] -> None, until board[_STOP]; runs without the GIL
    while True:
        _sem_take(board, _GO)
        if board[_STOP] != 0:
            return
        m, k, n = board[_M], board[_K], board[_N]
        x = _f32_array(board[_X], (m, k))  # the caller's arrays, alive until it is told done
        w = _f32_array(board[_W], (n, k))
        b = _f32_array(board[_B], (n,))
        y = _f32_array(board[_Y], (m, n))
        lo, hi = board[_LO], board[_HI]
        _few_rows_jit(x, w[lo:hi], b[lo:hi], y[:, lo:hi])
        _ccall(board[_POST], board[_DONE])


def _team_post(boards, x, w, b, y, cuts):  # [helpers,_ROW], [M,K], [N,K], [N], [M,N], [h+2]
    for i in range(boards.shape[0]):  # post each helper its run of rows
        board = boards[i]
        board[_X], board[_W], board[_B], board[_Y] = (x.ctypes.data, w.ctypes.data,
                                                      b.ctypes.data, y.ctypes.data)
        board[_M], board[_K], board[_N] = x.shape[0], x.shape[1], w.shape[0]
        board[_LO], board[_HI] = cuts[i + 1], cuts[i + 2]
        _ccall(board[_POST], board[_GO])


def _team_wait(boards):  # [helpers,_ROW] -> None: every helper's "done"
    for i in range(boards.shape[0]):
        _sem_take(boards[i], _DONE)


prange = range  # replaced by numba.prange when the loops are compiled

# Loops compiled by _numba_kernels(), helpers first (kernels resolve them as globals).
_HELPERS = ("_order_key", "_exp32", "_erfc32", "_layer_norm_row")
_KERNELS = ("_gelu_bias_loops", "_masked_softmax_loops", "_layer_norm_loops", "_adamw_loops",
            "_bias_residual_layernorm_loops", "_residual_bias_layernorm_loops",
            "_embed_layernorm_loops", "_few_rows_loops")
_TEAM_LOOPS = ("_team_helper_loop", "_team_post", "_team_wait")  # _SemaphoreTeam's, serial

# Run the kernels on Numba's threads (MINIROBERA_KERNEL_THREADS, see the module docstring);
# "1" (default) keeps them on the calling thread.
THREADED = os.environ.get("MINIROBERA_KERNEL_THREADS", "1").strip() not in ("", "0", "1")
_COMPILED = {}
_COMPILING = threading.Lock()


def _numba_kernels() -> dict:
    """Import Numba and compile (or load from its cache) the loops above; runs once."""
    if _COMPILED:
        return _COMPILED
    with _COMPILING:  # a server's threads may make the first call at the same time
        if not _COMPILED:
            _compile_numba_kernels()
    return _COMPILED


def _compile_numba_kernels():
    import numba
    from numba.cpython.unsafe.numbers import viewer

    if THREADED and "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"  # sleeps when idle; OpenMP spins
    # error_model="numpy": no ZeroDivisionError branch, so divisions vectorise. fastmath lets
    # LLVM re-associate sums (vectorised reductions); the error bounds of the exp and the
    # GELU above were measured on the compiled (fastmath) code, and the tests hold them.
    # The helpers are inlined into the kernels (inline="always"), so each kernel's inner loop
    # is one straight-line body LLVM can vectorise.
    serial_opts = dict(cache=True, nogil=True, error_model="numpy", fastmath=True)
    helper_opts = dict(serial_opts, inline="always")
    kernel_opts = dict(serial_opts, parallel=THREADED)
    g = globals()
    g["prange"] = numba.prange

    @numba.njit(cache=True, inline="always")
    def bits_as_f32(i):
        return viewer(np.int32(i), numba.float32)

    @numba.njit(cache=True, inline="always")
    def bits_as_i32(x):
        return viewer(np.float32(x), numba.int32)

    g["_bits_as_f32"], g["_bits_as_i32"] = bits_as_f32, bits_as_i32
    g["_ccall"], g["_f32_array"] = _address_intrinsics(numba)
    g["_wide_vectors"] = _wide_vectors_intrinsic(numba)
    for name in _HELPERS:
        g[name] = numba.njit(**helper_opts)(g[name])
    compiled = {name: numba.njit(**kernel_opts)(g[name]) for name in _KERNELS}
    # the team's loops (serial, whatever THREADED says: they are the threads)
    g["_few_rows_jit"] = (numba.njit(**serial_opts)(g["_few_rows_loops"]) if THREADED
                          else compiled["_few_rows_loops"])
    g["_sem_take"] = numba.njit(**helper_opts)(_sem_take)
    for name in _TEAM_LOOPS:
        compiled[name] = numba.njit(cache=True, nogil=True)(g[name])
    _COMPILED.update(compiled)  # all at once: another thread never sees half of them


def _wide_vectors_intrinsic(numba):
    """_wide_vectors() for Numba: no code, but the LLVM function it is called in gets the
    attribute "prefer-vector-width"="512" (what clang's -mprefer-vector-width=512 sets). llvmlite
    has no API for string attributes, so it goes into the function's attribute set directly;
    should a later llvmlite not take it that way, the loop compiles as before (256 bits)."""
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def wide_vectors(typingctx):
        def codegen(context, builder, signature, args):
            try:
                set.add(builder.function.attributes, '"prefer-vector-width"="512"')
            except (TypeError, AttributeError):
                pass
            return context.get_dummy_value()
        return types.none(), codegen

    return wide_vectors


def _address_intrinsics(numba):
    """Two LLVM-level helpers for the team's loops, which get raw addresses from the board:
    ``_ccall(f, p)`` calls the C function ``int f(void *)`` at address f (sem_wait and the
    others, looked up once by ctypes) with pointer p, and ``_f32_array(p, shape)`` is the
    C-contiguous float32 array at address p. Addresses, not ctypes objects, keep the loops
    cacheable on disk (Numba does not cache a function holding a ctypes function)."""
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def ccall(typingctx, f, p):
        def codegen(context, builder, signature, args):
            void_p = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.IntType(32), [void_p])
            return builder.call(builder.inttoptr(args[0], fnty.as_pointer()),
                                [builder.inttoptr(args[1], void_p)])
        return types.int32(types.int64, types.int64), codegen

    @intrinsic
    def f32_pointer(typingctx, p):
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))
        return types.CPointer(types.float32)(types.int64), codegen

    @numba.njit(inline="always")
    def f32_array(p, shape):
        return numba.carray(f32_pointer(p), shape)

    return ccall, f32_array


# ---------------------------------------------------------------------------------------------
# The NumPy twins: same arguments, same in-place contract, same arithmetic, in plain NumPy
# (np.exp and np.max where the loops above use _exp32 and order keys for LLVM's sake).
# ---------------------------------------------------------------------------------------------

def _gelu_bias_twin(x, bias):  # [N,F], [F] -> None
    z = x + bias  # float32 add, as the reference's Linear does
    w = np.abs(z) * _SQRT1_2
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * w)
    p = np.full_like(t, ERFC_COEFFS[-1])
    for c in ERFC_COEFFS[-2::-1]:  # Horner, highest coefficient first
        p = p * t + np.float32(c)
    e = t * np.exp(p - w * w)  # erfc(|z|/sqrt 2) = 2 * Phi(-|z|)
    x[...] = np.float32(0.5) * z * np.where(z < 0, e, np.float32(2.0) - e)


def _masked_softmax_twin(s, mask, mode, scale):  # as _masked_softmax_loops
    B, H, Tq, Tk = s.shape
    s *= scale
    s += mask.reshape(((B, 1, 1, Tk), (B, 1, Tq, Tk), (B, H, 1, Tk))[mode])
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s *= np.float32(1.0) / s.sum(axis=-1, keepdims=True)


def _layer_norm_twin(x, gamma, beta, eps):  # [N,D] -> None
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=-1, keepdims=True)
    m, rstd = mean.astype(np.float32), (1.0 / np.sqrt(var + eps)).astype(np.float32)
    x[...] = (x - m) * rstd * gamma + beta  # float32, as the kernel


def _bias_residual_layernorm_twin(x, bias, residual, gamma, beta, eps):  # [N,D] x2 -> None
    x += bias
    x += residual
    _layer_norm_twin(x, gamma, beta, eps)


def _residual_bias_layernorm_twin(res, bias, x, gamma, beta, eps):  # into residual
    res[...] = (x + bias) + res
    _layer_norm_twin(res, gamma, beta, eps)


def _embed_layernorm_twin(ids, pos_ids, type_ids, word, pos, typ, gamma, beta, eps, out):
    out[...] = word[ids] + typ[type_ids]
    out += pos[pos_ids]
    _layer_norm_twin(out, gamma, beta, eps)


def _few_rows_twin(x, w, b, y):  # as _few_rows_loops, with BLAS
    np.matmul(x, w.T, out=y)
    y += b


def _adamw_twin(p, g, m, v, decay, b1, c1, b2, c2, step_size, root_bc2, eps):  # as the loops
    p *= decay
    m *= b1
    m += c1 * g
    v *= b2
    v += c2 * g * g
    update = np.sqrt(v)
    update /= root_bc2
    update += eps
    np.divide(m, update, out=update)
    update *= step_size
    p -= update


_TWINS = {
    "_adamw_loops": _adamw_twin,
    "_gelu_bias_loops": _gelu_bias_twin,
    "_masked_softmax_loops": _masked_softmax_twin,
    "_layer_norm_loops": _layer_norm_twin,
    "_bias_residual_layernorm_loops": _bias_residual_layernorm_twin,
    "_residual_bias_layernorm_loops": _residual_bias_layernorm_twin,
    "_embed_layernorm_loops": _embed_layernorm_twin,
    "_few_rows_loops": _few_rows_twin,
}


def _impl(name: str):
    return _numba_kernels()[name] if _BACKEND == "numba" else _TWINS[name]


# ---------------------------------------------------------------------------------------------
# The public functions: check arguments once, then call the active implementation.
# ---------------------------------------------------------------------------------------------

def _f32(name: str, a, ndim=None) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {a.dtype} (convert once with "
                        f".astype(np.float32); the kernels never upcast silently)")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


def _vec(name: str, a, size: int) -> np.ndarray:
    _f32(name, a, 1)
    if a.shape[0] != size:
        raise ValueError(f"{name} must have shape ({size},), got {a.shape}")
    return a


def _rows(name: str, a) -> np.ndarray:
    """[..., D] -> [N, D] view (a copy only when the input cannot be viewed that way)."""
    _f32(name, a)
    if a.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a scalar")
    return a.reshape(-1, a.shape[-1])


def _target(x: np.ndarray, out, inputs=()):
    """-> (work, out). The in-place loops run on `work`: C-contiguous, holding a copy of x
    (or x itself), safe to overwrite. When `work is not out`, copy it into out afterwards."""
    if out is None:
        work = np.array(x, order="C")
        return work, work
    _f32("out", out)
    if out.shape != x.shape:
        raise ValueError(f"out must have shape {x.shape}, got {out.shape}")
    if out is x and x.flags.c_contiguous:
        return x, x
    if out.flags.c_contiguous and not any(np.shares_memory(out, a) for a in inputs):
        np.copyto(out, x)
        return out, out
    return np.array(x, order="C"), out  # overlaps an input, or strided: work on a copy


def _finish(work: np.ndarray, out: np.ndarray) -> np.ndarray:
    if work is not out:
        out[...] = work
    return out


def adamw_update(p, g, m, v, *, decay, b1, b2, step_size, root_bc2, eps) -> None:
    """One AdamW step of one parameter, in place (training.AdamW calls it for each):
    ``p *= decay``, m and v updated from the gradient g, then
    ``p -= step_size * m / (sqrt(v) / root_bc2 + eps)``. p, m and v are float32 arrays of one
    shape and layout (m and v made by zeros_like(p)); g is any float32 array of that shape.

    >>> p, m, v = np.ones(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32)
    >>> adamw_update(p, np.array([1, -1, 0], np.float32), m, v, decay=1.0, b1=0.9, b2=0.999,
    ...              step_size=0.1 / (1 - 0.9), root_bc2=(1 - 0.999) ** 0.5, eps=1e-8)
    >>> p.astype(float).round(4).tolist(), m.astype(float).round(4).tolist()
    ([0.9, 1.1, 1.0], [0.1, -0.1, 0.0])
    """
    for name, a in (("p", p), ("g", g), ("m", m), ("v", v)):
        _f32(name, a)
    if not p.shape == g.shape == m.shape == v.shape:
        raise ValueError(f"adamw_update: p, g, m, v must share a shape, got {p.shape}, "
                         f"{g.shape}, {m.shape}, {v.shape}")
    f32 = np.float32
    args = (f32(decay), f32(b1), f32(1.0 - b1), f32(b2), f32(1.0 - b2), f32(step_size),
            f32(root_bc2), f32(eps))
    rows = [_unit_stride_rows(a) for a in (p, m, v)]
    if any(r is None or r.shape != rows[0].shape for r in rows):  # no common row layout
        return _adamw_twin(p, g, m, v, *args)
    # g in the same rows: a copy when it comes in the other layout (a transposed weight)
    flipped = p.ndim == 2 and p.strides[1] != p.itemsize
    grad = g.T if flipped else g.reshape(rows[0].shape)
    _impl("_adamw_loops")(rows[0], np.ascontiguousarray(grad), rows[1], rows[2], *args)


def _unit_stride_rows(a):  # [..] -> a 2-D view whose rows have unit stride, or None
    if a.ndim == 1:
        return a.reshape(1, -1) if a.strides[0] == a.itemsize else None
    if a.ndim == 2:
        if a.strides[1] == a.itemsize:
            return a
        if a.strides[0] == a.itemsize:  # the transpose of a C-contiguous array (fused.py's)
            return a.T
    return None


def gelu_bias(x, bias=None, out=None) -> np.ndarray:  # [..., F], [F] -> [..., F]
    """Exact GELU of ``x + bias``: ``0.5 * z * (1 + erf(z / sqrt 2))`` (RoBERTa's "gelu").

    ``out=x`` works in place (the fast path: x is a fresh matmul output).

    >>> gelu_bias(np.array([[-1.0, 0.0, 2.0]], np.float32), np.ones(3, np.float32)).round(6)
    array([[0.      , 0.841345, 2.99595 ]], dtype=float32)
    """
    _f32("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension, got a scalar")
    f = x.shape[-1]
    bias = np.zeros(f, np.float32) if bias is None else _vec("bias", bias, f)
    work, out = _target(x, out, [bias])
    if work.size:
        _impl("_gelu_bias_loops")(work.reshape(-1, f), bias)
    return _finish(work, out)


def masked_softmax(scores, mask=None, scale=1.0, out=None) -> np.ndarray:
    # [B,H,Tq,Tk], additive [B,Tk] | [B,Tq,Tk] | [B,1,1|Tq,Tk] | [B,H,1,Tk] -> [B,H,Tq,Tk]
    """Softmax over the last axis of ``scores * scale + mask``.

    ``mask`` is additive: 0 where a key is attended, a large negative number (transformers
    uses ``finfo(float32).min``) where it is not; ``[B,Tk]``, ``[B,Tq,Tk]`` (e.g. causal), or
    layers.attention_bias's ``[B,1,1,Tk]`` / ``[B,1,Tq,Tk]``, all broadcast over the heads;
    or ``[B,H,1,Tk]``, one row of key terms per head (fused.py adds the query bias's share
    of the scores there). A fully masked row comes out uniform, as transformers' eager
    attention gives it.

    >>> s = np.zeros((1, 1, 1, 3), np.float32)
    >>> masked_softmax(s, np.array([[0, 0, -3.4e38]], np.float32))
    array([[[[0.5, 0.5, 0. ]]]], dtype=float32)
    """
    _f32("scores", scores, 4)
    B, H, Tq, Tk = scores.shape
    mode = 0  # the kernels take C-contiguous mask rows: one per sequence (0), query (1), head (2)
    if mask is None:
        mask = np.zeros((B, 1, Tk), np.float32)
    else:
        _f32("mask", mask)
        if mask.ndim == 4 and mask.shape[1] == 1:  # layers.attention_bias: [B,1,1|Tq,Tk]
            mask = mask[:, 0]
        elif mask.shape == (B, H, 1, Tk):  # one row per head
            mode = 2
        if mask.shape == (B, Tk):
            mask = mask[:, None, :]
        if mode == 0 and mask.shape not in ((B, 1, Tk), (B, Tq, Tk)):
            raise ValueError(f"mask must have shape [B,Tk] {(B, Tk)}, [B,Tq,Tk] {(B, Tq, Tk)}, "
                             f"[B,1,1|Tq,Tk] or [B,H,1,Tk] {(B, H, 1, Tk)} for scores of shape "
                             f"{scores.shape}, got {mask.shape}")
        if mode == 0 and mask.shape[1] != 1:
            mode = 1
    rows = np.ascontiguousarray(mask).reshape(-1, Tk)
    work, out = _target(scores, out, [rows])
    if work.size:
        _impl("_masked_softmax_loops")(work, rows, mode, np.float32(scale))
    return _finish(work, out)


def layer_norm(x, gamma, beta, eps, out=None) -> np.ndarray:  # [..., D] -> [..., D]
    """LayerNorm over the last axis (statistics in float64, biased variance, as torch).

    >>> layer_norm(np.array([[1.0, 3.0]], np.float32), np.ones(2, np.float32),
    ...            np.zeros(2, np.float32), 1e-5).round(6)
    array([[-0.999995,  0.999995]], dtype=float32)
    """
    _f32("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension, got a scalar")
    d = x.shape[-1]
    _vec("gamma", gamma, d), _vec("beta", beta, d)
    work, out = _target(x, out, [gamma, beta])
    if work.size:
        _impl("_layer_norm_loops")(work.reshape(-1, d), gamma, beta, float(eps))
    return _finish(work, out)


def bias_residual_layernorm(x, bias, residual, gamma, beta, eps, out=None) -> np.ndarray:
    # [..., D], [D], [..., D] -> [..., D]
    """``LayerNorm((x + bias) + residual)``: the end of RoBERTa's attention and FFN blocks.

    Post-LN: the residual is added *before* the norm. ``out`` may be ``x`` or ``residual``
    (both in place, no copy).

    >>> x = np.array([[1.0, 2.0]], np.float32); r = np.array([[0.0, 2.0]], np.float32)
    >>> bias_residual_layernorm(x, np.zeros(2, np.float32), r, np.ones(2, np.float32),
    ...                         np.zeros(2, np.float32), 1e-5).round(6)
    array([[-0.999998,  0.999998]], dtype=float32)
    """
    _f32("x", x), _f32("residual", residual)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension, got a scalar")
    if residual.shape != x.shape:
        raise ValueError(f"residual must have the shape of x {x.shape}, got {residual.shape}")
    d = x.shape[-1]
    _vec("bias", bias, d), _vec("gamma", gamma, d), _vec("beta", beta, d)
    eps = float(eps)
    if out is residual and residual.flags.c_contiguous and x.size:
        # write into the residual stream (the usual call): no copy at all
        _impl("_residual_bias_layernorm_loops")(residual.reshape(-1, d), bias, _rows("x", x),
                                                gamma, beta, eps)
        return residual
    work, out = _target(x, out, [residual, bias, gamma, beta])
    if work.size:
        _impl("_bias_residual_layernorm_loops")(work.reshape(-1, d), bias,
                                                _rows("residual", residual), gamma, beta, eps)
    return _finish(work, out)


def _ids(name: str, a, shape, limit: int) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= limit):
        raise ValueError(f"{name} must lie in [0, {limit}), got values from {a.min()} to "
                         f"{a.max()}")
    return np.ascontiguousarray(a, dtype=np.int64).reshape(-1)


def embed_layernorm(input_ids, position_ids, token_type_ids, word, pos, typ, gamma, beta,
                    eps, out=None) -> np.ndarray:
    # [B,T] ids x3, [V,D], [P,D], [Tt,D], [D], [D] -> [B,T,D]
    """``LayerNorm(word[ids] + type[token_type_ids] + pos[position_ids])``, gathered and
    normalised row by row (no [B,T,D] temporaries). ``token_type_ids=None`` means all 0:
    RoBERTa still adds type row 0.

    >>> w = np.eye(4, 2, dtype=np.float32); z = np.zeros((2, 2), np.float32)
    >>> embed_layernorm([[0, 1]], [[0, 0]], None, w, z, z, np.ones(2, np.float32),
    ...                 np.zeros(2, np.float32), 1e-5).round(6)
    array([[[ 0.99998, -0.99998],
            [-0.99998,  0.99998]]], dtype=float32)
    """
    ids = np.asarray(input_ids)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, tokens], got shape {ids.shape}")
    _f32("word", word, 2), _f32("pos", pos, 2), _f32("typ", typ, 2)
    d = word.shape[1]
    for name, table in (("pos", pos), ("typ", typ)):
        if table.shape[1] != d:
            raise ValueError(f"{name} must have {d} columns like word, got {table.shape}")
    _vec("gamma", gamma, d), _vec("beta", beta, d)
    if token_type_ids is None:
        token_type_ids = np.zeros(ids.shape, np.int64)
    flat_ids = _ids("input_ids", ids, ids.shape, word.shape[0])
    flat_pos = _ids("position_ids", position_ids, ids.shape, pos.shape[0])
    flat_typ = _ids("token_type_ids", token_type_ids, ids.shape, typ.shape[0])
    out = _out_array(out, ids.shape + (d,))
    if out.size:
        _impl("_embed_layernorm_loops")(flat_ids, flat_pos, flat_typ, word, pos, typ, gamma,
                                        beta, float(eps), out.reshape(-1, d))
    return out


def few_rows_linear(x, w, b=None, out=None) -> np.ndarray:  # [..., K], [N,K], [N] -> [..., N]
    """``x @ w.T + b`` (layers.linear) by streaming the weights once: the fast way for a few
    rows of x (fused.linear sends it at most ``fused.FEW_ROWS``), where a matrix multiply
    costs what reading the weights from memory costs. ``w`` is ``[out, in]``, the
    checkpoint's layout, best C-contiguous (fused.compute_layout keeps every weight so);
    another layout, or a strided x, is copied first. The sums are float32 in another order
    than BLAS's: equal to float32 rounding, not to the bit.

    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    >>> few_rows_linear(x, np.eye(3, 2, dtype=np.float32), np.ones(3, np.float32))
    array([[2., 3., 1.],
           [4., 5., 1.]], dtype=float32)
    """
    _f32("x", x), _f32("w", w, 2)
    n, k = w.shape
    if x.ndim == 0 or x.shape[-1] != k:
        raise ValueError(f"x must have shape [..., {k}] for w of shape {w.shape}, got {x.shape}")
    bias = np.zeros(n, np.float32) if b is None else _vec("b", b, n)
    y = _out_array(out, x.shape[:-1] + (n,))
    if out is not None and np.may_share_memory(out, x):  # written while read: read a copy
        x = x.copy()
    if y.size:
        rows = y.size // n
        x2, y2 = np.ascontiguousarray(x.reshape(rows, k)), y.reshape(rows, n)
        w, bias = np.ascontiguousarray(w), np.ascontiguousarray(bias)
        if _BACKEND != "numba":  # the twin: BLAS, on BLAS's threads
            _impl("_few_rows_loops")(x2, w, bias, y2)
            return y
        _team().linear(x2, w, bias, y2)
    return y


# ---------------------------------------------------------------------------------------------
# few_rows_linear's threads
# ---------------------------------------------------------------------------------------------
# The calling thread and `team_size() - 1` helpers, each running the serial kernel on its own
# contiguous run of weight rows (cuts: multiples of 4). Why not Numba's parallel loops: on
# Linux Numba's default threading layer is GNU OpenMP, whose start-up sets the process's
# OpenMP thread count and nesting (torch's as well, when it shares libgomp), and which
# terminates a forked child that uses it. Both teams below hold no global setting, sleep when
# idle, and are made again in a forked child (whose parent's threads did not come along). A
# call that finds the team busy (another thread of the program is using it) runs on its
# calling thread alone.
#   _SemaphoreTeam  where POSIX semaphores work (Linux, the BSDs): the hand-over runs in
#                   compiled code without the GIL, ~10 us a product (measured on a 2-core VM)
#   _Team           elsewhere (macOS has no unnamed semaphores, Windows no libc): Python
#                   threads and conditions, ~80 us a product (the GIL changes hands four times)

class _SemaphoreTeam:
    """The helpers run `_team_helper_loop` (compiled, nogil) on their own board row; the
    caller fills the boards and posts each helper's "go" semaphore (`_team_post`), runs its
    own share and waits for each "done" (`_team_wait`). The arrays are passed as addresses and are
    the caller's, which returns only after every helper has said done.

    The boards and the semaphores are one block of C memory (calloc), freed only by close():
    a parked helper polls its semaphores until the process ends, interpreter shutdown
    included, when Python frees its own objects while daemon threads still run. Each row is
    _ROW int64 words: the 16 board fields, then the "go" and the "done" semaphore in 64 bytes
    each (sem_t is 32 bytes on glibc and musl, 16 or less on the BSDs)."""

    def __init__(self, helpers: int, libc):
        import numba

        self.size, self.pid, self.busy, self.libc = helpers + 1, os.getpid(), threading.Lock(), libc
        self.closed, self.threads = False, []
        loop = _numba_kernels()["_team_helper_loop"]
        self._block = libc.calloc(max(helpers, 1) * _ROW, 8)
        if not self._block:
            raise MemoryError("calloc failed for the few-row team's boards")
        rows = ctypes.cast(self._block, ctypes.POINTER(ctypes.c_int64))
        self.boards = np.ctypeslib.as_array(rows, shape=(max(helpers, 1), _ROW))[:helpers]
        address = lambda f: ctypes.cast(f, ctypes.c_void_p).value  # noqa: E731
        for board in self.boards:
            board[_GO], board[_DONE] = board[16:24].ctypes.data, board[24:32].ctypes.data
            for slot in (_GO, _DONE):
                if libc.sem_init(ctypes.c_void_p(int(board[slot])), 0, 0) != 0:
                    libc.free(ctypes.c_void_p(self._block))
                    raise OSError(ctypes.get_errno(), "sem_init failed")
            board[_TRYWAIT], board[_WAIT], board[_POST] = (
                address(libc.sem_trywait), address(libc.sem_wait), address(libc.sem_post))
            board[_SPIN] = _SPIN_POLLS
        if helpers:  # compiled (or loaded from the cache) here: a helper's first call can't fail
            loop.compile((numba.typeof(self.boards[0]),))
        try:
            for i, board in enumerate(self.boards):
                t = threading.Thread(target=loop, args=(board,), daemon=True,
                                     name=f"minirobera-few-rows-{i + 1}")
                t.start()
                self.threads.append(t)
        except BaseException:  # no thread to run a helper: stop those that started
            self.close()
            raise

    def cuts(self, n: int) -> list:  # n rows -> size + 1 boundaries, inner ones multiples of 4
        return _cuts(n, self.size)

    def linear(self, x, w, b, y) -> None:  # C-contiguous [M,K], [N,K], [N], [M,N]
        if not all(a.flags.c_contiguous for a in (x, w, b, y)):  # the helpers rebuild them so
            raise ValueError("the few-row team takes C-contiguous arrays only")
        if self.size > 1 and self.busy.acquire(blocking=False):
            try:
                if not self.closed:  # three calls, so that the kernel is compiled once, not
                    # into the caller's loop too (Numba re-optimises a kernel linked into its
                    # caller: +1 s on a cold cache)
                    k, cuts = _numba_kernels(), self.cuts(w.shape[0])
                    k["_team_post"](self.boards, x, w, b, y, np.array(cuts, np.int64))
                    _few_rows_jit(x, w[:cuts[1]], b[:cuts[1]], y[:, :cuts[1]])  # own share
                    k["_team_wait"](self.boards)
                    return
            finally:
                self.busy.release()
        _few_rows_jit(x, w, b, y)  # alone: no helper, the team busy, or closed

    def close(self) -> None:  # stop the helpers, free the block (never for the process's team)
        with self.busy:
            if self.closed:
                return
            self.boards[:, _STOP] = 1
            for board in self.boards[:len(self.threads)]:
                self.libc.sem_post(ctypes.c_void_p(int(board[_GO])))
            for t in self.threads:
                t.join()
            for board in self.boards:
                for slot in (_GO, _DONE):
                    self.libc.sem_destroy(ctypes.c_void_p(int(board[slot])))
            self.closed, self.boards = True, None
            self.libc.free(ctypes.c_void_p(self._block))


_ROW = 32  # int64 words a board row: 16 fields, then two 64-byte semaphore slots
_SPIN_POLLS = 50_000  # sem_trywait polls before sleeping: ~0.1 ms at ~2 ns a poll


def _cuts(n: int, parts: int) -> list:  # n rows -> parts + 1 boundaries, inner multiples of 4
    return [0] + [min(n, (n * i // parts) // 4 * 4) for i in range(1, parts)] + [n]


def _posix_semaphores():
    """The C library, when its unnamed POSIX semaphores work here (sem_init succeeds on a
    test semaphore: macOS declares it but answers ENOSYS); else None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        for name in ("sem_init", "sem_destroy", "sem_trywait", "sem_wait", "sem_post",
                     "calloc", "free"):
            getattr(libc, name)
    except (OSError, TypeError, AttributeError):
        return None
    libc.sem_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint]
    for name in ("sem_destroy", "sem_trywait", "sem_wait", "sem_post", "free"):
        getattr(libc, name).argtypes = [ctypes.c_void_p]
    libc.calloc.argtypes, libc.calloc.restype = [ctypes.c_size_t, ctypes.c_size_t], ctypes.c_void_p
    probe = np.zeros(64, np.uint8)
    if libc.sem_init(ctypes.c_void_p(probe.ctypes.data), 0, 0) != 0:
        return None
    libc.sem_destroy(ctypes.c_void_p(probe.ctypes.data))
    return libc


class _Team:
    """The fallback team: plain Python threads that sleep on a condition when idle."""

    def __init__(self, helpers: int):
        self.size = helpers + 1  # threads, the caller's included
        self.pid = os.getpid()
        self.busy = threading.Lock()
        self.wake = threading.Condition()
        self.jobs, self.errors, self.generation = [], [], 0
        self.left = 0
        self.done = threading.Condition()
        for i in range(helpers):
            threading.Thread(target=self._helper, args=(i + 1,), daemon=True,
                             name=f"minirobera-few-rows-{i + 1}").start()

    def cuts(self, n: int) -> list:  # n rows -> size + 1 boundaries, inner ones multiples of 4
        return _cuts(n, self.size)

    def linear(self, x, w, b, y) -> None:  # as _SemaphoreTeam.linear
        _numba_kernels()
        cuts = self.cuts(w.shape[0])
        self.run(_few_rows_jit, [(x, w[a:c], b[a:c], y[:, a:c]) for a, c in zip(cuts, cuts[1:])])

    def run(self, fn, jobs) -> None:
        if len(jobs) == 1 or not self.busy.acquire(blocking=False):
            for args in jobs:
                fn(*args)
            return
        try:
            with self.wake:
                self.jobs, self.errors, self.left = [(fn, a) for a in jobs], [], len(jobs) - 1
                self.generation += 1
                self.wake.notify_all()
            fn(*jobs[0])  # the calling thread's share
            with self.done:
                while self.left:
                    self.done.wait()
            if self.errors:
                raise self.errors[0]
        finally:
            self.busy.release()

    def _helper(self, i: int) -> None:
        seen = 0
        while True:
            with self.wake:
                while self.generation == seen:
                    self.wake.wait()
                seen, (fn, args) = self.generation, self.jobs[i]
            try:
                fn(*args)
            except BaseException as e:  # handed to the caller, which raises it
                self.errors.append(e)
            with self.done:
                self.left -= 1
                self.done.notify()


_TEAM = None
_TEAM_LOCK = threading.Lock()
_LIBC = False  # the C library with working POSIX semaphores, None without, False: not looked


def _team():
    """The process's team (made on first use; again in a forked child, whose parent's
    threads did not come along), of `team_size()` threads: a _SemaphoreTeam where POSIX
    semaphores work, else a _Team."""
    global _TEAM, _LIBC
    team = _TEAM
    if team is None or team.pid != os.getpid():
        with _TEAM_LOCK:
            if _TEAM is None or _TEAM.pid != os.getpid():
                if _LIBC is False:
                    _LIBC = _posix_semaphores()
                helpers = team_size() - 1
                try:
                    _TEAM = _SemaphoreTeam(helpers, _LIBC) if _LIBC else None
                except (OSError, MemoryError, RuntimeError):  # RuntimeError: no new thread
                    _TEAM = None
                _TEAM = _TEAM or _Team(helpers)
            team = _TEAM
    return team


def team_size() -> int:
    """How many threads few_rows_linear runs on: the cores this process may use, or fewer
    where the environment limits BLAS's threads (OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS,
    read when the team is made, never set): a process told to use one thread for its matrix
    multiplies gets one here too.

    >>> team_size() >= 1
    True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return max(1, min(cores, int(value)))
    return max(1, cores)


def _out_array(out, shape):
    """A fresh float32 array of `shape`, or the caller's `out` once checked to fit."""
    if out is None:
        return np.empty(shape, np.float32)
    if (not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != shape
            or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    return out
