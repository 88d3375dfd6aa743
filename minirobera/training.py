"""Training: dropout masks, AdamW, RoBERTa's learning-rate schedule, clipping, and the loop.

Owns what turns gradients (backward.py, through `model.loss_and_grads`) into a trained
model: a seeded `Dropout` (training mode; inference never uses it), `parameters` (the live
arrays of a model under transformers' names, updated in place), `AdamW` with decoupled
weight decay as torch.optim.AdamW computes it and the usual no-decay group (biases and
LayerNorm weights), `linear_schedule` (linear warmup, then linear decay to zero: RoBERTa's
schedule, transformers' get_linear_schedule_with_warmup), `clip_grad_norm` (by global
norm, as torch.nn.utils.clip_grad_norm_) and `train`, a plain loop over batches.

Leaves out: mixed precision, gradient accumulation, data loading (pretraining.py builds
masked-LM batches), checkpointing during training (save_pretrained the model when done).

>>> from minirobera.config import RobertaConfig
>>> from minirobera.modeling import RobertaForSequenceClassification
>>> config = RobertaConfig(vocab_size=20, hidden_size=8, num_attention_heads=2,
...                        intermediate_size=12, num_hidden_layers=1, max_position_embeddings=16)
>>> model = RobertaForSequenceClassification(config, seed=0)
>>> batch = {"input_ids": [[0, 5, 6, 2], [0, 7, 2, 1]], "labels": [1, 0],
...          "attention_mask": [[1, 1, 1, 1], [1, 1, 1, 0]]}
>>> losses = train(model, [batch] * 30, lr=1e-2, warmup_steps=3)
>>> losses[-1] < losses[0]
True
"""

import math

import numpy as np

from . import kernels
from .checkpoint import table_rows

# ------------------------------------------------------------------------------- dropout


class Dropout:
    """Dropout masks from a seeded RNG, one call per dropout site of the forward.

    `drop(shape, kind)` gives a keep-mask already scaled by 1/(1-p) ("inverted dropout", as
    torch: the expected activation is unchanged, so inference needs no rescaling), or None
    when that kind's rate is 0. Kinds and their config rates: "hidden"
    (hidden_dropout_prob: embeddings, each sublayer's output), "attention"
    (attention_probs_dropout_prob: the attention probabilities), "classifier"
    (classifier_dropout, or hidden_dropout_prob when that is None, as transformers).

    >>> from minirobera.config import RobertaConfig
    >>> drop = Dropout(RobertaConfig(), seed=0)
    >>> mask = drop((1000,), "hidden")
    >>> sorted(set(mask.astype(float).round(4).tolist())), round(float(mask.mean()), 1)
    ([0.0, 1.1111], 1.0)
    """

    def __init__(self, config, seed=0):
        hidden = config.hidden_dropout_prob
        classifier = config.classifier_dropout
        self.rates = {"hidden": hidden, "attention": config.attention_probs_dropout_prob,
                      "classifier": hidden if classifier is None else classifier}
        for kind, p in self.rates.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"dropout rate for {kind} must be in [0, 1], got {p}")
        self.rng = np.random.default_rng(seed)

    def __call__(self, shape, kind):
        p = self.rates[kind]
        if p == 0.0:
            return None
        if p == 1.0:
            return np.zeros(shape, np.float32)
        return (self.rng.random(shape) >= p).astype(np.float32) / np.float32(1.0 - p)


# ---------------------------------------------------------------------------- parameters

def parameters(model):
    """{transformers name: the model's own array}: updating one in place updates the model.

    Names and order as `model.state_dict()` (tied parameters once). Arrays a checkpoint
    left read-only (memory-mapped files) are replaced by writable copies first; the tied
    decoder is re-pointed at the new word embeddings.

    >>> from minirobera.config import RobertaConfig
    >>> from minirobera.modeling import RobertaForMaskedLM
    >>> model = RobertaForMaskedLM(RobertaConfig(vocab_size=20, hidden_size=8,
    ...     num_attention_heads=2, intermediate_size=12, num_hidden_layers=1), seed=0)
    >>> p = parameters(model)
    >>> p["roberta.embeddings.word_embeddings.weight"] is model.params["embeddings"]["word"]
    True
    """
    # q, k and v (weights and biases) are already views into fused.py's qkv arrays, so an
    # update in place reaches inference too; nothing here may replace them (a replaced array
    # makes fused.py build qkv anew, and the optimiser would then update the old arrays)
    out = {}
    for name, path, _shape, part in table_rows(model.config, model.parts):
        *parents, leaf = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = model.params
        for key in parents:
            node = node[key]
        if not node[leaf].flags.writeable:
            node[leaf] = np.array(node[leaf])
        array = node[leaf]
        out[model.prefix + name if part in ("encoder", "pooler") else name] = array
    if "lm_head" in model.parts and model.config.tie_word_embeddings:
        model.params["lm_head"]["decoder"]["w"] = model.params["embeddings"]["word"]
    return out


def no_decay(name):
    """The usual group without weight decay: biases and LayerNorm weights.

    >>> [no_decay(n) for n in ("lm_head.bias", "roberta.embeddings.LayerNorm.weight",
    ...                        "lm_head.layer_norm.weight", "classifier.dense.weight")]
    [True, True, True, False]
    """
    return name.endswith("bias") or "LayerNorm." in name or "layer_norm." in name


