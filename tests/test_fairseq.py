"""fairseq checkpoints (minirobera/fairseq.py) on Sapiens' real trained weights and on small
fairseq-shaped files written here without torch (tests/fairseq_files.py).

Known answers first: Sapiens' README publishes `predict_scores` probabilities (6 decimals) and
an infilled heavy chain (sapiens 1.0.5, fairseq + torch). Then float64 truth: the same forward
in float64 (the readable encoder, layers.py), which minirobera's float32 must match within 2e-5
at every position; with the reference extra, torch in float64 on the converted folder is the
truth, and minirobera must be no further from it than torch's own float32.

Sapiens (MIT, Merck) is found in ../shared/sapiens, $MINIROBERA_SAPIENS, or `pip download
sapiens==1.0.5`; its files are never copied into the repo.
"""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fairseq_files import (Build, Call, Namespace, Raw, Tensor, fairseq_args, fairseq_folder,
                           fairseq_tensors, find_sapiens, write_pt)
from minirobera import RobertaForMaskedLM, RobertaForSequenceClassification, pipeline
from minirobera import fairseq as fs
from minirobera.checkpoint import CheckpointError, read_torch_pickle

# sapiens.predict_scores(SEQ, "H").head(), as README-sapiens.md prints it (columns A C D E)
SEQ_H = ("**QLV*SGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDSSTTTAYMELKSLQ"
         "FDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS")
PUBLISHED_SCORES = [[0.003272, 0.004147, 0.004011, 0.004590],
                    [0.012038, 0.003854, 0.006803, 0.008174],
                    [0.003384, 0.003895, 0.003726, 0.004068],
                    [0.004612, 0.005325, 0.004443, 0.004641],
                    [0.005519, 0.003664, 0.003555, 0.005269]]
# sapiens.predict_masked(SEQ_H, "H"), as published
PUBLISHED_INFILL = ("QVQLVQSGVEVKKPGASVKVSCKASGYTFTNYYMYWVRQAPGQGLEWMGGINPSNGGTNFNEKFKNRVTLTTDS"
                    "STTTAYMELKSLQFDDTAVYYCARRDYRFDMGFDYWGQGTTVTVSS")
# more chains for the float64 comparison: the README's embedding example (a mouse VH),
# trastuzumab's and adalimumab's variable regions, and masked copies
SEQS = {
    "vh": [SEQ_H,
           "QVKLQESGAELARPGASVKLSCKASGYTFTNYWMQWVKQRPGQGLDWIGAIYPGDGNTRYTHKFKGKATLTADKSSSTAYMQLSS"
           "LASEDSGVYYCARGEGNYAWFAYWGQGTTVTVSS",
           "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNS"
           "LRAEDTAVYYCSRWGGDGFYAMDYWGQGTLVTVSS",
           "EVQ*VESGGG*VQPGRSLRLSCAASGFTFDDYAMHWVRQAPGKGLEWVSAITWNSGHIDYADSVEGRFTISRDNAKNSLYLQMNS"],
    "vl": ["DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATY"
           "YCQQHYTTPPTFGQGTKVEIK",
           "DIQMTQSPSSLSASVGDRVTITCRASQGIRNYLAWYQQKPGKAPKLLIYAASTLQSGVPSRFSGSGSGTDFTLTISSLQPEDVATY"
           "YCQRYNRAPYTFGQGTKVEIK",
           "**VLTQSPGTLSLSPGERATLSCRASQSVSSSYLAWYQQKPGQAPRLLIYGASSRATGIPDRFSGSGSGTDFTLTISRLEPEDFA",
           "QSALTQPASVSGSPGQSITISCTGT"],
}
RESIDUES = "ACDEFGHIKLMNPQRSTVWY"


def residues_text(seq):
    """Sapiens' input: one residue a word, '*' or 'X' a <mask> (its seq2tokens)."""
    return " ".join("<mask>" if c in "*X" else c for c in seq)


@pytest.fixture(scope="session")
def sapiens_dir():
    folder, why = find_sapiens()
    if folder is None:
        pytest.skip(why)
    return folder


@pytest.fixture(scope="session")
def sapiens(sapiens_dir, tmp_path_factory):
    """chain -> a fairseq folder (model.pt + dict.txt) for that Sapiens chain."""
    root = tmp_path_factory.mktemp("sapiens")
    return {chain: str(fairseq_folder(root / chain, sapiens_dir / f"checkpoint_{chain}.pt",
                                      sapiens_dir / "dict.txt")) for chain in ("vh", "vl")}


