"""Thin model classes with transformers' names, each holding (config, params).

Owns input checking (lists or arrays, 1-D or 2-D, clear errors for bad ids, shapes and
lengths), the order of calls (embeddings -> encoder -> head, all pure functions: fused.py's,
or with MINIROBERA_KERNELS=readable layers.py's and heads.py's, end to end), the output
objects with transformers' field names, the losses when labels are given, and
from_pretrained / save_pretrained.

Leaves out: training's own forward and the backward (backward.py: loss_and_grads here only
checks the inputs and names the gradients), generation (no key/value cache), cross-attention,
heads other than RoBERTa's seven, and `return_dict=False` tuples (outputs support `out[0]`).

>>> from minirobera.config import RobertaConfig
>>> config = RobertaConfig(vocab_size=30, hidden_size=8, num_attention_heads=2,
...                        intermediate_size=12, num_hidden_layers=2, max_position_embeddings=20)
>>> model = RobertaForMaskedLM(config, seed=0)
>>> out = model([0, 5, 6, 2], output_hidden_states=True)
>>> out.logits.shape, len(out.hidden_states), out["logits"].dtype
((1, 4, 30), 3, dtype('float32'))
"""

import copy
import dataclasses
import inspect
import os
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from . import backward, fused, heads, kernels, layers
from .checkpoint import (init_params, load_state_dict, params_from_state_dict, read_limits,
                         save_safetensors,
                         state_dict_from_params)
from .config import RobertaConfig

# =================================================================================== outputs


@dataclass
class ModelOutput:
    """A dataclass that also reads like a dict (`out["logits"]`) or a tuple (`out[0]`);
    like transformers, fields that are None are left out of keys() and the tuple."""

    def keys(self):
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self):
        return tuple(getattr(self, k) for k in self.keys())

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        if key not in self.keys():
            raise KeyError(f"{type(self).__name__} has no field {key!r}; it has {self.keys()}")
        return getattr(self, key)

    def __contains__(self, key):
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        return [(k, getattr(self, k)) for k in self.keys()]


@dataclass
class BaseModelOutputWithPooling(ModelOutput):
    last_hidden_state: np.ndarray = None       # [B,T,D]
    pooler_output: Optional[np.ndarray] = None  # [B,D]
    hidden_states: Optional[Tuple[np.ndarray, ...]] = None  # L+1 x [B,T,D], embeddings first
    attentions: Optional[Tuple[np.ndarray, ...]] = None     # L x [B,H,T,T]


@dataclass
class MaskedLMOutput(ModelOutput):
    loss: Optional[np.ndarray] = None
    logits: np.ndarray = None                   # [B,T,V]
    hidden_states: Optional[Tuple[np.ndarray, ...]] = None
    attentions: Optional[Tuple[np.ndarray, ...]] = None


@dataclass
class CausalLMOutput(MaskedLMOutput):
    pass


@dataclass
class SequenceClassifierOutput(MaskedLMOutput):
    pass                                        # logits [B,L]


@dataclass
class TokenClassifierOutput(MaskedLMOutput):
    pass                                        # logits [B,T,L]


@dataclass
class MultipleChoiceModelOutput(MaskedLMOutput):
    pass                                        # logits [B,C]


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Optional[np.ndarray] = None
    start_logits: np.ndarray = None             # [B,T]
    end_logits: np.ndarray = None               # [B,T]
    hidden_states: Optional[Tuple[np.ndarray, ...]] = None
    attentions: Optional[Tuple[np.ndarray, ...]] = None


# ============================================================================== input checks

