"""Record what transformers' pipelines return on the tiny checkpoints of tests/tiny_models.py.

Writes tests/fixtures/pipelines/<task>.json: the reference versions, then one case per call
(pipeline() keyword arguments, the inputs, the call's keyword arguments, the output). The
tests in tests/test_pipelines.py replay every case through minirobera and compare.

Run it twice, once per reference (it picks the tasks from the transformers it runs under):

    python scripts/make_pipeline_fixtures.py                    # transformers 5: fill-mask,
                                                                # text/token classification,
                                                                # feature extraction
    /path/to/transformers4-venv/bin/python scripts/make_pipeline_fixtures.py
                                                                # transformers 4.x: question
                                                                # answering (5.3 removed it)

Needs torch, transformers, numpy, safetensors and the real roberta-base vocab.json/merges.txt
(found as in tests/conftest.py, or MINIROBERA_ROBERTA_BASE).
"""

import json
import os
import platform
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tiny_models import PRESETS, build_preset  # noqa: E402

OUT = REPO / "tests" / "fixtures" / "pipelines"


def find_roberta_base():
    """The folder with the real vocab.json + merges.txt, as tests/conftest.py looks for it
    (that file needs pytest, which the transformers 4.x environment may lack)."""
    for cand in (os.environ.get("MINIROBERA_ROBERTA_BASE"),
                 REPO.parent / "shared" / "roberta-base"):
        if cand and (Path(cand) / "vocab.json").is_file() and (Path(cand) / "merges.txt").is_file():
            return Path(cand)
    return None

LONG_WORDS = ("the quick brown fox jumps over the lazy dog while Wolfgang reads in Berlin "
              "and Hugging Face ships models to Schwarzenegger every morning").split()


def long_text(n_words, first=""):
    """A deterministic text of `n_words` words (more tokens than words)."""
    words = [LONG_WORDS[i % len(LONG_WORDS)] for i in range(n_words)]
    return (first + " " if first else "") + " ".join(words) + "."


FILL_MASK_CASES = [
    dict(id="single", inputs="Hello I'm a <mask> model."),
    dict(id="top_k_3", inputs="The capital of France is <mask>.", call=dict(top_k=3)),
    dict(id="mask_first", inputs="<mask> is the answer."),
    dict(id="mask_after_space_and_unicode", inputs="Caf\u00e9 \u00fcber  <mask> \U0001f917!"),
    dict(id="two_masks", inputs="The <mask> of France is <mask>.", call=dict(top_k=2)),
    dict(id="targets", inputs="The capital of France is <mask>.",
         call=dict(targets=[" Paris", " London", "Berlin", " the"])),
    dict(id="target_in_vocab", inputs="The capital of France is <mask>.",
         call=dict(targets="\u0120Paris")),
    dict(id="targets_fewer_than_top_k", inputs="I like <mask>.",
         call=dict(targets=[" cats", " dogs"], top_k=5)),
    dict(id="target_not_in_vocab", inputs="I like <mask>.", call=dict(targets=["zzqwerty"])),
    dict(id="batch", inputs=["Hello <mask>.", "A <mask> of <mask>s and a longer sentence."],
         call=dict(top_k=2)),
    dict(id="batch_of_one", inputs=["Hello <mask>."], call=dict(top_k=2)),
    dict(id="init_top_k", init=dict(top_k=2), inputs="Hello <mask>."),
    dict(id="truncation_keeps_mask", inputs=long_text(600, "<mask> says"),
         call=dict(top_k=2, tokenizer_kwargs={"truncation": True})),
]

