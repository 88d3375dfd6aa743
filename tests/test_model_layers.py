"""The pure functions of layers.py: erf / GELU accuracy against math.erf, the mask and softmax.

(Equality of whole layers with transformers is in test_model.py; the activations are each
used by at least one fixture checkpoint there.)
"""

import math

import numpy as np
import pytest

from minirobera import layers


def test_erf_is_accurate_to_1e7_against_math_erf():
    x = np.linspace(-9, 9, 180001)
    ours = layers.erf(x)
    exact = np.array([math.erf(v) for v in x])
    assert np.abs(ours - exact).max() < 1e-7
    ours_c = layers.erfc(x)
    exact_c = np.array([math.erfc(v) for v in x])
    assert (np.abs(ours_c - exact_c) / exact_c).max() < 1.2e-7  # relative, also in the tail


def test_gelu_is_exact_within_float32_rounding():
    x = np.linspace(-9, 9, 180001, dtype=np.float32)
    ours = layers.gelu(x)
    assert ours.dtype == np.float32
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])
    np.testing.assert_allclose(ours, exact, rtol=2e-7, atol=1e-37)
    # the tanh form is a different function: off by up to ~4.7e-4
    assert np.abs(layers.gelu_new(x) - exact).max() > 1e-4


@pytest.mark.parametrize("name", sorted(layers.ACTIVATIONS))
def test_activations_keep_float32_and_shape(name):
    x = np.linspace(-100, 100, 1001, dtype=np.float32).reshape(7, 11, 13)
    y = layers.ACTIVATIONS[name](x)
    assert y.dtype == np.float32 and y.shape == x.shape and np.isfinite(y).all()


def test_masked_softmax_rows_sum_to_one_and_masked_keys_get_zero():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, 3, 4, 4)).astype(np.float32) * 30
    bias = layers.attention_bias(np.array([[1, 1, 0, 1], [0, 0, 0, 0]]), causal=False)
    p = layers.masked_softmax(scores, bias, 0.5)
    assert p.dtype == np.float32 and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(-1), 1, atol=1e-6)
    assert (p[0, :, :, 2] == 0).all()
    np.testing.assert_allclose(p[1], 0.25, atol=1e-7)  # nothing allowed: uniform, never NaN


def test_causal_bias_hides_the_future_and_the_padding():
    bias = layers.attention_bias(np.array([[0, 1, 1]]), causal=True)[0, 0]
    assert (bias == 0).tolist() == [[False, False, False], [False, True, False],
                                    [False, True, True]]


def test_linear_weights_are_out_by_in():
    w = np.arange(6, dtype=np.float32).reshape(3, 2)  # [out=3, in=2]
    assert layers.linear(np.ones((4, 5, 2), np.float32), w).shape == (4, 5, 3)


def test_encoder_layer_is_post_ln():
    """Every layer output is layer-normed: zero mean, unit variance before gamma/beta."""
    p = layers.random_params(vocab=10, dim=8, heads=2, ffn=12, layers=1, positions=16)
    for ln in ("attn_ln", "ffn_ln"):
        p["layers"][0][ln] = {"g": np.ones(8, np.float32), "b": np.zeros(8, np.float32)}
    x = np.random.default_rng(1).normal(size=(2, 5, 8)).astype(np.float32) * 4
    out, _ = layers.encoder_layer(x, p["layers"][0], layers.attention_bias(np.ones((2, 5)), False),
                                  n_head=2, act="gelu", eps=1e-5)
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(out.var(-1), 1, atol=1e-3)


# ------------------------------------------------ the encoder split over cores (batch, layer)

@pytest.fixture
def split_auto(monkeypatch):
    """MINIROBERA_SPLIT unset (auto), OpenBLAS's idle threads taken to nap."""
    monkeypatch.delenv("MINIROBERA_SPLIT", raising=False)
    monkeypatch.setattr("minirobera.blas._naps", True)


