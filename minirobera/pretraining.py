"""The two data recipes RoBERTa changed from BERT: dynamic masking and FULL-SENTENCES packing.

Owns:
    mask_tokens          the masked-LM corruption (15% of tokens; of those 80% <mask>,
                         10% a random token, 10% unchanged), as transformers'
                         DataCollatorForLanguageModeling does it. Called with a fresh
                         random generator each epoch it is RoBERTa's *dynamic* masking;
                         called once and cached it is BERT's *static* masking.
    pack_full_sentences  the FULL-SENTENCES input format: whole sentences packed into
                         blocks of up to 512 tokens, crossing document boundaries with an
                         extra separator token, and no next-sentence-prediction pairs.

Leaves out: training itself (backward.py and training.py; notebook 10 puts them together
with these recipes), and BERT's next-sentence objective, which RoBERTa dropped.
"""

from typing import Iterable, List, Sequence, Tuple

import numpy as np

IGNORE_INDEX = -100  # label for positions the loss skips, as in transformers / PyTorch


def mask_tokens(input_ids, *, mask_token_id: int, vocab_size: int, special_ids: Iterable[int],
                rng: np.random.Generator, mlm_probability: float = 0.15,
                ) -> Tuple[np.ndarray, np.ndarray]:  # [B,T] -> [B,T], [B,T]
    """Corrupt a batch for masked-LM training; return (inputs, labels).

    labels hold the original id where a token was chosen for prediction, else -100.
    Special tokens (<s>, </s>, <pad>, ...) are never chosen.

    >>> rng = np.random.default_rng(0)
    >>> ids = np.array([[0, 31414, 232, 328, 2, 1]])
    >>> inputs, labels = mask_tokens(ids, mask_token_id=50264, vocab_size=50265,
    ...                              special_ids=[0, 1, 2], rng=rng, mlm_probability=0.5)
    >>> inputs.shape == labels.shape == ids.shape
    True
    >>> bool(((labels == -100) | (labels == ids)).all())   # a label is the original id or -100
    True
    """
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability must be in [0, 1], got {mlm_probability}")
    ids = np.asarray(input_ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"input_ids must be integers, got dtype {ids.dtype}")
    inputs, labels = ids.astype(np.int64, copy=True), ids.astype(np.int64, copy=True)
    special = np.isin(ids, np.fromiter(special_ids, dtype=np.int64))
    chosen = (rng.random(ids.shape) < mlm_probability) & ~special
    labels[~chosen] = IGNORE_INDEX
    # Of the chosen: 80% become <mask>; half of the remaining 20% become a random token;
    # the last 10% stay as they are (the model must still predict them).
    to_mask = chosen & (rng.random(ids.shape) < 0.8)
    to_random = chosen & ~to_mask & (rng.random(ids.shape) < 0.5)
    inputs[to_mask] = mask_token_id
    # Like transformers, the random token is drawn from the whole vocab, specials included.
    inputs[to_random] = rng.integers(0, vocab_size, size=int(to_random.sum()))
    return inputs, labels


def pack_full_sentences(documents: Sequence[Sequence[Sequence[int]]], *, max_length: int = 512,
                        bos_token_id: int = 0, eos_token_id: int = 2) -> List[List[int]]:
    """Pack tokenized sentences into blocks of at most `max_length` ids: RoBERTa's FULL-SENTENCES.

    `documents` is a list of documents, each a list of sentences, each a list of token ids
    (no special tokens). Sentences are kept whole and follow each other across document
    boundaries; a boundary inside a block gets an extra `</s>`. Each block is wrapped as
    `<s> ... </s>`. A sentence longer than a block on its own is split into block-sized pieces.

    >>> pack_full_sentences([[[10, 11], [12]], [[20, 21, 22]]], max_length=7)
    [[0, 10, 11, 12, 2], [0, 20, 21, 22, 2]]
    >>> pack_full_sentences([[[10, 11], [12]], [[20]]], max_length=8)
    [[0, 10, 11, 12, 2, 20, 2]]
    """
    room = max_length - 2  # <s> and </s> wrap every block
    if room < 1:
        raise ValueError(f"max_length must be at least 3 (<s>, one token, </s>), got {max_length}")
    blocks, current = [], []
    for d, doc in enumerate(documents):
        if d and current and current[-1] != eos_token_id:
            current.append(eos_token_id)  # the extra separator between documents
        for sentence in doc:
            for piece in _split(list(sentence), room):
                if len(current) + len(piece) > room:
                    blocks.append(current)
                    current = []
                current += piece
    blocks.append(current)
    # A separator that ends up at the edge of a block separates nothing: drop it.
    return [[bos_token_id, *_strip_trailing(b, eos_token_id), eos_token_id] for b in blocks if b]


def _split(sentence: List[int], room: int) -> List[List[int]]:
    return [sentence[i:i + room] for i in range(0, len(sentence), room)]


def _strip_trailing(block: List[int], eos_token_id: int) -> List[int]:
    return block[:-1] if block[-1:] == [eos_token_id] else block
