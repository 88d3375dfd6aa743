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


# ------------------------------------------------------- the batch split over cores (encoder)

@pytest.mark.parametrize("B, T, threads, want", [
    (8, 128, 2, 2), (32, 128, 2, 2), (4, 128, 2, 2),  # 256 tokens a slice is enough
    (2, 128, 2, 1), (4, 64, 2, 1),                    # 128 a slice is not
    (1, 512, 2, 1), (3, 512, 2, 1),                   # no equal split in two
    (8, 128, 4, 4), (6, 128, 4, 3), (2, 1024, 4, 2),  # at most one slice per thread
    (8, 128, 1, 1), (8, 128, None, 1),                # one thread, or threads not settable
])
def test_batch_parts_rule(monkeypatch, B, T, threads, want):
    monkeypatch.delenv("MINIROBERA_BATCH_SPLIT", raising=False)
    assert layers.batch_parts(B, T, threads) == want


def test_batch_split_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("MINIROBERA_BATCH_SPLIT", "OFF")
    assert layers.batch_parts(8, 128, 2) == 1
    monkeypatch.setenv("MINIROBERA_BATCH_SPLIT", "yes")
    with pytest.raises(ValueError, match=r"MINIROBERA_BATCH_SPLIT must be 'auto' or 'off', "
                                         r"got 'yes'"):
        layers.batch_parts(8, 128, 2)


def _split_case(causal):
    p = layers.random_params(vocab=30, dim=16, heads=2, ffn=24, layers=2, positions=40, seed=3)
    ids = np.random.default_rng(1).integers(3, 30, (4, 9))
    mask = np.ones((4, 9), np.int64)
    mask[1, 6:] = 0  # padded rows in two of the four sequences
    mask[3, 2:] = 0
    ids[mask == 0] = 1
    x = layers.embeddings(p["embeddings"], ids, pad_token_id=1, eps=1e-5)
    return x, p["layers"], layers.attention_bias(mask, causal=causal)


def _run(x, blocks, bias, parts):
    return layers.encoder(x.copy(), blocks, bias, 2, "gelu", 1e-5, keep_attentions=False,
                          keep_hidden_states=False, parts=parts)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("causal", [False, True])
def test_encoder_in_parts_equals_one_pass(backend, causal):
    from minirobera import blas, kernels

    old = kernels.set_backend(backend)
    try:
        x, blocks, bias = _split_case(causal)
        want, _, _ = _run(x, blocks, bias, parts=1)
        threads = blas.threads()
        for parts in (2, 4):
            if threads is None:  # a BLAS whose threads cannot be set: nothing to split with
                with pytest.raises(RuntimeError, match="not an OpenBLAS"):
                    _run(x, blocks, bias, parts)
                continue
            got, hidden, attentions = _run(x, blocks, bias, parts)
            assert hidden is None and attentions == [None, None]
            # float32 rounding only: a GEMM may sum a row differently with fewer rows
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            assert blas.threads() == threads  # OpenBLAS's thread count is restored
    finally:
        kernels.set_backend(old)


def test_encoder_in_parts_passes_errors_on_and_restores_blas_threads():
    from minirobera import blas

    if blas.threads() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS whose threads minirobera can set")
    x, blocks, bias = _split_case(False)
    bad = [dict(b) for b in blocks]
    bad[1]["ffn_out"] = {"w": np.zeros((16, 5), np.float32), "b": np.zeros(16, np.float32)}
    before = blas.threads()
    with pytest.raises(ValueError):  # the FFN's shapes do not fit: every slice fails
        _run(x, bad, bias, parts=2)
    assert blas.threads() == before


def test_encoder_in_parts_needs_the_no_copies_mode():
    x, blocks, bias = _split_case(False)
    with pytest.raises(ValueError, match="without hidden states or attention maps"):
        layers.encoder(x, blocks, bias, 2, "gelu", 1e-5, keep_attentions=True,
                       keep_hidden_states=False, parts=2)


def test_encoder_in_parts_checks_its_inputs():
    x, blocks, bias = _split_case(False)
    with pytest.raises(ValueError, match=r"parts=3\) needs a batch it divides, got 4"):
        _run(x, blocks, bias, parts=3)
    flat = bias[0, 0]  # a [T,T]-broadcastable bias: its first axis is not the batch
    with pytest.raises(ValueError, match="4-D bias"):
        _run(x, blocks, np.broadcast_to(flat, (9, 9)).copy(), parts=2)


def test_no_batch_split_with_threaded_kernels(monkeypatch):
    from minirobera import kernels

    monkeypatch.delenv("MINIROBERA_BATCH_SPLIT", raising=False)
    monkeypatch.setattr(kernels, "THREADED", True)  # Numba's workqueue aborts on two launchers
    assert layers.batch_parts(8, 128, 2) == 1


def test_a_forked_child_splits_too():
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
        want = _run(x, blocks, bias, parts=1)[0]
        _run(x, blocks, bias, parts=2)  # the parent's pool gets its thread
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)
            got = _run(x, blocks, bias, parts=2)[0]
            os._exit(0 if np.allclose(got, want, rtol=1e-5, atol=1e-6) else 3)
        _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """).format(tests=str(__import__("pathlib").Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
