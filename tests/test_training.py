"""Training (training.py): AdamW + RoBERTa's schedule + clipping against torch, dropout, the loop.

The ten-step run is recorded in tests/fixtures/grads/adamw.npz by scripts/make_grad_fixtures.py
(torch.optim.AdamW with a no-decay group, clip_grad_norm_, transformers'
get_linear_schedule_with_warmup; versions in that folder's manifest.json), so the main check
needs no torch; the live tests rerun torch where it is installed.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from minirobera import modeling, training
from minirobera.config import RobertaConfig

ROOT = Path(__file__).resolve().parents[1]
GRADS = ROOT / "tests" / "fixtures" / "grads"
MODELS = ROOT / "tests" / "fixtures" / "model"
ADAMW = json.loads((GRADS / "manifest.json").read_text())["adamw"]
RTOL = 1e-5


def recorded_run():
    batches, losses, params = {}, {}, {}
    with np.load(GRADS / "adamw.npz") as z:
        for key in z.files:
            kind, rest = key.split("/", 1)
            if kind == "batch":
                i, name = rest.split("/")
                batches.setdefault(int(i), {})[name] = z[key]
            elif kind == "loss":
                losses[int(rest)] = float(z[key])
            else:
                params[rest] = z[key]
    return [batches[i] for i in sorted(batches)], [losses[i] for i in sorted(losses)], params


def relative_error(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def test_ten_adamw_steps_equal_torch_recorded():
    batches, want_losses, want = recorded_run()
    model = modeling.RobertaForMaskedLM.from_pretrained(MODELS / ADAMW["checkpoint"]
                                                        / "safetensors")
    losses = training.train(model, batches, lr=ADAMW["lr"], warmup_steps=ADAMW["warmup_steps"],
                            total_steps=ADAMW["steps"], weight_decay=ADAMW["weight_decay"],
                            max_grad_norm=ADAMW["max_grad_norm"], betas=tuple(ADAMW["betas"]),
                            eps=ADAMW["eps"])
    np.testing.assert_allclose(losses, want_losses, rtol=0, atol=1e-5)
    assert want_losses[-1] < want_losses[0]  # the run moves the loss
    ours = training.parameters(model)
    assert sorted(ours) == sorted(want)
    for name, value in want.items():
        if name.endswith("attention.self.key.bias"):
            # its gradient is zero in exact arithmetic (softmax ignores a shift of a whole
            # row), so both sides hold rounding noise, which Adam divides by its own RMS:
            # the steps differ in sign. The optimiser alone is checked on it below
            # (test_adamw_schedule_and_clipping_equal_torch_on_the_same_gradients).
            continue
        assert relative_error(ours[name], value) <= RTOL, name
    # the inference forward (fused q/k/v layout) sees the trained weights too
    out = model(**{k: v for k, v in batches[0].items()})
    loss, _ = model.loss_and_grads(**batches[0])
    assert abs(float(out.loss) - float(loss)) <= 1e-5


def test_the_run_really_clips_warms_up_and_decays():
    """The recorded run exercises every part: clipping is active, warmup starts at lr 0."""
    batches, _, _ = recorded_run()
    model = modeling.RobertaForMaskedLM.from_pretrained(MODELS / ADAMW["checkpoint"]
                                                        / "safetensors")
    _, grads = model.loss_and_grads(**batches[0])
    norm = training.clip_grad_norm(grads, ADAMW["max_grad_norm"])
    assert norm > ADAMW["max_grad_norm"]
    total = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    assert abs(total - ADAMW["max_grad_norm"]) < 1e-5
    assert training.linear_schedule(0, ADAMW["warmup_steps"], ADAMW["steps"]) == 0.0


def test_parameters_are_the_models_arrays_and_writable():
    model = modeling.RobertaForMaskedLM.from_pretrained(MODELS / "a-RobertaForMaskedLM"
                                                        / "safetensors")
    params = training.parameters(model)
    assert sorted(params) == sorted(model.state_dict())
    assert all(p.flags.writeable for p in params.values())
    word = params["roberta.embeddings.word_embeddings.weight"]
    assert model.params["lm_head"]["decoder"]["w"] is word  # still tied
    before = model([[0, 5, 6, 2]]).logits
    word[5] += 1.0
    assert not np.allclose(model([[0, 5, 6, 2]]).logits, before)


def test_no_decay_group():
    model = modeling.RobertaForSequenceClassification(
        RobertaConfig(vocab_size=20, hidden_size=8, num_attention_heads=2, intermediate_size=12,
                      num_hidden_layers=1, max_position_embeddings=16), seed=0)
    names = [n for n in training.parameters(model) if training.no_decay(n)]
    assert all(n.endswith("bias") or "LayerNorm.weight" in n for n in names)
    assert sum("LayerNorm.weight" in n for n in names) == 3  # embeddings + 2 per layer
    assert "classifier.dense.weight" not in names


# -------------------------------------------------------------------------------- dropout

def small_config(**kw):
    return RobertaConfig(vocab_size=30, hidden_size=8, num_attention_heads=2,
                         intermediate_size=12, num_hidden_layers=2, max_position_embeddings=20,
                         **kw)


def test_dropout_is_seeded_and_off_by_default():
    model = modeling.RobertaForSequenceClassification(small_config(), seed=0)
    batch = dict(input_ids=[[0, 5, 6, 7, 2]], labels=[1])
    plain = model.loss_and_grads(**batch)[0]
    assert plain == model(**batch).loss  # no dropout unless asked
    a = model.loss_and_grads(**batch, dropout=training.Dropout(model.config, seed=3))[0]
    b = model.loss_and_grads(**batch, dropout=training.Dropout(model.config, seed=3))[0]
    c = model.loss_and_grads(**batch, dropout=training.Dropout(model.config, seed=4))[0]
    assert a == b and a != c and a != plain
    assert model(**batch).loss == plain  # inference is unchanged afterwards


def test_dropout_rates_zero_is_no_dropout():
    config = small_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = modeling.RobertaForTokenClassification(config, seed=0)
    batch = dict(input_ids=[[0, 5, 6, 7, 2]], labels=[[-100, 1, 0, 1, -100]])
    loss, grads = model.loss_and_grads(**batch, dropout=training.Dropout(config, seed=0))
    want_loss, want = model.loss_and_grads(**batch)
    assert loss == want_loss
    assert all(np.array_equal(grads[k], want[k]) for k in want)


def test_dropout_masks_keep_the_expectation():
    drop = training.Dropout(small_config(attention_probs_dropout_prob=0.25), seed=0)
    mask = drop((200_000,), "attention")
    assert abs((mask == 0).mean() - 0.25) < 0.005
    assert abs(mask.mean() - 1.0) < 0.01
    assert set(np.unique(mask).tolist()) == {0.0, np.float32(1 / 0.75)}
    # the config refuses such a rate itself; a config changed after it was built, Dropout does
    with pytest.raises(ValueError, match=r"hidden_dropout_prob must be in \[0, 1\]"):
        small_config(hidden_dropout_prob=1.5)
    config = small_config()
    config.hidden_dropout_prob = 1.5
    with pytest.raises(ValueError, match="dropout rate"):
        training.Dropout(config)


# ------------------------------------------------------------------------------- the loop

def test_train_fits_a_tiny_task():
    model = modeling.RobertaForSequenceClassification(small_config(), seed=0)
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 30, (8, 6))
    ids[:, 0], ids[:, -1] = 0, 2
    labels = (ids[:, 1] > 16).astype(np.int64)  # the first word decides
    batch = {"input_ids": ids, "labels": labels}
    losses = training.train(model, [batch] * 40, lr=3e-2, warmup_steps=4,
                            dropout=training.Dropout(model.config, seed=0))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


# ------------------------------------------------------------------------ live, with torch

@pytest.mark.reference
def test_adamw_schedule_and_clipping_equal_torch_on_the_same_gradients():
    """The optimiser alone: the same gradients into both, every parameter (incl. those whose
    gradient is pure rounding noise, which Adam would otherwise amplify differently)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    rng = np.random.default_rng(0)
    shapes = {"a.weight": (5, 4), "a.bias": (5,), "LayerNorm.weight": (4,), "b.weight": (3, 3)}
    ours = {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}
    theirs = {n: torch.nn.Parameter(torch.from_numpy(v.copy())) for n, v in ours.items()}
    groups = [{"params": [p for n, p in theirs.items() if not training.no_decay(n)],
               "weight_decay": 0.05},
              {"params": [p for n, p in theirs.items() if training.no_decay(n)],
               "weight_decay": 0.0}]
    opt_t = torch.optim.AdamW(groups, lr=0.05, betas=(0.9, 0.98), eps=1e-6)
    sched = transformers.get_linear_schedule_with_warmup(opt_t, 3, 10)
    opt = training.AdamW(ours, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05)
    for step in range(10):
        grads = {n: rng.normal(0, 2.0, s).astype(np.float32) for n, s in shapes.items()}
        for n, p in theirs.items():
            p.grad = torch.from_numpy(grads[n].copy())
        torch.nn.utils.clip_grad_norm_(list(theirs.values()), 1.0)
        assert training.clip_grad_norm(grads, 1.0) > 1.0
        opt_t.step()
        assert abs(training.linear_schedule(step, 3, 10) * 0.05 - sched.get_last_lr()[0]) < 1e-12
        opt.step(grads, 0.05 * training.linear_schedule(step, 3, 10))
        sched.step()
    for n in shapes:
        assert relative_error(ours[n], theirs[n].detach().numpy()) <= RTOL, n