@pytest.mark.parametrize("B, T, threads, want", [
    (8, 128, 2, 2), (32, 128, 2, 2), (4, 128, 2, 2),  # 256 tokens a slice is enough
    (2, 128, 2, 1), (4, 64, 2, 1),                    # 128 a slice is not
    (1, 512, 2, 1), (3, 512, 2, 1),                   # no equal split in two
    (8, 128, 4, 4), (6, 128, 4, 3), (2, 1024, 4, 2),  # at most one slice per thread
    (8, 128, 1, 1), (8, 128, None, 1),                # one thread, or threads not settable
])
def test_batch_parts_rule(split_auto, B, T, threads, want):
    assert layers.batch_parts(B, T, threads) == want


@pytest.mark.parametrize("B, T, heads, threads, want", [
    (1, 128, 12, 2, 2), (1, 512, 12, 2, 2), (2, 64, 12, 2, 2),  # 64 rows a share or more
    (1, 127, 12, 2, 1), (1, 8, 12, 2, 1),                       # fewer
    (1, 256, 12, 4, 4), (1, 192, 12, 4, 3), (1, 256, 3, 4, 3),  # one share per thread, head,
    (1, 128, 1, 2, 1), (1, 128, 12, 4, 2),                      # and 64 rows at most
    (1, 128, 12, 1, 1), (1, 128, 12, None, 1),                  # one thread, or not settable
])
def test_layer_parts_rule(split_auto, B, T, heads, threads, want):
    assert layers.layer_parts(B, T, heads, threads) == want


def test_no_layer_split_while_openblas_threads_spin(split_auto, monkeypatch):
    # NumPy imported before minirobera: OpenBLAS's idle threads spin ~0.1 s and would take a
    # core from the shares (1x128 took 1.2x as long split as not)
    monkeypatch.setattr("minirobera.blas._naps", False)
    assert layers.layer_parts(1, 128, 12, 2) == 1
    assert layers.batch_parts(8, 128, 2) == 2  # the batch split gains without it


def test_the_split_can_be_switched_off(monkeypatch, split_auto):
    monkeypatch.setenv("MINIROBERA_SPLIT", "OFF")
    assert layers.batch_parts(8, 128, 2) == layers.layer_parts(1, 128, 12, 2) == 1
    monkeypatch.setenv("MINIROBERA_SPLIT", "yes")
    with pytest.raises(ValueError, match=r"MINIROBERA_SPLIT must be 'auto' or 'off', "
                                         r"got 'yes'"):
        layers.batch_parts(8, 128, 2)
    with pytest.raises(ValueError, match=r"MINIROBERA_SPLIT must be"):
        layers.layer_parts(1, 128, 12, 2)


def _split_case(causal, heads=2):
    p = layers.random_params(vocab=30, dim=16, heads=heads, ffn=24, layers=2, positions=40,
                             seed=3)
    ids = np.random.default_rng(1).integers(3, 30, (4, 9))
    mask = np.ones((4, 9), np.int64)
    mask[1, 6:] = 0  # padded rows in two of the four sequences
    mask[3, 2:] = 0
    ids[mask == 0] = 1
    x = layers.embeddings(p["embeddings"], ids, pad_token_id=1, eps=1e-5)
    blocks = p["layers"]
    for b in blocks:  # q, k, v side by side, as checkpoint.compute_layout lays them out
        b["qkv"] = {"w": np.concatenate([b[n]["w"] for n in "qkv"]),
                    "b": np.concatenate([b[n]["b"] for n in "qkv"])}
    return x, blocks, layers.attention_bias(mask, causal=causal)


def _run(x, blocks, bias, batch_split=1, layer_split=1, heads=2):
    return layers.encoder(x.copy(), blocks, bias, heads, "gelu", 1e-5, keep_attentions=False,
                          keep_hidden_states=False, batch_split=batch_split,
                          layer_split=layer_split)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("split, heads", [("batch_split", 2), ("layer_split", 4)])
