"""Task pipelines with transformers' outputs: fill-mask, classification, NER, QA, features.

Owns `pipeline(task, model, tokenizer)`, one small class per task, the top-level shortcuts
(`fill_mask`, `classify`, `ner`, `question_answering`, `feature_extraction`), the
process-wide cache of loaded models and tokenizers, and length-sorted batching. Each class
turns texts into token ids (tokenizer.py), runs the model (modeling.py) and turns logits
into the dicts transformers' pipelines return, quirks included; the pure pre/post-processing
steps are module functions so they can be read and tested alone.

Leaves out: the math (layers.py, heads.py), finding files (hub.py), every task RoBERTa is not
fine-tuned for, devices, datasets and generators, and pre-split words (`is_split_into_words`).

The reference is transformers 5 for every task except question answering, which follows
transformers 4.x (5.3 removed that pipeline). Where transformers gives NumPy scalars
(token-classification scores) this module gives Python floats, so results are JSON-ready.

Batching: a list of texts is sorted by token count and cut into batches of similar length
(at most `batch_size` texts and `max_batch_tokens` padded tokens each), so attention cost
grows with the real tokens; results come back in input order. Padding changes scores by at
most ~2e-6 (REFERENCE.md section 2).

>>> from minirobera import pipeline
>>> unmasker = pipeline("fill-mask", model="FacebookAI/roberta-base")  # doctest: +SKIP
>>> unmasker("The capital of France is <mask>.", top_k=1)[0]["token_str"]  # doctest: +SKIP
' Paris'
"""

import functools
import logging
import os
import sys
import warnings
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from .bpe import tokens_to_bytes

logger = logging.getLogger(__name__)

TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}

# Used when pipeline() gets no model. The fine-tuned ones are well-known RoBERTa checkpoints
# on the hub (model_type "roberta"); any other RoBERTa checkpoint works the same way.
DEFAULT_MODELS = {
    "fill-mask": "FacebookAI/roberta-base",
    "feature-extraction": "FacebookAI/roberta-base",
    "text-classification": "cardiffnlp/twitter-roberta-base-sentiment-latest",
    "token-classification": "Jean-Baptiste/roberta-large-ner-english",
    "question-answering": "deepset/roberta-base-squad2",
}

_UNSET = object()  # "argument not given", where None is a meaningful value (top_k=None)


# ==================================================================== loading and caching

# Models and tokenizers are cached apart, each with its own bound, so a pipeline never
# evicts itself or another task's model: one model per task fits with a spare, and the
# tokenizer of a repo is shared by its tasks (fill-mask and feature-extraction on roberta-base).
MODEL_CACHE_SIZE = 6      # roberta-base is ~500 MB of float32 weights, roberta-large ~1.4 GB
TOKENIZER_CACHE_SIZE = 8  # ~30 MB each (vocab and merge tables as Python dicts)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def _load_model(model_class: str, name: str, revision: Optional[str], _stamp=None):
    """`modeling.<model_class>.from_pretrained(name)`, once per process (LRU).

    `_stamp` only makes the cache key: a local folder's newest file time, so a model saved
    again into the same folder is loaded again.
    """
    from . import modeling
    kwargs = {} if revision is None else {"revision": revision}
    return getattr(modeling, model_class).from_pretrained(name, **kwargs)


@functools.lru_cache(maxsize=TOKENIZER_CACHE_SIZE)
def _load_tokenizer(name: str, revision: Optional[str], _stamp=None):
    """The folder's tokenizer class (RoBERTa's, XLM-R's or CamemBERT's, from its files and
    config) `.from_pretrained(name)`, once per process (LRU); `_stamp` as above."""
    from .xlm_roberta import load_tokenizer as load_any
    kwargs = {} if revision is None else {"revision": revision}
    return load_any(name, **kwargs)


def _cache_key(name):
    """(name, stamp): local folders by absolute path and newest file time; repo ids as given.

    The hub cache needs no stamp: a revision's files never change under it.
    """
    name = os.fspath(name)
    if not os.path.isdir(name):
        return name, None
    with os.scandir(name) as entries:
        stamp = max((e.stat().st_mtime_ns for e in entries if e.is_file()), default=0)
    return os.path.abspath(name), stamp


def load_model(model_class: str, name, revision: Optional[str] = None):
    """`model_class.from_pretrained(name)`, reused while the process lives.

    The last MODEL_CACHE_SIZE models are kept (least recently used goes first); tokenizers
    have a cache of their own, so they never push a model out.

    >>> load_model("RobertaForMaskedLM", "FacebookAI/roberta-base")  # doctest: +SKIP
    RobertaForMaskedLM(12 layers, hidden 768, 12 heads, ffn 3072, vocab 50265, gelu)
    """
    key, stamp = _cache_key(name)
    return _load_model(model_class, key, revision, stamp)


def load_tokenizer(name, revision: Optional[str] = None):
    """`RobertaTokenizer.from_pretrained(name)`, reused while the process lives (the last
    TOKENIZER_CACHE_SIZE are kept).

    >>> load_tokenizer("FacebookAI/roberta-base")  # doctest: +SKIP
    RobertaTokenizer(vocab_size=50265, model_max_length=512, add_prefix_space=False, ...)
    """
    key, stamp = _cache_key(name)
    return _load_tokenizer(key, revision, stamp)


