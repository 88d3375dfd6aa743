"""minirobera: RoBERTa from scratch in NumPy, equal to Hugging Face transformers.

Where to read what (each module's docstring says what it owns and what it leaves out):

  the tokenizer
    bpe.py              byte-level BPE: the byte table, the pre-tokenizer, the merge loops
    bpe_numba.py        the long-piece merge loop compiled with Numba (speed only)
    added_tokens.py     special tokens (AddedToken): their ids, matching them whole in text
    tokenizer.py        RobertaTokenizer: text -> ids, decode, the special tokens
    batch_api.py        tokenizer(...): the template, truncation and padding of a batch
    batching.py         truncation windows, padding and BatchEncoding, as pure functions
    offsets.py          each token's span in the text (trim_offsets) and word ids
    tokenizer_files.py  what from_pretrained reads and save_pretrained writes
    sentencepiece.py    SentencePiece unigram: the .model file, the charsmap normalizer, Viterbi
    xlm_roberta.py      XLMRobertaTokenizer, CamembertTokenizer: fairseq ids over sentencepiece.py
  the model
    config.py           RobertaConfig, read from and written to config.json
    layers.py           the encoder as pure NumPy functions, with the shape legend
    kernels.py          Numba kernels, each beside its NumPy twin (MINIROBERA_KERNELS)
    fused.py            the same encoder rearranged for speed (fused q/k/v, reused buffers)
    heads.py            the task heads: masked LM, classification, QA, multiple choice
    modeling.py         thin model classes with transformers' names over (config, params)
  weights and tasks
    checkpoint.py       safetensors / pytorch_model.bin reading and the one table of key names
    limits.py           what a checkpoint reader may allocate: checked before it allocates
    fairseq.py          fairseq's model.pt + dict.txt (RoBERTa's release format), no torch
    hub.py              the Hugging Face hub download client and its cache
    pipelines.py        fill-mask and the other task pipelines
    cli.py              the `minirobera` command line
    pretraining.py      dynamic masking and FULL-SENTENCES packing (RoBERTa's data recipe)
    walkthrough.py      set-up shared by the notebooks (checkpoint choice, vocab files)
  read this first
    roberta_on_one_screen.py   the whole masked-LM forward in ~75 lines, repeated on purpose

Names are imported lazily, so `import minirobera` stays cheap and never imports
torch or transformers. Importing it changes nothing in the process: no environment
variable, no BLAS setting, no thread count (tests/test_no_side_effects.py holds that).
"""

import importlib as _importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "RobertaTokenizer": "tokenizer",
    "XLMRobertaTokenizer": "xlm_roberta",
    "CamembertTokenizer": "xlm_roberta",
    "TokenizerFileError": "tokenizer_files",
    "FairseqDictTokenizer": "fairseq",
    "RobertaConfig": "config",
    "RobertaModel": "modeling",
    "RobertaForMaskedLM": "modeling",
    "RobertaForCausalLM": "modeling",
    "RobertaForSequenceClassification": "modeling",
    "RobertaForTokenClassification": "modeling",
    "RobertaForQuestionAnswering": "modeling",
    "RobertaForMultipleChoice": "modeling",
    "CheckpointError": "limits",
    "ConfigError": "config",
    "pipeline": "pipelines",
    "fill_mask": "pipelines",
    "classify": "pipelines",
    "text_classification": "pipelines",
    "ner": "pipelines",
    "token_classification": "pipelines",
    "question_answering": "pipelines",
    "feature_extraction": "pipelines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'minirobera' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"minirobera.{_EXPORTS[name]}"), name)
    globals()[name] = value  # cache: the next lookup skips __getattr__
    return value


def __dir__():  # the public names and the loaded submodules, not this file's helpers
    return sorted({n for n in globals() if not n.startswith("_")} | set(_EXPORTS)
                  | {"__version__"})
