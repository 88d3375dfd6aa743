"""RobertaConfig: the model's hyper-parameters, read from and written to config.json.

Owns the field names (exactly as transformers writes them), the defaults (roberta-base's,
*not* transformers' bare `RobertaConfig()`, which has eps 1e-12, 512 positions and 2 token
types), validation with errors that name the field, and the round trip of fields this
project does not use (they are kept in `extra` and written back unchanged).

Leaves out: generation settings, cross-attention, and anything the forward pass ignores
(those fields survive the round trip but do nothing here).

>>> config = RobertaConfig(hidden_size=16, num_attention_heads=4, intermediate_size=37)
>>> config.head_dim, config.num_labels, config.layer_norm_eps
(4, 2, 1e-05)
>>> RobertaConfig.from_dict(config.to_dict()) == config
True
"""

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .hub import cached_file
from .layers import ACTIVATIONS

# model types whose checkpoints are RoBERTa's architecture and key names (kept in config.json)
SAME_ARCHITECTURE = ("xlm-roberta", "camembert")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
# A head the checkpoint lacks is initialised fresh, [num_labels, D] floats that no file
# justifies: so num_labels has a ceiling (the largest label sets in common use, e.g.
# ImageNet-21k's or extreme multi-label text sets, stay well below it).
MAX_LABELS = 100_000


class ConfigError(ValueError):
    """A config.json (or config argument) with a field of the wrong type or an impossible value;
    the message names the field (and the file, when read from one)."""