def clear_cache() -> None:
    """Forget every loaded model and tokenizer (the next call loads them again)."""
    _load_model.cache_clear()
    _load_tokenizer.cache_clear()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _warn_at_caller(load, *args):
    """`load(*args)`, its warnings (missing weights...) issued again at the first caller
    outside minirobera, so they name the user's line instead of this file's."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = load(*args)
    frame, level = sys._getframe(), 1  # level 1 is this function, as warnings.warn counts
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=level)
    return result


def _is_name(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


# ==================================================================== batching

def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> List[List[int]]:
    """Indices grouped into batches of similar length, shortest first.

    A batch holds at most `batch_size` items and at most `max_tokens` padded tokens
    (items x longest length); an item longer than `max_tokens` gets a batch of its own.

    >>> length_batches([5, 1, 4, 2, 9], batch_size=2, max_tokens=100)
    [[1, 3], [2, 0], [4]]
    >>> length_batches([5, 1, 4, 2, 9], batch_size=8, max_tokens=12)
    [[1, 3, 2], [0], [4]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, batch = [], []
    for i in order:
        too_many = len(batch) == batch_size
        too_long = (len(batch) + 1) * lengths[i] > max_tokens  # sorted: lengths[i] is the max
        if batch and (too_many or too_long):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


def pad_ids(id_lists: Sequence[Sequence[int]], pad_id: int):  # B lists -> [B,T], [B,T]
    """Right-pad token id lists into an int64 matrix and its attention mask.

    >>> ids, mask = pad_ids([[0, 5, 2], [0, 2]], pad_id=1)
    >>> ids.tolist(), mask.tolist()
    ([[0, 5, 2], [0, 2, 1]], [[1, 1, 1], [1, 1, 0]])
    """
    width = max(len(x) for x in id_lists)
    ids = np.full((len(id_lists), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(id_lists), width), dtype=np.int64)
    for row, x in enumerate(id_lists):
        ids[row, :len(x)] = x
        mask[row, :len(x)] = 1
    return ids, mask


def max_model_tokens(config) -> int:
    """How many tokens the position table holds: 514 rows - (pad id + 1) = 512 for roberta-base.

    Quirk: RoBERTa's positions start at pad_token_id + 1, so two rows are never used.

    >>> from minirobera.config import RobertaConfig
    >>> max_model_tokens(RobertaConfig())
    512
    """
    return config.max_position_embeddings - config.pad_token_id - 1


class InputTooLongError(ValueError):
    """A tokenized input is longer than the model's position table.

    `length` and `limit` are kept so a caller (the command line) can word its own advice.
    """

    def __init__(self, length: int, limit: int, hint: str):
        super().__init__(f"an input is {length} tokens long but the model takes at most {limit} "
                         f"(its position table has room for {limit}); {hint}")
        self.length, self.limit = length, limit


def check_lengths(lengths: Sequence[int], limit: int, hint: str) -> None:
    """InputTooLongError (a ValueError) when a tokenized input is longer than the model takes.

    >>> check_lengths([3, 7], limit=5, hint="pass truncation=True")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    minirobera.pipelines.InputTooLongError: an input is 7 tokens long ...; pass truncation=True
    """
    longest = max(lengths, default=0)
    if longest > limit:
        raise InputTooLongError(longest, limit, hint)


# ==================================================================== small helpers

def softmax(x, axis=-1):  # [..., N] -> [..., N]
    """Softmax in the input's dtype (float32 here, as torch computes it).

    >>> softmax(np.array([0.0, np.log(3.0)], np.float32)).round(4).tolist()
    [0.25, 0.75]
    """
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x):  # [...] -> [...]
    """1 / (1 + exp(-x)), as transformers' text-classification pipeline writes it."""
    return 1.0 / (1.0 + np.exp(-x))


def top_indices(scores, k: int) -> np.ndarray:  # [N] -> [min(k, N)]
    """Indices of the k largest scores, best first (ties: lower index first).

    >>> top_indices(np.array([0.1, 0.5, 0.2, 0.5]), 3).tolist()
    [1, 3, 2]
    """
    return np.argsort(-scores, kind="stable")[:k]


def tokens_to_string(tokens: Sequence[str]) -> str:
    """Join token strings back into text, as the `tokenizers` ByteLevel decoder does.

    Quirk (kept for parity): a "token" holding a character outside the byte table (e.g. a
    space) is taken as its own UTF-8; otherwise each character stands for one byte. Token
    classification calls this twice on word-aggregated results, so a word without a leading
    space whose characters all sit in the table is decoded a second time: "Cafés" at the
    start of a text comes back as "Caf\\ufffds", exactly as transformers does.

    >>> tokens_to_string(["ĠM", "Ã¼", "nchen"]), tokens_to_string([" München"])
    (' München', ' München')
    >>> tokens_to_string(["Cafés"])
    'Caf\\ufffds'
    """
    return tokens_to_bytes(tokens).decode("utf-8", errors="replace")


# ==================================================================== the pipeline base

class Pipeline:
    """A model + tokenizer + default call options for one task; call it on texts.

    Subclasses set `task`, `model_class`, `parameters` (call options and their defaults)
    and implement `_run(list_of_inputs, options) -> list_of_results`.
    """

    task = ""
    model_class = "RobertaModel"
    parameters: Dict[str, Any] = {}
    max_batch_tokens = 8192

    def __init__(self, model=None, tokenizer=None, *, revision: Optional[str] = None,
                 batch_size: int = 8, **defaults):
        if model is None:
            model = DEFAULT_MODELS[self.task]
            logger.info("no model given for %s: using %s", self.task, model)
        if tokenizer is None and not _is_name(model):
            raise ValueError(f"{self.task}: a model object was passed without its tokenizer; "
                             "pass tokenizer=... too (a RobertaTokenizer or a folder/repo id)")
        if tokenizer is None:
            tokenizer = model
        self.model = (_warn_at_caller(load_model, self.model_class, model, revision)
                      if _is_name(model) else model)
        if type(self.model).__name__ != self.model_class:
            raise ValueError(f"the {self.task} pipeline needs a {self.model_class}, got a "
                             f"{type(self.model).__name__}")
        self.tokenizer = (_warn_at_caller(load_tokenizer, tokenizer, revision)
                          if _is_name(tokenizer) else tokenizer)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.defaults = self._check_options(defaults)

    # -------------------------------------------------------------- options
    def _check_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        unknown = sorted(set(options) - set(self.parameters))
        if unknown:
            raise TypeError(f"{self.task} pipeline got unexpected option(s) {unknown}; "
                            f"it takes {sorted(self.parameters)}")
        return options

    def _options(self, call_options: Dict[str, Any]) -> Dict[str, Any]:
        """Defaults < pipeline(...) options < call options."""
        return {**self.parameters, **self.defaults, **self._check_options(call_options)}

    # -------------------------------------------------------------- calling
    def __call__(self, inputs, **options):
        """One input -> its result; a list of inputs -> a list of results, in order."""
        opts = self._options(options)
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 0:
                raise ValueError(f"{self.task}: got an empty list; pass at least one input")
            return self._run(list(inputs), opts)
        return self._run([inputs], opts)[0]

    def _run(self, inputs: list, opts: Dict[str, Any]) -> list:
        raise NotImplementedError

    # -------------------------------------------------------------- shared steps
    @property
    def max_tokens(self) -> int:
        """The longest input the model takes, special tokens included (512 for roberta-base)."""
        return max_model_tokens(self.model.config)

    def _forward(self, id_lists: Sequence[Sequence[int]], take, hint: str, run=None) -> list:
        """Run the model on length-sorted batches; keep `take(output, row, i)` per input i.

        `take` picks what postprocessing needs from the padded batch output (row `row`
        holds input i), so big outputs like [B,T,V] logits are dropped batch by batch.
        `run(ids, mask, batch)` replaces the plain model call when a task needs less than
        the full output. Returns take's results in input order; `hint` ends the too-long error.
        """
        lengths = [len(x) for x in id_lists]
        check_lengths(lengths, self.max_tokens, hint)
        results = [None] * len(id_lists)
        pad_id = self.tokenizer.pad_token_id
        for batch in length_batches(lengths, self.batch_size, self.max_batch_tokens):
            ids, mask = pad_ids([id_lists[i] for i in batch], pad_id)
            output = (self.model(input_ids=ids, attention_mask=mask) if run is None
                      else run(ids, mask, batch))
            for row, i in enumerate(batch):
                results[i] = take(output, row, i)
        return results

    def _tokenize(self, text, what: str = "input", **kwargs):
        if not isinstance(text, str):
            raise TypeError(f"{self.task}: each {what} must be a string, got "
                            f"{type(text).__name__}: {text!r:.80}")
        with warnings.catch_warnings():  # too long: _forward raises a clearer error
            warnings.filterwarnings("ignore", "Token indices sequence length")
            return self.tokenizer(text, **self._cut_at_model(kwargs))

    def _cut_at_model(self, kwargs: dict) -> dict:
        """`truncation` without `max_length` cuts at the tokenizer's model_max_length, as in
        transformers; a tokenizer without a limit (model_max_length int(1e30), e.g. from a
        bare sentencepiece.bpe.model) or with one past the position table cuts at what the
        model holds instead of feeding it positions it does not have."""
        if kwargs.get("truncation") not in (None, False, "do_not_truncate") \
                and kwargs.get("max_length") is None \
                and self.tokenizer.model_max_length > self.max_tokens:
            return {**kwargs, "max_length": self.max_tokens}
        return kwargs


