"""The task heads on top of the encoder, and the losses transformers computes with them.

Owns the pooler, the masked/causal LM head, sequence classification, token classification,
question answering (start/end) and multiple choice, each a pure function over the encoder's
last hidden state and a params dict; plus the PyTorch losses those models use (cross
entropy with ignore_index, MSE, BCE with logits). Shapes follow the legend in layers.py;
L is the number of labels.

Leaves out: dropout (inference only) and the encoder itself (layers.py).

Head params (checkpoint.py maps transformers' names onto these):

    pooler:      w [D,D], b [D]
    lm_head:     dense {w [D,D], b}, ln {g, b}, decoder {w [V,D] (tied to the word
                 embeddings), b [V]}
    classifier:  sequence: dense {w [D,D], b}, out_proj {w [L,D], b}
                 token: w [L,D], b [L];  multiple choice: w [1,D], b [1]
    qa_outputs:  w [2,D], b [2]

>>> rng = np.random.default_rng(0)
>>> h = rng.normal(size=(2, 5, 4)).astype(np.float32)
>>> p = {"w": rng.normal(size=(3, 4)).astype(np.float32), "b": np.zeros(3, np.float32)}
>>> token_classification_head(h, p).shape
(2, 5, 3)
"""

import numpy as np

from .layers import bias_act, layer_norm, linear

IGNORE_INDEX = -100  # labels equal to this are skipped by the losses, as in PyTorch


# ----------------------------------------------------------------------------------- heads

def pooler(h, p):  # [B,T,D] -> [B,D]
    """dense + tanh on the first token (<s>): RobertaModel's pooler_output.

    >>> pooler(np.zeros((1, 3, 2)), {"w": np.eye(2), "b": np.ones(2)}).round(4).tolist()
    [[0.7616, 0.7616]]
    """
    return np.tanh(linear(h[:, 0], p["w"], p["b"]))


def lm_head(h, p, eps):  # [B,T,D] -> [B,T,V]
    """dense -> GELU -> LayerNorm -> decoder: the masked (and causal) LM logits.

    Quirk: the LM head always uses exact erf GELU, whatever config.hidden_act says.
    Quirk: the decoder weight is tied to the word embeddings (the same [V,D] array); only
    its bias `lm_head.bias` is stored separately.

    >>> D, V = 4, 6
    >>> lin = lambda o, i: {"w": np.ones((o, i), np.float32), "b": np.zeros(o, np.float32)}
    >>> p = {"dense": lin(D, D), "ln": {"g": np.ones(D), "b": np.zeros(D)}, "decoder": lin(V, D)}
    >>> lm_head(np.ones((2, 3, D), np.float32), p, eps=1e-5).shape
    (2, 3, 6)
    """
    x = bias_act(linear(h, p["dense"]["w"]), p["dense"]["b"], "gelu")  # exact GELU
    x = layer_norm(x, p["ln"]["g"], p["ln"]["b"], eps)
    return linear(x, p["decoder"]["w"], p["decoder"]["b"])


def sequence_classification_head(h, p):  # [B,T,D] -> [B,L]
    """h[:, 0] -> dense -> tanh -> out_proj.

    Quirk: RobertaForSequenceClassification has no pooler; this head's own dense + tanh
    plays that role (its weights are `classifier.dense`, not `pooler.dense`).

    >>> p = {"dense": {"w": np.eye(2), "b": np.zeros(2)},
    ...      "out_proj": {"w": np.ones((3, 2)), "b": np.zeros(3)}}
    >>> sequence_classification_head(np.ones((1, 4, 2)), p).round(4).tolist()
    [[1.5232, 1.5232, 1.5232]]
    """
    x = np.tanh(linear(h[:, 0], p["dense"]["w"], p["dense"]["b"]))
    return linear(x, p["out_proj"]["w"], p["out_proj"]["b"])


def token_classification_head(h, p):  # [B,T,D] -> [B,T,L]
    """One Linear per token (see the module docstring for an example)."""
    return linear(h, p["w"], p["b"])


def question_answering_head(h, p):  # [B,T,D] -> [B,T], [B,T]
    """Linear(D, 2) per token, split into start and end logits.

    >>> start, end = question_answering_head(np.ones((1, 3, 2)),
    ...                                      {"w": np.array([[1.0, 0], [0, 2]]), "b": np.zeros(2)})
    >>> start.tolist(), end.tolist()
    ([[1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0]])
    """
    logits = linear(h, p["w"], p["b"])  # [B,T,2]
    return logits[..., 0].copy(), logits[..., 1].copy()


def multiple_choice_head(pooled, p, n_choices):  # [B*C,D] -> [B,C]
    """Linear(D, 1) on each choice's pooler output, one row of C scores per example.

    >>> multiple_choice_head(np.ones((6, 2)), {"w": np.ones((1, 2)), "b": np.zeros(1)}, 3).shape
    (2, 3)
    """
    return linear(pooled, p["w"], p["b"]).reshape(-1, n_choices)


# ---------------------------------------------------------------------------------- losses

def log_softmax(x):  # [..., K] -> [..., K]
    """log(softmax(x)) over the last axis, computed stably.

    >>> np.exp(log_softmax(np.array([1000.0, 1000.0]))).tolist()
    [0.5, 0.5]
    """
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def cross_entropy(logits, labels, ignore_index=IGNORE_INDEX):  # [N,K], [N] -> []
    """Mean negative log-likelihood over labels != ignore_index (torch's CrossEntropyLoss).

    >>> round(float(cross_entropy(np.zeros((2, 4)), np.array([1, -100]))), 6)  # log 4
    1.386294
    """
    labels = np.asarray(labels).reshape(-1)
    logits = logits.reshape(labels.shape[0], -1)
    keep = labels != ignore_index
    if ((labels[keep] < 0) | (labels[keep] >= logits.shape[-1])).any():
        raise ValueError(f"labels must be in 0..{logits.shape[-1] - 1} or {ignore_index} "
                         f"(ignored), got {labels[keep].min()}..{labels[keep].max()}")
    if not keep.any():  # torch returns nan for an all-ignored batch
        return np.float32(np.nan)
    picked = log_softmax(logits[keep])[np.arange(keep.sum()), labels[keep]]
    return np.float32(-picked.mean())


def mse(x, y):  # [...], [...] -> []
    """Mean squared error (torch's MSELoss).

    >>> float(mse([1.0, 2.0], [1.0, 4.0]))
    2.0
    """
    return np.float32(np.mean((np.asarray(x, np.float32) - np.asarray(y, np.float32)) ** 2))


def bce_with_logits(logits, targets):  # [...], [...] -> []
    """Mean binary cross entropy on logits (torch's BCEWithLogitsLoss), overflow-free.

    >>> round(float(bce_with_logits(np.zeros(3), np.ones(3))), 6)
    0.693147
    """
    x, y = np.asarray(logits, np.float32), np.asarray(targets, np.float32)
    # max(x,0) - x*y + log(1 + exp(-|x|)) == -[y log s(x) + (1-y) log(1-s(x))]
    return np.float32(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))