@pytest.fixture(scope="session")
def converted(sapiens, tmp_path_factory):
    """chain -> the folder `minirobera convert-fairseq` wrote for that chain."""
    root = tmp_path_factory.mktemp("converted")
    out = {}
    for chain, folder in sapiens.items():
        out[chain] = str(root / chain)
        fs.convert(os.path.join(folder, "model.pt"), out[chain])
    return out


def probabilities(logits):  # [T,V] -> [T,V], softmax in float64
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def predict_scores(model, tok, seq):
    """Sapiens' predict_scores: softmax over the whole vocab, <s>/</s> rows dropped, the
    specials' columns dropped -> [len(seq), 20] in dict.txt's order, and those 20 symbols."""
    enc = tok(residues_text(seq), return_tensors="np")
    p = probabilities(model(**enc).logits[0])[1:-1]
    cols = [i for i in range(tok.vocab_size) if tok.convert_ids_to_tokens(i) in RESIDUES]
    return p[:, cols], [tok.convert_ids_to_tokens(i) for i in cols]


# ====================================================================== Sapiens' published numbers

def test_published_predict_scores(sapiens, sapiens_dir):
    model = RobertaForMaskedLM.from_pretrained(sapiens["vh"])
    tok = fs.load_tokenizer(sapiens["vh"])
    scores, symbols = predict_scores(model, tok, SEQ_H)
    assert symbols == list(RESIDUES)  # dict.txt's order, which is the table's column order
    assert scores.shape == (len(SEQ_H), 20)
    np.testing.assert_allclose(scores[:5, :4], PUBLISHED_SCORES, atol=1e-6, rtol=0)
    readme = sapiens_dir / "README-sapiens.md"
    if readme.is_file():  # the numbers above are the README's own
        text = readme.read_text(encoding="utf-8")
        assert all(f"{v:.6f}" in text for row in PUBLISHED_SCORES for v in row)


def test_published_infill(sapiens):
    model = RobertaForMaskedLM.from_pretrained(sapiens["vh"])
    tok = fs.load_tokenizer(sapiens["vh"])
    scores, symbols = predict_scores(model, tok, SEQ_H)
    best = "".join(symbols[j] for j in scores.argmax(-1))
    infilled = "".join(b if a in "*X" else a for a, b in zip(SEQ_H, best))
    assert infilled == PUBLISHED_INFILL


def test_fill_mask_pipeline_gives_the_published_scores(sapiens):
    fill = pipeline("fill-mask", model=sapiens["vh"])
    out = fill(residues_text(SEQ_H), targets=list("ACDE"))
    assert len(out) == 3  # three masks: one list each
    first = {p["token_str"]: p["score"] for p in out[0]}
    np.testing.assert_allclose([first[c] for c in "ACDE"], PUBLISHED_SCORES[0], atol=1e-6)
    # the cysteine of the conserved disulfide bond (Cys22 of a heavy chain), masked
    chain = SEQS["vh"][2]
    text = residues_text(chain[:21] + "*" + chain[22:])
    top = fill(text, top_k=1)[0]
    assert top["token_str"] == "C" and top["score"] > 0.5
    assert top["sequence"] == " ".join(chain)


# ====================================================================== float64 truth

