"""fused.py's speed-only rearrangements equal the plain math: the few-row matrix multiply
(kernels.few_rows_linear) equal to BLAS, the rule that picks it, and the folded q/k/v bias.

Known answers come from float64 NumPy (the readable definitions); the model parity tests
(test_model.py) hold the whole forward equal to transformers on both sides of the rule.
"""

import numpy as np
import pytest

from minirobera import fused, kernels, layers

pytest.importorskip("numba")

EPS = np.finfo(np.float32).eps


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def truth(x, w, b):  # float64 x @ w.T + b, and the size of what was summed, |x| @ |w|.T + |b|
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    b64 = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
    return x64 @ w64.T + b64, np.abs(x64) @ np.abs(w64).T + np.abs(b64)


def rounding_bound(x, w, b):
    """4 sqrt(K) float32 roundings of the summed magnitudes: what a float32 sum of K
    products in any order is off by in practice (BLAS's too, checked below)."""
    _, size = truth(x.reshape(-1, x.shape[-1]), w, b)
    return 4 * np.sqrt(w.shape[1] + 1) * EPS * size + 1e-30


def assert_float32_rounding(got, x, w, b):  # |got - exact| within rounding_bound
    want, _ = truth(x.reshape(-1, x.shape[-1]), w, b)
    err = np.abs(got.reshape(want.shape).astype(np.float64) - want)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert (err <= rounding_bound(x, w, b)).all(), float((err / rounding_bound(x, w, b)).max())


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    old = kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(old)


# ------------------------------------------------------------------ the few-row kernel

@pytest.mark.parametrize("rows", [1, 3, 7, 16, 32])
@pytest.mark.parametrize("k,n", [(768, 2304), (37, 45), (3072, 13), (5, 1), (17, 3)])
def test_few_rows_equals_blas_on_odd_shapes(rows, k, n, backend):
    rng = np.random.default_rng(rows * 1000 + k + n)
    x, w, b = rand(rng, rows, k), rand(rng, n, k), rand(rng, n)
    got = kernels.few_rows_linear(x, w, b)
    assert got.shape == (rows, n)
    assert_float32_rounding(got, x, w, b)
    blas = layers.linear(x, w, b)  # BLAS meets the same bound: it is float32 rounding
    assert_float32_rounding(blas, x, w, b)
    assert (np.abs(got - blas) <= 2 * rounding_bound(x, w, b)).all()  # so within 2 of BLAS


def test_few_rows_is_not_bitwise_blas_but_every_tile_and_edge_is_computed():
    # values that make each output a distinct small integer: exact in float32 in any order,
    # so every (row, column) the tiles and the M % 4, N % 4 edges write is checked exactly
    M, K, N = 7, 9, 11
    x = np.arange(M * K, dtype=np.float32).reshape(M, K) % 5
    w = np.arange(N * K, dtype=np.float32).reshape(N, K) % 3
    b = np.arange(N, dtype=np.float32)
    for backend in ("numba", "numpy"):
        old = kernels.set_backend(backend)
        try:
            got = kernels.few_rows_linear(x, w, b)
        finally:
            kernels.set_backend(old)
        np.testing.assert_array_equal(got, x.astype(np.int64) @ w.T.astype(np.int64) + b)


def test_few_rows_takes_strided_inputs_batches_out_and_no_bias(backend):
    rng = np.random.default_rng(1)
    big = rand(rng, 3, 10, 64)
    x = big[:, ::3, 5:45]  # [3,4,40]: strided on every axis
    w_t = rand(rng, 40, 21).T  # [21,40], not C-contiguous: copied first
    b = rand(rng, 21)
    got = kernels.few_rows_linear(x, w_t, b)
    assert got.shape == (3, 4, 21)
    assert_float32_rounding(got, x, w_t, b)
    assert_float32_rounding(kernels.few_rows_linear(x, w_t), x, w_t, None)
    out = np.full((3, 4, 21), np.nan, np.float32)
    assert kernels.few_rows_linear(x, w_t, b, out=out) is out
    np.testing.assert_array_equal(out, got)
    b_strided = np.repeat(b, 2)[::2]  # the same values, every other float: read by stride
    np.testing.assert_array_equal(kernels.few_rows_linear(x, w_t, b_strided), got)