# ==================================================================== fill-mask

def resolve_targets(tokenizer, targets) -> np.ndarray:
    """Token ids for fill-mask `targets`: vocabulary entries, else each text's first token.

    Quirk (as transformers): " Paris" is not a vocabulary entry ("ĠParis" is), so it is
    tokenized and its first token used, with a warning; duplicates collapse.

    With a toy vocabulary that has "ab" but not "Ġab", " ab" falls back to its first token 'Ġ':

    >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
    >>> tok = RobertaTokenizer(*_tiny())
    >>> resolve_targets(tok, ["ab", " ab", "ab"]).tolist(), tok.convert_ids_to_tokens(225)
    ([225, 261], 'Ġ')
    """
    if isinstance(targets, str):
        targets = [targets]
    vocab = tokenizer.get_vocab()
    ids = []
    for target in targets:
        if not isinstance(target, str):
            raise TypeError(f"targets must be strings, got {type(target).__name__}: {target!r}")
        token_id = vocab.get(target)
        if token_id is None:
            pieces = tokenizer(target, add_special_tokens=False)["input_ids"]
            if not pieces:
                logger.warning("target %r is empty after tokenization: ignored", target)
                continue
            token_id = pieces[0]
            logger.warning("target %r is not in the vocabulary: using its first token %r",
                           target, tokenizer.convert_ids_to_tokens(token_id))
        ids.append(int(token_id))
    if not ids:
        raise ValueError(f"none of the targets {list(targets)!r} gives a token; "
                         "pass at least one non-empty target")
    return np.array(sorted(set(ids)))


def fill_mask_predictions(logits, ids, mask_positions, tokenizer, top_k, target_ids=None):
    """The top-k fillers of each `<mask>` of one text: one list of dicts per mask.

    `logits` [M,V] are the MLM logits at the M mask positions of `ids`.

    >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
    >>> tok = RobertaTokenizer(*_tiny())
    >>> ids = tok("ab <mask>")["input_ids"]  # [<s>, ab, <mask>, </s>]: the mask is at 2
    >>> logits = np.zeros((1, len(tok)), np.float32)
    >>> logits[0, 261] = 5.0  # the model likes "ab"
    >>> best = fill_mask_predictions(logits, ids, [2], tok, top_k=1)
    >>> [(p["token"], p["token_str"], p["sequence"], round(p["score"], 3)) for p in best]
    [(261, 'ab', 'abab', 0.363)]
    """
    probs = softmax(np.asarray(logits, dtype=np.float32))  # over the whole vocabulary
    if target_ids is not None:
        probs = probs[:, target_ids]  # restricted, not renormalised (as transformers)
    single_mask = len(mask_positions) == 1
    rows = []
    for m, position in enumerate(mask_positions):
        row = []
        for j in top_indices(probs[m], top_k):
            token = int(target_ids[j]) if target_ids is not None else int(j)
            filled = np.array(ids)
            filled[position] = token
            filled = filled[filled != tokenizer.pad_token_id]
            # Several masks: keep special tokens, or the other <mask>s would vanish.
            sequence = tokenizer.decode(filled.tolist(), skip_special_tokens=single_mask)
            row.append({"score": float(probs[m, j]), "token": token,
                        "token_str": tokenizer.decode([token]), "sequence": sequence})
        rows.append(row)
    return rows[0] if single_mask else rows


class FillMaskPipeline(Pipeline):
    """Predict the token behind each `<mask>`: `{score, token, token_str, sequence}` dicts.

    One `<mask>` -> a list of top_k dicts; several -> one such list per mask (transformers'
    experimental multi-mask mode: each mask scored on its own). A list of texts -> a list
    of those, except that a list of one text gives that text's result.

    >>> unmasker = FillMaskPipeline("FacebookAI/roberta-base")  # doctest: +SKIP
    >>> unmasker("Hello I'm a <mask> model.", top_k=2)  # doctest: +SKIP
    [{'score': 0.3307, 'token': 2943, 'token_str': ' male', 'sequence': "Hello I'm a male ...
    """

    task = "fill-mask"
    model_class = "RobertaForMaskedLM"
    parameters = {"top_k": 5, "targets": None, "tokenizer_kwargs": None}

    def __call__(self, inputs, **options):
        result = super().__call__(inputs, **options)
        if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
            return result[0]  # transformers unwraps a list of one text
        return result

    def _check_options(self, options):
        # As transformers: an option given as None counts as not given, so top_k=None keeps
        # the pipeline's top_k (or 5) and targets=None keeps its targets.
        return {k: v for k, v in super()._check_options(options).items() if v is not None}

    def _run(self, texts, opts):
        tok = self.tokenizer
        if tok.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token, so fill-mask cannot run")
        target_ids = None if opts["targets"] is None else resolve_targets(tok, opts["targets"])
        top_k = fill_mask_top_k(opts["top_k"], self.model.config.vocab_size, target_ids)
        kwargs = dict(opts["tokenizer_kwargs"] or {})
        id_lists = [list(self._tokenize(t, "text", **kwargs)["input_ids"]) for t in texts]
        masks = [self._mask_positions(ids, text) for ids, text in zip(id_lists, texts)]
        hint = ("pass tokenizer_kwargs={'truncation': True} to keep the first tokens "
                "(the <mask> must be among them)")
        logits = self._forward(id_lists, lambda out, row, i: out[row], hint,
                               run=lambda ids, mask, batch: self._mask_logits(ids, mask,
                                                                              [masks[i] for i in batch]))
        return [fill_mask_predictions(lg, ids, m, tok, top_k, target_ids)
                for lg, ids, m in zip(logits, id_lists, masks)]

    def _mask_logits(self, ids, mask, mask_positions) -> list:  # [B,T] -> B x [M_b,V]
        """The LM head at the <mask> rows only (softmax needs nothing else)."""
        positions = [(row, col) for row, cols in enumerate(mask_positions) for col in cols]
        logits = self.model.logits_at(ids, mask, positions=positions)
        return np.split(logits, np.cumsum([len(cols) for cols in mask_positions])[:-1])

    def _mask_positions(self, ids, text) -> np.ndarray:
        positions = np.flatnonzero(np.array(ids) == self.tokenizer.mask_token_id)
        if len(positions) == 0:
            mask = self.tokenizer.mask_token
            raise ValueError(f"No mask_token ({mask}) found in the input {text!r:.120}: write "
                             f"{mask} where the word to predict goes, e.g. "
                             f"'The capital of France is {mask}.'")
        return positions