TEXT_CLASSIFICATION_CASES = [
    dict(id="single", model="sentiment", inputs="I love this movie!"),
    dict(id="batch", model="sentiment", inputs=["I love this movie!", "Meh.", "Terrible, awful."]),
    dict(id="batch_of_one", model="sentiment", inputs=["I love this movie!"]),
    dict(id="top_k_1", model="sentiment", inputs="I love this movie!", call=dict(top_k=1)),
    dict(id="top_k_2", model="sentiment", inputs="I love this movie!", call=dict(top_k=2)),
    dict(id="top_k_none", model="sentiment", inputs="I love this movie!", call=dict(top_k=None)),
    dict(id="top_k_none_batch", model="sentiment", inputs=["Great.", "Bad."],
         call=dict(top_k=None)),
    dict(id="init_top_k_none", model="sentiment", init=dict(top_k=None), inputs="Great."),
    dict(id="softmax", model="sentiment", inputs="Great.", call=dict(function_to_apply="softmax")),
    dict(id="sigmoid", model="sentiment", inputs="Great.",
         call=dict(function_to_apply="sigmoid", top_k=None)),
    dict(id="none", model="sentiment", inputs="Great.",
         call=dict(function_to_apply="none", top_k=None)),
    dict(id="pair", model="sentiment", inputs={"text": "Is it good?", "text_pair": "Yes, very."}),
    dict(id="pair_batch", model="sentiment",
         inputs=[{"text": "Is it good?", "text_pair": "Yes."},
                 {"text": "Bad?", "text_pair": "No"}]),
    dict(id="pair_top_k_none", model="sentiment",
         inputs={"text": "Is it good?", "text_pair": "Yes, very."}, call=dict(top_k=None)),
    dict(id="regression", model="regression", inputs="I love this movie!"),
    dict(id="regression_top_k_none", model="regression", inputs="Meh.", call=dict(top_k=None)),
    dict(id="single_logit_sigmoid", model="single-logit", inputs="I love this movie!"),
    dict(id="multi_label", model="multi-label", inputs="You are an idiot.", call=dict(top_k=None)),
    dict(id="multi_label_default", model="multi-label", inputs="You are an idiot."),
    dict(id="long_input_truncated", model="sentiment", inputs=long_text(700),
         call=dict(truncation=True)),
]

NER_SENTENCES = [
    "My name is Wolfgang and I live in Berlin.",
    "Hugging Face Inc. is a company based in New York City, says Schwarzenegger.",
    "Caf\u00e9s in M\u00fcnchen  and   Z\u00fcrich \U0001f917 are nice",
]

TOKEN_CLASSIFICATION_CASES = [
    *[dict(id=f"{strategy}_{i}", inputs=text, init=dict(aggregation_strategy=strategy))
      for strategy in ("none", "simple", "first", "average", "max")
      for i, text in enumerate(NER_SENTENCES)],
    dict(id="keep_all_labels", inputs=NER_SENTENCES[0], call=dict(ignore_labels=[])),
    dict(id="ignore_two_labels", inputs=NER_SENTENCES[1],
         init=dict(aggregation_strategy="simple"), call=dict(ignore_labels=["O", "MISC"])),
    dict(id="batch", inputs=NER_SENTENCES[:2], init=dict(aggregation_strategy="first")),
    dict(id="batch_of_one", inputs=NER_SENTENCES[:1]),
    dict(id="long_input_truncated", inputs=long_text(600),
         init=dict(aggregation_strategy="max")),
    dict(id="long_input_stride", inputs=long_text(600),
         init=dict(aggregation_strategy="simple", stride=100),
         call=dict(ignore_labels=["O", "MISC"])),
]

FEATURE_EXTRACTION_CASES = [
    dict(id="single", inputs="Hello world"),
    dict(id="unicode", inputs="Caf\u00e9 \U0001f917 <mask>"),
    dict(id="batch", inputs=["Hi", "A somewhat longer sentence here."]),
    dict(id="return_tensors", inputs="Hello world", call=dict(return_tensors=True)),
]

QA_CONTEXT = ("My name is Wolfgang and I live in Berlin. Hugging Face Inc. is a company "
              "based in New York City. Its headquarters are in DUMBO, Brooklyn.")

