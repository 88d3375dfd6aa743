"""The hand-written backward pass (backward.py) against torch's autograd and finite differences.

1. Recorded: tests/fixtures/grads/ holds autograd's loss and gradients on every model
   fixture of a class that takes labels (configs a, b, c: padding on the right, on the left
   and mid-text, token types in b, the causal mask of the causal LM), written by
   scripts/make_grad_fixtures.py with the versions in its manifest.json. No torch needed.
2. Live (torch installed): hypothesis draws configs beyond the fixtures' and compares the
   loss with float32 autograd, and the gradients in float64 with float64 autograd.
3. Finite differences in float64 on a few coordinates of every parameter, for every head,
   with and without dropout (no torch needed).
4. Dropout (live): transformers in train() mode, fed our masks in call order, must meet a
   dropout at the same sites with the same rates and shapes, and give the same gradients.

Gradients must match per tensor within max|ours - autograd| / max|autograd| < 1e-4, the
loss within 1e-5. Some gradients are exactly zero in exact arithmetic (see
`analytically_zero`); both sides then hold float32 rounding noise, compared in absolute
terms against the model's largest gradient.
"""

import importlib.util
import json
import math
import os
import warnings
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from minirobera import backward, layers, modeling
from minirobera.config import RobertaConfig

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "model"
GRADS = ROOT / "tests" / "fixtures" / "grads"
RTOL, LOSS_ATOL = 1e-4, 1e-5
NOISE = 1e-5  # an analytically zero gradient: |noise| <= NOISE * the model's largest gradient
CHECKPOINTS = json.loads((GRADS / "manifest.json").read_text())["checkpoints"]


def analytically_zero(name, cls_name, n_layers):
    """Gradients that are zero in exact arithmetic, so only rounding noise is left:
    a key bias adds the same number to every score of a softmax row (which ignores it);
    QA's bias and multiple choice's bias add a constant to all logits of one softmax, and
    QA's gradient into the last hidden state sums to zero over the tokens, which zeroes the
    last LayerNorm's bias."""
    if name.endswith("attention.self.key.bias"):
        return True
    if cls_name == "RobertaForQuestionAnswering":
        return name in ("qa_outputs.bias",
                        f"roberta.encoder.layer.{n_layers - 1}.output.LayerNorm.bias")
    return cls_name == "RobertaForMultipleChoice" and name == "classifier.bias"


def assert_grads_close(ours, theirs, cls_name, n_layers):
    assert sorted(ours) == sorted(theirs)
    biggest = max(float(np.abs(g).max()) for g in theirs.values())
    for name, want in theirs.items():
        got = ours[name]
        assert got.shape == want.shape and got.dtype == np.float32, name
        assert np.isfinite(got).all(), name
        if analytically_zero(name, cls_name, n_layers):
            assert np.abs(got).max() <= NOISE * biggest, name
            assert np.abs(want).max() <= NOISE * biggest, name
            continue
        err = float(np.abs(got - want).max())
        assert err <= RTOL * float(np.abs(want).max()), f"{name}: {err} vs max {np.abs(want).max()}"


# --------------------------------------------------------------------- 1. recorded fixtures

@lru_cache(maxsize=None)
def recorded():
    out = {}
    with np.load(GRADS / "grads.npz") as z:
        for key in z.files:
            name, kind = key.split("/", 1)
            entry = out.setdefault(name, {"grads": {}})
            if kind == "loss":
                entry["loss"] = float(z[key])
            else:
                entry["grads"][kind.split("/", 1)[1]] = z[key]
    return out


def main_call(name):
    with np.load(MODELS / name / "reference.npz") as z:
        return {k.split("/", 2)[2]: z[k] for k in z.files if k.startswith("main/in/")}


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_gradients_equal_recorded_autograd(name):
    cls_name = name.split("-", 1)[1]
    model = getattr(modeling, cls_name).from_pretrained(MODELS / name / "safetensors")
    call = main_call(name)
    loss, grads = model.loss_and_grads(**call)
    want = recorded()[name]
    assert abs(float(loss) - want["loss"]) <= LOSS_ATOL
    assert abs(float(loss) - float(model(**call).loss)) <= LOSS_ATOL  # the inference forward's
    assert_grads_close(grads, want["grads"], cls_name, model.config.num_hidden_layers)