def _int_array(name, value):
    try:
        array = np.asarray(value)
    except ValueError:  # NumPy refuses ragged nested lists
        raise ValueError(f"{name} has rows of different lengths; pad them to one length "
                         f"(e.g. tokenizer(..., padding=True))") from None
    if array.dtype == object:
        raise ValueError(f"{name} has rows of different lengths or non-numbers; pad them to "
                         f"one length (e.g. tokenizer(..., padding=True))")
    if array.size == 0:  # np.asarray([]) is float64; emptiness is reported by the caller
        return array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}"
                        + (" (did you pass embeddings? use inputs_embeds=)"
                           if array.dtype.kind == "f" and name == "input_ids" else ""))
    return array.astype(np.int64, copy=False)


def _batched(name, array, rank):  # [T] or [B,T] (+ trailing dims) -> [B,T,...]
    if array.ndim == rank - 1:
        return array[None]  # one sequence: a batch of 1, as the outputs will show
    if array.ndim != rank:
        raise ValueError(f"{name} must have shape [tokens] or [batch, tokens]"
                         f"{' + [hidden]' if rank == 3 else ''}, got shape {array.shape}")
    return array


def _check_range(name, array, limit, what):
    bad = (array < 0) | (array >= limit)
    if bad.any():
        first = int(array[bad][0])
        raise ValueError(f"{name} holds {first}, outside {what} (size {limit}); valid values "
                         f"are 0..{limit - 1}")


def _same_shape(name, array, shape):
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape} but input_ids/inputs_embeds give "
                         f"{shape}; they must match token for token")


def prepare_inputs(config, input_ids=None, attention_mask=None, token_type_ids=None,
                   position_ids=None, inputs_embeds=None):
    """Check and normalise the forward's inputs; every array comes back with a batch axis.

    >>> c = RobertaConfig(vocab_size=10, hidden_size=4, num_attention_heads=1,
    ...                   max_position_embeddings=8)
    >>> prepare_inputs(c, [0, 5, 2, 1])["position_ids"].tolist()
    [[2, 3, 4, 1]]
    >>> prepare_inputs(c, [0, 12])
    Traceback (most recent call last):
    ...
    ValueError: token id 12 is outside the vocabulary (vocab_size=10); valid ids are 0..9
    """
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("give exactly one of input_ids or inputs_embeds")
    ids = None if input_ids is None else _prepare_ids(config, input_ids)
    embeds = None if inputs_embeds is None else _prepare_embeds(config, inputs_embeds)
    shape = ids.shape if ids is not None else embeds.shape[:2]
    if 0 in shape:
        raise ValueError(f"the input is empty (shape {shape}): give at least one sequence "
                         f"of at least one token")
    return {"input_ids": ids, "inputs_embeds": embeds,
            "attention_mask": _prepare_mask(attention_mask, shape),
            "token_type_ids": _prepare_token_types(config, token_type_ids, shape),
            "position_ids": _prepare_positions(config, position_ids, ids, shape)}


def _prepare_ids(config, input_ids):  # -> [B,T] int64
    ids = _batched("input_ids", _int_array("input_ids", input_ids), 2)
    bad = (ids < 0) | (ids >= config.vocab_size)
    if bad.any():
        raise ValueError(f"token id {int(ids[bad][0])} is outside the vocabulary "
                         f"(vocab_size={config.vocab_size}); valid ids are "
                         f"0..{config.vocab_size - 1}")
    return ids


def _prepare_embeds(config, inputs_embeds):  # -> [B,T,D] float32
    embeds = np.asarray(inputs_embeds)
    if embeds.dtype.kind != "f":
        raise TypeError(f"inputs_embeds must be floating point, got dtype {embeds.dtype}")
    embeds = _batched("inputs_embeds", embeds.astype(np.float32, copy=False), 3)
    if embeds.shape[-1] != config.hidden_size:
        raise ValueError(f"inputs_embeds has width {embeds.shape[-1]} but hidden_size is "
                         f"{config.hidden_size}")
    return embeds


def _prepare_mask(attention_mask, shape):  # -> [B,T] bool
    if attention_mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(attention_mask)
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"attention_mask must hold 0/1 numbers, got dtype {mask.dtype}")
    mask = _batched("attention_mask", mask, 2)
    _same_shape("attention_mask", mask, shape)
    return mask != 0  # as transformers: any non-zero value means "attend"