# ------------------------------------------------------------------------------ optimiser

class AdamW:
    """Adam with decoupled weight decay, step for step torch.optim.AdamW (amsgrad off).

    Per parameter, at step t with learning rate lr:
        p -= lr * weight_decay * p                  (decoupled: not through the gradient)
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    >>> w = {"w": np.ones(2, np.float32), "b": np.zeros(2, np.float32)}
    >>> opt = AdamW(w, weight_decay=0.1)
    >>> opt.step({"w": np.array([1.0, -1.0], np.float32), "b": np.ones(2, np.float32)}, lr=0.1)
    >>> w["w"].astype(float).round(4).tolist(), w["b"].astype(float).round(4).tolist()
    ([0.89, 1.09], [-0.1, -0.1])
    """

    def __init__(self, params, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 decay=lambda name: not no_decay(name)):
        self.params, self.betas, self.eps = params, betas, eps
        self.weight_decay = {name: weight_decay if decay(name) else 0.0 for name in params}
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0

    def step(self, grads, lr):
        """Update every parameter in place from `grads` (same names) at learning rate lr."""
        self.t += 1
        b1, b2 = self.betas
        step_size = lr / (1.0 - b1 ** self.t)
        root_bc2 = math.sqrt(1.0 - b2 ** self.t)
        for name, p in self.params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            if kernels.get_backend() == "numba":  # the same update in one pass (speed only)
                kernels.adamw_update(p, g, m, v, decay=1.0 - lr * self.weight_decay[name],
                                     b1=b1, b2=b2, step_size=step_size, root_bc2=root_bc2,
                                     eps=self.eps)
                continue
            p *= np.float32(1.0 - lr * self.weight_decay[name])
            m *= np.float32(b1)
            m += np.float32(1.0 - b1) * g
            v *= np.float32(b2)
            v += np.float32(1.0 - b2) * g * g
            # p -= step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps), in one scratch array
            update = np.sqrt(v)
            update /= np.float32(root_bc2)
            update += np.float32(self.eps)
            np.divide(m, update, out=update)
            update *= np.float32(step_size)
            p -= update


# ------------------------------------------------------------------ schedule and clipping

def linear_schedule(step, warmup_steps, total_steps):  # int -> float in [0, 1]
    """RoBERTa's schedule: the lr factor rises linearly from 0 over warmup_steps, then falls
    linearly to 0 at total_steps (transformers' get_linear_schedule_with_warmup; step 0 is
    the first optimiser step, so it runs at lr 0 when there is warmup).

    >>> [round(linear_schedule(s, 2, 6), 2) for s in range(7)]
    [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def clip_grad_norm(grads, max_norm):  # {name: array} -> float (the norm before clipping)
    """Scale every gradient in place by max_norm / (global norm + 1e-6) when the global L2
    norm over all of them exceeds max_norm (torch.nn.utils.clip_grad_norm_).

    >>> g = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([4.0], np.float32)}
    >>> clip_grad_norm(g, 1.0), g["a"].astype(float).round(4).tolist()
    (5.0, [0.6, 0.0])
    """
    norms = [np.linalg.norm(g.reshape(-1)) for g in grads.values()]
    total = float(np.linalg.norm(np.asarray(norms, np.float32)))
    scale = min(1.0, max_norm / (total + 1e-6))
    for g in grads.values():
        g *= np.float32(scale)
    return total


# ------------------------------------------------------------------------------ the loop

def training_step(model, batch, optimizer, lr, *, max_grad_norm=1.0, dropout=None):
    """One step: forward + backward (model.loss_and_grads), clip, AdamW. Returns the loss."""
    loss, grads = model.loss_and_grads(**batch, dropout=dropout)
    grads = {name: grads[name] for name in optimizer.params}
    if max_grad_norm is not None:
        clip_grad_norm(grads, max_grad_norm)
    optimizer.step(grads, lr)
    return float(loss)


def train(model, batches, *, lr, warmup_steps=0, total_steps=None, weight_decay=0.01,
          max_grad_norm=1.0, dropout=None, betas=(0.9, 0.98), eps=1e-6, log_every=None):
    """Train `model` in place on `batches` (dicts of loss_and_grads arguments); return the
    loss of every step.

    Defaults are RoBERTa's pretraining settings: betas (0.9, 0.98), eps 1e-6, weight decay
    0.01, clipping at norm 1 (the paper's Table 9; torch's AdamW defaults are betas
    (0.9, 0.999) and eps 1e-8). total_steps defaults to len(batches). `dropout` is a
    Dropout for training mode, or None. (See the module docstring for an example.)
    """
    batches = list(batches) if total_steps is None else batches
    total_steps = len(batches) if total_steps is None else total_steps
    optimizer = AdamW(parameters(model), betas=betas, eps=eps, weight_decay=weight_decay)
    losses = []
    for step, batch in zip(range(total_steps), batches):
        rate = lr * linear_schedule(step, warmup_steps, total_steps)
        losses.append(training_step(model, batch, optimizer, rate,
                                    max_grad_norm=max_grad_norm, dropout=dropout))
        if log_every and (step % log_every == 0 or step == total_steps - 1):
            print(f"step {step:5d}  lr {rate:.2e}  loss {losses[-1]:.4f}")
    return losses