def float64_logits(model, input_ids, attention_mask):  # [B,T], [B,T] -> [B,T,V] float64
    """The truth: RoBERTa's forward written out here in float64, exact erf GELU (math.erf),
    nothing from layers.py or the kernels (whose GELU is a fit to 1.2e-7)."""
    c, p = model.config, _as_float64(model.params)
    erf = np.vectorize(math.erf)

    def ln(x, g):  # LayerNorm over the last axis
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + c.layer_norm_eps) \
            * g["g"] + g["b"]

    def lin(x, w):
        return x @ w["w"].T + w["b"]

    def gelu(x):
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))

    keep = input_ids != c.pad_token_id
    positions = np.cumsum(keep, axis=1) * keep + c.pad_token_id  # RoBERTa's position ids
    e = p["embeddings"]
    x = ln(e["word"][input_ids] + e["token_type"][0] + e["position"][positions], e["ln"])
    B, T, D = x.shape
    H = c.num_attention_heads
    bias = np.where(attention_mask[:, None, None, :] > 0, 0.0, -1e30)  # [B,1,1,T]
    for L in p["layers"]:
        q, k, v = (lin(x, L[n]).reshape(B, T, H, D // H).transpose(0, 2, 1, 3) for n in "qkv")
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D // H) + bias
        a = np.exp(s - s.max(-1, keepdims=True))
        a = (a / a.sum(-1, keepdims=True)) @ v  # [B,H,T,Dh]
        h = ln(lin(a.transpose(0, 2, 1, 3).reshape(B, T, D), L["attn_out"]) + x, L["attn_ln"])
        x = ln(lin(gelu(lin(h, L["ffn_in"])), L["ffn_out"]) + h, L["ffn_ln"])
    m = p["lm_head"]
    return ln(gelu(lin(x, m["dense"])), m["ln"]) @ p["embeddings"]["word"].T + m["decoder"]["b"]


def _as_float64(tree):
    if isinstance(tree, dict):
        return {k: _as_float64(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_as_float64(v) for v in tree]
    return np.asarray(tree, dtype=np.float64)


@pytest.mark.parametrize("chain", ["vh", "vl"])
def test_both_chains_within_2e5_of_float64(sapiens, chain):
    model = RobertaForMaskedLM.from_pretrained(sapiens[chain])
    tok = fs.load_tokenizer(sapiens[chain])
    enc = tok([residues_text(s) for s in SEQS[chain]], padding=True, return_tensors="np")
    assert enc["input_ids"].shape[0] == 4 and (enc["attention_mask"] == 0).any()  # padded rows
    ours = model(**enc).logits
    truth = float64_logits(model, enc["input_ids"], enc["attention_mask"])
    real = enc["attention_mask"].astype(bool)
    err = np.abs(ours - truth)[real]  # [N,V] every real position
    assert err.max() < 2e-5, err.max()
    assert np.abs(truth).max() > 5  # trained logits: large, peaked (random ones are ~1)


# ====================================================================== loading and the tokenizer

def test_dictionary_of_sapiens(sapiens):
    d = fs.Dictionary.load(os.path.join(sapiens["vh"], "dict.txt"))
    assert d.symbols[:5] == ["<s>", "<pad>", "</s>", "<unk>", "A"]
    assert d.symbols[-1] == "<mask>" and len(d) == 25
    assert d.encode_line("<s> Q V <mask> L </s>", append_eos=False) == [0, 17, 21, 24, 13, 2]
    tok = fs.load_tokenizer(sapiens["vh"])
    assert tok("Q V <mask> L")["input_ids"] == [0, 17, 21, 24, 13, 2]
    assert tok("Q  V\tZ")["input_ids"] == [0, 17, 21, 3, 2]  # any whitespace run; Z is <unk>


def test_config_from_sapiens_args(sapiens):
    args, tensors = fs.read_fairseq_checkpoint(os.path.join(sapiens["vl"], "model.pt"))
    assert args["arch"] == "roberta_small" and args["max_positions"] == 128
    assert all(k.startswith("decoder.") for k in tensors)  # old fairseq: the encoder is `decoder`
    config = fs.config_from_args(args, tensors)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
            config.intermediate_size, config.vocab_size) == (4, 128, 8, 256, 25)
    assert config.max_position_embeddings == 130 and config.layer_norm_eps == 1e-5  # 128 + 2


def test_converted_folder_loads_back_here(sapiens, converted):
    a = RobertaForMaskedLM.from_pretrained(sapiens["vl"])
    b = RobertaForMaskedLM.from_pretrained(converted["vl"])
    tok_a = fs.load_tokenizer(sapiens["vl"])
    tok_b = pipeline("fill-mask", converted["vl"]).tokenizer
    assert isinstance(tok_b, fs.FairseqDictTokenizer)
    text = residues_text(SEQS["vl"][2])
    assert tok_a(text)["input_ids"] == tok_b(text)["input_ids"]
    ids = tok_a(text, return_tensors="np")
    np.testing.assert_array_equal(a(**ids).logits, b(**ids).logits)
    assert sorted(os.listdir(converted["vl"])) == ["config.json", "model.safetensors",
                                                   "tokenizer.json", "tokenizer_config.json"]
    assert json.loads(Path(converted["vl"], "tokenizer_config.json").read_text())[
        "model_max_length"] == 128  # the light chain's max_positions


def test_only_the_model_tensors_are_read(sapiens, monkeypatch):
    """The optimizer's momentum buffer (as large as the model) is never materialised."""
    from minirobera import checkpoint
    read = []
    real = checkpoint._materialise
    monkeypatch.setattr(checkpoint, "_materialise",
                        lambda t, arrays, path, key: read.append(key) or real(t, arrays, path, key))
    _, tensors = fs.read_fairseq_checkpoint(os.path.join(sapiens["vh"], "model.pt"))
    assert sorted(read) == sorted(tensors) and len(read) == 74


def test_roberta_tokenizer_from_pretrained_takes_fairseq_folders(sapiens):
    from minirobera import RobertaTokenizer
    tok = RobertaTokenizer.from_pretrained(sapiens["vl"])
    assert isinstance(tok, fs.FairseqDictTokenizer) and tok.model_max_length == 128
    assert tok("D I <mask>")["input_ids"] == [0, 6, 11, 24, 2]


def test_cli_convert_fairseq(sapiens, tmp_path):
    from minirobera.cli import main
    import io
    out = io.StringIO()
    assert main(["convert-fairseq", os.path.join(sapiens["vl"], "model.pt"),
                 str(tmp_path / "out")], stdout=out) == 0
    assert "model.safetensors" in out.getvalue()
    bad = tmp_path / "hostile.pt"
    write_pt(bad, {"args": Call("os", "system", ["true"]), "model": {}})
    err = io.StringIO()
    assert main(["convert-fairseq", str(bad), str(tmp_path / "nothing"), "--dict",
                 os.path.join(sapiens["vl"], "dict.txt")], stderr=err) == 2
    assert "refusing to load global 'os.system'" in err.getvalue()
    assert not (tmp_path / "nothing").exists()  # nothing half-written


def test_cli_fill_mask_on_a_checkpoint_file(sapiens_dir):
    """The offline recipe: the wheel's checkpoint_vh.pt with dict.txt beside it, as --model."""
    from minirobera.cli import main
    import io
    out = io.StringIO()
    chain = SEQS["vh"][2]
    assert main(["fill-mask", "--json", "--top-k", "1", "--model",
                 str(sapiens_dir / "checkpoint_vh.pt"),
                 residues_text(chain[:21] + "*" + chain[22:])], stdout=out) == 0
    assert json.loads(out.getvalue())[0]["token_str"] == "C"
    tok = fs.load_tokenizer(sapiens_dir / "checkpoint_vh.pt")
    assert tok.model_max_length == 144  # the heavy chain's max_positions, not RoBERTa's 512


def test_no_torch_no_fairseq_imported(sapiens, tmp_path):
    """A fresh interpreter loads, runs fill-mask through pipeline and converts a folder holding
    only checkpoint_vl.pt renamed model.pt + dict.txt; torch and fairseq are never imported
    (an import hook refuses them, so even a guarded `try: import torch` would show)."""
    folder = tmp_path / "vl"
    folder.mkdir()
    (folder / "model.pt").write_bytes(Path(sapiens["vl"], "model.pt").read_bytes())
    (folder / "dict.txt").write_bytes(Path(sapiens["vl"], "dict.txt").read_bytes())
    code = textwrap.dedent(f"""
        import sys
        tried = []
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "fairseq"):
                    tried.append(name)
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Refuse())
        from minirobera import RobertaForMaskedLM, pipeline
        from minirobera.fairseq import convert
        RobertaForMaskedLM.from_pretrained({str(folder)!r})
        out = pipeline("fill-mask", model={str(folder)!r})("D I Q M T Q <mask> P S S L S A S")
        assert out[0]["token_str"] == "S", out
        convert({str(folder / 'model.pt')!r}, {str(tmp_path / 'out')!r})
        assert not tried, tried
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "fairseq")]
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


# ====================================================================== against transformers

@pytest.mark.reference
@pytest.mark.parametrize("chain", ["vh", "vl"])
def test_against_torch_float64_and_float32(converted, chain):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    hf32 = transformers.RobertaForMaskedLM.from_pretrained(converted[chain]).eval()
    hf64 = transformers.RobertaForMaskedLM.from_pretrained(converted[chain],
                                                           dtype=torch.float64).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(converted[chain])
    texts = [residues_text(s) for s in SEQS[chain]]
    enc = hf_tok(texts, padding=True, return_tensors="pt")
    ours_tok = fs.load_tokenizer(converted[chain])
    ours_enc = ours_tok(texts, padding=True, return_tensors="np")
    np.testing.assert_array_equal(ours_enc["input_ids"], enc["input_ids"].numpy())
    with torch.no_grad():
        l32, l64 = hf32(**enc).logits.numpy(), hf64(**enc).logits.numpy()
    model = RobertaForMaskedLM.from_pretrained(converted[chain])
    ours = model(**ours_enc).logits
    real = ours_enc["attention_mask"].astype(bool)
    ours_err, torch_err = (ours - l64)[real], (l32 - l64)[real]  # [N,V] every real position
    assert np.abs(ours_err).max() < 2e-5, np.abs(ours_err).max()
    # no further from the truth than torch's float32, over every logit of every position (the
    # root mean square: the worst single logit of either is one rounding draw, and goes
    # either way from one batch to the next)
    rms = [float(np.sqrt(np.mean(e ** 2))) for e in (ours_err, torch_err)]
    assert rms[0] <= rms[1], rms
    # and our own float64 pass is the same truth
    np.testing.assert_allclose(float64_logits(model, ours_enc["input_ids"],
                                              ours_enc["attention_mask"])[real], l64[real],
                               atol=1e-10, rtol=0)


@pytest.mark.reference
def test_fill_mask_equals_transformers_pipeline(converted, sapiens):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    theirs = transformers.pipeline("fill-mask", model=converted["vh"])
    for folder in (sapiens["vh"], converted["vh"]):
        ours = pipeline("fill-mask", model=folder)
        for text in (residues_text(SEQ_H), "E V Q L V E S G G G <mask> V Q P G"):
            a, b = ours(text, top_k=4), theirs(text, top_k=4)
            a, b = (x if isinstance(x[0], list) else [x] for x in (a, b))
            for ra, rb in zip(a, b):
                assert [(p["token"], p["token_str"], p["sequence"]) for p in ra] == \
                    [(p["token"], p["token_str"], p["sequence"]) for p in rb]
                np.testing.assert_allclose([p["score"] for p in ra], [p["score"] for p in rb],
                                           atol=1e-5)


@pytest.mark.reference
def test_tokenizer_equals_transformers(converted):
    transformers = pytest.importorskip("transformers")
    theirs = transformers.AutoTokenizer.from_pretrained(converted["vl"])
    ours = fs.load_tokenizer(converted["vl"])
    for args in [("Q V <mask> L",), ("  A\tC\n D  ",), ("A B Z <unk> <s>",), ("A C", "D E"),
                 ("<mask>A C<mask>",)]:
        kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
        a, b = ours(*args, **kw), theirs(*args, **kw)
        assert a["input_ids"] == b["input_ids"], args
        assert a["special_tokens_mask"] == b["special_tokens_mask"], args
        assert [tuple(o) for o in a["offset_mapping"]] == \
            [tuple(o) for o in b["offset_mapping"]], args
        ids = a["input_ids"]
        assert ours.decode(ids) == theirs.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == \
            theirs.decode(ids, skip_special_tokens=True)


# ====================================================================== hostile pickles

HOSTILE = {
    "os.system": Call("os", "system", ["touch {marker}"]),
    "posix.system": Call("posix", "system", ["touch {marker}"]),
    "builtins.eval": Call("builtins", "eval", ["open({marker!r}, 'w')"]),
    "builtins.exec": Call("builtins", "exec", ["open({marker!r}, 'w')"]),
    "builtins.__import__": Call("builtins", "__import__", ["os"]),
    "builtins.getattr": Call("builtins", "getattr", [Call("builtins", "__import__", ["os"]),
                                                     "system"]),
    "copyreg._reconstructor": Call("copyreg", "_reconstructor",
                                   [Call("builtins", "__import__", ["os"]), "x", None]),
    "subprocess.Popen": Call("subprocess", "Popen", [["touch", "{marker}"]]),
    "omegaconf.dictconfig.DictConfig": Call("omegaconf.dictconfig", "DictConfig", [{}]),
    "argparse.ArgumentParser": Call("argparse", "ArgumentParser", []),
}


def _fill(obj, marker):
    if isinstance(obj, Call):
        return Call(obj.module, obj.name, [_fill(a, marker) for a in obj.args])
    if isinstance(obj, list):
        return [_fill(a, marker) for a in obj]
    return obj.format(marker=marker) if isinstance(obj, str) else obj


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("where", ["args", "model", "optimizer"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_globals_are_refused(tmp_path, name, where, fmt):
    marker = str(tmp_path / "pwned")
    payload = _fill(HOSTILE[name], marker)
    tree = {"args": Namespace(fairseq_args()), "model": {"x": Tensor(np.zeros(2))},
            "last_optimizer_state": {}}
    if where == "args":
        tree["args"] = Namespace({**fairseq_args(), "evil": payload})
    elif where == "model":
        tree["model"]["evil"] = payload
    else:
        tree["last_optimizer_state"] = {"state": payload}
    path = tmp_path / "model.pt"
    write_pt(path, tree, fmt)
    with pytest.raises(CheckpointError, match=f"refusing to load global '{name}'"):
        fs.read_fairseq_checkpoint(path)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("tamper", ["build_on_class", "namespace_with_args", "bad_state"])
def test_namespace_stand_in_cannot_be_abused(tmp_path, tamper):
    from fairseq_files import _Global
    path = tmp_path / "model.pt"
    if tamper == "build_on_class":  # BUILD on the global itself, to change what it does
        args = Build(_Global("argparse", "Namespace"), {"__setstate__": None})
    elif tamper == "namespace_with_args":  # argparse.Namespace(...) called: REDUCE with args
        args = Call("argparse", "Namespace", ["x"])
    else:  # a Namespace whose state is not a dict of names
        args = Build(Call("argparse", "Namespace", []), ["not", "a", "dict"])
    write_pt(path, {"args": args, "model": {}}, "zip")
    with pytest.raises(CheckpointError):
        fs.read_fairseq_checkpoint(path)


def test_numpy_training_records_are_inert_data(tmp_path):
    """fairseq training runs keep numpy scalars and arrays in extra_state; as torch.save
    writes them (protocol 2: numpy's reconstructors, latin1 bytes through _codecs.encode)
    they load as placeholders, and the model beside them loads."""
    import pickle
    record = {"val_loss": np.float64(1.25), "best": np.arange(3, dtype=np.int64)}
    raw = pickle.dumps(record, protocol=2)
    assert b"_codecs" in raw and b"_reconstruct" in raw and b"scalar" in raw
    folder = tmp_path / "f"
    folder.mkdir()
    write_pt(folder / "model.pt", {"args": Namespace(fairseq_args()),
                                   "model": fairseq_tensors_pt(), "extra_state": Raw(raw)})
    (folder / "dict.txt").write_text("".join(f"s{i} 1\n" for i in range(4)))
    tree, _ = read_torch_pickle(folder / "model.pt", fs.FairseqUnpickler)
    extra = tree["extra_state"]
    assert isinstance(extra["val_loss"], fs.NumpyData) and isinstance(extra["best"], fs.NumpyData)
    assert RobertaForMaskedLM.from_pretrained(folder).config.num_hidden_layers == 2


@pytest.mark.parametrize("payload", [
    Call("_codecs", "encode", ["x", "rot13"]),                  # only latin1 is bytes
    Call("_codecs", "encode", [b"x", "latin1"]),
    Call("numpy", "load", ["/etc/passwd"]),
    Call("numpy.testing._private.utils", "runstring", ["1", {}]),
    Call("numpy.core.multiarray", "_reconstruct", [Call("os", "system", ["true"]), (0,), b"b"]),
])
def test_numpy_and_codecs_admit_only_data(tmp_path, payload):
    path = tmp_path / "model.pt"
    write_pt(path, {"args": Namespace(fairseq_args()), "model": {}, "extra_state": payload})
    with pytest.raises(CheckpointError, match="refusing"):
        fs.read_fairseq_checkpoint(path)


def test_shared_and_cyclic_structures_in_args(tmp_path):
    """A pickle's memo can share one list many times: 60 levels of [x, x] is 2**60 leaves
    to a naive walk; converted once per object, it is read at once. A cycle is refused.
    (tests/fairseq_files.py's writer memoises shared objects, as the real pickler does.)"""
    path = tmp_path / "model.pt"
    nested = "x"
    for _ in range(60):
        nested = [nested, nested]
    write_pt(path, {"args": Namespace({**fairseq_args(), "junk": nested}),
                    "model": fairseq_tensors_pt()}, "zip")
    args, _ = fs.read_fairseq_checkpoint(path)
    assert args["encoder_layers"] == 2
    cycle = []
    cycle.append(cycle)
    write_pt(path, {"args": Namespace({**fairseq_args(), "junk": cycle}), "model": {}}, "zip")
    with pytest.raises(CheckpointError, match="deeper than 100 levels"):
        fs.read_fairseq_checkpoint(path)


def test_truncated_and_junk_files(tmp_path):
    path = tmp_path / "model.pt"
    write_pt(path, {"args": Namespace(fairseq_args()), "model": fairseq_tensors_pt()}, "legacy")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        fs.read_fairseq_checkpoint(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match=str(path)):
        fs.read_fairseq_checkpoint(path)
    write_pt(path, {"args": Namespace(fairseq_args())}, "zip")
    with pytest.raises(CheckpointError, match="no 'model' state dict"):
        fs.read_fairseq_checkpoint(path)


def fairseq_tensors_pt(**kw):
    return {k: Tensor(v) for k, v in fairseq_tensors(**kw).items()}


# ====================================================================== synthetic checkpoints

@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("layout", ["old_args", "new_cfg"])
def test_synthetic_checkpoint_maps_every_tensor(tmp_path, fmt, layout):
    """Both fairseq layouts (0.9's `decoder.` + emb_layer_norm + args; newer `encoder.` +
    layernorm_embedding + cfg["model"] as a Namespace) land in the right params."""
    old = layout == "old_args"
    t = fairseq_tensors(prefix="decoder" if old else "encoder",
                        embed_ln="emb_layer_norm" if old else "layernorm_embedding")
    tree = {"model": {k: Tensor(v) for k, v in t.items()},
            "last_optimizer_state": {"state": {0: {"momentum_buffer": Tensor(np.ones(5))}}},
            "extra_state": {"val_loss": 1.5, "metrics": [(10, "loss", "AverageMeter", {})]}}
    if old:
        tree["args"] = Namespace(fairseq_args())
    else:
        tree["cfg"] = {"model": Namespace(fairseq_args()), "task": {"_name": "masked_lm"}}
    folder = tmp_path / "f"
    folder.mkdir()
    write_pt(folder / "model.pt", tree, fmt)
    (folder / "dict.txt").write_text("".join(f"s{i} 1\n" for i in range(4)))
    model = RobertaForMaskedLM.from_pretrained(folder)
    p, e = model.params, ("decoder" if old else "encoder") + ".sentence_encoder."
    assert p["embeddings"]["word"] is p["lm_head"]["decoder"]["w"]  # tied
    np.testing.assert_array_equal(p["embeddings"]["word"], t[e + "embed_tokens.weight"])
    np.testing.assert_array_equal(p["embeddings"]["token_type"], np.zeros((1, 8)))
    pairs = [("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj"),
             ("attn_out", "self_attn.out_proj"), ("ffn_in", "fc1"), ("ffn_out", "fc2")]
    for i in range(2):
        for ours, theirs in pairs:
            for wb, weight_or_bias in (("w", "weight"), ("b", "bias")):
                np.testing.assert_array_equal(p["layers"][i][ours][wb],
                                              t[f"{e}layers.{i}.{theirs}.{weight_or_bias}"])
        np.testing.assert_array_equal(p["layers"][i]["attn_ln"]["g"],
                                      t[f"{e}layers.{i}.self_attn_layer_norm.weight"])
        np.testing.assert_array_equal(p["layers"][i]["ffn_ln"]["b"],
                                      t[f"{e}layers.{i}.final_layer_norm.bias"])
    ln = "emb_layer_norm" if old else "layernorm_embedding"
    np.testing.assert_array_equal(p["embeddings"]["ln"]["g"], t[f"{e}{ln}.weight"])
    lm = e.replace("sentence_encoder.", "lm_head.")
    np.testing.assert_array_equal(p["lm_head"]["decoder"]["b"], t[lm + "bias"])
    np.testing.assert_array_equal(p["lm_head"]["ln"]["g"], t[lm + "layer_norm.weight"])
    assert model.config.max_position_embeddings == 12 and model.config.num_attention_heads == 2


def test_in_proj_weight_is_split_q_k_v():
    t = fairseq_tensors(layers=1)
    e = "encoder.sentence_encoder.layers.0.self_attn."
    q, k, v = (t.pop(f"{e}{n}_proj.weight") for n in "qkv")
    qb, kb, vb = (t.pop(f"{e}{n}_proj.bias") for n in "qkv")
    t[e + "in_proj_weight"] = np.concatenate([q, k, v])
    t[e + "in_proj_bias"] = np.concatenate([qb, kb, vb])
    t["encoder.sentence_encoder.version"] = np.array([2.0], np.float32)  # dropped: not a weight
    t["encoder.sentence_encoder.something_new.weight"] = np.zeros(3, np.float32)
    config = fs.config_from_args(fairseq_args(layers=1), t)
    sd = fs.transformers_state_dict(config, t)
    assert "encoder.sentence_encoder.version" not in sd
    assert "encoder.sentence_encoder.something_new.weight" in sd  # unknown: reported later
    np.testing.assert_array_equal(sd["roberta.encoder.layer.0.attention.self.key.weight"], k)
    np.testing.assert_array_equal(sd["roberta.encoder.layer.0.attention.self.value.bias"], vb)


def test_classification_heads(tmp_path):
    t = fairseq_tensors(heads=[("mnli", 3), ("sentiment", 2)])
    config_args = fairseq_args()
    with pytest.raises(CheckpointError, match="2 classification heads"):
        fs.transformers_state_dict(fs.config_from_args(config_args, t), t)
    folder = tmp_path / "f"
    folder.mkdir()
    one = {k: v for k, v in t.items() if "sentiment" not in k}
    write_pt(folder / "model.pt", {"args": Namespace(config_args),
                                   "model": {k: Tensor(v) for k, v in one.items()}})
    (folder / "dict.txt").write_text("".join(f"s{i} 1\n" for i in range(4)))
    unused = r"not used when initializing RobertaForSequenceClassification: \['lm_head.bias'"
    with pytest.warns(UserWarning, match=unused):  # the LM head: as transformers warns
        model = RobertaForSequenceClassification.from_pretrained(folder)
    assert model.config.num_labels == 3
    np.testing.assert_array_equal(model.params["classifier"]["out_proj"]["w"],
                                  t["classification_heads.mnli.out_proj.weight"])
    sd = fs.transformers_state_dict(fs.config_from_args(config_args, t), t, head="sentiment")
    np.testing.assert_array_equal(sd["classifier.dense.bias"],
                                  t["classification_heads.sentiment.dense.bias"])


@pytest.mark.parametrize("change, message", [
    ({"encoder_normalize_before": True}, "pre-LN"),
    ({"untie_weights_roberta": True}, "untie_weights_roberta"),
    ({"activation_fn": "linear"}, "activation_fn='linear' has no counterpart"),
    ({"activation_fn": "relu"}, "LM head"),
    ({"encoder_embed_dim": 16}, "encoder_embed_dim=16 but the weights have 8"),
    ({"max_positions": 100}, "max_positions \\+ pad \\+ 1"),
    ({"encoder_attention_heads": None}, "encoder_attention_heads"),
    ({"encoder_attention_heads": "8"}, "encoder_attention_heads='8' is not a positive integer"),
    ({"max_positions": -3}, "max_positions=-3 is not a positive integer"),
])
def test_unsupported_variants_are_clear_errors(change, message):
    t = fairseq_tensors()
    args = {**fairseq_args(), **change}
    with pytest.raises(CheckpointError, match=message):
        fs.config_from_args(args, t)


def test_untied_lm_head_weight_is_refused():
    t = fairseq_tensors()
    t["encoder.lm_head.weight"] = t["encoder.lm_head.weight"] + 1
    with pytest.raises(CheckpointError, match="untied"):
        fs.transformers_state_dict(fs.config_from_args(fairseq_args(), t), t)


def test_dict_size_must_match_embeddings(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    write_pt(folder / "model.pt", {"args": Namespace(fairseq_args()),
                                   "model": fairseq_tensors_pt()})
    (folder / "dict.txt").write_text("a 1\n")
    with pytest.raises(CheckpointError, match="6 symbols .* 9 rows"):
        RobertaForMaskedLM.from_pretrained(folder)


# ====================================================================== dict.txt

def test_dictionary_file_rules(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("A 10\nB 5\nmadeupword0000 0\n<unk> 1 #fairseq:overwrite\n")
    d = fs.Dictionary.load(path)
    assert d.symbols == ["<s>", "<pad>", "</s>", "<unk>", "A", "B", "madeupword0000", "<unk>",
                         "<mask>"]
    assert d.index("<unk>") == 7 and d.index("nope") == 7  # overwrite moves the symbol's id
    path.write_text("A 10\nA 3\n")
    with pytest.raises(ValueError, match="line 2: duplicate symbol 'A'"):
        fs.Dictionary.load(path)
    path.write_text("A 10\njunk\n")
    with pytest.raises(ValueError, match=r"dict.txt, line 2: expected '<symbol> <count>'"):
        fs.Dictionary.load(path)


def test_gpt2_composition_gives_back_roberta_vocab(roberta_base_dir, tmp_path):
    """A permuted GPT-2 encoder.json and the dict.txt that lists its ids in RoBERTa's order
    compose into roberta-base's vocab.json exactly (the roberta.base release layout)."""
    vocab = json.loads((roberta_base_dir / "vocab.json").read_text(encoding="utf-8"))
    by_id = sorted(vocab, key=vocab.get)
    words = [t for t in by_id[4:-1] if not t.startswith("madeupword")]
    perm = np.random.default_rng(0).permutation(len(words))
    encoder = {t: int(i) for t, i in zip(words, perm)}  # GPT-2 ids: not RoBERTa's
    lines = [f"{t if t.startswith('madeupword') else encoder[t]} {1000 - n // 100}\n"
             for n, t in enumerate(by_id[4:-1])]
    (tmp_path / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    (tmp_path / "dict.txt").write_text("".join(lines), encoding="utf-8")
    (tmp_path / "vocab.bpe").write_bytes((roberta_base_dir / "merges.txt").read_bytes())
    composed = fs.compose_gpt2_vocab(fs.Dictionary.load(tmp_path / "dict.txt"), encoder)
    assert composed == vocab
    from minirobera import RobertaTokenizer
    tok = RobertaTokenizer.from_pretrained(tmp_path)  # the roberta.base layout, composed
    assert type(tok) is RobertaTokenizer
    ref = RobertaTokenizer.from_pretrained(roberta_base_dir)
    for text in ["Hello I'm a <mask> model.", "The capital of France is <mask>.", " naïve 🤗"]:
        assert tok(text)["input_ids"] == ref(text)["input_ids"]
    (tmp_path / "dict.txt").write_text("99999999 1\n")
    with pytest.raises(ValueError, match="not an id of the GPT-2 encoder.json"):
        fs.load_tokenizer(tmp_path)