def _prepare_token_types(config, token_type_ids, shape):  # -> [B,T] or None
    if token_type_ids is None:
        return None
    types = _batched("token_type_ids", _int_array("token_type_ids", token_type_ids), 2)
    _same_shape("token_type_ids", types, shape)
    _check_range("token_type_ids", types, config.type_vocab_size, "the token-type table")
    return types


def _prepare_positions(config, position_ids, ids, shape):  # -> [B,T]
    P, pad = config.max_position_embeddings, config.pad_token_id
    if position_ids is not None:
        pos = _batched("position_ids", _int_array("position_ids", position_ids), 2)
        if pos.shape[0] == 1 and shape[0] > 1:
            pos = np.broadcast_to(pos, (shape[0], pos.shape[1]))  # one row for every sequence
        _same_shape("position_ids", pos, shape)
        _check_range("position_ids", pos, P, "the position table (max_position_embeddings)")
        return pos
    if ids is not None:
        pos = layers.position_ids_from_input_ids(ids, pad)
    else:
        pos = layers.position_ids_from_embeds(*shape, pad)
    if pos.max() >= P:
        fit = P - pad - 1
        raise ValueError(f"the input has {int((pos - pad).max())} tokens but this model's "
                         f"position table (max_position_embeddings={P}) fits at most {fit} "
                         f"(positions start at pad_token_id + 1 = {pad + 1}); truncate it, "
                         f"e.g. tokenizer(..., truncation=True, max_length={fit})")
    return pos


# ==================================================================================== models