def test_the_fixtures_cover_every_class_with_labels():
    classes = {name.split("-", 1)[1] for name in CHECKPOINTS}
    assert classes == set(backward.HEAD_LOSSES)
    assert {name.split("-")[0] for name in CHECKPOINTS} == {"a", "b", "c"}


def test_grads_are_keyed_like_the_state_dict_and_tied_once():
    config = RobertaConfig(vocab_size=30, hidden_size=8, num_attention_heads=2,
                           intermediate_size=12, num_hidden_layers=1, max_position_embeddings=20)
    model = modeling.RobertaForMaskedLM(config, seed=0)
    ids = [[0, 5, 6, 2], [0, 7, 2, 1]]
    labels = [[-100, 5, 6, -100], [-100, 1, -100, -100]]  # one label is the pad id
    loss, grads = model.loss_and_grads(ids, [[1, 1, 1, 1], [1, 1, 1, 0]], labels=labels)
    sd = model.state_dict()
    assert sorted(grads) == sorted(sd) and "lm_head.decoder.weight" not in grads
    assert all(grads[k].shape == sd[k].shape for k in sd)
    # Quirk: the pad row gets no gradient from the lookup, but the tied decoder still adds
    # its part (the pad id is a label above, so its logit has a gradient)
    assert np.abs(grads["roberta.embeddings.word_embeddings.weight"][1]).max() > 0
    assert np.abs(grads["roberta.embeddings.position_embeddings.weight"][1]).max() == 0


@pytest.mark.parametrize("cls_name, labels, message", [
    ("RobertaForSequenceClassification", dict(labels=[1, 2, 0]), "3 labels for 2 predictions"),
    ("RobertaForSequenceClassification", dict(labels=[0.5, 1.0]), "needs labels of shape"),
    ("RobertaForQuestionAnswering", dict(start_positions=[1, 2, 3], end_positions=[1, 2]),
     "3 labels for 2"),
    ("RobertaForMultipleChoice", dict(labels=[0, 1]), "2 labels for 1"),
    ("RobertaForQuestionAnswering", dict(start_positions=[1, 2]), "needs start_positions and"),
])
def test_bad_labels_of_every_head_are_clear_errors(cls_name, labels, message):
    config = RobertaConfig(vocab_size=30, hidden_size=8, num_attention_heads=2, num_labels=2,
                           intermediate_size=12, num_hidden_layers=1, max_position_embeddings=20)
    model = getattr(modeling, cls_name)(config, seed=0)
    ids = [[[0, 5, 2], [0, 6, 2]]] if cls_name == "RobertaForMultipleChoice" else [[0, 5, 2],
                                                                                    [0, 7, 2]]
    with pytest.raises((ValueError, TypeError), match=message):
        model.loss_and_grads(ids, **labels)


@pytest.mark.parametrize("bad, message", [
    (dict(), "needs labels"),
    (dict(labels=[1, 2]), "labels has shape"),
    (dict(labels=[[0, 1, 99]]), "labels must be in"),
])
def test_bad_labels_are_clear_errors(bad, message):
    config = RobertaConfig(vocab_size=30, hidden_size=8, num_attention_heads=2,
                           intermediate_size=12, num_hidden_layers=1, max_position_embeddings=20)
    model = modeling.RobertaForMaskedLM(config, seed=0)
    with pytest.raises((ValueError, TypeError), match=message):
        model.loss_and_grads([[0, 5, 2]], **bad)


# ---------------------------------------------------------------- 3. finite differences

HEADS = {  # head params for random_params' sizes (D=6, V=11), and labels for B=2, T=5
    "RobertaForMaskedLM": ("lm_head", lambda r: {"labels": np.array([[-100, 4, 7, -100, -100],
                                                                     [3, -100, 9, 5, -100]])}),
    "RobertaForCausalLM": ("lm_head", lambda r: {"labels": r.integers(0, 11, (2, 5))}),
    "RobertaForSequenceClassification": ("seq", lambda r: {"labels": np.array([2, 0])}),
    "RobertaForTokenClassification": ("token", lambda r: {"labels": np.array(
        [[-100, 1, 2, 0, -100], [2, 2, -100, 1, 0]])}),
    "RobertaForQuestionAnswering": ("qa", lambda r: {"start_positions": np.array([1, 3]),
                                                     "end_positions": np.array([2, 9])}),
    "RobertaForMultipleChoice": ("mc", lambda r: {"labels": np.array([1]), "n_choices": 2}),
}


