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