class RobertaPreTrainedModel:
    """Holds (config, params); subclasses name their parts of the key table and a head."""

    parts = ("encoder",)   # groups of checkpoint.py's key table this model has
    prefix = "roberta."    # head models keep the encoder's keys under `roberta.`

    def __init__(self, config: RobertaConfig, params=None, *, seed=None):
        """A model from a config; without params, weights are initialised like transformers."""
        if not isinstance(config, RobertaConfig):
            raise TypeError(f"config must be a RobertaConfig, got {type(config).__name__}")
        self.config = config
        if params is None:
            params = init_params(config, self.parts, np.random.default_rng(seed))
        self.params = fused.compute_layout(params)  # [out, in] weights, fused q/k/v (fused.py)

    def __repr__(self):
        c = self.config
        return (f"{type(self).__name__}({c.num_hidden_layers} layers, hidden {c.hidden_size}, "
                f"{c.num_attention_heads} heads, ffn {c.intermediate_size}, vocab {c.vocab_size}, "
                f"{c.hidden_act})")

    # ---------------------------------------------------------------------- files
    @classmethod
    def from_pretrained(cls, path_or_repo_id, *, revision="main", config=None, from_tf=False,
                        from_flax=False, **hub_kwargs):
        """Load config.json and the weights (model.safetensors -> its index -> pytorch_model.bin
        -> its index -> tf_model.h5 -> flax_model.msgpack) from a folder or a hub repo id.

        from_tf=True / from_flax=True load transformers 4.x's tf_model.h5 / flax_model.msgpack
        even when PyTorch weights are there too (they need h5py / msgpack, not TF or JAX).
        fairseq's layout (a local folder with model.pt + dict.txt and no config.json, or a .pt
        file with dict.txt beside it) is read by fairseq.py, with no fairseq or torch.
        """
        from . import fairseq
        if fairseq.is_fairseq_folder(path_or_repo_id):  # model.pt + dict.txt, or a .pt + dict.txt
            return fairseq.from_pretrained(cls, path_or_repo_id, config=config)
        if config is None:
            config = RobertaConfig.from_pretrained(path_or_repo_id, revision=revision, **hub_kwargs)
        # what the config justifies bounds what the weight files may declare (limits.py)
        limits = read_limits(config, cls.parts, path_or_repo_id)
        state_dict, source = load_state_dict(path_or_repo_id, revision=revision, from_tf=from_tf,
                                             from_flax=from_flax, limits=limits, **hub_kwargs)
        params, _report = params_from_state_dict(config, state_dict, cls.parts,
                                                 model_name=cls.__name__, source=source)
        return cls(config, params)

    def state_dict(self):
        """The weights under transformers' key names (the tied decoder left out)."""
        return state_dict_from_params(self.config, self.params, self.parts, prefix=self.prefix)

    def save_pretrained(self, save_directory):
        """Write config.json and model.safetensors that transformers loads back."""
        config = copy.deepcopy(self.config)
        config.extra["architectures"] = [type(self).__name__]
        config.save_pretrained(save_directory)
        save_safetensors(self.state_dict(), os.path.join(save_directory, "model.safetensors"))

    # ---------------------------------------------------------------------- forward
    def _encode(self, inputs, output_hidden_states, output_attentions):
        """embeddings -> encoder; returns h [B,T,D] and the optional tuples.

        fused.py (the kernels, fused q/k/v, reused buffers) by default; layers.py as written
        with MINIROBERA_KERNELS=readable (kernels.set_backend("readable")).
        """
        c, readable = self.config, kernels.get_backend() == "readable"
        x = (layers if readable else fused).embeddings(
            self.params["embeddings"], inputs["input_ids"], inputs["token_type_ids"],
            inputs["position_ids"], inputs_embeds=inputs["inputs_embeds"],
            pad_token_id=c.pad_token_id, eps=c.layer_norm_eps)
        bias = layers.attention_bias(inputs["attention_mask"], causal=c.is_decoder)
        if readable:
            h, hidden, attn = layers.encoder(x, self.params["layers"], bias,
                                             c.num_attention_heads, c.hidden_act,
                                             c.layer_norm_eps)
        else:
            h, hidden, attn = fused.encoder(x, self.params["layers"], bias,
                                            c.num_attention_heads, c.hidden_act,
                                            c.layer_norm_eps, keep_attentions=output_attentions,
                                            keep_hidden_states=output_hidden_states)
        return (h, tuple(hidden) if output_hidden_states else None,
                tuple(attn) if output_attentions else None)

    def _lm_head(self, h, encoded_rows=None):  # [B,T,D] (or [M,D] of B*T rows) -> [..., V]
        if kernels.get_backend() == "readable":
            return heads.lm_head(h, self.params["lm_head"], self.config.layer_norm_eps)
        return fused.lm_head(h, self.params["lm_head"], self.config.layer_norm_eps,
                             rows=encoded_rows)

    @staticmethod
    def _task_head(name):
        """heads.<name>, or fused.py's twin where it has one (the same head with fused.linear,
        on the side of its few-row rule the encoder took), unless MINIROBERA_KERNELS=readable."""
        fast = kernels.get_backend() != "readable" and hasattr(fused, name)
        return getattr(fused if fast else heads, name)

    def __call__(self, input_ids=None, attention_mask=None, token_type_ids=None,
                 position_ids=None, inputs_embeds=None, output_hidden_states=False,
                 output_attentions=False, **labels):
        unknown = set(labels) - set(inspect.signature(self._head).parameters)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unknown)}")
        inputs = prepare_inputs(self.config, input_ids, attention_mask, token_type_ids,
                                position_ids, inputs_embeds)
        h, hidden, attn = self._encode(inputs, output_hidden_states, output_attentions)
        return self._head(h, hidden, attn, **labels)

    def _head(self, h, hidden, attn):
        raise NotImplementedError


