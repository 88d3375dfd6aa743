"""The package as a user imports it: cheap, lazy, and never pulling in the reference."""

import subprocess
import sys

import pytest

import minirobera


def test_import_never_loads_torch_transformers_or_tokenizers():
    # A fresh interpreter: this test process may have imported transformers for other tests.
    code = ("import sys, minirobera; [getattr(minirobera, n) for n in minirobera.__all__]; "
            "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_export_resolves_and_unknown_names_fail_clearly():
    for name in minirobera.__all__:
        assert getattr(minirobera, name).__doc__, f"{name} has no docstring"
    with pytest.raises(AttributeError, match="RobertaTokenizerFast"):
        minirobera.RobertaTokenizerFast
