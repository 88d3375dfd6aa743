"""The pure functions of layers.py: erf / GELU accuracy against math.erf, the mask and softmax.

(Equality of whole layers with transformers is in test_model.py; the activations are each
used by at least one fixture checkpoint there.)
"""

import math

import numpy as np
import pytest

from minirobera import fused, layers


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


# ------------------------------------------------ fused.py: the same encoder, rearranged for speed

def _case(causal, heads=2, seed=3):
    """Random params laid out as the model classes lay them out, and a padded batch."""
    p = fused.compute_layout(layers.random_params(vocab=30, dim=16, heads=heads, ffn=24,
                                                  layers=2, positions=40, seed=seed))
    ids = np.random.default_rng(1).integers(3, 30, (4, 9))
    mask = np.ones((4, 9), np.int64)
    mask[1, 6:] = 0  # padded rows in two of the four sequences
    mask[3, 2:] = 0
    ids[mask == 0] = 1
    x = layers.embeddings(p["embeddings"], ids, pad_token_id=1, eps=1e-5)
    return x, p["layers"], layers.attention_bias(mask, causal=causal)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("keep", [True, False], ids=["keep-all", "keep-none"])
def test_fused_encoder_equals_the_readable_one(backend, causal, keep):
    from minirobera import kernels

    old = kernels.set_backend(backend)
    try:
        x, blocks, bias = _case(causal, heads=4)
        want, want_hidden, want_attn = layers.encoder(x, blocks, bias, 4, "gelu", 1e-5)
        got, hidden, attn = fused.encoder(x.copy(), blocks, bias, 4, "gelu", 1e-5,
                                          keep_attentions=keep, keep_hidden_states=keep)
    finally:
        kernels.set_backend(old)
    # float32 rounding only: one GEMM over the fused q/k/v weight may sum in another order
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if keep:
        assert len(hidden) == len(want_hidden) == 3 and len(attn) == 2
        for ours, theirs in zip(hidden + attn, want_hidden + want_attn):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    else:
        assert hidden is None and attn == [None, None]


def test_fused_encoder_overwrites_x_only_when_no_hidden_state_is_kept():
    x, blocks, bias = _case(False)
    kept = x.copy()
    out, hidden, _ = fused.encoder(kept, blocks, bias, 2, "gelu", 1e-5)
    np.testing.assert_array_equal(kept, x)  # hidden_states[0] is the caller's x, untouched
    assert hidden[0] is kept and not np.shares_memory(out, kept)
    scratch = x.copy()
    out, _, _ = fused.encoder(scratch, blocks, bias, 2, "gelu", 1e-5, keep_attentions=False,
                              keep_hidden_states=False)
    assert np.shares_memory(out, scratch)  # written in place: one [B,T,D] array for all layers
    np.testing.assert_array_equal(scratch, out)


def test_fused_encoder_runs_the_readable_layer_without_fused_weights():
    p = layers.random_params(vocab=30, dim=16, heads=2, ffn=24, layers=2, positions=40, seed=3)
    x, _, bias = _case(False)
    want = layers.encoder(x, p["layers"], bias, 2, "gelu", 1e-5)[0]
    got = fused.encoder(x.copy(), p["layers"], bias, 2, "gelu", 1e-5, keep_attentions=False,
                        keep_hidden_states=False)[0]
    np.testing.assert_array_equal(got, want)  # no `qkv`: the very same functions ran
    x64 = x.astype(np.float64)  # float64: the fused path is float32 only
    want = layers.encoder(x64, p["layers"], bias, 2, "gelu", 1e-5)[0]
    got = fused.encoder(x64, p["layers"], bias, 2, "gelu", 1e-5)[0]
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