def test_split_encoder_equals_one_pass(backend, causal, split, heads):
    from minirobera import blas, kernels

    old = kernels.set_backend(backend)
    try:
        x, blocks, bias = _split_case(causal, heads)
        want, _, _ = _run(x, blocks, bias, heads=heads)
        threads = blas.threads()
        # 4 slices of one sequence each; 2, 3 (uneven shares: 36 rows, 4 heads, 24 FFN units
        # as 12/12/12, 1/1/2, 8/8/8) and 4 shares of each layer
        for parts in (2, 4) if split == "batch_split" else (2, 3, 4):
            if threads is None:  # a BLAS whose threads cannot be set: nothing to split with
                with pytest.raises(RuntimeError, match="not an OpenBLAS"):
                    _run(x, blocks, bias, heads=heads, **{split: parts})
                continue
            got, hidden, attentions = _run(x, blocks, bias, heads=heads, **{split: parts})
            assert hidden is None and attentions == [None, None]
            # float32 rounding only: a GEMM may sum a row differently with fewer rows, and the
            # layer split adds the FFN output's partial sums
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            assert blas.threads() == threads  # OpenBLAS's thread count is restored
    finally:
        kernels.set_backend(old)


@pytest.mark.parametrize("split", ["batch_split", "layer_split"])
def test_split_encoder_passes_errors_on_and_restores_blas_threads(split):
    from minirobera import blas

    if blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS whose threads minirobera can set")
    x, blocks, bias = _split_case(False)
    bad = [dict(b) for b in blocks]
    bad[1]["ffn_out"] = {"w": np.zeros((16, 5), np.float32), "b": np.zeros(16, np.float32)}
    before = blas.threads()
    with pytest.raises(ValueError):  # the FFN's shapes do not fit: every share fails
        _run(x, bad, bias, **{split: 2})
    assert blas.threads() == before


def test_one_failing_share_does_not_leave_the_others_waiting(monkeypatch):
    # the layer split's threads wait for each other: a share that fails must not leave the
    # rest waiting forever at the next step, and its own error (not theirs) is raised
    import threading

    from minirobera import blas

    if blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS whose threads minirobera can set")
    x, blocks, bias = _split_case(False)
    before = blas.threads()
    real = layers.bias_act

    def fails_on_a_pool_thread(*a, **k):
        if threading.current_thread().name.startswith("minirobera-split"):
            raise MemoryError("share 1 ran out of memory")
        return real(*a, **k)

    monkeypatch.setattr(layers, "bias_act", fails_on_a_pool_thread)
    outcome = []

    def call():
        try:
            _run(x, blocks, bias, layer_split=2)
        except BaseException as e:  # noqa: B036
            outcome.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the layer split hung after one share failed"
    assert len(outcome) == 1 and isinstance(outcome[0], MemoryError), outcome
    assert blas.threads() == before  # the one-thread block was left


def test_split_encoder_needs_the_no_copies_mode():
    x, blocks, bias = _split_case(False)
    for split in ("batch_split", "layer_split"):
        with pytest.raises(ValueError, match="without hidden states or attention maps"):
            layers.encoder(x, blocks, bias, 2, "gelu", 1e-5, keep_attentions=True,
                           keep_hidden_states=False, **{split: 2})


def test_split_encoder_checks_its_inputs():
    x, blocks, bias = _split_case(False)
    with pytest.raises(ValueError, match=r"batch_split=3\) needs a batch it divides, got 4"):
        _run(x, blocks, bias, batch_split=3)
    flat = bias[0, 0]  # a [T,T]-broadcastable bias: its first axis is not the batch
    with pytest.raises(ValueError, match="4-D bias"):
        _run(x, blocks, np.broadcast_to(flat, (9, 9)).copy(), batch_split=2)
    with pytest.raises(ValueError, match="splits the batch or the layers, not both"):
        _run(x, blocks, bias, batch_split=2, layer_split=2)
    with pytest.raises(ValueError, match=r"layer_split=3\) needs at least as many heads \(2\)"):
        _run(x, blocks, bias, layer_split=3)
    unfused = [{k: v for k, v in b.items() if k != "qkv"} for b in blocks]
    with pytest.raises(ValueError, match="needs the fused q/k/v weights"):
        _run(x, unfused, bias, layer_split=2)