@dataclass(init=False)
class RobertaConfig:
    """Hyper-parameters of a RoBERTa model; the defaults are roberta-base's config.json.

    Takes keyword arguments like transformers' RobertaConfig: the fields below,
    `num_labels=n` (labels LABEL_0..LABEL_{n-1}), and any other name, kept in `extra`.
    """

    vocab_size: int = 50265                 # byte-level BPE: 50,000 merges + 256 bytes + specials
    hidden_size: int = 768                  # D, the width of every token vector
    num_hidden_layers: int = 12             # encoder layers
    num_attention_heads: int = 12           # H; D must be a multiple of it (head size 64)
    intermediate_size: int = 3072           # F, the feed-forward width (4 * D)
    hidden_act: str = "gelu"                # exact erf GELU (not the tanh approximation)
    hidden_dropout_prob: float = 0.1        # training only; kept for the round trip
    attention_probs_dropout_prob: float = 0.1  # training only; kept for the round trip
    max_position_embeddings: int = 514      # 512 tokens + the pad offset of 2 (positions from 2)
    type_vocab_size: int = 1                # one token-type row, added to every token
    initializer_range: float = 0.02         # std of normal(0, .) for freshly initialised heads
    layer_norm_eps: float = 1e-5            # fairseq's eps (BERT used 1e-12)
    pad_token_id: int = 1                   # <pad>; also the position offset
    bos_token_id: int = 0                   # <s>
    eos_token_id: int = 2                   # </s>
    is_decoder: bool = False                # True: causal self-attention (RobertaForCausalLM)
    tie_word_embeddings: bool = True        # the LM decoder reuses the word embeddings
    classifier_dropout: Optional[float] = None  # training only; kept for the round trip
    problem_type: Optional[str] = None      # regression | single_label_... | multi_label_...
    id2label: Dict[int, str] = field(default_factory=lambda: {0: "LABEL_0", 1: "LABEL_1"})
    # every other config.json field (architectures, use_cache, transformers_version, ...),
    # kept as read and written back by to_dict / save_pretrained
    extra: Dict[str, Any] = field(default_factory=dict)

    def __init__(self, **kwargs):
        extra = dict(kwargs.pop("extra", None) or {})
        model_type = kwargs.pop("model_type", "roberta")
        if model_type in SAME_ARCHITECTURE:  # XLM-R and CamemBERT are RoBERTa with another vocab
            extra["model_type"] = model_type
        elif model_type != "roberta":
            raise ConfigError(f"model_type is {model_type!r}; minirobera only runs model_type "
                             f"'roberta' (or {', '.join(SAME_ARCHITECTURE)}, the same architecture)")
        kwargs.pop("label2id", None)  # derived from id2label
        num_labels = kwargs.pop("num_labels", None)
        if kwargs.get("id2label") is None:
            kwargs.pop("id2label", None)
            if num_labels is not None:  # transformers: num_labels=n means LABEL_0..LABEL_{n-1}
                _check_int("num_labels", num_labels, minimum=1, maximum=MAX_LABELS)
                kwargs["id2label"] = {i: f"LABEL_{i}" for i in range(num_labels)}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                missing = f.default_factory is dataclasses.MISSING
                default = f.default if missing else f.default_factory()
                setattr(self, f.name, kwargs.pop(f.name, default))
        self.extra = {**extra, **kwargs}  # what is left is unknown to this class
        self.id2label = _labels(self.id2label)
        self.validate()

    # ------------------------------------------------------------------ derived values
    @property
    def num_labels(self) -> int:
        """Number of outputs of the classification heads (len(id2label), as in transformers)."""
        return len(self.id2label)

    @property
    def label2id(self) -> Dict[str, int]:
        """{label: id}, the inverse of id2label (derived, so the two never disagree).

        >>> RobertaConfig(id2label={0: "NEG", 1: "POS"}).label2id
        {'NEG': 0, 'POS': 1}
        """
        return {v: k for k, v in self.id2label.items()}

    @property
    def head_dim(self) -> int:
        """Dh = D / H, the width of one attention head (64 for roberta-base).

        >>> RobertaConfig().head_dim
        64
        """
        return self.hidden_size // self.num_attention_heads

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ConfigError (a ValueError) naming the first impossible field.

        >>> RobertaConfig(hidden_size=10, num_attention_heads=4)
        Traceback (most recent call last):
        ...
        minirobera.config.ConfigError: hidden_size (10) must be a multiple of num_attention_heads (4)
        """
        for name in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("num_hidden_layers", self.num_hidden_layers, minimum=0)
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size ({self.hidden_size}) must be a multiple of "
                              f"num_attention_heads ({self.num_attention_heads})")
        if not isinstance(self.hidden_act, str) or self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not supported; "
                              f"choose one of {sorted(ACTIVATIONS)}")
        _check_number("layer_norm_eps", self.layer_norm_eps, positive=True)
        _check_number("initializer_range", self.initializer_range)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            if not (name == "classifier_dropout" and getattr(self, name) is None):
                _check_number(name, getattr(self, name), at_most=1)
        for name in ("is_decoder", "tie_word_embeddings"):  # "no" or 0 is no bool: not guessed
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        _check_int("pad_token_id", self.pad_token_id, minimum=0)
        for name in ("bos_token_id", "eos_token_id"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=0)
        if self.pad_token_id >= self.vocab_size:
            raise ConfigError(f"pad_token_id ({self.pad_token_id}) must be below vocab_size "
                              f"({self.vocab_size})")
        if self.max_position_embeddings <= self.pad_token_id + 1:
            raise ConfigError(f"max_position_embeddings ({self.max_position_embeddings}) leaves "
                              f"no room for a token: positions start at pad_token_id + 1 = "
                              f"{self.pad_token_id + 1}")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(f"problem_type {self.problem_type!r} must be None or one of "
                              f"{list(PROBLEM_TYPES)}")
        if not self.id2label:
            raise ConfigError("id2label is empty: num_labels must be at least 1")
        if len(self.id2label) > MAX_LABELS:
            raise ConfigError(f"id2label has {len(self.id2label)} labels, more than MAX_LABELS "
                              f"({MAX_LABELS})")
        # Quirk kept out: transformers' RobertaSelfAttention also has relative_key(_query)
        # position embeddings (Shaw et al.); this encoder only adds absolute positions.
        kind = self.extra.get("position_embedding_type", "absolute")
        if kind != "absolute":
            raise ConfigError(f"position_embedding_type {kind!r} is not supported: minirobera "
                              f"implements RoBERTa's 'absolute' position embeddings only")

    # ------------------------------------------------------------------ dict / json
    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "RobertaConfig":
        """Build from a config.json dict; fields this class does not know go to `extra`.

        >>> c = RobertaConfig.from_dict({"num_labels": 3, "architectures": ["X"]})
        >>> c.id2label, c.extra
        ({0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2'}, {'architectures': ['X']})
        """
        if not isinstance(d, dict):
            raise TypeError(f"a config must be a dict, got {type(d).__name__}")
        if not all(isinstance(k, str) for k in d):
            raise ConfigError("a config's field names must be strings")
        return cls(**d)

    def to_dict(self) -> Dict[str, Any]:
        """The config.json dict: every field under transformers' name, plus the kept extras.

        >>> d = RobertaConfig().to_dict()
        >>> d["model_type"], d["max_position_embeddings"], d["label2id"]
        ('roberta', 514, {'LABEL_0': 0, 'LABEL_1': 1})
        """
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d["id2label"] = {str(k): v for k, v in self.id2label.items()}  # JSON keys are strings
        d["label2id"] = self.label2id
        d["model_type"] = "roberta"
        d.update(self.extra)
        return dict(sorted(d.items()))

    def to_json_string(self) -> str:
        """The text of config.json: to_dict() as JSON, keys sorted, two-space indent.

        >>> text = RobertaConfig(hidden_size=16, num_attention_heads=2).to_json_string()
        >>> print("\\n".join(text.splitlines()[:3]))
        {
          "attention_probs_dropout_prob": 0.1,
          "bos_token_id": 0,
        >>> json.loads(text)["hidden_size"]
        16
        """
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    # ------------------------------------------------------------------ files
    @classmethod
    def from_pretrained(cls, path_or_repo_id, *, revision: str = "main", **hub_kwargs):
        """Read config.json from a folder or a hub repo id (through minirobera.hub.cached_file).

        A config of another model_type (e.g. "bert") is refused with a ValueError naming it.

        >>> RobertaConfig.from_pretrained("FacebookAI/roberta-base").hidden_size  # doctest: +SKIP
        768
        """
        path = cached_file(path_or_repo_id, "config.json", revision=revision, **hub_kwargs)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{path} must hold a JSON object, got {type(d).__name__}")
        model_type = d.get("model_type", "roberta")
        if model_type != "roberta" and model_type not in SAME_ARCHITECTURE:
            raise ConfigError(f"{path} describes a {model_type!r} model; minirobera only runs "
                              f"model_type 'roberta' (or {', '.join(SAME_ARCHITECTURE)}, the "
                              f"same architecture)")
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def save_pretrained(self, save_directory) -> str:
        """Write config.json into `save_directory` (created if needed); return its path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, "config.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())
        return path


def _check_int(name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r:.80}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")


def _check_number(name, value, positive=False, at_most=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{name} must be a number, got {value!r:.80}")
    if value < 0 or (positive and value == 0) or (at_most is not None and value > at_most):
        bound = f"in [0, {at_most}]" if at_most is not None else "a positive number" if positive \
            else "non-negative"
        raise ConfigError(f"{name} must be {bound}, got {value}")


def _labels(id2label) -> Dict[int, str]:
    """{int id: str label} from a config's id2label (JSON keys are strings): ids 0..n-1."""
    if not isinstance(id2label, dict):
        raise ConfigError(f"id2label must be an object {{id: label}}, got {id2label!r:.80}")
    out = {}
    for k, v in id2label.items():
        if isinstance(k, bool) or not (isinstance(k, int) or (isinstance(k, str) and re.fullmatch(
                r"[0-9]{1,9}", k))):
            raise ConfigError(f"id2label has the key {k!r:.40}; its keys must be label ids "
                              f"0, 1, ...")
        if not isinstance(v, str):
            raise ConfigError(f"id2label[{k!r}] must be a string label, got {v!r:.40}")
        out[int(k)] = v
    if sorted(out) != list(range(len(out))):
        raise ConfigError(f"id2label's ids must be 0..{len(out) - 1}, got {sorted(out)[:10]}")
    return out