def fill_mask_top_k(top_k, vocab_size: int, target_ids=None) -> int:
    """How many predictions per mask, checked as transformers' fill-mask behaves.

    0 gives no predictions (an empty list per mask); with targets, top_k is capped at their
    number. Where transformers crashes inside torch.topk (a negative top_k, or more than the
    vocabulary without targets), this gives a ValueError that says so.

    >>> fill_mask_top_k(0, 50265), fill_mask_top_k(9, 50265, target_ids=np.array([7, 8]))
    (0, 2)
    >>> fill_mask_top_k(50266, 50265)
    Traceback (most recent call last):
    ...
    ValueError: top_k=50266 is more than the 50265 tokens of the vocabulary; use at most 50265
    """
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise TypeError(f"top_k must be an integer, got {type(top_k).__name__}: {top_k!r}")
    top_k = int(top_k)
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 gives no predictions), got {top_k}")
    if target_ids is not None:
        return min(top_k, len(target_ids))  # transformers caps top_k at the targets
    if top_k > vocab_size:
        raise ValueError(f"top_k={top_k} is more than the {vocab_size} tokens of the "
                         f"vocabulary; use at most {vocab_size}")
    return top_k


def _check_top_k(top_k) -> int:
    """Question answering's rule (transformers 4): top_k >= 1."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    return top_k


# ==================================================================== text classification

FUNCTIONS = {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}


def default_function(config) -> str:
    """transformers' choice: regression -> none; multi-label or 1 label -> sigmoid; else softmax.

    >>> from minirobera.config import RobertaConfig
    >>> default_function(RobertaConfig(id2label={0: "A", 1: "B"}))
    'softmax'
    >>> default_function(RobertaConfig(id2label={0: "A"})), default_function(
    ...     RobertaConfig(id2label={0: "A"}, problem_type="regression"))
    ('sigmoid', 'none')
    """
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def classification_result(logits, id2label, function, top_k, legacy):
    """Scores of one text -> transformers' output shape.

    `legacy` (no top_k given anywhere) -> the best `{label, score}` dict; else a list of
    dicts sorted by score, cut to top_k (None keeps all).

    >>> classification_result(np.array([0.0, 1.0], np.float32), {0: "NEG", 1: "POS"},
    ...                       "none", 1, legacy=True)
    {'label': 'POS', 'score': 1.0}
    """
    scores = FUNCTIONS[function](np.asarray(logits, dtype=np.float32))
    if legacy:
        best = int(scores.argmax())
        return {"label": id2label[best], "score": float(scores[best])}
    result = [{"label": id2label[i], "score": float(s)} for i, s in enumerate(scores)]
    result.sort(key=lambda d: d["score"], reverse=True)  # stable: ties keep label order
    return result if top_k is None else result[:top_k]


class TextClassificationPipeline(Pipeline):
    """Classify texts or text pairs: `{label, score}` dicts.

    Output shapes follow transformers exactly: a text with no `top_k` -> `[{label, score}]`
    (the best label, in a list); a list of texts -> one dict per text; with `top_k` given
    (an int, or None for all labels) -> a sorted list of dicts per text. A pair is
    `{"text": ..., "text_pair": ...}` and gives a bare dict. Quirk kept: `top_k` given
    to pipeline() rather than to the call wraps a single text's list once more.

    >>> classifier = TextClassificationPipeline(  # doctest: +SKIP
    ...     "cardiffnlp/twitter-roberta-base-sentiment-latest")
    >>> classifier("I love this!")  # doctest: +SKIP
    [{'label': 'positive', 'score': 0.98...}]
    """

    task = "text-classification"
    model_class = "RobertaForSequenceClassification"
    parameters = {"top_k": _UNSET, "function_to_apply": None, "truncation": None,
                  "max_length": None}

    def __call__(self, inputs, **options):
        result = super().__call__(inputs, **options)
        if isinstance(inputs, str) and "top_k" not in options:
            return [result]  # transformers: "This pipeline is odd, and return a list"
        return result

    def _run(self, inputs, opts):
        legacy = opts["top_k"] is _UNSET
        top_k = 1 if legacy else opts["top_k"]
        # 0 gives no labels, as transformers. (A negative top_k there slices the sorted
        # labels from the end, an accident; it is refused here.)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                  or top_k < 0):
            raise ValueError(f"top_k must be None (every label), 0 or a positive integer, "
                             f"got {top_k!r}")
        function = self._function(opts["function_to_apply"])
        kwargs = {k: opts[k] for k in ("truncation", "max_length") if opts[k] is not None}
        id_lists = [list(self._encode(x, kwargs)["input_ids"]) for x in inputs]
        logits = self._forward(id_lists, lambda out, row, i: out.logits[row],
                               "pass truncation=True to keep the first tokens")
        id2label = self.model.config.id2label
        return [classification_result(lg, id2label, function, top_k, legacy) for lg in logits]

    def _function(self, name) -> str:
        if name is None:
            return default_function(self.model.config)
        name = str(getattr(name, "value", name)).lower()
        if name not in FUNCTIONS:
            raise ValueError(f"function_to_apply must be one of {sorted(FUNCTIONS)}, got {name!r}")
        return name

    def _encode(self, item, kwargs):
        if isinstance(item, dict):
            if not set(item) <= {"text", "text_pair"} or "text" not in item:
                raise ValueError("a text pair is a dict with the keys 'text' and 'text_pair', "
                                 f"got keys {sorted(item)}")
            for key in item:
                self._check_str(item[key], key)
            return self.tokenizer(item["text"], text_pair=item.get("text_pair"),
                                  **self._cut_at_model(kwargs))
        if isinstance(item, (list, tuple)):
            raise ValueError("The pipeline received invalid inputs, if you are trying to send "
                             "text pairs, you can try to send a dictionary "
                             '`{"text": "My text", "text_pair": "My pair"}` in order to send a '
                             "text pair.")
        return self._tokenize(item, "text", **kwargs)

    def _check_str(self, value, what):
        if not isinstance(value, str):
            raise TypeError(f"{self.task}: {what} must be a string, got {type(value).__name__}")


# ==================================================================== token classification

AGGREGATIONS = ("none", "simple", "first", "average", "max")


class Token(NamedTuple):
    """One non-special token of a text, with everything the aggregation needs."""
    index: int          # position in the model input (<s> is 0)
    word: str           # the token string, e.g. "ĠBerlin"
    scores: np.ndarray  # [L] float32 softmax over labels
    start: int          # character span in the text
    end: int
    is_subword: bool    # continues the word of the previous token


def is_subword(text: str, start: int) -> bool:
    """RoBERTa's word rule in transformers: a token continues a word unless it starts the
    text or a space sits just before it or at its own start.

    transformers falls back to this heuristic because the byte-level BPE has no
    continuing-subword prefix; so "Berlin." is one word and "New York" two.

    >>> [is_subword("in Berlin.", i) for i in (0, 3, 9)]
    [False, False, True]
    """
    return start > 0 and " " not in text[start - 1:start + 1]


def gather_tokens(text, ids, offsets, special, scores, tokenizer) -> List[Token]:
    """Tokens of one window as `Token`s, special tokens dropped."""
    tokens = []
    for i, token_id in enumerate(ids):
        if special[i]:
            continue
        start, end = (int(v) for v in offsets[i])
        word = tokenizer.convert_ids_to_tokens(int(token_id))
        sub = is_subword(text, start)
        if int(token_id) == tokenizer.unk_token_id:  # as transformers: show the real text
            word, sub = text[start:end], False
        tokens.append(Token(i, word, scores[i], start, end, sub))
    return tokens


def token_entities(tokens: List[Token], id2label) -> List[dict]:
    """Strategy "none": one entity per token, its best label."""
    entities = []
    for t in tokens:
        best = int(t.scores.argmax())
        entities.append({"entity": id2label[best], "score": t.scores[best], "index": t.index,
                         "word": t.word, "start": t.start, "end": t.end})
    return entities


def word_entity(tokens: List[Token], strategy: str, id2label) -> dict:
    """Strategies first/average/max: the tokens of one word -> one entity."""
    if strategy == "first":
        scores = tokens[0].scores
    elif strategy == "max":
        scores = max(tokens, key=lambda t: t.scores.max()).scores  # first of equal maxima
    else:  # average
        scores = np.nanmean(np.stack([t.scores for t in tokens]), axis=0)
    best = int(scores.argmax())
    return {"entity": id2label[best], "score": scores[best],
            "word": tokens_to_string([t.word for t in tokens]),
            "start": tokens[0].start, "end": tokens[-1].end}


def word_entities(tokens: List[Token], strategy: str, id2label) -> List[dict]:
    """Group tokens into words (see `is_subword`), one entity per word.

    "ĠBer" + "lin" are one word; "first" takes the label of its first token:

    >>> p = lambda *s: np.array(s, np.float32)  # scores over the labels O, LOC
    >>> tokens = [Token(1, "Ġin", p(.9, .1), 0, 2, False),
    ...           Token(2, "ĠBer", p(.2, .8), 3, 6, False), Token(3, "lin", p(.7, .3), 6, 9, True)]
    >>> [(e["entity"], e["word"], e["start"], e["end"])
    ...  for e in word_entities(tokens, "first", {0: "O", 1: "LOC"})]
    [('O', ' in', 0, 2), ('LOC', ' Berlin', 3, 9)]
    """
    words, current = [], []
    for t in tokens:
        if current and not t.is_subword:
            words.append(current)
            current = []
        current.append(t)
    if current:
        words.append(current)
    return [word_entity(w, strategy, id2label) for w in words]


def split_tag(label: str):
    """"B-PER" -> ("B", "PER"); a label without B-/I- counts as a continuation ("I").

    >>> split_tag("B-PER"), split_tag("I-LOC"), split_tag("MISC")
    (('B', 'PER'), ('I', 'LOC'), ('I', 'MISC'))
    """
    if label.startswith("B-") or label.startswith("I-"):
        return label[0], label[2:]
    return "I", label


def group_entities(entities: List[dict]) -> List[dict]:
    """Merge neighbours with the same tag into `entity_group`s; a B- tag starts a new group.

    >>> tagged = [("B-PER", "ĠAngela", 0, 6), ("I-PER", "ĠMerkel", 7, 13),
    ...           ("B-PER", "ĠOlaf", 18, 22), ("O", "Ġmet", 14, 17)]
    >>> for g in group_entities([{"entity": t, "score": 0.5, "word": w, "start": a, "end": b}
    ...                          for t, w, a, b in tagged]):
    ...     print(g["entity_group"], repr(g["word"]), g["start"], g["end"])
    PER ' Angela Merkel' 0 13
    PER ' Olaf' 18 22
    O ' met' 14 17
    """
    groups, current = [], []
    for entity in entities:
        bi, tag = split_tag(entity["entity"])
        if current and (tag != split_tag(current[-1]["entity"])[1] or bi == "B"):
            groups.append(_entity_group(current))
            current = []
        current.append(entity)
    if current:
        groups.append(_entity_group(current))
    return groups


def _entity_group(entities: List[dict]) -> dict:
    scores = np.array([e["score"] for e in entities], dtype=np.float32)
    return {"entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": np.nanmean(scores),
            "word": tokens_to_string([e["word"] for e in entities]),
            "start": entities[0]["start"], "end": entities[-1]["end"]}


def aggregate(tokens: List[Token], strategy: str, id2label, ignore_labels) -> List[dict]:
    """Tokens of one window -> transformers' entities for `strategy`, ignored labels dropped."""
    if strategy in ("none", "simple"):
        entities = token_entities(tokens, id2label)
    else:
        entities = word_entities(tokens, strategy, id2label)
    if strategy != "none":
        entities = group_entities(entities)
    key = "entity" if strategy == "none" else "entity_group"
    return [dict(e, score=float(e["score"])) for e in entities
            if e[key] not in ignore_labels]