def test_few_rows_out_may_be_its_own_input(backend):
    rng = np.random.default_rng(2)
    x, w = rand(rng, 5, 16), rand(rng, 16, 16)
    want = kernels.few_rows_linear(x, w)
    assert kernels.few_rows_linear(x, w, out=x) is x  # read before it is written
    np.testing.assert_array_equal(x, want)


def test_few_rows_empty_and_bad_arguments(backend):
    w = np.ones((3, 4), np.float32)
    assert kernels.few_rows_linear(np.ones((0, 4), np.float32), w).shape == (0, 3)
    np.testing.assert_array_equal(kernels.few_rows_linear(np.ones((2, 0), np.float32),
                                                          np.ones((3, 0), np.float32),
                                                          np.arange(3, dtype=np.float32)),
                                  [[0, 1, 2], [0, 1, 2]])
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 4\]"):
        kernels.few_rows_linear(np.ones((2, 5), np.float32), w)
    with pytest.raises(TypeError, match="float32"):
        kernels.few_rows_linear(np.ones((2, 4)), w)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        kernels.few_rows_linear(np.ones((2, 4), np.float32), w, np.ones(4, np.float32))
    with pytest.raises(ValueError, match="out must be a C-contiguous float32 array"):
        kernels.few_rows_linear(np.ones((2, 4), np.float32), w, out=np.empty((3, 2), np.float32).T)


# ------------------------------------------------------------------ the rule

def test_linear_takes_the_kernel_up_to_few_rows_and_blas_above(monkeypatch):
    calls = []
    real = kernels.few_rows_linear
    monkeypatch.setattr(kernels, "few_rows_linear",
                        lambda *a, **kw: calls.append(a[0].shape) or real(*a, **kw))
    rng = np.random.default_rng(3)
    w, b = rand(rng, 6, 8), rand(rng, 6)
    for rows in (1, 2, fused.FEW_ROWS, fused.FEW_ROWS + 1):
        x = rand(rng, 1, rows, 8)
        assert_float32_rounding(fused.linear(x, w, b), x, w, b)
    assert calls == [(1, 2, 8), (1, fused.FEW_ROWS, 8)]  # not 1 row (a gemv), not FEW_ROWS + 1
    fused.linear(rand(rng, 2, 8).astype(np.float64), w)  # float64: BLAS
    fused.linear(rand(rng, 2, 8), np.asfortranarray(w))  # not compute_layout's layout: BLAS
    assert len(calls) == 2


# ------------------------------------------------------------------ the folded q/k/v bias

def _layer(seed, dim=32, heads=4):
    p = fused.compute_layout(layers.random_params(vocab=30, dim=dim, heads=heads, ffn=48,
                                                  layers=1, positions=64, seed=seed))
    layer = p["layers"][0]
    for name in ("q", "k", "v"):  # large biases, so that a missing one could not hide
        layer[name]["b"][...] = np.random.default_rng(seed).standard_normal(dim) * 3
    return layer


@pytest.mark.parametrize("B,T", [(1, 33), (2, 17), (3, 40)])
def test_folded_qkv_bias_equals_adding_it(B, T):
    layer, H = _layer(B * T), 4
    rng = np.random.default_rng(T)
    x = rand(rng, B, T, 32)
    mask = np.ones((B, T), np.int64)
    mask[-1, T - 3:] = 0  # padding
    mask[0, :] = 0 if B > 1 else 1  # a sequence with no key at all (uniform rows)
    bias = layers.attention_bias(mask, causal=False)
    assert B * T > fused.FEW_ROWS  # the folding side of the rule
    calls = []
    real = fused._fold_qkv_bias
    fused._fold_qkv_bias = lambda *a: calls.append(1) or real(*a)
    try:
        ctx, probs = fused.self_attention(x, layer, bias, H)
    finally:
        fused._fold_qkv_bias = real
    assert calls == [1]
    want_ctx, want_probs = layers.self_attention(x.astype(np.float64), layer, bias, H)
    np.testing.assert_allclose(probs, want_probs, atol=2e-6)
    np.testing.assert_allclose(ctx, want_ctx, atol=1e-5, rtol=1e-5)
    got, _ = fused.encoder_layer(x.copy(), layer, bias, H, "gelu", 1e-5)
    want, _ = layers.encoder_layer(x.astype(np.float64), layer, bias, H, "gelu", 1e-5)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_causal_masks_and_few_rows_keep_the_bias_in_the_projection(monkeypatch):
    layer, H = _layer(7), 4
    x = rand(np.random.default_rng(0), 2, 20, 32)
    monkeypatch.setattr(fused, "_fold_qkv_bias", None)  # must not be called
    for bias in (layers.attention_bias(np.ones((2, 20)), causal=True),  # one row per query
                 layers.attention_bias(np.ones((1, 20)), causal=False)):  # 20 rows <= FEW_ROWS
        xs = x[:bias.shape[0]]
        ctx, _ = fused.self_attention(xs, layer, bias, H)
        want, _ = layers.self_attention(xs.astype(np.float64), layer, bias, H)
        np.testing.assert_allclose(ctx, want, atol=1e-5, rtol=1e-5)