@pytest.mark.reference
def test_recorded_run_still_matches_torch():
    """The fixture against the installed torch (catches a stale adamw.npz)."""
    pytest.importorskip("torch")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_grad_fixtures",
                                                  ROOT / "scripts" / "make_grad_fixtures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    batches, want_losses, want = recorded_run()
    model = script.load_model(ADAMW["checkpoint"], "RobertaForMaskedLM")
    losses = script.torch_train(model, batches, ADAMW["steps"], ADAMW["warmup_steps"],
                                ADAMW["lr"], tuple(ADAMW["betas"]), ADAMW["eps"],
                                ADAMW["weight_decay"], ADAMW["max_grad_norm"])
    np.testing.assert_allclose(losses, want_losses, rtol=0, atol=1e-6)
    for name, p in model.named_parameters():
        assert relative_error(want[name], p.detach().numpy()) <= 1e-6, name


# ------------------------------------------------------------------ AdamW's one-pass kernel

@pytest.mark.parametrize("layout", ["vector", "rows", "transposed", "square-transposed",
                                    "strided-columns", "grad-other-layout"])
def test_adamw_kernel_equals_the_readable_update(layout):
    """kernels.adamw_update (Numba, one pass) against the readable NumPy update in
    training.AdamW, on every layout a parameter has: biases, [V,D] tables, fused.py's
    transposed weights (square ones too), q/k/v views into the fused qkv array."""
    from minirobera import kernels

    rng = np.random.default_rng(0)
    base = {"vector": lambda: rng.standard_normal(37),
            "rows": lambda: rng.standard_normal((5, 7)),
            "transposed": lambda: np.ascontiguousarray(rng.standard_normal((7, 5))).T,
            "square-transposed": lambda: np.ascontiguousarray(rng.standard_normal((6, 6))).T,
            "strided-columns": lambda: rng.standard_normal((7, 15))[:, 5:10].T,
            "grad-other-layout": lambda: np.ascontiguousarray(rng.standard_normal((7, 5))).T}
    p0 = base[layout]().astype(np.float32)
    g = rng.standard_normal(p0.shape).astype(np.float32)
    if layout == "grad-other-layout":
        g = np.asfortranarray(g)
    results = []
    for backend in ("numpy", "numba"):
        old = kernels.set_backend(backend)
        try:
            holder = np.array(p0.T if p0.ndim == 2 and not p0.flags.c_contiguous else p0)
            p = holder.T if holder.shape != p0.shape else holder  # p0's layout, writable
            opt = training.AdamW({"w": p}, weight_decay=0.1)
            for step in range(3):
                opt.step({"w": g * (step + 1)}, lr=0.01)
            results.append((p.copy(), opt.m["w"].copy(), opt.v["w"].copy()))
        finally:
            kernels.set_backend(old)
    for readable, fast in zip(*results):
        np.testing.assert_allclose(fast, readable, rtol=1e-6, atol=1e-7)