def merge_overlapping(entities: List[dict]) -> List[dict]:
    """Entities from overlapping windows (stride): keep the longer, then higher-scoring one.

    >>> seen = [{"start": 0, "end": 6, "score": 0.9}, {"start": 3, "end": 12, "score": 0.5},
    ...         {"start": 20, "end": 25, "score": 0.7}]
    >>> [(e["start"], e["end"]) for e in merge_overlapping(seen)]
    [(3, 12), (20, 25)]
    """
    if not entities:
        return entities
    entities = sorted(entities, key=lambda e: e["start"])
    kept, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length = entity["end"] - entity["start"]
            prev_length = previous["end"] - previous["start"]
            if length > prev_length or (length == prev_length
                                        and entity["score"] > previous["score"]):
                previous = entity
        else:
            kept.append(previous)
            previous = entity
    kept.append(previous)
    return kept


class Window(NamedTuple):
    """One model input: a text's tokens, or a slice of them, with what postprocessing needs."""
    ids: List[int]
    offsets: List[tuple]    # character spans; (0, 0) for special tokens
    word_ids: List[Optional[int]]
    sequence_ids: List[Optional[int]]  # None for template tokens, else 0 (or 1: pair's 2nd)


def encoding_windows(enc) -> List[Window]:
    """A tokenizer output -> its rows as `Window`s (several with return_overflowing_tokens).

    >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
    >>> enc = RobertaTokenizer(*_tiny())("ab b", return_offsets_mapping=True)
    >>> [window] = encoding_windows(enc)
    >>> window.ids, window.offsets, window.word_ids
    ([0, 261, 225, 70, 2], [(0, 0), (0, 2), (3, 3), (3, 4), (0, 0)], [None, 0, 1, 1, None])
    """
    ids = enc["input_ids"]
    rows = ids if ids and isinstance(ids[0], (list, tuple)) else [ids]
    offsets = enc["offset_mapping"] if rows is ids else [enc["offset_mapping"]]
    return [Window(list(r), [tuple(o) for o in off], enc.word_ids(i), enc.sequence_ids(i))
            for i, (r, off) in enumerate(zip(rows, offsets))]