def test_softmax_takes_one_mask_row_per_head(backend):
    rng = np.random.default_rng(5)
    s, m = rand(rng, 2, 3, 4, 6), rand(rng, 2, 3, 1, 6)
    m[1, 2, 0, :2] = np.finfo(np.float32).min
    want = s.astype(np.float64) * 0.5 + m
    want = np.exp(want - want.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    np.testing.assert_allclose(kernels.masked_softmax(s, m, 0.5), want, atol=1e-6)
    with pytest.raises(ValueError, match=r"or \[B,H,1,Tk\] \(2, 3, 1, 6\)"):
        kernels.masked_softmax(s, rand(rng, 2, 2, 1, 6))


def test_a_forward_stays_on_one_side_of_the_rule(monkeypatch):
    # after BLAS's products OpenBLAS's threads spin, and the kernel would share a core with
    # them: the heads of a many-row forward use BLAS too, even on their one row per sequence
    from minirobera import RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification

    calls = []
    real = kernels.few_rows_linear
    monkeypatch.setattr(kernels, "few_rows_linear",
                        lambda *a, **kw: calls.append(a[0].shape) or real(*a, **kw))
    config = RobertaConfig(vocab_size=40, hidden_size=16, num_attention_heads=2,
                           intermediate_size=24, num_hidden_layers=2, max_position_embeddings=64)
    for cls in (RobertaForSequenceClassification, RobertaForMaskedLM):
        model = cls(config, seed=0)
        for T in (fused.FEW_ROWS - 2, fused.FEW_ROWS + 1):
            ids = np.full((1, T), 5)
            ids[0, 0], ids[0, -1] = 0, 2
            want = model(ids).logits[0, 1] if cls is RobertaForMaskedLM else None
            calls.clear()
            if cls is RobertaForMaskedLM:
                out = model.logits_at(ids, positions=[(0, 1)])  # one row of the LM head
            else:
                out, want = model(ids).logits, None
            if T <= fused.FEW_ROWS:
                assert len(calls) == 4 * 2 + 2  # every layer's four, then the head's two
            else:
                assert calls == []
            if want is not None:
                np.testing.assert_allclose(out[0], want, atol=1e-5)
    assert fused.linear(rand(np.random.default_rng(0), 1, 8), np.ones((3, 8), np.float32),
                        rows=fused.FEW_ROWS + 1).shape == (1, 3) and calls == []


# ------------------------------------------------------------------ the kernel's threads

def test_the_team_splits_the_rows_and_hands_errors_back():
    team = kernels._Team(helpers=2)
    assert team.cuts(768) == [0, 256, 512, 768] and team.cuts(10) == [0, 0, 4, 10]
    seen = []
    team.run(lambda i: seen.append(i), [(0,), (1,), (2,)])
    assert sorted(seen) == [0, 1, 2]

    def fail(i):
        if i == 2:
            raise ValueError("helper 2 failed")
    with pytest.raises(ValueError, match="helper 2 failed"):
        team.run(fail, [(0,), (1,), (2,)])
    team.run(lambda i: seen.append(i), [(3,), (4,), (5,)])  # still works after an error
    assert sorted(seen) == [0, 1, 2, 3, 4, 5]


def test_few_rows_from_several_threads_at_once(backend):
    # a busy team runs a second caller's product on that caller's thread alone
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    w, b = rand(rng, 300, 64), rand(rng, 300)
    xs = [rand(rng, 5, 64) for _ in range(16)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: kernels.few_rows_linear(x, w, b), xs))
    for x, y in zip(xs, got):
        assert_float32_rounding(y, x, w, b)