def test_compute_layout_keeps_q_k_v_as_views_of_one_fused_weight():
    p = layers.random_params(vocab=30, dim=16, heads=2, ffn=24, layers=1, positions=40, seed=3)
    strided = p["layers"][0]["ffn_out"]["w"] = np.asfortranarray(p["layers"][0]["ffn_out"]["w"])
    p = fused.compute_layout(p)
    block = p["layers"][0]
    assert block["qkv"]["w"].shape == (48, 16) and block["qkv"]["w"].flags.c_contiguous
    for n, name in enumerate("qkv"):
        assert np.shares_memory(block[name]["w"], block["qkv"]["w"])
        np.testing.assert_array_equal(block["qkv"]["w"][16 * n:16 * (n + 1)], block[name]["w"])
        np.testing.assert_array_equal(block["qkv"]["b"][16 * n:16 * (n + 1)], block[name]["b"])
    assert block["ffn_in"]["w"].shape == (24, 16) and block["ffn_in"]["w"].flags.c_contiguous
    # every Linear weight [out, in] C-contiguous: one in another layout is copied into it
    assert block["ffn_out"]["w"].flags.c_contiguous and block["ffn_out"]["w"] is not strided
    np.testing.assert_array_equal(block["ffn_out"]["w"], strided)


def test_numba_kernels_load_once_when_two_threads_ask_at_once():
    # a server can make a process's first kernel call from two threads at the same time;
    # without a lock both compiled, and the second re-jitted the first one's helpers
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
            "assert set(kernels._numba_kernels()) == set(kernels._KERNELS + "
            "kernels._TEAM_LOOPS)\n")
    pytest.importorskip("numba")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_forwards_from_several_threads_at_once():
    # a server calling the model from its own threads: each call has its own buffers
    import threading

    x, blocks, bias = _case(False)
    want = fused.encoder(x.copy(), blocks, bias, 2, "gelu", 1e-5, keep_attentions=False,
                         keep_hidden_states=False)[0]
    results, go = [None] * 4, threading.Barrier(4)

    def call(k):
        go.wait()
        for _ in range(5):
            results[k] = fused.encoder(x.copy(), blocks, bias, 2, "gelu", 1e-5,
                                       keep_attentions=False, keep_hidden_states=False)[0]

    threads = [threading.Thread(target=call, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "concurrent forwards hung"
    for got in results:
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------- layers.py is what runs, for every dtype

def _raise(*args, **kwargs):
    raise AssertionError("layers.py called a kernel")


def _no_kernels(monkeypatch):
    from minirobera import kernels

    for name in ("gelu_bias", "masked_softmax", "bias_residual_layernorm", "layer_norm",
                 "embed_layernorm", "_impl", "_numba_kernels"):
        monkeypatch.setattr(kernels, name, _raise)


def test_layers_run_their_numpy_lines_on_float32_with_every_kernel_gone(monkeypatch):
    from minirobera import heads

    p = layers.random_params(vocab=30, dim=16, heads=2, ffn=24, layers=2, positions=40, seed=3)
    lm = {"dense": {"w": p["layers"][0]["q"]["w"], "b": p["layers"][0]["q"]["b"]},
          "ln": p["layers"][0]["attn_ln"],
          "decoder": {"w": p["embeddings"]["word"], "b": np.zeros(30, np.float32)}}
    ids = np.array([[0, 5, 6, 7, 2, 1], [0, 8, 9, 2, 1, 1]])
    bias = layers.attention_bias(ids != 1, causal=False)

    def forward():
        x = layers.embeddings(p["embeddings"], ids, pad_token_id=1, eps=1e-5)
        h, hidden, attn = layers.encoder(x, p["layers"], bias, n_head=2, act="gelu", eps=1e-5)
        return heads.lm_head(h, lm, eps=1e-5), hidden, attn

    want = forward()  # whatever runs by default
    _no_kernels(monkeypatch)
    got = forward()  # the kernels now raise: only NumPy lines can run
    assert got[0].dtype == np.float32
    np.testing.assert_array_equal(got[0], want[0])  # and it is the same code: bit for bit
    for a, b in zip(got[1] + got[2], want[1] + want[2]):
        np.testing.assert_array_equal(a, b)


def test_readable_model_runs_no_kernel_and_no_fused_weight(monkeypatch):
    from minirobera import kernels, modeling
    from minirobera.config import RobertaConfig

    config = RobertaConfig(vocab_size=40, hidden_size=16, num_attention_heads=4,
                           intermediate_size=24, num_hidden_layers=2, max_position_embeddings=20)
    model = modeling.RobertaForMaskedLM(config, seed=0)
    ids = [[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]]
    fast = model(ids, attention_mask=[[1] * 5, [1, 1, 1, 0, 0]], output_attentions=True)
    old = kernels.set_backend("readable")
    try:
        _no_kernels(monkeypatch)
        monkeypatch.setattr(fused, "self_attention", _raise)
        monkeypatch.setattr(fused, "encoder_layer", _raise)
        readable = model(ids, attention_mask=[[1] * 5, [1, 1, 1, 0, 0]], output_attentions=True)
    finally:
        kernels.set_backend(old)
    np.testing.assert_allclose(readable.logits, fast.logits, rtol=1e-5, atol=1e-5)
    for a, b in zip(readable.attentions, fast.attentions):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm_known_answer_on_a_low_variance_row(dtype):
    # [1, 1.001]: mean 1.0005, biased var 2.5e-7, far below eps = 1e-5, so eps dominates:
    # 5e-4 / sqrt(2.5e-7 + 1e-5) = 0.156174... (sqrt(var) + eps would give 0.980392...)
    x = np.array([[1.0, 1.001], [-3.0, -3.0]], dtype)
    got = layers.layer_norm(x, np.ones(2, dtype), np.zeros(2, dtype), eps=1e-5)
    want = 5e-4 / math.sqrt(2.5e-7 + 1e-5)
    np.testing.assert_allclose(got[0], [-want, want], rtol=1e-9 if dtype == np.float64 else 3e-3)
    np.testing.assert_array_equal(got[1], [0.0, 0.0])  # a constant row: all zeros, no NaN


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_norm_equals_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 32)) * np.array([[1e-4], [1e-3], [1e-2], [1.0], [10.0], [1e3]])
    # low- and high-variance rows, off zero (float32 keeps ~7 digits: offsets it can afford)
    x = (x + rng.normal(size=(6, 1)) * (5 if dtype == np.float64 else 1e-3)).astype(dtype)
    g, b = (1 + rng.normal(size=32)).astype(dtype), rng.normal(size=32).astype(dtype)
    want = torch.nn.functional.layer_norm(torch.from_numpy(x), (32,), torch.from_numpy(g),
                                          torch.from_numpy(b), eps=1e-5).numpy()
    got = layers.layer_norm(x, g, b, eps=1e-5)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got, want, **tol)