class TokenClassificationPipeline(Pipeline):
    """Label every token (NER, POS): a list of entity dicts per text.

    aggregation_strategy "none" -> `{entity, score, index, word, start, end}` per token;
    "simple" groups neighbouring tokens with the same tag; "first" / "average" / "max"
    first force one label per word (RoBERTa words: see `is_subword`), then group.
    Labels in `ignore_labels` (default ["O"]) are dropped. Texts longer than the model
    are truncated, or cut into overlapping windows with `stride`.

    >>> tagger = TokenClassificationPipeline("Jean-Baptiste/roberta-large-ner-english",
    ...                                      aggregation_strategy="simple")  # doctest: +SKIP
    >>> tagger("My name is Wolfgang and I live in Berlin")  # doctest: +SKIP
    [{'entity_group': 'PER', 'score': 0.99..., 'word': ' Wolfgang', 'start': 11, 'end': 19}, ...]
    """

    task = "token-classification"
    model_class = "RobertaForTokenClassification"
    parameters = {"aggregation_strategy": "none", "ignore_labels": None, "stride": None}

    def _run(self, texts, opts):
        strategy = str(getattr(opts["aggregation_strategy"], "value",
                               opts["aggregation_strategy"])).lower()
        if strategy not in AGGREGATIONS:
            raise ValueError(f"aggregation_strategy must be one of {list(AGGREGATIONS)}, "
                             f"got {opts['aggregation_strategy']!r}")
        stride = self._check_stride(opts["stride"], strategy)
        ignore = ["O"] if opts["ignore_labels"] is None else list(opts["ignore_labels"])
        # As transformers: cut at the tokenizer's model_max_length (512), or into windows
        # overlapping by `stride` tokens; never beyond what the position table holds.
        kwargs = dict(truncation=True, max_length=min(self.max_tokens, self._tokenizer_limit()),
                      return_offsets_mapping=True)
        if stride is not None:
            kwargs.update(stride=stride, return_overflowing_tokens=True)
        windows = [encoding_windows(self._tokenize(t, "text", **kwargs)) for t in texts]
        flat = [w for ws in windows for w in ws]
        scores = self._forward([w.ids for w in flat],
                               lambda out, row, i: softmax(out.logits[row, :len(flat[i].ids)]),
                               "the tokenizer's model_max_length is larger than the model")
        results, k = [], 0
        for text, ws in zip(texts, windows):
            entities = []
            for w in ws:
                special = [sid is None for sid in w.sequence_ids]
                tokens = gather_tokens(text, w.ids, w.offsets, special, scores[k], self.tokenizer)
                entities += aggregate(tokens, strategy, self.model.config.id2label, ignore)
                k += 1
            results.append(merge_overlapping(entities) if len(ws) > 1 else entities)
        return results

    def _tokenizer_limit(self) -> int:
        # transformers truncates to the tokenizer's model_max_length (512 for roberta-base).
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if limit and limit > 0 else self.max_tokens

    def _check_stride(self, stride, strategy):
        if stride is None:
            return None
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 0:
            raise ValueError(f"stride must be a non-negative integer, got {stride!r}")
        if strategy == "none":
            raise ValueError('stride needs an aggregation_strategy other than "none" (windows '
                             "overlap, so tokens would be reported twice)")
        return stride


# ==================================================================== question answering

def decode_spans(start, end, top_k, max_answer_len, allowed):
    """The top_k (start, end) token spans by start_prob * end_prob, transformers 4's way.

    `start`, `end` [T] are probabilities; a span needs end >= start, at most max_answer_len
    tokens, and both ends in `allowed` ([T] bool). Quirk kept: the end >= start and length
    rules only zero a span's score, so when fewer than top_k real spans exist, zero-score
    spans fill the list (as in transformers).

    >>> p = np.array([0.0, 0.1, 0.6, 0.3], np.float32)
    >>> s, e, score = decode_spans(p, p, 2, 15, np.array([True, True, True, True]))
    >>> s.tolist(), e.tolist(), [round(float(x), 2) for x in score]
    ([2, 2], [2, 3], [0.36, 0.18])
    """
    outer = np.matmul(start[:, None], end[None, :])  # [T,T]
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    if top_k == 1:
        order = [np.argmax(flat)]
    elif len(flat) < top_k:
        order = np.argsort(-flat)
    else:
        idx = np.argpartition(-flat, top_k)[0:top_k]
        order = idx[np.argsort(-flat[idx])]
    starts, ends = np.unravel_index(order, candidates.shape)
    # Quirk: transformers tests membership against nonzero() of a [1,T] mask, whose row
    # indices (all 0) join the allowed set: token 0 always passes. It is <s>, allowed anyway.
    ok_tokens = np.append(np.flatnonzero(allowed), 0)
    keep = np.isin(starts, ok_tokens) & np.isin(ends, ok_tokens)
    return starts[keep], ends[keep], candidates[starts[keep], ends[keep]]


def span_probabilities(start_logits, end_logits, allowed):
    """Softmax of start and end logits with disallowed tokens at -10000 (float32).

    The question's tokens are not allowed, so they get (next to) no probability:

    >>> allowed = np.array([True, False, True, True])  # <s>, a question token, the context
    >>> start, end = span_probabilities(np.array([0.0, 9.0, 1.0, 2.0], np.float32),
    ...                                 np.zeros(4, np.float32), allowed)
    >>> [round(float(x), 3) for x in start], [round(float(x), 3) for x in end]
    ([0.09, 0.0, 0.245, 0.665], [0.333, 0.0, 0.333, 0.333])
    """
    start = np.where(allowed, start_logits, np.float32(-10000.0)).astype(np.float32)
    end = np.where(allowed, end_logits, np.float32(-10000.0)).astype(np.float32)
    return softmax(start), softmax(end)