def float64_params(head, rng):
    p = layers.random_params(vocab=11, dim=6, heads=2, ffn=7, layers=2, positions=12, types=2,
                             seed=int(rng.integers(1 << 30)))

    def lin(o, i):
        return {"w": rng.normal(0, 0.5, (o, i)), "b": rng.normal(0, 0.2, o)}
    if head == "lm_head":
        p["lm_head"] = {"dense": lin(6, 6), "ln": {"g": 1 + rng.normal(0, .1, 6),
                                                   "b": rng.normal(0, .1, 6)}}
        p["lm_head"]["decoder"] = {"w": p["embeddings"]["word"], "b": rng.normal(0, .1, 11)}
    elif head == "seq":
        p["classifier"] = {"dense": lin(6, 6), "out_proj": lin(3, 6)}
    elif head == "token":
        p["classifier"] = lin(3, 6)
    elif head == "qa":
        p["qa_outputs"] = lin(2, 6)
    else:
        p["pooler"], p["classifier"] = lin(6, 6), lin(1, 6)
    return _map(lambda a: np.asarray(a, np.float64), p, tie=head == "lm_head")


def _map(fn, tree, tie=False):
    out = {k: (_map(fn, v) if isinstance(v, dict) else [_map(fn, x) for x in v]
               if isinstance(v, list) else fn(v)) for k, v in tree.items()}
    if tie:  # the decoder IS the word-embedding array
        out["lm_head"]["decoder"]["w"] = out["embeddings"]["word"]
    return out


def _leaves(tree, path=()):
    items = enumerate(tree) if isinstance(tree, list) else tree.items()
    for k, v in items:
        if isinstance(v, (dict, list)):
            yield from _leaves(v, path + (k,))
        else:
            yield path + (k,), v


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


class FixedDropout:
    """The same masks on every forward (re-seeded per call sequence): finite differences
    then see the function the backward differentiates."""

    def __init__(self, seed):
        self.seed, self.rng = seed, None

    def reset(self):
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, shape, kind):
        return (self.rng.random(shape) >= 0.25) / 0.75


@pytest.mark.parametrize("with_dropout", [False, True], ids=["eval", "dropout"])
@pytest.mark.parametrize("act", ["gelu", "gelu_new", "quick_gelu", "silu", "tanh"])
@pytest.mark.parametrize("cls_name", sorted(HEADS))
def test_finite_differences_float64(cls_name, act, with_dropout):
    rng = np.random.default_rng(zlib.crc32(f"{cls_name}/{act}/{with_dropout}".encode()))
    head, make_labels = HEADS[cls_name]
    params = float64_params(head, rng)
    config = RobertaConfig(vocab_size=11, hidden_size=6, num_attention_heads=2,
                           intermediate_size=7, num_hidden_layers=2, max_position_embeddings=12,
                           type_vocab_size=2, hidden_act=act, num_labels=3,
                           is_decoder=cls_name == "RobertaForCausalLM")
    ids = np.array([[0, 4, 7, 2, 1], [0, 3, 9, 5, 2]])  # right padding in row 0
    inputs = {"input_ids": ids, "attention_mask": (ids != 1).astype(np.int64),
              "token_type_ids": np.array([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])}
    labels = make_labels(rng)
    drop = FixedDropout(seed=7) if with_dropout else None

    def loss_of(p):
        if drop:
            drop.reset()
        loss, grads = backward.loss_and_grads(p, config, cls_name, inputs, labels, drop)
        return float(loss), grads

    _, grads = loss_of(params)
    for path, value in _leaves(params):
        if path == ("lm_head", "decoder", "w"):
            continue  # tied: the word embeddings' gradient holds it
        for flat in rng.choice(value.size, size=min(3, value.size), replace=False):
            idx = np.unravel_index(flat, value.shape)
            if path[-1] in ("word", "position") and idx[0] == config.pad_token_id:
                continue  # Quirk: padding_idx rows get no lookup gradient, by convention
            old, h = value[idx], 1e-6
            value[idx] = old + h
            up, _ = loss_of(params)
            value[idx] = old - h
            down, _ = loss_of(params)
            value[idx] = old
            numeric, analytic = (up - down) / (2 * h), _get(grads, path)[idx]
            assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(numeric), (path, idx)