class RobertaModel(RobertaPreTrainedModel):
    """The bare encoder with its pooler: last_hidden_state and pooler_output."""

    parts = ("encoder", "pooler")
    prefix = ""  # a bare RobertaModel checkpoint has no `roberta.` prefix

    def _head(self, h, hidden, attn):
        return BaseModelOutputWithPooling(last_hidden_state=h,
                                          pooler_output=self._task_head("pooler")(h, self.params["pooler"]),
                                          hidden_states=hidden, attentions=attn)


_LABEL_NAMES = {"RobertaForQuestionAnswering": ("start_positions", "end_positions")}


class _TrainableModel(RobertaPreTrainedModel):
    """The six classes that take labels: they also give the gradient of their loss.

    The forward above is inference only. Training runs its own forward, which keeps the
    activations the backward needs, in backward.py; loss_and_grads only checks the inputs and
    names the gradients as transformers names its parameters (issue 19).
    """

    def loss_and_grads(self, input_ids=None, attention_mask=None, token_type_ids=None,
                       position_ids=None, inputs_embeds=None, *, dropout=None, **labels):
        """(loss, grads): the loss the forward gives for these labels, and its gradient with
        respect to every parameter, keyed like `state_dict()` (transformers' names). Tied
        parameters appear once: the MLM decoder's gradient is in the word embeddings'.

        `dropout`: None (no dropout, as at inference) or a training.Dropout, which draws the
        masks from its own seeded RNG. Backward code: backward.py.

        >>> config = RobertaConfig(vocab_size=30, hidden_size=8, num_attention_heads=2,
        ...                        intermediate_size=12, num_hidden_layers=1,
        ...                        max_position_embeddings=20)
        >>> model = RobertaForMaskedLM(config, seed=0)
        >>> loss, grads = model.loss_and_grads([0, 5, 6, 2], labels=[-100, 5, -100, -100])
        >>> bool(np.isclose(loss, model([0, 5, 6, 2], labels=[-100, 5, -100, -100]).loss))
        True
        >>> sorted(grads) == sorted(model.state_dict()), grads["lm_head.bias"].shape
        (True, (30,))
        """
        name = type(self).__name__
        wanted = _LABEL_NAMES.get(name, ("labels",))
        if sorted(labels) != sorted(wanted):
            raise TypeError(f"{name}.loss_and_grads needs {' and '.join(wanted)} (got "
                            f"{sorted(labels) or 'none'})")
        extra = {}
        if name == "RobertaForMultipleChoice":
            main = input_ids if input_ids is not None else inputs_embeds
            extra["n_choices"] = np.shape(main)[-2 if input_ids is not None else -3]
            input_ids, attention_mask, token_type_ids, position_ids = (
                None if a is None else _flatten_choices(a, extra["n_choices"])
                for a in (input_ids, attention_mask, token_type_ids, position_ids))
            if inputs_embeds is not None:
                inputs_embeds = np.reshape(inputs_embeds, (-1,) + np.shape(inputs_embeds)[-2:])
        inputs = prepare_inputs(self.config, input_ids, attention_mask, token_type_ids,
                                position_ids, inputs_embeds)
        shape = inputs["attention_mask"].shape
        if name in ("RobertaForMaskedLM", "RobertaForCausalLM", "RobertaForTokenClassification"):
            labels = {"labels": _labels(labels["labels"], shape)}
        labels = {k: np.asarray(v) for k, v in labels.items()}
        loss, tree = backward.loss_and_grads(self.params, self.config, name, inputs,
                                             {**labels, **extra}, dropout)
        grads = state_dict_from_params(self.config, tree, self.parts, prefix=self.prefix)
        if "lm_head" in self.parts and not self.config.tie_word_embeddings:
            grads["lm_head.bias"] = np.zeros_like(grads["lm_head.bias"])  # unused when untied
        return loss, grads


