"""Set-up shared by the notebooks in notebooks/: which checkpoint to run, which vocab to use.

Owns three decisions every walkthrough makes in its first cell, so that all eight make them
the same way and say so plainly:

    choose_checkpoint()      roberta-base when it is in the Hugging Face cache or the hub
                             answers within a few seconds; otherwise a small checkpoint with
                             RANDOM weights (built once, saved, reused), announced by a
                             banner that says its numbers mean nothing
    find_tokenizer_files()   the folder holding the real roberta-base vocab.json and
                             merges.txt: $MINIROBERA_ROBERTA_BASE, ../shared/roberta-base
                             beside the repository, the Hugging Face cache, or the hub
    quick_mode()             True when MINIROBERA_NOTEBOOK_QUICK=1 (the notebook test sets
                             it): notebooks then use small shapes where time matters
    find_sapiens()           Sapiens' fairseq checkpoints (a trained RoBERTa, MIT license):
                             $MINIROBERA_SAPIENS, ../shared/sapiens, the cache, else
                             `pip download sapiens==1.0.5`

The random checkpoint has the real vocabulary size (50,265) and position table (514 rows), so
the real tokenizer drives it and every cell runs; only its width and depth are small.

Environment, read at call time:

    MINIROBERA_WALKTHROUGH_MODEL   "random" forces the random checkpoint; any other value is
                                   a folder or hub repo id used as it is
    MINIROBERA_WALKTHROUGH_CACHE   where the random checkpoint is saved (default
                                   $XDG_CACHE_HOME/minirobera/walkthrough, i.e.
                                   ~/.cache/minirobera/walkthrough)
    MINIROBERA_ROBERTA_BASE        a folder with the real vocab.json and merges.txt
    HF_HUB_OFFLINE=1               never ask the hub (cache and local folders only)

Leaves out: teaching code. Everything a notebook explains runs through the package's own
modules; this file only decides which files they read. Plotting (matplotlib) is imported by
the notebooks themselves, never here.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     folder = random_checkpoint(os.path.join(tmp, "tiny"), tokenizer_dir=None, vocab_size=100,
...                                hidden_size=8, num_attention_heads=2, intermediate_size=16,
...                                num_hidden_layers=1)
...     sorted(os.listdir(folder))
['config.json', 'model.safetensors']
>>> print(Checkpoint("/tmp/x", "random", "no roberta-base here").banner().splitlines()[0])
!!! RANDOM WEIGHTS !!!  no roberta-base here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from . import hub

ROBERTA_BASE = "FacebookAI/roberta-base"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # either one makes roberta-base usable
TOKENIZER_FILES = ("vocab.json", "merges.txt")
HUB_TIMEOUT_SECONDS = 3.0

# The random stand-in: roberta-base's vocabulary, positions and quirks; small width and depth.
# initializer_range is 0.1, not roberta-base's 0.02, so random attention is not near uniform
# and the plots have something to show (the values are still meaningless).
RANDOM_CONFIG = dict(vocab_size=50265, hidden_size=64, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=256, max_position_embeddings=514,
                     type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
                     eos_token_id=2, hidden_act="gelu", initializer_range=0.1)

_RANDOM_WARNING = """\
!!! RANDOM WEIGHTS !!!  {reason}.
This notebook runs a small checkpoint with RANDOM weights instead: {path}
Every cell still runs, and every check against transformers still compares the two
implementations on the same weights, but the model's answers (predicted words, scores,
attention patterns) are MEANINGLESS. With roberta-base in your Hugging Face cache (or the hub
reachable), rerun to see RoBERTa's real numbers. A real trained RoBERTa that needs no hub:
notebook 09_a_trained_model (Sapiens, from PyPI)."""


@dataclass(frozen=True)
class Checkpoint:
    """The model a notebook runs: `name` goes to any `from_pretrained`."""

    name: str        # a local folder or a hub repo id
    kind: str        # "roberta-base", "random" (the numbers mean nothing) or "custom"
    reason: str      # why this one was chosen, in one sentence

    @property
    def is_random(self) -> bool:
        """True for the random stand-in: its predictions and scores mean nothing."""
        return self.kind == "random"

    @property
    def is_roberta_base(self) -> bool:
        """True when the weights are roberta-base's, so its published outputs can be checked."""
        return self.kind == "roberta-base"

    def banner(self) -> str:
        """What the first cell prints: the choice, and a loud warning when it is random."""
        if self.is_random:
            return _RANDOM_WARNING.format(reason=self.reason, path=self.name)
        return f"checkpoint: {self.name} ({self.reason})"


# ---------------------------------------------------------------------------- the checkpoint