@pytest.mark.parametrize("act", sorted(layers.ACTIVATIONS))
def test_activation_grad_matches_finite_differences(act):
    x = np.linspace(-5, 5, 41) + 0.013  # not exactly 0: relu has a kink there
    h = 1e-6
    fn = layers.ACTIVATIONS[act]
    if act == "gelu":  # exact GELU through math.erf (layers.erfc's fit is not smooth enough)
        fn = np.vectorize(lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))))
    numeric = (fn(x + h) - fn(x - h)) / (2 * h)
    np.testing.assert_allclose(backward.activation_grad(x, act), numeric, rtol=1e-6, atol=1e-8)


def test_layer_norm_and_attention_pieces_finite_differences():
    rng = np.random.default_rng(3)
    x, g, b = rng.normal(size=(2, 3, 5)), 1 + rng.normal(0, .1, 5), rng.normal(0, .1, 5)
    w = rng.normal(size=(2, 3, 5))  # a random linear functional of the output
    y, cache = backward.layer_norm_forward(x, g, b, 1e-5)
    np.testing.assert_allclose(y, layers.layer_norm(x, g, b, 1e-5), atol=1e-12)
    dx, dg, db = backward.layer_norm_backward(w, cache)
    for i in [(0, 0, 0), (1, 2, 4), (0, 1, 3)]:
        e = np.zeros_like(x)
        e[i] = 1e-6
        up = (backward.layer_norm_forward(x + e, g, b, 1e-5)[0] * w).sum()
        down = (backward.layer_norm_forward(x - e, g, b, 1e-5)[0] * w).sum()
        assert abs((up - down) / 2e-6 - dx[i]) < 1e-7


# ---------------------------------------------------------------------- 2. live vs torch

