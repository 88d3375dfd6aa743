"""The model against transformers' own outputs, and the forward's known answers and errors.

The fixtures in tests/fixtures/model/ were written by scripts/make_model_fixtures.py with
the transformers / torch versions named in its manifest.json (eager attention, float32).
Every model class x three configs x every checkpoint format; every output, hidden state
and attention map must be within 1e-5. These tests need neither torch nor transformers.
"""

import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from minirobera import kernels, modeling
from minirobera.config import RobertaConfig
from minirobera.layers import position_ids_from_input_ids

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "model"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ATOL = 1e-5  # float32, every output

CASES = [pytest.param(entry, fmt, id=f"{entry['name']}-{fmt}")
         for entry in MANIFEST["checkpoints"] for fmt in entry["formats"]]


@lru_cache(maxsize=None)
def reference(name):
    """{call: ({input name: array}, {output name: array})} as the fixture script recorded it."""
    calls = {}
    with np.load(FIXTURES / name / "reference.npz") as z:
        for key in z.files:
            call, kind, field = key.split("/", 2)
            calls.setdefault(call, ({}, {}))[kind == "out"][field] = z[key]
    return calls


@lru_cache(maxsize=None)
def load(name, fmt, cls_name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean checkpoint loads without any warning
        return getattr(modeling, cls_name).from_pretrained(FIXTURES / name / fmt)


def fully_masked_queries(mask, causal):  # [B,T] -> [B,T] bool
    """Query rows that may attend to no key at all. transformers' eager and SDPA attention
    disagree there (mean of V vs zeros), so those rows are never compared."""
    mask = np.asarray(mask).reshape(-1, np.shape(mask)[-1]) != 0
    seen = np.cumsum(mask, axis=1) > 0 if causal else np.broadcast_to(mask.any(1, keepdims=True), mask.shape)
    return ~seen


def attention_mask_of(inputs):
    if "attention_mask" in inputs:
        return inputs["attention_mask"]
    if "input_ids" in inputs:
        return np.ones_like(inputs["input_ids"])
    return np.ones(inputs["inputs_embeds"].shape[:-1])


def output_value(out, field):
    if "/" in field:  # hidden_states/3, attentions/0
        name, i = field.split("/")
        return getattr(out, name)[int(i)]
    return getattr(out, field)


def compare(field, ours, theirs, skip_rows):
    """max |ours - theirs| over the rows that are compared."""
    assert ours.dtype == np.float32, field
    assert ours.shape == theirs.shape, (field, ours.shape, theirs.shape)
    keep = ~skip_rows
    if field.startswith("attentions"):  # [B,H,T,T]: skip query rows
        ours, theirs = ours.transpose(0, 2, 1, 3)[keep], theirs.transpose(0, 2, 1, 3)[keep]
    elif ours.ndim >= 2 and ours.shape[:2] == skip_rows.shape:  # [B,T,...]
        ours, theirs = ours[keep], theirs[keep]
    assert np.isfinite(ours).all(), field
    return float(np.max(np.abs(ours - theirs))) if ours.size else 0.0


@pytest.fixture(params=kernels.BACKENDS)
def backend(request):
    """Run a test under each kernel setting: the Numba kernels, their NumPy twins, and
    "readable" (layers.py and heads.py as written, no fused layout)."""
    old = kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(old)


@pytest.mark.parametrize("entry,fmt", CASES)
def test_fixture_parity(entry, fmt, backend):
    assert_matches_reference(load(entry["name"], fmt, entry["class"]), entry["name"])


def assert_matches_reference(model, name):
    """Every recorded call of fixture `name`: every output within ATOL of transformers'."""
    for call, (inputs, expected) in reference(name).items():
        full = any(k.startswith("hidden_states") for k in expected)
        out = model(**inputs, output_hidden_states=full, output_attentions=full)
        skip = fully_masked_queries(attention_mask_of(inputs), model.config.is_decoder)
        for field, theirs in expected.items():
            diff = compare(field, output_value(out, field), theirs, skip)
            assert diff <= ATOL, f"{call}: {field} differs by {diff:.3g}"
        assert set(out.keys()) == {f.split("/")[0] for f in expected}, call


@pytest.mark.parametrize("entry", MANIFEST["checkpoints"], ids=lambda e: e["name"])
def test_fixture_parity_with_blas_for_every_product(entry, monkeypatch):
    """Every product on BLAS (and the q/k/v bias folded wherever the mask allows), the side a
    longer input takes, whatever fused.FEW_ROWS is and however many rows a fixture has."""
    from minirobera import fused

    monkeypatch.setattr(fused, "FEW_ROWS", 0)
    assert_matches_reference(load(entry["name"], entry["formats"][0], entry["class"]),
                             entry["name"])


@pytest.mark.parametrize("entry", MANIFEST["checkpoints"], ids=lambda e: e["name"])
def test_fixture_parity_one_sequence_at_a_time(entry):
    """One sequence alone is at most 18 rows, which kernels.few_rows_linear multiplies
    (fused.FEW_ROWS). Each sequence's outputs do not depend on the others', so each must
    equal its row of the reference."""
    model = load(entry["name"], entry["formats"][0], entry["class"])
    compared = 0
    for call, (inputs, expected) in reference(entry["name"]).items():
        # the loss is one number for the whole batch: left out, with the labels
        inputs = {k: v for k, v in inputs.items() if not k.endswith(("labels", "positions"))
                  or k == "position_ids"}
        expected = {k: v for k, v in expected.items() if k != "loss"}
        n = len(next(iter(inputs.values())))
        for b in range(n):
            one = {k: v[b:b + 1] for k, v in inputs.items()}
            assert next(iter(one.values())).shape[:-1 - ("inputs_embeds" in one)] in ((1,), (1, 2))
            full = any(k.startswith("hidden_states") for k in expected)
            out = model(**one, output_hidden_states=full, output_attentions=full)
            skip = fully_masked_queries(attention_mask_of(one), model.config.is_decoder)
            for field, theirs in expected.items():
                f = len(theirs) // n  # multiple choice: hidden states are [B*C, T, D]
                diff = compare(field, output_value(out, field), theirs[b * f:(b + 1) * f], skip)
                assert diff <= ATOL, f"{call}[{b}]: {field} differs by {diff:.3g}"
                compared += 1
    assert compared >= 8


def test_fixtures_cover_every_class_activation_and_format():
    entries = MANIFEST["checkpoints"]
    assert {e["class"] for e in entries} == {
        "RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM",
        "RobertaForSequenceClassification", "RobertaForTokenClassification",
        "RobertaForQuestionAnswering", "RobertaForMultipleChoice"}
    assert {e["config"]["hidden_act"] for e in entries} >= {
        "gelu", "gelu_new", "gelu_fast", "quick_gelu", "relu", "silu", "tanh"}
    for cls in {e["class"] for e in entries}:
        shapes = {(e["config"]["num_hidden_layers"], e["config"]["hidden_size"])
                  for e in entries if e["class"] == cls}
        assert len(shapes) >= 3, cls
    formats = {f for e in entries for f in e["formats"]}
    assert formats >= {"safetensors", "bin_zip", "bin_legacy", "safetensors_sharded", "bin_sharded"}


# ----------------------------------------------------------------------- known answers


@pytest.mark.parametrize("ids,expected", [
    ([0, 31414, 232, 2, 1, 1], [2, 3, 4, 5, 1, 1]),        # right padding (REFERENCE.md)
    ([1, 1, 0, 31414, 232, 2], [1, 1, 2, 3, 4, 5]),        # left padding
    ([0, 31414, 1, 232, 2], [2, 3, 1, 4, 5]),              # a pad mid-text: 1, no advance
], ids=["right-pad", "left-pad", "pad-inside"])
def test_position_ids_known_answers(ids, expected):
    assert position_ids_from_input_ids(np.array([ids]), 1).tolist() == [expected]
    inputs = modeling.prepare_inputs(RobertaConfig(), ids)
    assert inputs["position_ids"].tolist() == [expected]


def test_position_ids_from_inputs_embeds():
    embeds = np.zeros((2, 3, 768), np.float32)
    assert modeling.prepare_inputs(RobertaConfig(), inputs_embeds=embeds)["position_ids"].tolist() \
        == [[2, 3, 4], [2, 3, 4]]


def tiny_model(cls=modeling.RobertaModel, **kw):
    config = dict(vocab_size=40, hidden_size=8, num_attention_heads=2, intermediate_size=6,
                  num_hidden_layers=1)
    config.update(kw)
    return cls(RobertaConfig(**config), seed=0)


def test_512_tokens_fit_and_513_overflow_the_514_row_table():
    model = tiny_model(max_position_embeddings=514)
    out = model(np.full((1, 512), 5))
    assert out.last_hidden_state.shape == (1, 512, 8)
    with pytest.raises(ValueError, match=r"513 tokens.*max_position_embeddings=514.*at most 512"
                                         r".*truncat"):
        model(np.full((1, 513), 5))
    # padding does not use positions: 512 tokens + pads still fit
    assert model(np.array([[5] * 512 + [1] * 4])).last_hidden_state.shape == (1, 516, 8)


def test_causal_lm_prefix_is_unchanged_by_appended_tokens():
    entry = "a-RobertaForCausalLM"
    model = load(entry, "safetensors", "RobertaForCausalLM")
    ids = np.array([[0, 17, 42, 8, 91, 33, 2, 54]])
    full = model(ids, output_hidden_states=True)
    # equal to float32 rounding, not bit for bit: a BLAS may sum a row in an order that
    # depends on how many rows the call has (OpenBLAS: its matrix-vector path for one row;
    # its AVX2 kernels for any count: 5 ulp seen on logits near 2).
    # A leak from later tokens moves the prefix by far more (the MLM check below: > 1e-3).
    for n in (1, 3, 6):
        prefix = model(ids[:, :n], output_hidden_states=True)
        np.testing.assert_allclose(prefix.logits, full.logits[:, :n], atol=1e-6, rtol=2e-6)
        for a, b in zip(prefix.hidden_states, full.hidden_states):
            np.testing.assert_allclose(a, b[:, :n], atol=1e-6, rtol=2e-6)
    # ...while a bidirectional model's prefix does change
    mlm = load("a-RobertaForMaskedLM", "safetensors", "RobertaForMaskedLM")
    assert np.abs(mlm(ids[:, :3]).logits - mlm(ids).logits[:, :3]).max() > 1e-3


@pytest.mark.parametrize("cls_name", ["RobertaModel", "RobertaForCausalLM",
                                      "RobertaForSequenceClassification"])
def test_all_zero_attention_mask_row_gives_no_nan(cls_name):
    entry = f"a-{cls_name}"
    model = load(entry, "safetensors", cls_name)
    ids = np.array([[0, 5, 6, 2], [0, 7, 8, 2]])
    mask = np.array([[1, 1, 1, 1], [0, 0, 0, 0]])
    out = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    for value in out.to_tuple():
        for array in (value if isinstance(value, tuple) else (value,)):
            assert np.isfinite(array).all()
    # the masked row attends uniformly (the mean of V), as transformers' eager attention
    np.testing.assert_allclose(out.attentions[0][1], 0.25, atol=1e-7)
    # and the other row is not affected by it
    alone = model(ids[:1], output_hidden_states=True)
    np.testing.assert_allclose(out.hidden_states[-1][0], alone.hidden_states[-1][0], atol=1e-6)


# ------------------------------------------------------------------------ input forms


def test_one_sequence_lists_and_arrays_agree():
    model = tiny_model(modeling.RobertaForMaskedLM)
    ids = [0, 5, 6, 2]
    one = model(ids)
    assert one.logits.shape == (1, 4, 40)  # a 1-D input keeps a batch of 1
    np.testing.assert_array_equal(one.logits, model(np.array([ids])).logits)
    np.testing.assert_array_equal(one.logits, model([ids], attention_mask=[[1, 1, 1, 1]]).logits)


@pytest.mark.parametrize("kernel_backend", kernels.BACKENDS)
def test_hidden_states_kept_or_not_give_the_same_output(kernel_backend):
    # without output_hidden_states every layer writes over the previous layer's output
    # (layers.encoder, keep_hidden_states=False): same numbers, and nothing returned aliased
    old = kernels.set_backend(kernel_backend)
    try:
        model = tiny_model(modeling.RobertaModel)
        ids = np.array([[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]])
        full = model(ids, attention_mask=(ids != 1).astype(int), output_hidden_states=True)
        lean = model(ids, attention_mask=(ids != 1).astype(int))
        again = model(ids[:1])  # a later call must not overwrite `lean`'s arrays
    finally:
        kernels.set_backend(old)
    np.testing.assert_array_equal(lean.last_hidden_state, full.last_hidden_state)
    np.testing.assert_array_equal(lean.last_hidden_state, full.hidden_states[-1])
    np.testing.assert_array_equal(lean.pooler_output, full.pooler_output)
    assert lean.hidden_states is None
    assert len(full.hidden_states) == model.config.num_hidden_layers + 1
    assert not np.shares_memory(lean.last_hidden_state, again.last_hidden_state)
    assert len({id(h) for h in full.hidden_states}) == len(full.hidden_states)
    assert not any(np.shares_memory(a, b) for i, a in enumerate(full.hidden_states)
                   for b in full.hidden_states[i + 1:])


def test_output_object_reads_like_transformers():
    out = tiny_model()([0, 5, 2], output_attentions=True)
    assert out.keys() == ["last_hidden_state", "pooler_output", "attentions"]
    assert out["pooler_output"] is out.pooler_output and out[0] is out.last_hidden_state
    assert "hidden_states" not in out
    with pytest.raises(KeyError, match="hidden_states"):
        out["hidden_states"]


def test_multiple_choice_accepts_one_example_and_a_batch():
    model = tiny_model(modeling.RobertaForMultipleChoice)
    choices = [[0, 5, 6, 2], [0, 7, 2, 1]]
    one = model(choices, attention_mask=[[1, 1, 1, 1], [1, 1, 1, 0]])
    batch = model([choices, choices], attention_mask=[[[1, 1, 1, 1], [1, 1, 1, 0]]] * 2)
    assert one.logits.shape == (1, 2) and batch.logits.shape == (2, 2)
    np.testing.assert_allclose(batch.logits[1], one.logits[0], atol=1e-7)


def test_token_type_ids_select_rows_of_the_table():
    model = tiny_model(type_vocab_size=2)
    ids = [[0, 5, 6, 2]]
    zero = model(ids, token_type_ids=[[0, 0, 0, 0]]).last_hidden_state
    np.testing.assert_array_equal(zero, model(ids).last_hidden_state)  # row 0 is the default
    assert np.abs(model(ids, token_type_ids=[[0, 0, 1, 1]]).last_hidden_state - zero).max() > 1e-3


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(input_ids=[[0, 5, 40]]), ValueError, r"token id 40 .*vocab_size=40"),
    (dict(input_ids=[[0, -3, 41]]), ValueError, r"token id -3 .*vocab_size=40"),
    (dict(input_ids=[[0.0, 5.0]]), TypeError, r"input_ids must hold integers.*float64"),
    (dict(input_ids=np.zeros((0, 4), int)), ValueError, r"empty"),
    (dict(input_ids=[]), ValueError, r"empty"),
    (dict(input_ids=np.zeros((1, 2, 3), int)), ValueError, r"shape \[tokens\] or \[batch, tokens\]"),
    (dict(input_ids=[[0, 5], [0]]), ValueError, r"different lengths"),
    (dict(input_ids=[[0, 5, 2]], attention_mask=[[1, 1]]), ValueError,
     r"attention_mask has shape \(1, 2\) but .* \(1, 3\)"),
    (dict(input_ids=[[0, 5, 2]], attention_mask=[["a", "b", "c"]]), TypeError, "attention_mask"),
    (dict(input_ids=[[0, 5, 2]], token_type_ids=[[0, 1, 0]]), ValueError,
     r"token_type_ids holds 1, outside the token-type table \(size 1\)"),
    (dict(input_ids=[[0, 5, 2]], position_ids=[[0, 1, 99]]), ValueError,
     r"position_ids holds 99"),
    (dict(input_ids=[[0, 5, 2]], inputs_embeds=np.zeros((1, 3, 8))), ValueError, "exactly one"),
    (dict(), ValueError, "exactly one"),
    (dict(inputs_embeds=np.zeros((1, 3, 5), np.float32)), ValueError, r"width 5 .*hidden_size is 8"),
    (dict(inputs_embeds=np.zeros((1, 3, 8), int)), TypeError, "floating point"),
], ids=["id-too-big", "id-negative", "float-ids", "empty-batch", "empty-list", "rank-3",
        "ragged", "mask-shape", "mask-strings", "token-type-range", "position-range",
        "ids-and-embeds", "nothing", "embeds-width", "embeds-int"])
