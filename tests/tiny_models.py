"""Tiny deterministic RoBERTa checkpoints for the pipeline tests and their fixture script.

Owns `build_tiny_model`, which writes a folder that both transformers and minirobera load:
config.json, model.safetensors (transformers' key names) and the real roberta-base
vocab.json / merges.txt copied from a folder you give it. The weights come from
`numpy.random.default_rng(seed)`, so no weight file is ever committed: the same seed gives
the same checkpoint on every machine, and the fixtures recorded from it stay valid.

Leaves out: anything the pipelines do not need (no causal LM, no multiple choice).

The models are small (hidden 16, 2 layers) but keep the real vocabulary of 50,265 tokens,
so the real tokenizer drives them and fill-mask ranks the whole vocabulary as roberta-base
does. Weight scales are chosen so that scores are well separated (a random model with the
usual 0.02 scale would give near-uniform, tie-prone probabilities).
"""

import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

VOCAB_SIZE = 50265
HIDDEN = 16
LAYERS = 2
HEADS = 2
FFN = 32
MAX_POSITIONS = 514  # like roberta-base: 512 tokens + the pad offset of 2

# preset name -> the head and labels of one tiny checkpoint
PRESETS = {
    "mlm": dict(head="masked-lm", seed=0),
    "base": dict(head="base", seed=0),
    "sentiment": dict(head="sequence-classification", seed=1,
                      labels=["negative", "neutral", "positive"]),
    "regression": dict(head="sequence-classification", seed=2, labels=["LABEL_0"],
                       problem_type="regression"),
    "single-logit": dict(head="sequence-classification", seed=3, labels=["LABEL_0"]),
    "multi-label": dict(head="sequence-classification", seed=4,
                        labels=["toxic", "obscene", "threat", "insult"],
                        problem_type="multi_label_classification"),
    # "MISC" has no B-/I- prefix on purpose: grouping treats it as a continuation tag.
    "ner": dict(head="token-classification", seed=5,
                labels=["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC"]),
    "qa": dict(head="question-answering", seed=6),
}

ARCHITECTURES = {
    "base": "RobertaModel",
    "masked-lm": "RobertaForMaskedLM",
    "sequence-classification": "RobertaForSequenceClassification",
    "token-classification": "RobertaForTokenClassification",
    "question-answering": "RobertaForQuestionAnswering",
}


def tiny_config(head, labels=None, problem_type=None):
    """The config.json dict of a tiny checkpoint (roberta-base's settings, smaller sizes).

    >>> cfg = tiny_config("sequence-classification", labels=["neg", "pos"])
    >>> cfg["model_type"], cfg["hidden_size"], cfg["id2label"]
    ('roberta', 16, {'0': 'neg', '1': 'pos'})
    """
    if head not in ARCHITECTURES:
        raise ValueError(f"unknown head {head!r}; choose one of {sorted(ARCHITECTURES)}")
    config = {
        "architectures": [ARCHITECTURES[head]], "model_type": "roberta",
        "vocab_size": VOCAB_SIZE, "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "intermediate_size": FFN, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": MAX_POSITIONS, "type_vocab_size": 1,
        "initializer_range": 0.02, "layer_norm_eps": 1e-05,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
    }
    if labels is not None:
        config["id2label"] = {str(i): name for i, name in enumerate(labels)}
        config["label2id"] = {name: i for i, name in enumerate(labels)}
    if problem_type is not None:
        config["problem_type"] = problem_type
    return config


def _linear(rng, prefix, n_out, n_in, scale):
    # Linear weights are stored [out, in], as torch.nn.Linear keeps them.
    return {f"{prefix}.weight": rng.normal(0, scale, (n_out, n_in)),
            f"{prefix}.bias": rng.normal(0, 0.1, (n_out,))}


def _layer_norm(rng, prefix, width):
    return {f"{prefix}.weight": 1 + rng.normal(0, 0.1, (width,)),
            f"{prefix}.bias": rng.normal(0, 0.1, (width,))}