QUESTION_ANSWERING_CASES = [
    dict(id="single", call=dict(question="Where do I live?", context=QA_CONTEXT)),
    dict(id="top_k_3", call=dict(question="Where do I live?", context=QA_CONTEXT, top_k=3)),
    dict(id="impossible", call=dict(question="Where do I live?", context=QA_CONTEXT,
                                    handle_impossible_answer=True, top_k=2)),
    dict(id="impossible_in_top_k", call=dict(
        question="Who?",
        context="Yes.  No!  Maybe?  Who knows, really, honestly, truly, my friend.",
        handle_impossible_answer=True, top_k=25)),
    # Few context tokens: the null answer ranks high, and a zero-score span fills the list.
    dict(id="impossible_short_context", call=dict(question="Why?", context="Yes",
                                                  handle_impossible_answer=True, top_k=3)),
    dict(id="cls_token_in_question", call=dict(question="<s> why?", context=QA_CONTEXT, top_k=5)),
    dict(id="max_answer_len_2", call=dict(question="Who?", context=QA_CONTEXT,
                                          max_answer_len=2, top_k=2)),
    dict(id="no_word_alignment", call=dict(question="Where?", context=QA_CONTEXT,
                                           align_to_words=False, top_k=3)),
    dict(id="unicode", call=dict(question="Wo?", context="Caf\u00e9s in M\u00fcnchen  und "
                                 "Z\u00fcrich \U0001f917 sind sch\u00f6n, sagt Fran\u00e7oise.")),
    dict(id="small_windows", call=dict(question="Who reads in Berlin?", context=long_text(60),
                                       max_seq_len=32, doc_stride=8, top_k=3)),
    dict(id="long_context_default_windows",
         call=dict(question="What does Hugging Face ship?", context=long_text(420),
                   top_k=2, handle_impossible_answer=True)),
    dict(id="batch_questions", call=dict(question=["Where do I live?", "Who?"],
                                         context=QA_CONTEXT)),
    dict(id="batch_pairs", call=dict(question=["Where do I live?", "Where is DUMBO?"],
                                     context=[QA_CONTEXT, QA_CONTEXT[40:]], top_k=2)),
    dict(id="batch_of_one", call=dict(question=["Where do I live?"], context=[QA_CONTEXT])),
    dict(id="dict_input", inputs={"question": "Where do I live?", "context": QA_CONTEXT}),
]

TASKS_V5 = {
    "fill-mask": ("mlm", FILL_MASK_CASES),
    "text-classification": ("sentiment", TEXT_CLASSIFICATION_CASES),
    "token-classification": ("ner", TOKEN_CLASSIFICATION_CASES),
    "feature-extraction": ("base", FEATURE_EXTRACTION_CASES),
}
TASKS_V4 = {"question-answering": ("qa", QUESTION_ANSWERING_CASES)}


def to_json(value):
    """Pipeline output -> plain JSON values (NumPy / torch scalars and arrays become lists)."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "tolist"):  # np.float32, np.ndarray, torch.Tensor
        return to_json(value.tolist())
    return value


def reference_tokenizer(model_dir):
    """The hub's roberta-base tokenizer: `<mask>` strips the space on its left.

    transformers 5 built from vocab.json + merges.txt alone gets that wrong (REFERENCE.md 1),
    so the mask token is passed explicitly; 4.x's RobertaTokenizerFast does it by itself.
    """
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)
    tok = AutoTokenizer.from_pretrained(model_dir, mask_token=mask)
    probe = tok("a <mask>")["input_ids"]
    if probe != [0, 102, 50264, 2]:
        raise RuntimeError(f"reference tokenizer is wrong around <mask>: {probe}")
    return tok


def run_case(task, model_dir, case):
    from transformers import pipeline

    pipe = pipeline(task, model=str(model_dir), tokenizer=reference_tokenizer(model_dir),
                    **case.get("init", {}))
    call = dict(case.get("call", {}))
    args = () if "inputs" not in case else (case["inputs"],)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        output = pipe(*args, **call)
    if call.get("return_tensors"):
        output = {"type": type(output).__name__, "values": to_json(output)}
    return to_json(output)


def reference_versions():
    import tokenizers
    import torch
    import transformers

    return {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def record(tasks, tokenizer_dir, workdir):
    OUT.mkdir(parents=True, exist_ok=True)
    versions = reference_versions()
    for task, (default_model, cases) in tasks.items():
        recorded = []
        for case in cases:
            model = case.get("model", default_model)
            model_dir = Path(workdir) / model
            if not model_dir.exists():
                build_preset(model, model_dir, tokenizer_dir)
            out = dict(case, model=model, output=run_case(task, model_dir, case))
            recorded.append(out)
        doc = {"task": task, "script": "scripts/make_pipeline_fixtures.py",
               "reference": versions, "tiny_models": {k: PRESETS[k] for k in
                                                       sorted({c["model"] for c in recorded})},
               "cases": recorded}
        path = OUT / f"{task}.json"
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {path.relative_to(REPO)}: {len(recorded)} cases "
              f"(transformers {versions['transformers']})")


def main():
    import transformers

    tokenizer_dir = find_roberta_base()
    if tokenizer_dir is None:
        sys.exit("roberta-base vocab.json/merges.txt not found (set MINIROBERA_ROBERTA_BASE)")
    major = int(transformers.__version__.split(".")[0])
    tasks = TASKS_V4 if major < 5 else TASKS_V5
    with tempfile.TemporaryDirectory() as workdir:
        record(tasks, tokenizer_dir, workdir)


if __name__ == "__main__":
    main()