def word_span(window: Window, s: int, e: int, align_to_words: bool):
    """Character span (in the context) of tokens s..e; widened to whole words by default.

    A "word" is a pre-tokenizer piece (word_ids). As in transformers, when either end has
    no word in the context (e.g. <s>), both ends fall back to the tokens' own offsets.
    """
    if align_to_words:
        first = context_word_chars(window, window.word_ids[s])
        last = context_word_chars(window, window.word_ids[e])
        if first is not None and last is not None:
            return first[0], last[1]
    return window.offsets[s][0], window.offsets[e][1]


def context_word_chars(window: Window, word: Optional[int]):
    """tokenizers' word_to_chars(word, sequence_index=1): the span of that context word's
    tokens in this window (cut at the window's edge), or None."""
    positions = [i for i, (w, seq) in enumerate(zip(window.word_ids, window.sequence_ids))
                 if word is not None and w == word and seq == 1]
    if not positions:
        return None
    return window.offsets[positions[0]][0], window.offsets[positions[-1]][1]


def qa_answers(windows, starts, ends, context, opts, cls_id=0):
    """All windows of one example -> transformers 4's answer dict or list of dicts.

    One window "<s> Where? </s></s> I live in Berlin </s>" whose logits point at "ĠBerlin"
    (token 7); the answer's characters come from the offsets:

    >>> context = "I live in Berlin"
    >>> window = Window(ids=[0, 50, 2, 2, 51, 52, 53, 54, 2],
    ...     offsets=[(0, 0), (0, 6), (0, 0), (0, 0), (0, 1), (2, 6), (7, 9), (10, 16), (0, 0)],
    ...     word_ids=[None, 0, None, None, 0, 1, 2, 3, None],
    ...     sequence_ids=[None, 0, None, None, 1, 1, 1, 1, None])
    >>> logits = np.array([0, 0, 0, 0, 1, 0, 2, 6, 0], np.float32)
    >>> opts = {"top_k": 1, "handle_impossible_answer": False, "max_answer_len": 15,
    ...         "align_to_words": True}
    >>> answer = qa_answers([window], [logits], [logits], context, opts)
    >>> answer["answer"], answer["start"], answer["end"], round(answer["score"], 3)
    ('Berlin', 10, 16, 0.943)
    """
    top_k, impossible = opts["top_k"], opts["handle_impossible_answer"]
    pre_top_k = top_k * 2 + 10 if opts["align_to_words"] else top_k  # some merge below
    min_null_score, answers = 1000000.0, []
    for window, start_logits, end_logits in zip(windows, starts, ends):
        # <s> stays a candidate: models answer "impossible" with it. Quirk kept: so does
        # any <s> the question itself contains (transformers unmasks every cls_token_id).
        allowed = (np.array(window.sequence_ids) == 1) | (np.array(window.ids) == cls_id)
        start, end = span_probabilities(start_logits, end_logits, allowed)
        if impossible:
            min_null_score = min(min_null_score, float(start[0] * end[0]))
        start[0] = end[0] = 0.0
        for s, e, score in zip(*decode_spans(start, end, pre_top_k, opts["max_answer_len"],
                                             allowed)):
            lo, hi = word_span(window, int(s), int(e), opts["align_to_words"])
            text = context[lo:hi]
            same = [a for a in answers if a["answer"].lower() == text.lower()]
            if same:  # the same text from another span or window: scores add up
                same[0]["score"] += float(score)
            else:
                answers.append({"score": float(score), "start": lo, "end": hi, "answer": text})
    if impossible:
        answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


