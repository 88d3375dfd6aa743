"""fill-mask on a tiny random XLM-R checkpoint whose vocabulary is the fixture SentencePiece
model's, against transformers' pipeline (recorded by scripts/make_sentencepiece_fixtures.py in
tests/fixtures/sentencepiece/reference.json.gz; the versions are in the file), and live when
transformers is installed. The weights come from a seed, so no weight file is committed."""

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import minirobera
from tiny_models import HIDDEN, encoder_weights, head_weights, tiny_config

FIXTURES = Path(__file__).parent / "fixtures" / "sentencepiece"
MODEL_FILE = FIXTURES / "sentencepiece.bpe.model"


def build_tiny_xlmr(dest, model_file, seed=0, model_type="xlm-roberta"):
    """Write a tiny XLMRobertaForMaskedLM folder (config model_type "xlm-roberta", the vocab of
    `model_file` + the fairseq specials) into `dest`, or with model_type "camembert" a
    CamembertForMaskedLM one (CamemBERT's specials); return its Path."""
    from minirobera.xlm_roberta import CamembertTokenizer, XLMRobertaTokenizer
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = CamembertTokenizer if model_type == "camembert" else XLMRobertaTokenizer
    vocab_size = len(tokenizer.from_pretrained(model_file.parent))
    rng = np.random.default_rng(seed)
    weights = encoder_weights(rng)
    weights["roberta.embeddings.word_embeddings.weight"] = rng.normal(0, 1.0, (vocab_size, HIDDEN))
    weights.update(head_weights(rng, "masked-lm", 0))
    weights["lm_head.bias"] = rng.normal(0, 0.1, (vocab_size,))
    weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
    architecture = "CamembertForMaskedLM" if model_type == "camembert" else "XLMRobertaForMaskedLM"
    config = {**tiny_config("masked-lm"), "model_type": model_type, "vocab_size": vocab_size,
              "architectures": [architecture]}
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copyfile(model_file, dest / "sentencepiece.bpe.model")
    (dest / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}) + "\n")
    return dest


def _reference():
    path = FIXTURES / "reference.json.gz"
    if not path.exists():
        pytest.skip("run scripts/make_sentencepiece_fixtures.py to make the fixture")
    return json.loads(gzip.decompress(path.read_bytes()))


def _same(ours, ref):
    if isinstance(ref, list):
        assert isinstance(ours, list) and len(ours) == len(ref)
        for a, b in zip(ours, ref):
            _same(a, b)
        return
    assert (ours["token"], ours["token_str"], ours["sequence"]) == \
        (ref["token"], ref["token_str"], ref["sequence"])
    assert abs(ours["score"] - ref["score"]) < 1e-5


@pytest.fixture(scope="module")
def tiny_xlmr(tmp_path_factory):
    return build_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"), MODEL_FILE)


def test_pipeline_picks_the_sentencepiece_tokenizer(tiny_xlmr):
    unmasker = minirobera.pipeline("fill-mask", model=tiny_xlmr)
    assert type(unmasker.tokenizer).__name__ == "XLMRobertaTokenizer"
    assert unmasker.model.config.to_dict()["model_type"] == "xlm-roberta"


@pytest.mark.parametrize("case", range(5), ids=lambda i: f"text{i}")
def test_fill_mask_matches_recorded_reference(tiny_xlmr, case):
    ref = _reference()["fill-mask"][case]
    unmasker = minirobera.pipeline("fill-mask", model=tiny_xlmr)
    _same(unmasker(ref["text"], top_k=ref["top_k"]), ref["output"])


def test_fill_mask_matches_live_reference(tiny_xlmr):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    ref = transformers.pipeline("fill-mask", model=str(tiny_xlmr))
    ours = minirobera.pipeline("fill-mask", model=tiny_xlmr)
    for text in ["Software <mask> free", "<mask> 東京 ﬁne", "a <mask> b <mask>"]:
        _same(ours(text, top_k=4), ref(text, top_k=4))


def test_camembert_fill_mask_matches_live_reference(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    folder = build_tiny_xlmr(tmp_path / "camembert", MODEL_FILE, seed=1, model_type="camembert")
    ours = minirobera.pipeline("fill-mask", model=folder)
    assert type(ours.tokenizer).__name__ == "CamembertTokenizer"
    ref = transformers.pipeline("fill-mask", model=str(folder))
    assert type(ref.tokenizer).__name__.startswith("Camembert")
    for text in ["Software <mask> free", "Le <mask> est ﬁn", "a  <mask> b <mask>"]:
        _same(ours(text, top_k=4), ref(text, top_k=4))


@pytest.mark.filterwarnings("ignore:Some weights")
def test_bare_model_pipelines_cut_or_refuse_at_the_model(tiny_xlmr, tmp_path):
    """Issue 22, item 9: without tokenizer_config.json the tokenizer has no length limit
    (int(1e30), as transformers); the pipelines then cut at what the model's position table
    holds (512 tokens here) when asked to truncate, and refuse a longer input otherwise."""
    bare = tmp_path / "bare"
    shutil.copytree(tiny_xlmr, bare)
    (bare / "tokenizer_config.json").unlink()
    unmasker = minirobera.pipeline("fill-mask", model=bare)
    assert unmasker.tokenizer.model_max_length == int(1e30) and unmasker.max_tokens == 512
    text = "The <mask> of this license. " + "Keep every notice intact. " * 200
    with pytest.raises(minirobera.pipelines.InputTooLongError, match="at most 512"):
        unmasker(text)
    cut = unmasker(text, tokenizer_kwargs={"truncation": True})
    limited = minirobera.pipeline("fill-mask", model=tiny_xlmr)  # model_max_length 512
    assert cut == limited(text, tokenizer_kwargs={"truncation": True})
    embed = minirobera.pipeline("feature-extraction", model=bare)
    assert len(embed(text, truncation=True)[0]) == 512