def choose_checkpoint(*, timeout: float = HUB_TIMEOUT_SECONDS, verbose: bool = True) -> Checkpoint:
    """roberta-base if it is cached or the hub answers within `timeout`, else a random stand-in.

    The random one is built on first use (it needs the real vocab, see find_tokenizer_files)
    and saved under $MINIROBERA_WALKTHROUGH_CACHE. Prints the banner unless `verbose=False`.
    """
    forced = os.environ.get("MINIROBERA_WALKTHROUGH_MODEL", "").strip()
    cached = None if forced else cached_roberta_base()
    if forced and forced.lower() != "random":
        kind = "roberta-base" if forced in (ROBERTA_BASE, "roberta-base") else "custom"
        chosen = Checkpoint(forced, kind, "set by MINIROBERA_WALKTHROUGH_MODEL")
    elif cached is not None:
        chosen = Checkpoint(cached, "roberta-base", "roberta-base, found in the Hugging Face cache")
    elif not forced and hub_reachable(timeout):
        chosen = Checkpoint(ROBERTA_BASE, "roberta-base", "the hub is reachable; the first load "
                            "downloads 499 MB into the Hugging Face cache")
    else:
        why = ("MINIROBERA_WALKTHROUGH_MODEL=random asks for it" if forced else
               "roberta-base is not in the Hugging Face cache and the hub cannot be reached")
        chosen = Checkpoint(random_checkpoint(), "random", why)
    if verbose:
        print(chosen.banner())
    return chosen


def cached_roberta_base() -> Optional[str]:
    """The snapshot folder of roberta-base in the Hugging Face cache, if its weights are there.

    Never touches the network.
    """
    for repo_id in (ROBERTA_BASE, "roberta-base"):  # the old name has its own cache folder
        try:
            config = hub.cached_file(repo_id, "config.json", local_files_only=True)
        except (OSError, ValueError):
            continue
        folder = os.path.dirname(config)
        if any(os.path.isfile(os.path.join(folder, f)) for f in WEIGHT_FILES):
            return folder
    return None


def hub_reachable(timeout: float = HUB_TIMEOUT_SECONDS) -> bool:
    """True when the hub answers a HEAD for roberta-base's config.json within `timeout` seconds.

    False at once when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set.
    """
    if hub.is_offline():
        return False
    import requests

    try:
        answer = requests.head(hub.hub_url(ROBERTA_BASE, "config.json"), timeout=timeout,
                               allow_redirects=False)
    except requests.RequestException:
        return False
    return answer.status_code < 400 and "X-Repo-Commit" in answer.headers


