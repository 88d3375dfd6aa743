"""RoBERTa on one screen: a checkpoint folder and token ids in, masked-LM logits out.

This file repeats layers.py and heads.py ON PURPOSE, cut down to the forward pass alone: no
batch, no kernels, no fused weights, float64 throughout, NumPy and safetensors only. Read it
first for the whole; the package's modules are the same steps with checks, batching and speed.
tests/test_one_screen.py holds it equal to RobertaForMaskedLM.

>>> here = os.path.dirname(os.path.abspath(__file__))  # a tiny checkpoint of the tests
>>> folder = os.path.join(here, "..", "tests", "fixtures", "model", "a-RobertaForMaskedLM-float16",
...                       "safetensors")
>>> mlm_logits(folder, [0, 17, 42, 8, 2]).shape  # 5 tokens, a vocabulary of 99
(5, 99)
"""
import json
import math
import os

import numpy as np
from safetensors.numpy import load_file

erf = np.vectorize(math.erf)
ACT = {"gelu": lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))),  # Quirk: exact erf GELU
       "relu": lambda x: np.maximum(x, 0), "tanh": np.tanh,
       "silu": lambda x: x / (1 + np.exp(-x)), "quick_gelu": lambda x: x / (1 + np.exp(-1.702 * x))}


def layer_norm(x, g, b, eps):  # [T,D] -> [T,D]
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)  # biased, as torch
    return (x - mean) / np.sqrt(var + eps) * g + b


def linear(x, w, b):  # [T,In], [Out,In], [Out] -> [T,Out]. Quirk: weights stored [out, in]
    return x @ w.T + b


def attention(x, p, keep, n_head):  # [T,D], prefix of one layer's keys, [T] bool -> [T,D]
    T, D = x.shape
    q, k, v = (linear(x, *wb(p, "attention.self." + n)).reshape(T, n_head, -1).transpose(1, 0, 2)
               for n in ("query", "key", "value"))  # [H,T,Dh] each
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(D // n_head)  # [H,T,T]
    scores = np.where(keep, scores, np.finfo(np.float32).min)  # padding keys are never seen
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return (probs @ v).transpose(1, 0, 2).reshape(T, D)  # heads side by side again


def wb(sd, name):  # "x.dense" -> (weight, bias), or (gamma, beta) of a LayerNorm
    return sd[name + ".weight"], sd[name + ".bias"]


def mlm_logits(folder, ids):  # folder, [T] -> [T,V]
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        c = json.load(f)
    sd = {k.removeprefix("roberta."): v.astype(np.float64)
          for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    ids, pad, eps = np.asarray(ids), c["pad_token_id"], c["layer_norm_eps"]
    keep = ids != pad
    pos = np.cumsum(keep) * keep + pad  # Quirk: positions start at pad + 1; pads get pad
    word, e = sd["embeddings.word_embeddings.weight"], "embeddings."
    x = word[ids] + sd[e + "token_type_embeddings.weight"][0]  # Quirk: type row 0 is added
    x = layer_norm(x + sd[e + "position_embeddings.weight"][pos], *wb(sd, e + "LayerNorm"), eps)
    for i in range(c["num_hidden_layers"]):
        p = {k[len(f"encoder.layer.{i}."):]: v for k, v in sd.items()
             if k.startswith(f"encoder.layer.{i}.")}
        a = attention(x, p, keep, c["num_attention_heads"])
        h = layer_norm(linear(a, *wb(p, "attention.output.dense")) + x,  # Quirk: post-LN
                       *wb(p, "attention.output.LayerNorm"), eps)
        f = ACT[c["hidden_act"]](linear(h, *wb(p, "intermediate.dense")))  # [T,F]
        x = layer_norm(linear(f, *wb(p, "output.dense")) + h, *wb(p, "output.LayerNorm"), eps)
    x = ACT["gelu"](linear(x, *wb(sd, "lm_head.dense")))  # Quirk: the head's GELU is always exact
    x = layer_norm(x, *wb(sd, "lm_head.layer_norm"), eps)
    decoder = sd.get("lm_head.decoder.weight", word)  # Quirk: tied to the word embeddings
    return x @ decoder.T + sd.get("lm_head.decoder.bias", sd["lm_head.bias"])