def test_unfused_weights_run_unsplit_when_the_split_is_left_to_the_rule(split_auto):
    # random_params (or any hand-built params dict) has q, k, v but no fused qkv: the rule
    # must not pick the layer split for them (it raised "needs the fused q/k/v weights")
    from minirobera import blas

    if not blas.threads() or blas.threads() < 2:
        pytest.skip("one BLAS thread (or threads minirobera cannot set): nothing to split")
    p = layers.random_params(vocab=30, dim=16, heads=2, ffn=24, layers=2, positions=200, seed=3)
    x = layers.embeddings(p["embeddings"], np.full((1, 150), 5), pad_token_id=1, eps=1e-5)
    bias = layers.attention_bias(np.ones((1, 150)), causal=False)
    assert layers.layer_parts(1, 150, 2, blas.threads()) == 2  # fused weights would split
    got = layers.encoder(x.copy(), p["layers"], bias, 2, "gelu", 1e-5, keep_attentions=False,
                         keep_hidden_states=False)[0]
    want = layers.encoder(x.copy(), p["layers"], bias, 2, "gelu", 1e-5)[0]  # the unsplit path
    np.testing.assert_array_equal(got, want)


def test_no_split_with_threaded_kernels(monkeypatch, split_auto):
    from minirobera import kernels

    monkeypatch.setattr(kernels, "THREADED", True)  # Numba's workqueue aborts on two launchers
    assert layers.batch_parts(8, 128, 2) == layers.layer_parts(1, 128, 12, 2) == 1


def test_numba_kernels_load_once_when_two_threads_ask_at_once():
    # the layer split can make a process's first kernel call from two threads at the same
    # time; without a lock both compiled, and the second re-jitted the first one's helpers
    import subprocess
    import sys

    code = ("import threading\n"
            "from minirobera import kernels\n"
            "kernels.set_backend('numba')\n"
            "go = threading.Barrier(4)\n"
            "errors = []\n"
            "def first_call():\n"
            "    go.wait()\n"
            "    try:\n"
            "        kernels._numba_kernels()\n"
            "    except BaseException as e:\n"
            "        errors.append(repr(e))\n"
            "ts = [threading.Thread(target=first_call) for _ in range(4)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n"
            "assert not errors, errors\n"
            "assert set(kernels._numba_kernels()) == set(kernels._KERNELS)\n")
    pytest.importorskip("numba")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("split", ["batch_split", "layer_split"])
def test_a_forked_child_splits_too(split):
    # the parent's pool thread does not exist in a forked child: it must make its own
    import subprocess
    import sys
    import textwrap

    from minirobera import blas

    if blas.threads() is None or not hasattr(__import__("os"), "fork"):
        pytest.skip("needs an OpenBLAS whose threads can be set, and os.fork")
    code = textwrap.dedent("""
        import os, signal, sys
        sys.path.insert(0, {tests!r})
        import numpy as np
        from test_model_layers import _split_case, _run
        x, blocks, bias = _split_case(False)
        want = _run(x, blocks, bias)[0]
        _run(x, blocks, bias, {split}=2)  # the parent's pool gets its thread
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)
            got = _run(x, blocks, bias, {split}=2)[0]
            os._exit(0 if np.allclose(got, want, rtol=1e-5, atol=1e-6) else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """).format(tests=str(__import__("pathlib").Path(__file__).parent), split=split)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])


@pytest.mark.parametrize("split", ["batch_split", "layer_split"])
def test_split_forwards_from_several_threads_at_once(split):
    # a server calling the model from its own threads: the splits share one pool (and
    # OpenBLAS's thread count), so their shares queue behind each other but never deadlock
    import threading

    from minirobera import blas

    if blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS whose threads minirobera can set")
    x, blocks, bias = _split_case(False)
    want = _run(x, blocks, bias)[0]
    before = blas.threads()
    results, go = [None] * 4, threading.Barrier(4)

    def call(k):
        go.wait()
        for _ in range(5):
            results[k] = _run(x, blocks, bias, **{split: 2})[0]

    threads = [threading.Thread(target=call, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "concurrent split forwards hung"
    for got in results:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert blas.threads() == before
