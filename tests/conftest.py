"""Shared test fixtures: where the real roberta-base vocab lives, and hypothesis settings."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

# The real roberta-base vocab.json / merges.txt / config.json are never copied into the repo.
# They sit in ../shared/roberta-base beside the checkout (here and in CI); elsewhere point
# MINIROBERA_ROBERTA_BASE at a folder holding them, or the tests that need them skip.
_CANDIDATES = [os.environ.get("MINIROBERA_ROBERTA_BASE"), REPO.parent / "shared" / "roberta-base"]


def find_roberta_base():
    """The folder with the real roberta-base tokenizer files, or None."""
    for cand in _CANDIDATES:
        if cand and (Path(cand) / "vocab.json").is_file() and (Path(cand) / "merges.txt").is_file():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def roberta_base_dir():
    path = find_roberta_base()
    if path is None:
        pytest.skip("real roberta-base vocab.json/merges.txt not found: put them in "
                    "../shared/roberta-base or set MINIROBERA_ROBERTA_BASE")
    return path


try:
    from hypothesis import settings

    # Example count from the environment, so CI and a long local soak differ only in a number.
    settings.register_profile(
        "minirobera", max_examples=int(os.environ.get("MINIROBERA_HYPOTHESIS_EXAMPLES", "100")),
        deadline=None)
    settings.load_profile("minirobera")
except ImportError:  # hypothesis is in the test extra; without it those tests skip themselves
    pass
