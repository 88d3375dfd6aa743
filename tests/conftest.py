"""Shared test fixtures: the real roberta-base tokenizer files, the hub probe, hypothesis settings."""

import functools
import os
import sys
from pathlib import Path

import pytest

# The environment as pytest found it, before anything imported minirobera: the fresh
# interpreters of tests/test_no_side_effects.py start from it, so that a change made by an
# import in this process could not hide the same change made in theirs.
ENVIRON_AT_START = dict(os.environ)


@pytest.fixture(scope="session")
def environ_at_start():
    return dict(ENVIRON_AT_START)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # plain helpers beside the tests: tiny_models, hub_server
FIXTURES = REPO / "tests" / "fixtures"
ROBERTA_BASE = "FacebookAI/roberta-base"

# The real roberta-base vocab.json / merges.txt / config.json are never copied into the repo.
# They sit in ../shared/roberta-base beside the checkout (here and in CI); elsewhere point
# MINIROBERA_ROBERTA_BASE at a folder holding them, or they are fetched from the hub (into the
# usual Hugging Face cache) when it is reachable, or the tests that need them skip.
_CANDIDATES = [os.environ.get("MINIROBERA_ROBERTA_BASE"), REPO.parent / "shared" / "roberta-base"]
_TOKENIZER_FILES = ("vocab.json", "merges.txt", "config.json")


@functools.lru_cache(maxsize=None)
def hub_reachable() -> bool:
    """True when the real Hugging Face hub answers (MINIROBERA_NETWORK_TESTS=0 forces False)."""
    if os.environ.get("MINIROBERA_NETWORK_TESTS") == "0" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    import requests

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        requests.head(f"{endpoint}/{ROBERTA_BASE}/resolve/main/config.json", timeout=5)
    except requests.RequestException:
        return False
    return True


@functools.lru_cache(maxsize=None)
def find_roberta_base():
    """The folder with the real roberta-base tokenizer files, or None."""
    for cand in _CANDIDATES:
        if cand and all((Path(cand) / name).is_file() for name in _TOKENIZER_FILES[:2]):
            return Path(cand)
    if hub_reachable():
        from minirobera.hub import cached_file

        paths = [cached_file(ROBERTA_BASE, name) for name in _TOKENIZER_FILES]
        return Path(paths[0]).parent
    return None


@pytest.fixture(scope="session")
def roberta_base_dir():
    path = find_roberta_base()
    if path is None:
        pytest.skip("real roberta-base vocab.json/merges.txt not found: put them in "
                    "../shared/roberta-base, set MINIROBERA_ROBERTA_BASE, or allow the hub")
    return path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, roberta_base_dir):
    """tiny("ner") -> the folder (a str) of that tiny seeded checkpoint, built once per session.

    The presets live in tests/tiny_models.py; their weights come from a seed, so no weight
    files are committed.
    """
    from tiny_models import build_preset

    root = tmp_path_factory.mktemp("tiny_models")

    def get(name):
        path = root / name
        if not path.exists():
            build_preset(name, path, roberta_base_dir)
        return str(path)

    return get


def pytest_collection_modifyitems(config, items):
    """Tests marked `network` need the real hub: skip them, with the reason, where it is down."""
    network = [item for item in items if item.get_closest_marker("network")]
    if network and not hub_reachable():
        skip = pytest.mark.skip(reason="the Hugging Face hub is not reachable from here")
        for item in network:
            item.add_marker(skip)


try:
    from hypothesis import settings

    # Example count from the environment, so CI and a long local soak differ only in a number.
    settings.register_profile(
        "minirobera", max_examples=int(os.environ.get("MINIROBERA_HYPOTHESIS_EXAMPLES", "100")),
        deadline=None)
    settings.load_profile("minirobera")
except ImportError:  # hypothesis is in the test extra; without it those tests skip themselves
    pass