class QuestionAnsweringPipeline(Pipeline):
    """Extractive QA, as transformers 4.x: `{score, start, end, answer}` from the context.

    The question goes first and is never cut; a long context is split into windows of
    max_seq_len tokens (default min(384, model_max_length)) overlapping by doc_stride
    (default min(max_seq_len // 2, 128)). Start and end probabilities are softmaxes over
    the context tokens (and <s>); a span scores start_prob * end_prob, at most
    max_answer_len tokens, widened to whole words; equal answers from different spans add
    up. top_k > 1 gives a list; handle_impossible_answer adds the empty answer, scored by
    <s>. Call it as qa(question=..., context=...), qa({"question":..., "context":...}),
    qa("question", "context") or with lists (a list of one gives one result).

    >>> qa = QuestionAnsweringPipeline("deepset/roberta-base-squad2")  # doctest: +SKIP
    >>> qa(question="Where do I live?", context="My name is Wolfgang and I live in Berlin")
    ... # doctest: +SKIP
    {'score': 0.9191, 'start': 34, 'end': 40, 'answer': 'Berlin'}
    """

    task = "question-answering"
    model_class = "RobertaForQuestionAnswering"
    parameters = {"top_k": 1, "doc_stride": None, "max_answer_len": 15, "max_seq_len": None,
                  "max_question_len": 64, "handle_impossible_answer": False,
                  "align_to_words": True}

    def __call__(self, *args, question=None, context=None, **options):
        examples = self._examples(args, question, context)
        opts = self._options(options)
        results = self._run(examples, opts)
        return results[0] if len(results) == 1 else results

    def _examples(self, args, question, context) -> List[dict]:
        if len(args) == 2 and all(isinstance(a, str) for a in args):
            items = [{"question": args[0], "context": args[1]}]
        elif len(args) == 1:
            items = args[0] if isinstance(args[0], (list, tuple)) else [args[0]]
        elif args:
            raise ValueError("pass question=... and context=..., or one dict / list of dicts")
        elif question is None or context is None:
            raise ValueError("question answering needs both question=... and context=...")
        elif isinstance(question, str) and isinstance(context, str):
            items = [{"question": question, "context": context}]
        elif isinstance(question, list) and isinstance(context, str):
            items = [{"question": q, "context": context} for q in question]
        elif isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError(f"got {len(question)} questions but {len(context)} contexts; "
                                 "pass one context, or one per question")
            items = [{"question": q, "context": c} for q, c in zip(question, context)]
        else:
            raise ValueError("question must be a string or a list of strings, and context a "
                             "string or a list of strings")
        if len(items) == 0:
            raise ValueError("question-answering: got an empty list; pass at least one question")
        return [self._check_example(item) for item in items]

    @staticmethod
    def _check_example(item) -> dict:
        if not isinstance(item, dict):
            raise ValueError(f"each example must be a dict with 'question' and 'context', "
                             f"got {type(item).__name__}")
        for key in ("question", "context"):
            if key not in item:
                raise ValueError(f"an example is missing {key!r}: pass a dict with 'question' "
                                 "and 'context'")
            if not isinstance(item[key], str):
                raise ValueError(f"`{key}` must be a string, got {type(item[key]).__name__}")
            if len(item[key]) == 0:
                raise ValueError(f"`{key}` cannot be empty")
        return item

    def _run(self, examples, opts):
        self._check_numbers(opts)
        max_seq_len = opts["max_seq_len"]
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, 384)
        doc_stride = opts["doc_stride"]
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` "
                             f"({max_seq_len})")
        windows, owner = [], []  # owner[i]: the example window i belongs to
        for k, ex in enumerate(examples):
            for w in self._windows(ex["question"], ex["context"], max_seq_len, doc_stride):
                windows.append(w)
                owner.append(k)
        logits = self._forward([w.ids for w in windows],
                               lambda out, row, i: (out.start_logits[row, :len(windows[i].ids)],
                                                    out.end_logits[row, :len(windows[i].ids)]),
                               "lower max_seq_len (the context is split into windows)")
        results = []
        for k, ex in enumerate(examples):
            mine = [i for i in range(len(windows)) if owner[i] == k]
            results.append(qa_answers([windows[i] for i in mine], [logits[i][0] for i in mine],
                                      [logits[i][1] for i in mine], ex["context"], opts,
                                      self.tokenizer.cls_token_id))
        return results

    def _windows(self, question, context, max_seq_len, doc_stride) -> List[Window]:
        """<s> question </s></s> context-part </s> windows (truncation="only_second")."""
        n_question = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        if n_question + 4 >= max_seq_len:  # <s> q </s></s> c </s>: no room for the context
            raise ValueError(f"the question is {n_question} tokens long, which leaves no room "
                             f"for the context in max_seq_len={max_seq_len}; shorten the "
                             "question or raise max_seq_len")
        try:
            enc = self.tokenizer(question, context, truncation="only_second",
                                 max_length=max_seq_len, stride=doc_stride,
                                 return_overflowing_tokens=True, return_offsets_mapping=True)
        except ValueError as e:
            raise ValueError(f"cannot split the context into windows (max_seq_len="
                             f"{max_seq_len}, doc_stride={doc_stride}): {e}") from None
        return encoding_windows(enc)

    @staticmethod
    def _check_numbers(opts):
        _check_top_k(opts["top_k"])
        if not isinstance(opts["max_answer_len"], int) or opts["max_answer_len"] < 1:
            raise ValueError(f"max_answer_len parameter should be >= 1 "
                             f"(got {opts['max_answer_len']!r})")
        for key in ("max_seq_len", "doc_stride"):
            value = opts[key]
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{key} must be a positive integer, got {value!r}")


# ==================================================================== feature extraction

class FeatureExtractionPipeline(Pipeline):
    """The last hidden state of each text: nested lists [1][T][D], <s> and </s> rows included.

    return_tensors=True gives a NumPy array [1,T,D] instead (transformers gives a tensor).

    >>> extractor = FeatureExtractionPipeline("FacebookAI/roberta-base")  # doctest: +SKIP
    >>> np.array(extractor("Hello world")).shape  # doctest: +SKIP
    (1, 4, 768)
    """

    task = "feature-extraction"
    model_class = "RobertaModel"
    parameters = {"truncation": None, "tokenize_kwargs": None, "return_tensors": False}

    def _run(self, texts, opts):
        kwargs = dict(opts["tokenize_kwargs"] or {})
        if opts["truncation"] is not None:
            if "truncation" in kwargs:
                raise ValueError("truncation parameter defined twice (given as keyword argument "
                                 "as well as in tokenize_kwargs)")
            kwargs["truncation"] = opts["truncation"]
        id_lists = [list(self._tokenize(t, "text", **kwargs)["input_ids"]) for t in texts]
        hidden = self._forward(id_lists,
                               lambda out, row, i: out.last_hidden_state[row, :len(id_lists[i])],
                               "pass truncation=True to keep the first tokens")
        if opts["return_tensors"]:
            return [h[None] for h in hidden]
        return [[h.tolist()] for h in hidden]


# ==================================================================== pipeline() and shortcuts

TASKS = {
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "question-answering": QuestionAnsweringPipeline,
    "feature-extraction": FeatureExtractionPipeline,
}


def pipeline(task: str, model=None, tokenizer=None, **kwargs) -> Pipeline:
    """The pipeline for `task`, with `model` a folder, a hub repo id or a loaded model.

    Tasks: fill-mask, text-classification (alias sentiment-analysis), token-classification
    (alias ner), question-answering, feature-extraction. Other keyword arguments:
    `revision`, `batch_size`, and default call options of the task (e.g. top_k=3).

    >>> pipeline("summarization")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown task 'summarization'; minirobera has: ['feature-extraction', ...]
    """
    name = TASK_ALIASES.get(task, task)
    if name not in TASKS:
        known = sorted([*TASKS, *TASK_ALIASES])
        raise ValueError(f"Unknown task {task!r}; minirobera has: {known}")
    return TASKS[name](model, tokenizer, **kwargs)


def fill_mask(text, model="FacebookAI/roberta-base", top_k=5, targets=None, *,
              revision=None, **options):
    """Fill each `<mask>` in `text` (or a list of texts), as transformers' fill-mask pipeline.

    >>> fill_mask("The capital of France is <mask>.", top_k=1)[0]["token_str"]  # doctest: +SKIP
    ' Paris'
    """
    return pipeline("fill-mask", model, revision=revision)(text, top_k=top_k, targets=targets,
                                                            **options)


def classify(text, model=DEFAULT_MODELS["text-classification"], *, revision=None, **options):
    """Classify a text, a {"text", "text_pair"} dict or a list of those (text-classification).

    >>> classify("I love this!")  # doctest: +SKIP
    [{'label': 'positive', 'score': 0.98...}]
    """
    return pipeline("text-classification", model, revision=revision)(text, **options)


def ner(text, model=DEFAULT_MODELS["token-classification"], aggregation_strategy="none", *,
        revision=None, **options):
    """Label the tokens (or words, with an aggregation_strategy) of a text or list of texts.

    >>> ner("My name is Wolfgang", aggregation_strategy="simple")  # doctest: +SKIP
    [{'entity_group': 'PER', 'score': 0.99..., 'word': ' Wolfgang', 'start': 11, 'end': 19}]
    """
    return pipeline("token-classification", model, revision=revision)(
        text, aggregation_strategy=aggregation_strategy, **options)


def question_answering(question, context, model=DEFAULT_MODELS["question-answering"], *,
                       revision=None, **options):
    """Find the answer to `question` in `context` (strings, or lists of them).

    >>> question_answering("Where do I live?", "My name is Wolfgang and I live in Berlin")
    ... # doctest: +SKIP
    {'score': 0.9191, 'start': 34, 'end': 40, 'answer': 'Berlin'}
    """
    return pipeline("question-answering", model, revision=revision)(
        question=question, context=context, **options)


def feature_extraction(text, model="FacebookAI/roberta-base", *, revision=None, **options):
    """The last hidden state [1][T][D] of a text (a list of texts -> a list of those).

    >>> len(feature_extraction("Hello world")[0])  # doctest: +SKIP
    4
    """
    return pipeline("feature-extraction", model, revision=revision)(text, **options)


text_classification = classify
token_classification = ner
