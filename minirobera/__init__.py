"""minirobera: RoBERTa from scratch in NumPy, equal to Hugging Face transformers.

Where to read what (each module's docstring says what it owns and what it leaves out):

    tokenizer.py   byte-level BPE and RobertaTokenizer (ids, masks, offsets, decode)
    config.py      RobertaConfig, read from and written to config.json
    layers.py      the encoder as pure NumPy functions, with the shape legend
    kernels.py     Numba kernels, each beside its NumPy twin (MINIROBERA_KERNELS)
    heads.py       the task heads: masked LM, classification, QA, multiple choice
    modeling.py    thin model classes with transformers' names over (config, params)
    checkpoint.py  safetensors / pytorch_model.bin reading and the one table of key names
    hub.py         the Hugging Face hub download client and its cache
    pipelines.py   fill-mask and the other task pipelines
    cli.py         the `minirobera` command line
    pretraining.py dynamic masking and FULL-SENTENCES packing (RoBERTa's data recipe)
    walkthrough.py set-up shared by the notebooks (checkpoint choice, vocab files)
    blas.py        which OpenBLAS kernels NumPy runs, how soon its idle threads sleep

Names are imported lazily, so `import minirobera` stays cheap and never imports
torch or transformers.
"""

from importlib import import_module

from minirobera import blas as _blas

# First, before anything imports NumPy: on AMD Zen 4, NumPy's OpenBLAS runs faster with its
# AVX2 kernels than with the AVX-512 ones it picks itself (only settable before NumPy loads
# it), and on every CPU its idle threads should sleep soon, not spin for 0.1 s (see blas.py).
_blas.configure()

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "RobertaTokenizer": "tokenizer",
    "RobertaConfig": "config",
    "RobertaModel": "modeling",
    "RobertaForMaskedLM": "modeling",
    "RobertaForCausalLM": "modeling",
    "RobertaForSequenceClassification": "modeling",
    "RobertaForTokenClassification": "modeling",
    "RobertaForQuestionAnswering": "modeling",
    "RobertaForMultipleChoice": "modeling",
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
    value = getattr(import_module(f"minirobera.{_EXPORTS[name]}"), name)
    globals()[name] = value  # cache: the next lookup skips __getattr__
    return value


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