def encoder_weights(rng, prefix="roberta."):
    """Embeddings and encoder layers with transformers' key names, float64 for now."""
    p = prefix + "embeddings."
    w = {p + "word_embeddings.weight": rng.normal(0, 1.0, (VOCAB_SIZE, HIDDEN)),
         p + "position_embeddings.weight": rng.normal(0, 0.5, (MAX_POSITIONS, HIDDEN)),
         p + "token_type_embeddings.weight": rng.normal(0, 0.5, (1, HIDDEN))}
    w.update(_layer_norm(rng, p + "LayerNorm", HIDDEN))
    for i in range(LAYERS):
        p = f"{prefix}encoder.layer.{i}."
        for name in ("query", "key", "value"):
            w.update(_linear(rng, p + f"attention.self.{name}", HIDDEN, HIDDEN, 0.25))
        w.update(_linear(rng, p + "attention.output.dense", HIDDEN, HIDDEN, 0.25))
        w.update(_layer_norm(rng, p + "attention.output.LayerNorm", HIDDEN))
        w.update(_linear(rng, p + "intermediate.dense", FFN, HIDDEN, 0.25))
        w.update(_linear(rng, p + "output.dense", HIDDEN, FFN, 0.25))
        w.update(_layer_norm(rng, p + "output.LayerNorm", HIDDEN))
    return w


def head_weights(rng, head, num_labels):
    """The task head's tensors; the MLM decoder is tied to the word embeddings (no key)."""
    if head == "masked-lm":
        w = _linear(rng, "lm_head.dense", HIDDEN, HIDDEN, 0.25)
        w.update(_layer_norm(rng, "lm_head.layer_norm", HIDDEN))
        w["lm_head.bias"] = rng.normal(0, 0.1, (VOCAB_SIZE,))
        return w
    if head == "sequence-classification":
        w = _linear(rng, "classifier.dense", HIDDEN, HIDDEN, 0.25)
        w.update(_linear(rng, "classifier.out_proj", num_labels, HIDDEN, 0.5))
        return w
    if head == "token-classification":
        w = _linear(rng, "classifier", num_labels, HIDDEN, 0.5)
        w["classifier.bias"][0] += 0.5  # favour label 0 ("O") a little, so some tokens are ignored
        return w
    if head == "question-answering":
        return _linear(rng, "qa_outputs", 2, HIDDEN, 0.5)
    return _linear(rng, "pooler.dense", HIDDEN, HIDDEN, 0.25)  # base: RobertaModel's pooler


def build_tiny_model(dest, tokenizer_dir, head="masked-lm", seed=0, labels=None,
                     problem_type=None):
    """Write a tiny RoBERTa checkpoint with `head` into folder `dest`; return its Path.

    `tokenizer_dir` must hold the real roberta-base vocab.json and merges.txt.

    >>> path = build_tiny_model(tmp_path, "../shared/roberta-base",  # doctest: +SKIP
    ...                         head="token-classification", labels=["O", "B-PER"])
    >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
    ['config.json', 'merges.txt', 'model.safetensors', 'tokenizer_config.json', 'vocab.json']
    """
    dest, tokenizer_dir = Path(dest), Path(tokenizer_dir)
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    prefix = "" if head == "base" else "roberta."  # a bare RobertaModel has no prefix
    weights = encoder_weights(rng, prefix)
    weights.update(head_weights(rng, head, len(labels or [])))
    weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
    config = tiny_config(head, labels, problem_type)
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(tokenizer_dir / name, dest / name)
    # What the hub's roberta-base tokenizer_config.json says; without it the limit is unknown.
    (dest / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}) + "\n")
    return dest


def build_preset(name, dest, tokenizer_dir):
    """Build one of PRESETS into `dest` (a folder); return its Path.

    >>> sorted(PRESETS)
    ['base', 'mlm', 'multi-label', 'ner', 'qa', 'regression', 'sentiment', 'single-logit']
    """
    if name not in PRESETS:
        raise ValueError(f"unknown tiny model {name!r}; choose one of {sorted(PRESETS)}")
    return build_tiny_model(dest, tokenizer_dir, **PRESETS[name])
