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
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .hub import cached_file
from .layers import ACTIVATIONS

# model types whose checkpoints are RoBERTa's architecture and key names (kept in config.json)
SAME_ARCHITECTURE = ("xlm-roberta", "camembert")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


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
            raise ValueError(f"model_type is {model_type!r}; minirobera only runs model_type "
                             f"'roberta' (or {', '.join(SAME_ARCHITECTURE)}, the same architecture)")
        kwargs.pop("label2id", None)  # derived from id2label
        num_labels = kwargs.pop("num_labels", None)
        if kwargs.get("id2label") is None:
            kwargs.pop("id2label", None)
            if num_labels is not None:  # transformers: num_labels=n means LABEL_0..LABEL_{n-1}
                _check_int("num_labels", num_labels, minimum=1)
                kwargs["id2label"] = {i: f"LABEL_{i}" for i in range(num_labels)}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                missing = f.default_factory is dataclasses.MISSING
                default = f.default if missing else f.default_factory()
                setattr(self, f.name, kwargs.pop(f.name, default))
        self.extra = {**extra, **kwargs}  # what is left is unknown to this class
        self.id2label = {int(k): str(v) for k, v in dict(self.id2label).items()}
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
        """Raise ValueError naming the first impossible field.

        >>> RobertaConfig(hidden_size=10, num_attention_heads=4)
        Traceback (most recent call last):
        ...
        ValueError: hidden_size (10) must be a multiple of num_attention_heads (4)
        """
        for name in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("num_hidden_layers", self.num_hidden_layers, minimum=0)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of "
                             f"num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; "
                             f"choose one of {sorted(ACTIVATIONS)}")
        if not (isinstance(self.layer_norm_eps, (int, float)) and self.layer_norm_eps > 0):
            raise ValueError(f"layer_norm_eps must be a positive number, "
                             f"got {self.layer_norm_eps!r}")
        _check_int("pad_token_id", self.pad_token_id, minimum=0)
        if self.pad_token_id >= self.vocab_size:
            raise ValueError(f"pad_token_id ({self.pad_token_id}) must be below vocab_size "
                             f"({self.vocab_size})")
        if self.max_position_embeddings <= self.pad_token_id + 1:
            raise ValueError(f"max_position_embeddings ({self.max_position_embeddings}) leaves no "
                             f"room for a token: positions start at pad_token_id + 1 = "
                             f"{self.pad_token_id + 1}")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type {self.problem_type!r} must be None or one of "
                             f"{list(PROBLEM_TYPES)}")
        if not self.id2label:
            raise ValueError("id2label is empty: num_labels must be at least 1")

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
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(d).__name__}")
        model_type = d.get("model_type", "roberta")
        if model_type != "roberta" and model_type not in SAME_ARCHITECTURE:
            raise ValueError(f"{path} describes a {model_type!r} model; minirobera only runs "
                             f"model_type 'roberta' (or {', '.join(SAME_ARCHITECTURE)}, the same "
                             f"architecture)")
        return cls.from_dict(d)

    def save_pretrained(self, save_directory) -> str:
        """Write config.json into `save_directory` (created if needed); return its path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, "config.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())
        return path


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