class RobertaForMaskedLM(_TrainableModel):
    """Encoder + LM head: logits over the vocabulary for every token."""

    parts = ("encoder", "lm_head")

    def logits_at(self, input_ids, attention_mask=None, *, positions):  # [B,T], [M,2] -> [M,V]
        """LM logits only at the (row, token) `positions`: `self(...).logits[rows, tokens]`
        without the [B,T,V] array. The head's [D,V] GEMM costs ~30% of a 128-token forward,
        and fill-mask needs one row per <mask>.

        >>> config = RobertaConfig(vocab_size=20, hidden_size=8, num_attention_heads=2,
        ...                        intermediate_size=12, num_hidden_layers=1,
        ...                        max_position_embeddings=16)
        >>> model = RobertaForMaskedLM(config, seed=0)
        >>> ids = [[0, 5, 6, 2], [0, 7, 2, 1]]
        >>> at = model.logits_at(ids, [[1, 1, 1, 1], [1, 1, 1, 0]], positions=[(0, 2), (1, 1)])
        >>> full = model(ids, [[1, 1, 1, 1], [1, 1, 1, 0]]).logits
        >>> at.shape, bool(np.allclose(at, full[[0, 1], [2, 1]], atol=1e-6))
        ((2, 20), True)
        """
        inputs = prepare_inputs(self.config, input_ids, attention_mask, None, None, None)
        h, _, _ = self._encode(inputs, False, False)
        rows, tokens = np.asarray(positions, dtype=np.int64).reshape(-1, 2).T
        return self._lm_head(h[rows, tokens], encoded_rows=h.shape[0] * h.shape[1])

    def __init__(self, config, params=None, *, seed=None):
        if config.is_decoder:
            warnings.warn("RobertaForMaskedLM with config.is_decoder=True attends causally; "
                          "set is_decoder=False for bi-directional self-attention", stacklevel=2)
        super().__init__(config, params, seed=seed)

    def _head(self, h, hidden, attn, labels=None):
        logits = self._lm_head(h)
        loss = None if labels is None else heads.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), _labels(labels, logits.shape[:2]))
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=hidden, attentions=attn)


class RobertaForCausalLM(_TrainableModel):
    """Encoder with a causal mask (config.is_decoder) + LM head: next-token logits."""

    parts = ("encoder", "lm_head")

    def __init__(self, config, params=None, *, seed=None):
        if not config.is_decoder:
            warnings.warn("If you want to use RobertaForCausalLM as a standalone, set "
                          "config.is_decoder=True (without it attention is bi-directional)",
                          stacklevel=2)
        super().__init__(config, params, seed=seed)

    def _head(self, h, hidden, attn, labels=None):
        logits = self._lm_head(h)
        loss = None
        if labels is not None:  # predict token t+1 from tokens <= t: shift labels left
            labels = _labels(labels, logits.shape[:2])
            shifted = np.concatenate([labels[:, 1:], np.full_like(labels[:, :1], -100)], axis=1)
            loss = heads.cross_entropy(logits.reshape(-1, logits.shape[-1]), shifted.reshape(-1))
        return CausalLMOutput(loss=loss, logits=logits, hidden_states=hidden, attentions=attn)


class RobertaForSequenceClassification(_TrainableModel):
    """Encoder + classification head on <s>: one row of num_labels logits per sequence."""

    parts = ("encoder", "sequence_classifier")

    def _head(self, h, hidden, attn, labels=None):
        logits = self._task_head("sequence_classification_head")(h, self.params["classifier"])
        loss = None if labels is None else self._loss(logits, np.asarray(labels))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden,
                                        attentions=attn)

    def _loss(self, logits, labels):
        n, problem = self.config.num_labels, self.config.problem_type
        if problem is None:  # transformers' rule
            problem = ("regression" if n == 1 else "single_label_classification"
                       if labels.dtype.kind in "iu" else "multi_label_classification")
        if problem == "regression":
            if n == 1:  # transformers squeezes both sides for a single output
                return heads.mse(logits.squeeze(), labels.squeeze())
            return heads.mse(logits, labels)
        if problem == "single_label_classification":
            return heads.cross_entropy(logits.reshape(-1, n), labels.reshape(-1))
        return heads.bce_with_logits(logits, labels)