# ------------------------------------------------ params are the truth: edits reach the model

def _arrays(node, path=()):  # every array of a params dict, with its path
    if isinstance(node, np.ndarray):
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            if k != "qkv":  # q, k and v's own arrays are views of it: edited through them
                yield from _arrays(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _arrays(v, path + (i,))


def _readable(model, *args, **kwargs):
    from minirobera import kernels

    old = kernels.set_backend("readable")
    try:
        return model(*args, **kwargs)
    finally:
        kernels.set_backend(old)


def test_in_place_edits_of_any_param_reach_the_model():
    from minirobera import modeling
    from minirobera.config import RobertaConfig

    config = RobertaConfig(vocab_size=40, hidden_size=16, num_attention_heads=4,
                           intermediate_size=24, num_hidden_layers=2, max_position_embeddings=20)
    model = modeling.RobertaForMaskedLM(config, seed=0)
    ids, mask = [[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]], [[1] * 5, [1, 1, 1, 0, 0]]
    for path, array in _arrays(model.params):
        if path[0] == "layers" and array.ndim == 2:
            array *= 10  # transformers' init (std 0.02) barely lets attention look; 0.2 does
    rng = np.random.default_rng(0)
    before = model(ids, attention_mask=mask).logits
    edited = []
    for path, array in _arrays(model.params):
        saved = array.copy()
        array += rng.normal(0, 0.1, array.shape).astype(array.dtype)  # in place
        fast = model(ids, attention_mask=mask).logits
        np.testing.assert_allclose(fast, _readable(model, ids, attention_mask=mask).logits,
                                   rtol=1e-5, atol=1e-5, err_msg=str(path))
        # a key bias adds q.b_k to every score of a query: softmax does not see it (RoBERTa's
        # checkpoints carry one all the same); every other param moves the logits
        if path[-2:] != ("k", "b"):
            assert np.abs(fast - before).max() > 1e-4, path  # float32 rounding: ~1e-6
        array[...] = saved  # one edit at a time
        edited.append(path)
    assert ("layers", 1, "q", "b") in edited and ("layers", 0, "v", "w") in edited
    assert len(edited) == 2 * 16 + 4 + 2 + 5  # 16 per layer, embeddings, head's dense/ln, bias


def test_a_replaced_q_k_or_v_array_is_picked_up_at_the_next_forward():
    from minirobera import modeling
    from minirobera.config import RobertaConfig

    config = RobertaConfig(vocab_size=40, hidden_size=16, num_attention_heads=4,
                           intermediate_size=24, num_hidden_layers=1, max_position_embeddings=20)
    model = modeling.RobertaModel(config, seed=0)
    layer, ids = model.params["layers"][0], [[0, 5, 6, 7, 2]]
    before = model(ids).last_hidden_state
    layer["q"]["b"] = layer["q"]["b"] + 3  # a new array, not an edit of the old one
    layer["v"]["w"] = np.ascontiguousarray(layer["v"]["w"][::-1])
    after = model(ids).last_hidden_state
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, _readable(model, ids).last_hidden_state, rtol=1e-5,
                               atol=1e-5)
    # rebuilt once, then views again: an in-place edit of the new arrays reaches it too
    assert np.shares_memory(layer["q"]["b"], layer["qkv"]["b"])
    layer["q"]["b"][:] = 0
    np.testing.assert_allclose(model(ids).last_hidden_state,
                               _readable(model, ids).last_hidden_state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt", ["safetensors", "bin_zip", "bin_legacy", "flax_msgpack"])
def test_params_loaded_from_a_file_are_writable_and_edits_never_reach_the_file(fmt, tmp_path):
    import hashlib
    import shutil
    from pathlib import Path

    from minirobera import modeling

    fixture = Path(__file__).resolve().parent / "fixtures" / "model" / "a-RobertaForMaskedLM"
    folder = shutil.copytree(fixture / fmt, tmp_path / fmt)
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    model = modeling.RobertaForMaskedLM.from_pretrained(folder)
    assert model.params["lm_head"]["decoder"]["w"] is model.params["embeddings"]["word"]  # tied
    ids, mask = [[0, 17, 42, 8, 2], [0, 9, 2, 1, 1]], [[1] * 5, [1, 1, 1, 0, 0]]
    before = model(ids, attention_mask=mask).logits
    rng, moved = np.random.default_rng(0), {}
    for path, array in _arrays(model.params):
        saved = array.copy()
        array += rng.normal(0, 0.5, array.shape).astype(array.dtype)  # in place: no error
        fast = model(ids, attention_mask=mask).logits
        np.testing.assert_allclose(fast, _readable(model, ids, attention_mask=mask).logits,
                                   rtol=1e-5, atol=1e-5, err_msg=str(path))
        moved[path] = float(np.abs(fast - before).max())
        array[...] = saved
    # the arrays the file held read-only (the tables, LayerNorms, biases): their edits count
    for path in [("embeddings", "word"), ("embeddings", "ln", "b"), ("layers", 0, "attn_out", "b"),
                 ("layers", 1, "ffn_ln", "g"), ("lm_head", "decoder", "b")]:
        assert moved[path] > 1e-3, (path, moved[path])
    np.testing.assert_array_equal(model(ids, attention_mask=mask).logits, before)
    # copy-on-write: the edits stayed in this process
    assert digest == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    again = modeling.RobertaForMaskedLM.from_pretrained(folder)
    np.testing.assert_array_equal(again(ids, attention_mask=mask).logits, before)


def test_params_whose_file_is_gone_are_copied(tmp_path):
    import shutil
    from pathlib import Path

    from minirobera import checkpoint, modeling
    from minirobera.config import RobertaConfig

    fixture = Path(__file__).resolve().parent / "fixtures" / "model" / "a-RobertaForMaskedLM"
    folder = shutil.copytree(fixture / "safetensors", tmp_path / "m")
    config = RobertaConfig.from_pretrained(folder)
    state = checkpoint.read_safetensors(folder / "model.safetensors")
    params, _ = checkpoint.params_from_state_dict(config, state, modeling.RobertaForMaskedLM.parts)
    want = modeling.RobertaForMaskedLM.from_pretrained(folder)([0, 17, 42, 2]).logits
    (folder / "model.safetensors").unlink()  # still mapped by `state`, gone by name
    model = modeling.RobertaForMaskedLM(config, params)
    model.params["embeddings"]["ln"]["b"] += 0  # writable
    np.testing.assert_array_equal(model([0, 17, 42, 2]).logits, want)