def _script():
    spec = importlib.util.spec_from_file_location(
        "make_grad_fixtures", ROOT / "scripts" / "make_grad_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.reference
def test_gradients_equal_live_autograd_on_hypothesis_configs():
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import torch
    from minirobera.checkpoint import params_from_state_dict

    script = _script()
    examples = max(5, int(os.environ.get("MINIROBERA_HYPOTHESIS_EXAMPLES", "100")) // 5)

    @st.composite
    def cases(draw):
        cls_name = draw(st.sampled_from(sorted(backward.HEAD_LOSSES)))
        heads, pad = draw(st.integers(1, 4)), draw(st.integers(0, 3))
        tokens = draw(st.integers(2, 9))
        # hidden >= 3: LayerNorm over 1 or 2 numbers gives constants (xhat = 0 or +-1), so
        # every gradient below it would be zero and only rounding noise would be compared
        kw = dict(num_hidden_layers=draw(st.integers(1, 3)), num_attention_heads=heads,
                  hidden_size=heads * draw(st.integers(3, 5)),
                  intermediate_size=draw(st.integers(1, 40)),
                  vocab_size=draw(st.integers(8, 60)), pad_token_id=pad, bos_token_id=0,
                  eos_token_id=2,
                  max_position_embeddings=pad + 1 + tokens + draw(st.integers(0, 4)),
                  type_vocab_size=draw(st.integers(1, 2)),
                  hidden_act=draw(st.sampled_from(sorted(layers.ACTIVATIONS))),
                  layer_norm_eps=draw(st.sampled_from([1e-5, 1e-12, 1e-3])),
                  num_labels=2 if cls_name == "RobertaForQuestionAnswering"
                  else draw(st.integers(1, 4)),
                  problem_type=draw(st.sampled_from([None, "multi_label_classification"]))
                  if cls_name == "RobertaForSequenceClassification" else None,
                  is_decoder=cls_name == "RobertaForCausalLM",
                  tie_word_embeddings=draw(st.booleans()))
        return cls_name, kw, tokens, draw(st.integers(1, 3)), draw(st.integers(0, 2 ** 31))

    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(cases())
    def check(case):
        cls_name, kw, tokens, batch, seed = case
        rng = np.random.default_rng(seed)
        config = transformers.RobertaConfig(**kw)
        config._attn_implementation = "eager"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(transformers, cls_name)(config).eval()
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, p in theirs.named_parameters():
                p.copy_(1 + 0.2 * torch.randn_like(p) if "orm.weight" in name
                        else 0.3 * torch.randn_like(p))
        rows = 2 * batch if cls_name == "RobertaForMultipleChoice" else batch
        call = _live_inputs(kw, tokens, rows, rng)
        call.update(_live_labels(cls_name, kw, call, rng))
        if cls_name == "RobertaForMultipleChoice":
            call = {k: v.reshape(batch, 2, tokens) if k != "labels" else v
                    for k, v in call.items()}
        want_loss, _ = script.torch_loss_and_grads(theirs, call)
        sd = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
        ours_config = RobertaConfig.from_dict(config.to_dict())
        cls = getattr(modeling, cls_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = params_from_state_dict(ours_config, sd, cls.parts)
            model = cls(ours_config, params)
        loss, _ = model.loss_and_grads(**call)
        if np.isnan(want_loss):
            return  # every label ignored: torch's loss is nan
        assert abs(float(loss) - want_loss) <= LOSS_ATOL
        # The gradients in float64 on both sides: then only the math is compared. (In
        # float32 a tensor whose gradient is small by cancellation keeps ~1e-3 relative
        # rounding error, in autograd as here; the float32 path is held to float32
        # autograd on the recorded fixtures above.)
        _, want = script.torch_loss_and_grads(theirs.double(), call)
        model.params = _map(lambda a: np.asarray(a, np.float64), model.params,
                            tie="lm_head" in cls.parts and ours_config.tie_word_embeddings)
        _, grads = model.loss_and_grads(**call)
        want = {k: v.astype(np.float32) for k, v in want.items()}
        assert_grads_close(grads, want, cls_name, kw["num_hidden_layers"])

    check()


def _live_inputs(kw, tokens, rows, rng):
    ids = rng.integers(0, kw["vocab_size"], (rows, tokens))
    mask = np.ones((rows, tokens), np.int64)
    for b in range(rows):  # random right / left padding, at least one real token
        n_pad = rng.integers(0, tokens)
        mask[b, slice(0, n_pad) if rng.random() < 0.5 else slice(tokens - n_pad, tokens)] = 0
    ids[mask == 0] = kw["pad_token_id"]
    inputs = {"input_ids": ids, "attention_mask": mask}
    if kw["type_vocab_size"] > 1:
        inputs["token_type_ids"] = rng.integers(0, 2, (rows, tokens))
    return inputs


def _live_labels(cls_name, kw, inputs, rng):
    rows, T = inputs["input_ids"].shape
    n = kw["num_labels"]
    if cls_name in ("RobertaForMaskedLM", "RobertaForCausalLM"):
        words = rng.integers(0, kw["vocab_size"], (rows, T))
        labels = np.where(rng.random((rows, T)) < 0.5, words, -100)
        labels[0, 0] = labels[0, -1] = 1  # at least one label counts, in both LMs
        return {"labels": labels}
    if cls_name == "RobertaForTokenClassification":
        labels = rng.integers(0, n, (rows, T))
        labels[0, 1:] = -100
        return {"labels": labels}
    if cls_name == "RobertaForQuestionAnswering":
        return {"start_positions": rng.integers(0, T + 3, rows),
                "end_positions": rng.integers(0, T, rows)}
    if cls_name == "RobertaForMultipleChoice":
        return {"labels": rng.integers(0, 2, rows // 2)}
    if kw.get("problem_type") == "multi_label_classification":
        return {"labels": (rng.random((rows, n)) < 0.5).astype(np.float32)}
    if n == 1:
        return {"labels": rng.normal(size=rows).astype(np.float32)}
    return {"labels": rng.integers(0, n, rows)}


@pytest.mark.reference
def test_inputs_embeds_and_untied_decoder_equal_live_autograd():
    """inputs_embeds (no word lookup: its gradient is zero) and an untied MLM decoder
    (its own weight; lm_head.bias unused), in float64 on both sides."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from minirobera.checkpoint import params_from_state_dict

    script = _script()
    kw = dict(vocab_size=23, hidden_size=8, num_attention_heads=2, intermediate_size=11,
              num_hidden_layers=2, max_position_embeddings=12, pad_token_id=1,
              tie_word_embeddings=False)
    config = transformers.RobertaConfig(**kw)
    config._attn_implementation = "eager"
    theirs = transformers.RobertaForMaskedLM(config).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0.0, 0.3)
    rng = np.random.default_rng(0)
    call = {"inputs_embeds": rng.normal(size=(2, 5, 8)).astype(np.float32),
            "attention_mask": np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]),
            "labels": np.array([[-100, 3, 4, -100, -100], [5, -100, -100, 6, 7]])}
    want_loss, _ = script.torch_loss_and_grads(theirs, call)
    sd = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    ours_config = RobertaConfig.from_dict(config.to_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, _ = params_from_state_dict(ours_config, sd, modeling.RobertaForMaskedLM.parts)
        model = modeling.RobertaForMaskedLM(ours_config, params)
    loss, _ = model.loss_and_grads(**call)
    assert abs(float(loss) - want_loss) <= LOSS_ATOL
    _, want = script.torch_loss_and_grads(theirs.double(), call)
    model.params = _map(lambda a: np.asarray(a, np.float64), model.params)
    _, grads = model.loss_and_grads(**call)
    assert np.abs(grads["roberta.embeddings.word_embeddings.weight"]).max() == 0
    assert np.abs(grads["lm_head.bias"]).max() == 0
    assert_grads_close(grads, {k: v.astype(np.float32) for k, v in want.items()},
                       "RobertaForMaskedLM", 2)


class RecordingDropout:
    """training.Dropout that also keeps every mask it hands out, in call order."""

    def __init__(self, config, seed):
        from minirobera import training

        self.inner, self.masks = training.Dropout(config, seed=seed), []

    def __call__(self, shape, kind):
        mask = self.inner(shape, kind)
        self.masks.append((kind, self.inner.rates[kind], mask))
        return mask


@pytest.mark.reference
@pytest.mark.parametrize("cls_name", sorted(backward.HEAD_LOSSES))
def test_dropout_sites_equal_transformers_training_mode(cls_name, monkeypatch):
    """transformers in train() mode, its dropouts fed our masks in call order: same sites,
    same rates, same shapes, and the same gradients (float64 on both sides)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from minirobera.checkpoint import params_from_state_dict

    script = _script()
    kw = dict(vocab_size=23, hidden_size=8, num_attention_heads=2, intermediate_size=11,
              num_hidden_layers=2, max_position_embeddings=12, pad_token_id=1,
              num_labels=2 if cls_name == "RobertaForQuestionAnswering" else 3,
              hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.3,
              classifier_dropout=0.4, is_decoder=cls_name == "RobertaForCausalLM")
    config = transformers.RobertaConfig(**kw)
    config._attn_implementation = "eager"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(transformers, cls_name)(config).double().train()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0.0, 0.3)
    rng = np.random.default_rng(1)
    rows = 4
    call = _live_inputs(dict(kw, type_vocab_size=1), 5, rows, rng)
    call.update(_live_labels(cls_name, dict(kw, type_vocab_size=1), call, rng))
    if cls_name == "RobertaForMultipleChoice":
        call = {k: v.reshape(2, 2, 5) if k != "labels" else v for k, v in call.items()}
    ours_config = RobertaConfig.from_dict(config.to_dict())
    cls = getattr(modeling, cls_name)
    sd = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, _ = params_from_state_dict(ours_config, sd, cls.parts)
        model = cls(ours_config, params)
    model.params = _map(lambda a: np.asarray(a, np.float64), model.params,
                        tie="lm_head" in cls.parts)
    drop = RecordingDropout(ours_config, seed=5)
    loss, grads = model.loss_and_grads(**call, dropout=drop)
    masks = list(drop.masks)

    def our_masks(x, p=0.5, training=True, inplace=False):
        kind, rate, mask = masks.pop(0)
        assert abs(p - rate) < 1e-12 and tuple(x.shape) == mask.shape, (kind, p, x.shape)
        return x * torch.from_numpy(mask.astype(np.float64))

    monkeypatch.setattr(torch.nn.functional, "dropout", our_masks)
    want_loss, want = script.torch_loss_and_grads(theirs, call)
    assert not masks  # every mask used: the same number of dropout sites
    assert abs(float(loss) - want_loss) <= LOSS_ATOL  # (erfc is a fit: 1.2e-7 relative)
    assert_grads_close({k: v.astype(np.float32) for k, v in grads.items()},
                       {k: v.astype(np.float32) for k, v in want.items()}, cls_name, 2)
