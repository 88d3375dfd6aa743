"""Loading by repo id, end to end: tokenizer, config, every model class and the pipelines
served by the fake hub of tests/hub_server.py (a real HTTP server on 127.0.0.1, no mocks).

Each test gets its own hub and its own HF_HOME in tmp_path. What comes through the hub must
equal what the same files give from a local folder, and the files are ones whose reference
outputs were recorded from transformers: tests/fixtures/model (scripts/make_model_fixtures.py,
versions in its manifest.json) and tests/fixtures/pipelines/fill-mask.json for the tiny
fill-mask checkpoint of tests/tiny_models.py (scripts/make_pipeline_fixtures.py).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # helper modules beside us
from hub_server import hub_server  # noqa: E402,F401 (fixture)
from tiny_models import build_preset, build_tiny_model  # noqa: E402

import minirobera  # noqa: E402
from minirobera import hub, modeling, pipelines  # noqa: E402
from minirobera.config import RobertaConfig  # noqa: E402
from minirobera.tokenizer import RobertaTokenizer  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = FIXTURES / "model"
ATOL = 1e-5
CLASSES = ["RobertaModel", "RobertaForMaskedLM", "RobertaForCausalLM",
           "RobertaForSequenceClassification", "RobertaForTokenClassification",
           "RobertaForQuestionAnswering", "RobertaForMultipleChoice"]
MLM_REPO = "tiny-org/roberta-mlm"


@pytest.fixture(autouse=True)
def hub_env(monkeypatch, tmp_path, hub_server):
    """HF_ENDPOINT at the fake hub, HF_HOME in tmp_path, nothing from the outside environment.

    The pipeline cache is keyed by repo id, not by hub: emptied around every test.
    """
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                 "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(hub, "BACKOFF_SECONDS", 0.001)
    pipelines.clear_cache()
    yield hub_server
    pipelines.clear_cache()


def files_of(folder: Path, **config_changes) -> dict:
    """{name: bytes} of a checkpoint folder, ready for HubServer.add_repo."""
    files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
    if config_changes:
        config = json.loads(files["config.json"])
        files["config.json"] = json.dumps({**config, **config_changes}).encode()
    return files


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory, roberta_base_dir):
    """The tiny fill-mask checkpoint (with the real roberta-base tokenizer files), and a
    second one from another seed: (folder of seed 0, folder of seed 1)."""
    root = tmp_path_factory.mktemp("hub_models")
    other = build_tiny_model(root / "seed1", roberta_base_dir, head="masked-lm", seed=1)
    return build_preset("mlm", root / "mlm", roberta_base_dir), other


def fill_mask_case(case_id: str) -> dict:
    """A case transformers answered (tests/fixtures/pipelines/fill-mask.json)."""
    doc = json.loads((FIXTURES / "pipelines" / "fill-mask.json").read_text(encoding="utf-8"))
    [case] = [c for c in doc["cases"] if c["id"] == case_id]
    assert case.get("model", "mlm") == "mlm" and not case.get("init")
    return case


def assert_close(actual, expected, where="output"):
    """Same JSON structure, strings and ints; floats within ATOL."""
    if isinstance(expected, dict):
        assert list(actual) == list(expected), where
        for key in expected:
            assert_close(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert abs(actual - expected) <= ATOL, f"{where}: {actual} != {expected}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def reference_call(name: str):
    """({input: array}, {output field: array}) of the fixture's "main" call."""
    inputs, outputs = {}, {}
    with np.load(MODELS / name / "reference.npz") as z:
        for key in z.files:
            call, kind, field = key.split("/", 2)
            if call == "main":
                (inputs if kind == "in" else outputs)[field] = z[key]
    return inputs, outputs


def run(model, inputs):
    return model(**inputs, output_hidden_states=True, output_attentions=True)


def assert_identical(a, b):
    """Every output of two runs bit for bit equal (hidden states and attentions included)."""
    assert list(a.keys()) == list(b.keys())
    for key in a.keys():
        x, y = a[key], b[key]
        pairs = zip(x, y) if isinstance(x, tuple) else [(x, y)]
        for u, v in pairs:
            assert np.array_equal(u, v), key


def assert_matches_reference(out, expected, inputs):
    """The head outputs within 1e-5 of transformers', at the positions the mask lets be seen
    (a causal model's left-padded queries see nothing: eager and SDPA disagree there)."""
    mask = np.asarray(inputs["attention_mask"]) != 0
    for field, theirs in expected.items():
        if "/" in field:  # hidden_states/i, attentions/i: covered by assert_identical + test_model
            continue
        ours = np.asarray(getattr(out, field))
        if ours.ndim >= 2 and ours.shape[:2] == mask.shape:
            ours, theirs = ours[mask], theirs[mask]
        assert ours.shape == theirs.shape, field
        assert float(np.max(np.abs(ours - theirs), initial=0.0)) <= ATOL, field


