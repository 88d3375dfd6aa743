"""Keep the notebooks in notebooks/ committable: no outputs, no execution counts.

    python scripts/build_notebooks.py --clean            # strip every notebooks/*.ipynb in place
    python scripts/build_notebooks.py --check            # exit 1 if any notebook has outputs
    python scripts/build_notebooks.py SRC.py -o NB.ipynb # a percent-format script -> notebook

Why: a notebook run on a machine without roberta-base runs on RANDOM weights, and its saved
outputs would show nonsense as if it were RoBERTa's answer to anyone reading it on the web.
So notebooks are committed without outputs; tests/test_notebooks.py checks that, and runs
each one top to bottom.

The percent format (as jupytext writes it; used to write the first versions): a line
`# %% [markdown]` starts a markdown cell, whose lines are commented out with `# `; a line
`# %%` starts a code cell, taken verbatim up to the next marker. Needs nbformat.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3"}


def parse_percent(text: str) -> list:
    """[(kind, source)] from percent-format text; kind is 'markdown' or 'code'."""
    cells, kind, lines = [], None, []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("# %%", "# %% [markdown]"):
            if kind is not None:
                cells.append((kind, "\n".join(lines).strip("\n")))
            kind, lines = ("markdown" if stripped.endswith("[markdown]") else "code"), []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append((kind, "\n".join(lines).strip("\n")))
    return [(k, s) for k, s in cells if s.strip()]


def build(src: Path, out: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [new_markdown_cell(s) if k == "markdown" else new_code_cell(s)
             for k, s in parse_percent(src.read_text(encoding="utf-8"))]
    for i, cell in enumerate(cells):  # stable ids: rebuilding gives the same file
        cell["id"] = f"{out.stem[:2]}-{i:03d}"
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": KERNELSPEC,
        "language_info": dict(LANGUAGE_INFO)})
    nbformat.validate(nb)
    out.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def strip(path: Path) -> bool:
    """Remove outputs, execution counts and run-specific metadata in place; True if changed."""
    before = path.read_text(encoding="utf-8")
    nb = json.loads(before)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    nb.setdefault("metadata", {})["language_info"] = dict(LANGUAGE_INFO)  # no Python version
    after = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


def dirty(path: Path) -> list:
    """The indices of code cells that carry outputs or an execution count."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
            and (c.get("outputs") or c.get("execution_count") is not None)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", nargs="?", type=Path, help="percent-format script to convert")
    parser.add_argument("-o", "--out", type=Path, help="the notebook to write")
    parser.add_argument("--clean", action="store_true", help="strip outputs of notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="fail if a notebook has outputs")
    args = parser.parse_args(argv)
    if args.src:
        if not args.out:
            parser.error("give -o NOTEBOOK.ipynb with a source script")
        build(args.src, args.out)
        return 0
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.clean:
        for path in paths:
            if strip(path):
                print(f"stripped {path.relative_to(REPO)}")
        return 0
    if args.check:
        bad = {p.name: dirty(p) for p in paths if dirty(p)}
        for name, cells in bad.items():
            print(f"{name}: code cells {cells} have outputs; "
                  f"run scripts/build_notebooks.py --clean")
        return 1 if bad else 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