def test_bad_input_is_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_model(max_position_embeddings=20)(**kwargs)


def test_sequence_longer_than_position_table():
    with pytest.raises(ValueError, match=r"19 tokens .*max_position_embeddings=20.*at most 18"):
        tiny_model(max_position_embeddings=20)(np.full(19, 7))


def test_multiple_choice_needs_choices():
    with pytest.raises(ValueError, match=r"\[batch, choices, tokens\]"):
        tiny_model(modeling.RobertaForMultipleChoice)([0, 5, 2])


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels=2"):
        tiny_model(modeling.RobertaForQuestionAnswering, num_labels=3)


def test_bad_labels_are_a_clear_error():
    model = tiny_model(modeling.RobertaForTokenClassification, num_labels=3)
    with pytest.raises(ValueError, match=r"labels must be in 0..2"):
        model([[0, 5, 2]], labels=[[0, 1, 7]])
    with pytest.raises(ValueError, match=r"labels has shape"):
        model([[0, 5, 2]], labels=[[0, 1]])


def test_unknown_keyword_is_a_clear_error():
    with pytest.raises(TypeError, match=r"RobertaModel got unexpected arguments "
                                        r"\['labels', 'output_hidden_state'\]"):
        tiny_model()([0, 5, 2], output_hidden_state=True, labels=[1])


@pytest.mark.parametrize("entry,fmt", CASES)
def test_readable_model_equals_the_fast_one_on_every_fixture(entry, fmt):
    """MINIROBERA_KERNELS=readable runs layers.py and heads.py as written (three q/k/v
    projections, NumPy only); the default runs fused.py with the Numba kernels. Both match
    transformers (test_fixture_parity runs every backend); here they match each other, every
    output, hidden state and attention map, to float32 rounding."""
    model = load(entry["name"], fmt, entry["class"])
    for call, (inputs, expected) in reference(entry["name"]).items():
        runs = {}
        for name in ("numba", "readable"):
            old = kernels.set_backend(name)
            try:
                runs[name] = model(**inputs, output_hidden_states=True, output_attentions=True)
            finally:
                kernels.set_backend(old)
        skip = fully_masked_queries(attention_mask_of(inputs), model.config.is_decoder)
        for field in expected:
            fast, readable = (output_value(runs[n], field) for n in ("numba", "readable"))
            diff = compare(field, readable, fast, skip)
            assert diff <= 2e-6 * max(1.0, float(np.abs(fast).max())), f"{call}: {field} {diff:.3g}"