def file_requests(server, method, filename):
    return [r.status for r in server.seen(server="hub", method=method, filename=filename)]


# ============================================================================ tokenizer, config

def test_tokenizer_and_config_from_a_repo_id(hub_server, tiny_mlm, tmp_path):
    folder, _ = tiny_mlm
    hub_server.add_repo(MLM_REPO, files_of(folder))
    tok = RobertaTokenizer.from_pretrained(MLM_REPO)
    # REFERENCE.md section 1: the reference's ids for this text
    assert tok("Hello I'm a <mask> model.")["input_ids"] == [0, 31414, 38, 437, 10, 50264,
                                                              1421, 4, 2]
    assert tok.model_max_length == 512  # from the repo's tokenizer_config.json
    local = RobertaTokenizer.from_pretrained(folder)
    text = "Zürich's <mask> café, 1998 🤗"
    assert tok(text, return_offsets_mapping=True) == local(text, return_offsets_mapping=True)
    assert RobertaConfig.from_pretrained(MLM_REPO) == RobertaConfig.from_pretrained(folder)
    # the optional tokenizer files the repo lacks are remembered as absent, as huggingface_hub does
    no_exist = tmp_path / "home" / "hub" / hub.repo_folder_name(MLM_REPO) / ".no_exist"
    assert {p.name for p in no_exist.rglob("*") if p.is_file()} >= {"tokenizer.json",
                                                                     "special_tokens_map.json"}


# ============================================================================ every model class

@pytest.mark.parametrize("cls_name", CLASSES)
def test_every_model_class_from_a_safetensors_repo(cls_name, hub_server):
    name = f"a-{cls_name}"
    folder = MODELS / name / "safetensors"
    repo = f"tiny-org/{name.lower()}"
    hub_server.add_repo(repo, files_of(folder))
    cls = getattr(modeling, cls_name)
    model = cls.from_pretrained(repo)
    inputs, expected = reference_call(name)
    out = run(model, inputs)
    assert_identical(out, run(cls.from_pretrained(folder), inputs))
    assert_matches_reference(out, expected, inputs)
    assert file_requests(hub_server, "HEAD", "pytorch_model.bin") == []  # safetensors first


def test_repo_with_only_pytorch_model_bin(hub_server):
    name = "a-RobertaForMaskedLM"
    folder = MODELS / name / "bin_zip"
    hub_server.add_repo("tiny-org/bin-only", files_of(folder))
    model = modeling.RobertaForMaskedLM.from_pretrained("tiny-org/bin-only")
    inputs, expected = reference_call(name)
    out = run(model, inputs)
    assert_identical(out, run(modeling.RobertaForMaskedLM.from_pretrained(folder), inputs))
    assert_matches_reference(out, expected, inputs)
    assert file_requests(hub_server, "HEAD", "model.safetensors") == [404]
    assert file_requests(hub_server, "HEAD", "model.safetensors.index.json") == [404]
    assert len(hub_server.seen(server="cdn", method="GET", filename="pytorch_model.bin")) == 1


@pytest.mark.parametrize("fmt", ["safetensors_sharded", "bin_sharded"])
def test_sharded_repo(fmt, hub_server):
    name = "b-RobertaForTokenClassification-sharded"
    folder = MODELS / name / fmt
    hub_server.add_repo("tiny-org/sharded", files_of(folder))
    cls = modeling.RobertaForTokenClassification
    model = cls.from_pretrained("tiny-org/sharded")
    inputs, expected = reference_call(name)
    out = run(model, inputs)
    assert_identical(out, run(cls.from_pretrained(folder), inputs))
    assert_matches_reference(out, expected, inputs)
    shards = json.loads(next(folder.glob("*.index.json")).read_text())["weight_map"].values()
    for shard in set(shards):  # every shard came through the CDN, once
        assert len(hub_server.seen(server="cdn", method="GET", filename=shard)) == 1


# ============================================================================ revisions, renames

def test_revision_selects_the_files_of_that_commit(hub_server):
    repo, cls = "tiny-org/two-versions", modeling.RobertaForMaskedLM
    hub_server.add_repo(repo, files_of(MODELS / "a-RobertaForMaskedLM" / "safetensors"))
    v2 = hub_server.add_repo(repo, files_of(MODELS / "c-RobertaForMaskedLM" / "safetensors"),
                             revision="v2")
    for revision, name in [("main", "a-RobertaForMaskedLM"), ("v2", "c-RobertaForMaskedLM"),
                           (v2, "c-RobertaForMaskedLM")]:
        config = RobertaConfig.from_pretrained(repo, revision=revision)
        assert config == RobertaConfig.from_pretrained(MODELS / name / "safetensors")
        inputs, expected = reference_call(name)
        assert_matches_reference(run(cls.from_pretrained(repo, revision=revision), inputs),
                                 expected, inputs)