def test_training_after_an_inference_call_still_moves_q_k_v():
    """parameters() must hand the optimiser the arrays inference reads: it used to re-point
    the q/k/v biases, fused.py then rebuilt qkv at the next forward, and from there on
    AdamW updated arrays the model no longer used (q, k, v stopped training)."""
    model = modeling.RobertaForMaskedLM(small_config(), seed=0)
    optimizer = training.AdamW(training.parameters(model))
    batch = {"input_ids": np.array([[0, 5, 6, 7, 2]]), "labels": np.array([[-100, 5, 6, -100, -100]])}
    training.training_step(model, batch, optimizer, 1e-2)
    model(batch["input_ids"])  # an evaluation between steps, as notebook 10 does
    layer = model.params["layers"][0]
    names = {("q", "w"): "query.weight", ("q", "b"): "query.bias", ("k", "w"): "key.weight",
             ("k", "b"): "key.bias", ("v", "w"): "value.weight", ("v", "b"): "value.bias"}
    before = {part: layer[part[0]][part[1]].copy() for part in names}
    training.training_step(model, batch, optimizer, 1e-2)
    for (name, wb), value in before.items():
        array = layer[name][wb]
        assert optimizer.params[f"roberta.encoder.layer.0.attention.self.{names[name, wb]}"] is array
        if (name, wb) != ("k", "b"):  # the key bias' gradient is zero (softmax ignores it)
            assert not np.array_equal(value, array), (name, wb)