def _python(code, env=None, timeout=120):  # run code in a fresh interpreter -> its stdout words
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def _teams(helpers):  # every kind of team this machine can run, of `helpers` helpers
    libc = kernels._posix_semaphores()
    return [kernels._Team(helpers)] + ([kernels._SemaphoreTeam(helpers, libc)] if libc else [])


@pytest.mark.parametrize("helpers", [0, 1, 2, 3])
def test_each_team_gives_the_serial_kernels_result(helpers):
    # each thread runs the serial kernel on a run of rows starting at a multiple of 4, so
    # every output is summed as the serial kernel sums it: equal to the bit
    serial = kernels._numba_kernels()["_few_rows_loops"]
    rng = np.random.default_rng(helpers)
    for m, k, n in [(8, 768, 3072), (3, 37, 13), (24, 5, 2), (2, 64, 9)]:
        x, w, b = rand(rng, m, k), rand(rng, n, k), rand(rng, n)
        want = np.empty((m, n), np.float32)
        serial(x, w, b, want)
        for team in _teams(helpers):
            got = np.full((m, n), np.nan, np.float32)
            for _ in range(3):  # helpers asleep, then still polling
                team.linear(x, w, b, got)
                np.testing.assert_array_equal(got, want, err_msg=type(team).__name__)
            if isinstance(team, kernels._SemaphoreTeam):
                team.close()
                assert not any(t.is_alive() for t in team.threads)


def test_the_process_team_uses_semaphores_where_they_work(monkeypatch):
    monkeypatch.setattr(kernels, "_BACKEND", "numba")  # the NumPy twin runs BLAS, no team
    libc = kernels._posix_semaphores()
    if __import__("sys").platform.startswith("linux"):
        assert libc is not None  # glibc and musl both have them
    kernels.few_rows_linear(np.ones((3, 8), np.float32), np.ones((40, 8), np.float32))
    assert isinstance(kernels._team(), kernels._SemaphoreTeam if libc else kernels._Team)
    monkeypatch.setattr(kernels, "_TEAM", None)  # a C library without them: the fallback
    monkeypatch.setattr(kernels, "_LIBC", None)
    x, w = rand(np.random.default_rng(3), 5, 40), rand(np.random.default_rng(4), 300, 40)
    got = kernels.few_rows_linear(x, w)
    assert isinstance(kernels._TEAM, kernels._Team)
    assert_float32_rounding(got, x, w, None)


def test_a_closed_team_still_multiplies_and_a_failed_start_stops_its_threads(monkeypatch):
    libc = kernels._posix_semaphores()
    if libc is None:
        pytest.skip("no POSIX semaphores here")
    rng = np.random.default_rng(8)
    x, w, b = rand(rng, 5, 40), rand(rng, 300, 40), rand(rng, 300)
    team = kernels._SemaphoreTeam(2, libc)
    team.close()
    team.close()  # twice is fine
    assert team.closed and not any(t.is_alive() for t in team.threads)
    y = np.empty((5, 300), np.float32)
    team.linear(x, w, b, y)  # on the calling thread now
    assert_float32_rounding(y, x, w, b)
    with pytest.raises(ValueError, match="C-contiguous"):
        team.linear(x, np.asfortranarray(w), b, y)
    started = []
    real = kernels.threading.Thread.start

    def start_one_then_fail(thread):  # the second helper cannot start (RuntimeError)
        if started:
            raise RuntimeError("can't start new thread")
        started.append(thread)
        real(thread)
    monkeypatch.setattr(kernels.threading.Thread, "start", start_one_then_fail)
    with pytest.raises(RuntimeError, match="can't start"):
        kernels._SemaphoreTeam(2, libc)
    started[0].join(timeout=10)  # the one that started was stopped
    assert not started[0].is_alive()
    monkeypatch.setattr(kernels, "_TEAM", None)  # and the process falls back to the Python team
    monkeypatch.setattr(kernels, "_LIBC", libc)
    monkeypatch.setattr(kernels, "team_size", lambda: 2)
    monkeypatch.setattr(kernels.threading.Thread, "start", real)

    def no_thread(*args):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(kernels, "_SemaphoreTeam", no_thread)
    assert isinstance(kernels._team(), kernels._Team)