class RobertaForTokenClassification(_TrainableModel):
    """Encoder + one Linear per token: num_labels logits for every token."""

    parts = ("encoder", "token_classifier")

    def _head(self, h, hidden, attn, labels=None):
        logits = heads.token_classification_head(h, self.params["classifier"])
        loss = None if labels is None else heads.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), _labels(labels, logits.shape[:2]))
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=hidden,
                                     attentions=attn)


class RobertaForQuestionAnswering(_TrainableModel):
    """Encoder + Linear(D, 2): start and end logits for every token."""

    parts = ("encoder", "qa_outputs")

    def __init__(self, config, params=None, *, seed=None):
        if config.num_labels != 2:
            raise ValueError(f"RobertaForQuestionAnswering needs num_labels=2 (start, end), "
                             f"got {config.num_labels}")
        super().__init__(config, params, seed=seed)

    def _head(self, h, hidden, attn, start_positions=None, end_positions=None):
        start, end = heads.question_answering_head(h, self.params["qa_outputs"])
        loss = None
        if start_positions is not None and end_positions is not None:
            T = start.shape[1]  # positions outside the input are clamped to T and ignored
            s = np.clip(np.asarray(start_positions).reshape(-1), 0, T)
            e = np.clip(np.asarray(end_positions).reshape(-1), 0, T)
            loss = np.float32((heads.cross_entropy(start, s, ignore_index=T)
                               + heads.cross_entropy(end, e, ignore_index=T)) / 2)
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start, end_logits=end,
                                            hidden_states=hidden, attentions=attn)


class RobertaForMultipleChoice(_TrainableModel):
    """Each (example, choice) row through the encoder and pooler, one score per choice.

    Inputs are [B, C, T] (or [C, T] for one example); outputs hidden states and attentions
    for the B*C flattened rows, as transformers does.
    """

    parts = ("encoder", "pooler", "choice_classifier")

    def __call__(self, input_ids=None, attention_mask=None, token_type_ids=None,
                 position_ids=None, inputs_embeds=None, output_hidden_states=False,
                 output_attentions=False, labels=None):
        main = input_ids if input_ids is not None else inputs_embeds
        rank = 3 if input_ids is not None else 4
        shape = np.shape(main) if main is not None else ()
        if len(shape) not in (rank - 1, rank):
            raise ValueError(f"multiple choice input must have shape [batch, choices, tokens] "
                             f"or [choices, tokens], got {shape}")
        n_choices = shape[-2] if input_ids is not None else shape[-3]
        flat = [None if a is None else _flatten_choices(a, n_choices)
                for a in (input_ids, attention_mask, token_type_ids, position_ids)]
        embeds = None if inputs_embeds is None else np.reshape(
            inputs_embeds, (-1,) + np.shape(inputs_embeds)[-2:])
        inputs = prepare_inputs(self.config, *flat, embeds)
        h, hidden, attn = self._encode(inputs, output_hidden_states, output_attentions)
        pooled = self._task_head("pooler")(h, self.params["pooler"])  # [B*C,D]
        logits = heads.multiple_choice_head(pooled, self.params["classifier"], n_choices)
        loss = None if labels is None else heads.cross_entropy(logits, np.asarray(labels))
        return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=hidden,
                                         attentions=attn)


def _flatten_choices(a, n_choices):  # [B,C,T] or [C,T] -> [B*C,T]
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[-2] != n_choices:
        raise ValueError(f"multiple choice inputs must all have shape [batch, {n_choices}, "
                         f"tokens], got {a.shape}")
    return a.reshape(-1, a.shape[-1])


def _labels(labels, shape):  # -> [B,T] int
    labels = _batched("labels", _int_array("labels", labels), 2)
    _same_shape("labels", labels, tuple(shape))
    return labels