def random_checkpoint(folder: Union[str, os.PathLike, None] = None, *, seed: int = 0,
                      tokenizer_dir: Union[str, os.PathLike, None, bool] = True,
                      **config_overrides) -> str:
    """Build (once) and save a RobertaForMaskedLM with random weights; return its folder.

    The folder holds config.json and model.safetensors, which transformers loads too, and the
    real tokenizer files when `tokenizer_dir` finds them (True: find_tokenizer_files();
    None/False: no tokenizer), so `pipeline("fill-mask", model=folder)` works on its own.
    Without `folder`, it goes under $MINIROBERA_WALKTHROUGH_CACHE in a subfolder named after
    the config and seed, and a second call reuses it.
    """
    settings = {**RANDOM_CONFIG, **config_overrides}
    if tokenizer_dir is True:
        tokenizer_dir = find_tokenizer_files()
    if folder is None:
        key = json.dumps({"config": settings, "seed": seed, "tokenizer": bool(tokenizer_dir)},
                         sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        folder = walkthrough_cache_dir() / f"random-roberta-{digest}"
    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        return str(folder)
    if folder.is_dir() and any(folder.iterdir()):
        raise ValueError(f"{folder} exists and is not empty; give an empty or new folder for the "
                         f"random checkpoint")
    _build_random(folder, settings, seed, tokenizer_dir)
    return str(folder)


def _build_random(folder: Path, settings: dict, seed: int, tokenizer_dir) -> None:
    """Write the checkpoint into a temporary sibling folder, then rename it into place, so a
    half-written folder is never picked up (and two processes building at once both succeed)."""
    from .config import RobertaConfig
    from .modeling import RobertaForMaskedLM

    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        RobertaForMaskedLM(RobertaConfig(**settings), seed=seed).save_pretrained(tmp)
        if tokenizer_dir:
            from .tokenizer import RobertaTokenizer
            RobertaTokenizer.from_pretrained(os.fspath(tokenizer_dir)).save_pretrained(tmp)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # an empty folder given by the caller: replace it
        try:
            os.replace(tmp, folder)
        except OSError:  # another process renamed its copy into place first
            if not (folder / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def walkthrough_cache_dir() -> Path:
    """Where random checkpoints are kept: $MINIROBERA_WALKTHROUGH_CACHE, else
    $XDG_CACHE_HOME/minirobera/walkthrough (default ~/.cache/minirobera/walkthrough)."""
    explicit = os.environ.get("MINIROBERA_WALKTHROUGH_CACHE")
    if explicit:
        return Path(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(os.path.expanduser(base)) / "minirobera" / "walkthrough"


# ----------------------------------------------------------------------------- the tokenizer

def tokenizer_candidates() -> list:
    """Local folders searched for the real vocab, in order: $MINIROBERA_ROBERTA_BASE, then
    ../shared/roberta-base beside the repository (where this project's CI keeps them)."""
    repo = Path(__file__).resolve().parents[1]
    env = os.environ.get("MINIROBERA_ROBERTA_BASE")
    return ([Path(env)] if env else []) + [repo.parent / "shared" / "roberta-base"]


def find_tokenizer_files(*, timeout: float = HUB_TIMEOUT_SECONDS) -> str:
    """The folder with roberta-base's real vocab.json and merges.txt.

    Looks in tokenizer_candidates(), then the Hugging Face cache, then asks the hub (two small
    files, 1.4 MB, into the cache). Raises FileNotFoundError saying where it looked.
    """
    for folder in tokenizer_candidates():
        if all((folder / name).is_file() for name in TOKENIZER_FILES):
            return str(folder)
    for local_only in (True, False):
        if not local_only and not hub_reachable(timeout):
            break
        try:
            paths = [hub.cached_file(ROBERTA_BASE, name, local_files_only=local_only, quiet=True)
                     for name in TOKENIZER_FILES]
        except (OSError, ValueError):
            continue
        if os.path.dirname(paths[0]) == os.path.dirname(paths[1]):
            return os.path.dirname(paths[0])
    looked = ", ".join(str(p) for p in tokenizer_candidates())
    raise FileNotFoundError(
        f"cannot find roberta-base's vocab.json and merges.txt: looked in {looked}, in the "
        f"Hugging Face cache at {hub.hub_cache_dir()}, and the hub was not reachable. Set "
        f"MINIROBERA_ROBERTA_BASE to a folder holding both files, or go online once.")


def quick_mode() -> bool:
    """True when MINIROBERA_NOTEBOOK_QUICK is 1/true/yes: notebooks shrink their slow parts.

    >>> saved = os.environ.pop("MINIROBERA_NOTEBOOK_QUICK", None)
    >>> quick_mode()
    False
    >>> os.environ["MINIROBERA_NOTEBOOK_QUICK"] = "1"
    >>> quick_mode()
    True
    >>> _ = os.environ.pop("MINIROBERA_NOTEBOOK_QUICK")
    >>> if saved is not None: os.environ["MINIROBERA_NOTEBOOK_QUICK"] = saved
    """
    value = os.environ.get("MINIROBERA_NOTEBOOK_QUICK", "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


# ----------------------------------------------------------------------------- Sapiens

SAPIENS_VERSION = "1.0.5"
SAPIENS_FILES = ("checkpoint_vh.pt", "checkpoint_vl.pt", "dict.txt")


def sapiens_candidates() -> list:
    """Folders searched for Sapiens' checkpoints: $MINIROBERA_SAPIENS, ../shared/sapiens
    beside the repository (where this project's CI keeps them), then the download cache."""
    repo = Path(__file__).resolve().parents[1]
    env = os.environ.get("MINIROBERA_SAPIENS")
    base = Path(os.path.expanduser(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")))
    return (([Path(env)] if env else []) + [repo.parent / "shared" / "sapiens",
                                            base / "minirobera" / f"sapiens-{SAPIENS_VERSION}"])


def find_sapiens(*, download: bool = True) -> Path:
    """The folder holding Sapiens' checkpoint_vh.pt, checkpoint_vl.pt and dict.txt.

    Sapiens (Merck, MIT license) is a fairseq RoBERTa trained on human antibody chains; its
    wheel on PyPI carries the weights. Not found locally and `download` set, the wheel is
    fetched with `pip download sapiens==1.0.5 --no-deps` (7 MB; PyPI, not the Hugging Face hub)
    and its models and LICENSE are unpacked into the last of sapiens_candidates().
    """
    import subprocess
    import sys
    import tempfile
    import zipfile

    for folder in sapiens_candidates():
        if all((folder / name).is_file() for name in SAPIENS_FILES):
            return folder
    cache = sapiens_candidates()[-1]
    if not download:
        raise FileNotFoundError(f"Sapiens not found in {[str(c) for c in sapiens_candidates()]}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", f"sapiens=={SAPIENS_VERSION}",
                        "--no-deps", "--quiet", "-d", tmp], check=True, timeout=600)
        wheel = next(Path(tmp).glob("sapiens-*.whl"))
        staging = Path(tmp) / "unpacked"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as z:  # the models and the MIT notice, nothing else
            for name in z.namelist():
                base = os.path.basename(name)
                if (name.startswith("sapiens/models/v1/") and base in SAPIENS_FILES) or \
                        name.endswith(".dist-info/LICENSE"):
                    (staging / base).write_bytes(z.read(name))
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
        shutil.move(str(staging), str(cache))  # whole, or not at all
    return cache
