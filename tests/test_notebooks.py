"""The walkthroughs in notebooks/: all of them exist, run top to bottom, and are committed clean.

Each ends with two or three exercises, each solution a code cell that asserts its answer, so
running the notebook checks the solutions. scripts/run_notebooks.py runs them the same way
without pytest (CI: in a venv with only the `notebooks` extra).

Running: each notebook executes headless in a fresh kernel of THIS interpreter (nbclient +
ipykernel), any cell error fails the test, with

    MPLBACKEND=Agg                  plots render off-screen
    MINIROBERA_NOTEBOOK_QUICK=1     06_speed uses small shapes (full roberta-base ones otherwise),
                                    10_training a smaller model and fewer steps
    HF_HUB_OFFLINE=1                nothing is downloaded: roberta-base is used if it is already in
                                    the Hugging Face cache, else the random stand-in, built once
                                    per session in a temporary MINIROBERA_WALKTHROUGH_CACHE

A cell may take at most CELL_TIMEOUT seconds and a notebook NOTEBOOK_BUDGET seconds. Needs the
`notebooks` extra (nbclient, nbformat, ipykernel, matplotlib) and the real roberta-base
vocab.json/merges.txt; skips with the reason otherwise. The comparisons with transformers
inside the notebooks run when it is installed and print a note when it is not.

The helper the notebooks share, minirobera/walkthrough.py, is tested here too (no network:
HF_HUB_OFFLINE=1 and a fake cache in tmp_path).

Clean: every committed code cell has no outputs and no execution count, so nobody reading a
notebook on the web sees random-weight output presented as RoBERTa's. This part needs only
the standard library. (`python scripts/build_notebooks.py --clean` strips a notebook.)
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXPECTED = [
    "01_tokenizer",
    "02_embeddings_and_positions",
    "03_attention_and_the_layer",
    "04_heads_and_fill_mask",
    "05_checkpoints_and_the_hub",
    "06_speed",
    "07_the_roberta_recipe",
    "08_bpe_vs_unigram",
    "09_a_trained_model",
    "10_training",
]
CELL_TIMEOUT = 120      # seconds, per cell (nbclient)
NOTEBOOK_BUDGET = 60    # seconds, per notebook, in quick mode on 2 busy cores
KERNEL_NAME = "minirobera-notebook-test"


def test_the_notebooks_are_there():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_committed_without_outputs(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    dirty = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{name}.ipynb: code cells {dirty} carry outputs or execution counts; "
                       f"run `python scripts/build_notebooks.py --clean` before committing")
    assert "widgets" not in nb.get("metadata", {})
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "walkthrough" in "".join(first_code["source"]), \
        f"{name}.ipynb: the first code cell should set up through minirobera.walkthrough"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_ends_with_exercises_whose_solutions_check_themselves(name):
    """Two or three exercises at the end, each a markdown statement followed by its solution,
    a code cell with an `assert`: running the notebook (test_notebook_runs) checks them."""
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    cells = [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]
    start = max(i for i, (kind, src) in enumerate(cells)
                if kind == "markdown" and src.startswith("## Exercises"))
    tail = cells[start:]
    statements = [i for i, (kind, src) in enumerate(tail)
                  if kind == "markdown" and "**Exercise " in src]
    assert 2 <= len(statements) <= 3, f"{name}.ipynb: {len(statements)} exercises"
    for n, i in enumerate(statements, 1):
        assert f"**Exercise {n}:" in tail[i][1]
        kind, solution = tail[i + 1]
        assert kind == "code" and "assert " in solution, f"{name}.ipynb: exercise {n}'s solution"
    assert tail[-1][0] == "code"  # the last cell is a solution


@pytest.fixture(scope="session")
def notebook_env(tmp_path_factory):
    """Environment for the kernels, and a kernelspec that runs this very interpreter."""
    for module in ("nbclient", "nbformat", "ipykernel", "matplotlib"):
        pytest.importorskip(module, reason=f"{module} is missing: install the notebooks extra "
                                           f"(pip install -e '.[notebooks]') to run the notebooks")
    from minirobera import walkthrough

    try:
        with pytest.MonkeyPatch.context() as mp:  # as the kernels will see it: offline
            mp.setenv("HF_HUB_OFFLINE", "1")
            walkthrough.find_tokenizer_files()
    except FileNotFoundError as e:
        pytest.skip(f"the notebooks need the real roberta-base vocab: {e}")
    root = tmp_path_factory.mktemp("notebooks")
    # A kernelspec of our own, found first through JUPYTER_PATH: the kernels run this
    # interpreter, whatever "python3" means in the user's Jupyter set-up.
    spec = root / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minirobera notebook test", "language": "python"}))
    return {
        "JUPYTER_PATH": str(root / "jupyter"),
        "MPLBACKEND": "Agg",
        "MINIROBERA_NOTEBOOK_QUICK": "1",
        "HF_HUB_OFFLINE": "1",
        "MINIROBERA_WALKTHROUGH_CACHE": str(root / "walkthrough-cache"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # debugpy's warning about frozen modules
        "JUPYTER_PLATFORM_DIRS": "1",           # jupyter_core's deprecation warning
    }


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs(name, notebook_env, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    for key, value in notebook_env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})  # cwd = notebooks/
    start = time.monotonic()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        pytest.fail(f"{name}.ipynb failed:\n{e}", pytrace=False)
    elapsed = time.monotonic() - start
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []))
    assert "skipping this section" not in printed, f"{name}.ipynb skipped a section:\n{printed}"
    assert elapsed < NOTEBOOK_BUDGET, \
        f"{name}.ipynb took {elapsed:.0f} s (budget {NOTEBOOK_BUDGET} s)"


# ---------------------------------------------------------------- minirobera/walkthrough.py

@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No hub, an empty Hugging Face cache, a private walkthrough cache, no overrides."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("MINIROBERA_WALKTHROUGH_CACHE", str(tmp_path / "walkthrough"))
    monkeypatch.delenv("MINIROBERA_WALKTHROUGH_MODEL", raising=False)
    return tmp_path


def _fake_hub_cache(root, files):
    """roberta-base in the cache layout transformers writes, with placeholder files."""
    repo = root / "models--FacebookAI--roberta-base"
    commit = "e2da8e2f811d1448a5b465c236feacd80ffbac7b"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_text("{}")
    return snapshot


def test_offline_without_roberta_base_chooses_the_random_checkpoint(offline, roberta_base_dir,
                                                                    capsys):
    from minirobera import walkthrough
    from minirobera.modeling import RobertaForMaskedLM

    assert walkthrough.hub_reachable() is False  # offline: the hub is not even asked
    chosen = walkthrough.choose_checkpoint()
    assert chosen.is_random and not chosen.is_roberta_base
    assert "RANDOM WEIGHTS" in capsys.readouterr().out
    folder = Path(chosen.name)
    assert folder.parent == offline / "walkthrough"
    files = set(os.listdir(folder))
    assert {"config.json", "model.safetensors", "vocab.json", "merges.txt"} <= files
    model = RobertaForMaskedLM.from_pretrained(folder)
    assert model.config.vocab_size == 50265 and model.config.max_position_embeddings == 514
    # built once: a second call reuses the folder instead of drawing new weights
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again = walkthrough.choose_checkpoint(verbose=False)
    assert again == chosen and (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_cached_roberta_base_wins_over_the_random_one(offline, monkeypatch):
    from minirobera import walkthrough

    _fake_hub_cache(offline / "hf", ["config.json"])
    assert walkthrough.cached_roberta_base() is None  # a config without weights is not enough
    snapshot = _fake_hub_cache(offline / "hf2", ["config.json", "model.safetensors"])
    monkeypatch.setenv("HF_HUB_CACHE", str(offline / "hf2"))
    chosen = walkthrough.choose_checkpoint(verbose=False)
    assert chosen.is_roberta_base and Path(chosen.name) == snapshot


def test_the_model_can_be_forced(offline, monkeypatch):
    from minirobera import walkthrough

    monkeypatch.setenv("MINIROBERA_WALKTHROUGH_MODEL", "FacebookAI/roberta-base")
    assert walkthrough.choose_checkpoint(verbose=False).kind == "roberta-base"
    monkeypatch.setenv("MINIROBERA_WALKTHROUGH_MODEL", str(offline / "mine"))
    chosen = walkthrough.choose_checkpoint(verbose=False)
    assert chosen.kind == "custom" and chosen.name == str(offline / "mine")
    assert chosen.banner().startswith("checkpoint: ")


def test_find_tokenizer_files(offline, monkeypatch):
    from minirobera import walkthrough

    folder = offline / "vocab"
    folder.mkdir()
    monkeypatch.setattr(walkthrough, "tokenizer_candidates", lambda: [folder])
    with pytest.raises(FileNotFoundError, match="MINIROBERA_ROBERTA_BASE"):
        walkthrough.find_tokenizer_files()
    snapshot = _fake_hub_cache(offline / "hf", ["vocab.json", "merges.txt"])
    assert walkthrough.find_tokenizer_files() == str(snapshot)  # from the Hugging Face cache
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_text("{}")
    assert walkthrough.find_tokenizer_files() == str(folder)    # a local folder comes first


def test_tokenizer_candidates_honour_the_environment(monkeypatch, tmp_path):
    from minirobera import walkthrough

    monkeypatch.setenv("MINIROBERA_ROBERTA_BASE", str(tmp_path))
    candidates = walkthrough.tokenizer_candidates()
    assert candidates[0] == tmp_path and candidates[-1] == REPO.parent / "shared" / "roberta-base"


def test_random_checkpoint_refuses_a_folder_with_other_files(tmp_path):
    from minirobera import walkthrough

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        walkthrough.random_checkpoint(tmp_path, tokenizer_dir=None, vocab_size=50,
                                      hidden_size=8, num_attention_heads=2,
                                      intermediate_size=8, num_hidden_layers=1)
    assert os.listdir(tmp_path) == ["notes.txt"]  # nothing left behind