def test_exiting_while_helpers_still_poll_is_clean():
    # interpreter shutdown frees Python's objects while the daemon helpers still poll their
    # semaphores: those live in C memory that is never freed (a 10-thread team, polling ~1 s)
    code = ("import numpy as np\n"
            "from minirobera import kernels\n"
            "kernels.set_backend('numba')\n"
            "kernels._SPIN_POLLS = 300_000_000\n"
            "kernels.team_size = lambda: 10\n"
            "y = kernels.few_rows_linear(np.ones((4, 256), np.float32), "
            "np.ones((4096, 256), np.float32))\n"
            "print(type(kernels._team()).__name__, len(kernels._team().threads), y[0, 0])\n")
    if kernels._posix_semaphores() is None:
        pytest.skip("no POSIX semaphores here")
    for _ in range(2):
        assert _python(code) == ["_SemaphoreTeam", "9", "256.0"]


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="needs setitimer")
def test_signals_while_the_team_waits_neither_hang_nor_cut_a_product_short():
    # a signal ends sem_wait early (EINTR, never restarted): the waits must wait again
    if kernels._posix_semaphores() is None:
        pytest.skip("no POSIX semaphores here: the Python team waits on conditions")
    code = ("import signal, numpy as np\n"
            "from minirobera import kernels\n"
            "kernels._SPIN_POLLS = 0  # no polling: every wait is a sem_wait\n"
            "hits = []\n"
            "signal.signal(signal.SIGALRM, lambda *a: hits.append(1))\n"
            "rng = np.random.default_rng(0)\n"
            "x = rng.standard_normal((8, 256), dtype=np.float32)\n"
            "w = rng.standard_normal((2048, 256), dtype=np.float32)\n"
            "want = kernels.few_rows_linear(x, w)\n"
            "signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)  # to the caller\n"
            "import threading, time\n"
            "stop = threading.Event()\n"
            "def at_helpers():  # and to each helper, in its own sem_wait\n"
            "    while not stop.is_set():\n"
            "        for t in getattr(kernels._team(), 'threads', []):\n"
            "            signal.pthread_kill(t.ident, signal.SIGALRM)\n"
            "        time.sleep(0.0002)\n"
            "threading.Thread(target=at_helpers).start()\n"
            "out, bad = np.empty_like(want), 0\n"
            "for _ in range(3000):\n"
            "    out[:] = np.nan  # a product cut short leaves NaN\n"
            "    bad += not np.array_equal(kernels.few_rows_linear(x, w, out=out), want)\n"
            "signal.setitimer(signal.ITIMER_REAL, 0)\n"
            "stop.set()\n"
            "print(bad, len(hits) > 100, type(kernels._team()).__name__)\n")
    assert _python(code) == ["0", "True", "_SemaphoreTeam"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_forked_child_gets_a_team_of_its_own():
    code = ("import os, numpy as np\n"
            "from minirobera import kernels\n"
            "x, w = np.ones((3, 8), np.float32), np.ones((40, 8), np.float32)\n"
            "kernels.few_rows_linear(x, w)  # the parent's team exists now\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    ok = (kernels.few_rows_linear(x, w) == 8).all()\n"
            "    os._exit(0 if ok else 3)\n"
            "_, status = os.waitpid(pid, 0)\n"
            "print(os.waitstatus_to_exitcode(status))\n")
    assert _python(code) == ["0"]


@pytest.mark.parametrize("env,want", [({"OPENBLAS_NUM_THREADS": "1"}, 1),
                                      ({"OMP_NUM_THREADS": "1"}, 1),
                                      ({"OMP_NUM_THREADS": "1,1"}, 1),
                                      ({"OPENBLAS_NUM_THREADS": "bad"}, None)])
def test_the_team_follows_the_blas_thread_limit(env, want):
    import os

    code = ("import os, numpy as np\n"
            "from minirobera import kernels\n"
            "kernels.few_rows_linear(np.ones((3, 8), np.float32), np.ones((40, 8), np.float32))\n"
            "print(kernels._team().size, len(os.sched_getaffinity(0)))\n")
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    size, cores = map(int, _python(code, env={**clean, **env}))
    assert size == (cores if want is None else want)