def test_pipeline_revision(hub_server, tiny_mlm):
    folder, other_seed = tiny_mlm
    hub_server.add_repo(MLM_REPO, files_of(other_seed))
    hub_server.add_repo(MLM_REPO, files_of(folder), revision="v1")
    case = fill_mask_case("top_k_3")
    unmasker = pipelines.pipeline("fill-mask", model=MLM_REPO, revision="v1")
    assert_close(unmasker(case["inputs"], **case["call"]), case["output"])
    main = pipelines.pipeline("fill-mask", model=MLM_REPO)(case["inputs"], **case["call"])
    assert main == pipelines.pipeline("fill-mask", model=other_seed)(case["inputs"],
                                                                       **case["call"])
    assert [p["token"] for p in main] != [p["token"] for p in case["output"]]


def test_legacy_repo_id_follows_the_rename(hub_server, tiny_mlm, tmp_path):
    folder, _ = tiny_mlm
    hub_server.add_repo(MLM_REPO, files_of(folder))
    hub_server.rename("roberta-mlm", MLM_REPO)
    case = fill_mask_case("single")
    assert_close(minirobera.fill_mask(case["inputs"], model="roberta-mlm"), case["output"])
    assert RobertaTokenizer.from_pretrained("roberta-mlm")("Hello world")["input_ids"] == \
        [0, 31414, 232, 2]
    assert 307 in file_requests(hub_server, "HEAD", "config.json")
    assert (tmp_path / "home" / "hub" / "models--roberta-mlm").is_dir()  # the id as asked


# ============================================================================ pipelines

@pytest.mark.parametrize("case_id", ["single", "two_masks", "targets", "batch"])
def test_fill_mask_pipeline_from_a_repo_id(case_id, hub_server, tiny_mlm):
    folder, _ = tiny_mlm
    hub_server.add_repo(MLM_REPO, files_of(folder))
    case = fill_mask_case(case_id)
    unmasker = pipelines.pipeline("fill-mask", model=MLM_REPO)
    assert_close(unmasker(case["inputs"], **case.get("call", {})), case["output"])
    assert_close(minirobera.fill_mask(case["inputs"], model=MLM_REPO, **case.get("call", {})),
                 case["output"])


def test_a_bert_repo_is_refused_by_name(hub_server):
    files = files_of(MODELS / "a-RobertaForMaskedLM" / "safetensors", model_type="bert")
    hub_server.add_repo("tiny-org/a-bert", files)
    for load in (lambda: RobertaConfig.from_pretrained("tiny-org/a-bert"),
                 lambda: modeling.RobertaForMaskedLM.from_pretrained("tiny-org/a-bert"),
                 lambda: pipelines.pipeline("fill-mask", model="tiny-org/a-bert")):
        with pytest.raises(ValueError, match=r"a-bert.*describes a 'bert' model; minirobera "
                                             r"only runs model_type 'roberta'"):
            load()


# ============================================================================ offline

def test_offline_after_a_download_needs_no_server(hub_server, tiny_mlm, monkeypatch):
    folder, _ = tiny_mlm
    hub_server.add_repo(MLM_REPO, files_of(folder))
    hub_server.add_repo("tiny-org/bin-only",
                        files_of(MODELS / "a-RobertaForMaskedLM" / "bin_zip"))
    case = fill_mask_case("single")
    online = pipelines.pipeline("fill-mask", model=MLM_REPO)(case["inputs"])
    inputs, expected = reference_call("a-RobertaForMaskedLM")
    bin_online = run(modeling.RobertaForMaskedLM.from_pretrained("tiny-org/bin-only"), inputs)

    hub_server.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipelines.clear_cache()
    seen = len(hub_server.requests)
    assert pipelines.pipeline("fill-mask", model=MLM_REPO)(case["inputs"]) == online
    assert_close(online, case["output"])
    assert RobertaTokenizer.from_pretrained(MLM_REPO)("Hello world")["input_ids"] == \
        [0, 31414, 232, 2]
    assert RobertaConfig.from_pretrained(MLM_REPO) == RobertaConfig.from_pretrained(folder)
    # the .bin repo: model.safetensors and its index are known to be absent (.no_exist)
    bin_offline = run(modeling.RobertaForMaskedLM.from_pretrained("tiny-org/bin-only"), inputs)
    assert_identical(bin_offline, bin_online)
    assert len(hub_server.requests) == seen
    with pytest.raises(OSError, match=r"tiny-org/never-downloaded.*HF_HUB_OFFLINE is set"):
        modeling.RobertaForMaskedLM.from_pretrained("tiny-org/never-downloaded")

    # The server is still down but offline mode is off: every request fails, the cache answers
    # (files it holds, and the 404s it remembers for tokenizer.json & co).
    monkeypatch.delenv("HF_HUB_OFFLINE")
    pipelines.clear_cache()
    assert pipelines.pipeline("fill-mask", model=MLM_REPO)(case["inputs"]) == online
    assert_identical(run(modeling.RobertaForMaskedLM.from_pretrained("tiny-org/bin-only"),
                         inputs), bin_online)
