"""Run the walkthroughs in notebooks/ headless, as tests/test_notebooks.py does, without pytest.

    python scripts/run_notebooks.py              # all eight
    python scripts/run_notebooks.py 01 05        # the ones whose names start so

Needs only the `notebooks` extra (pip install -e ".[notebooks]"): CI runs this script in a
venv with nothing else installed, so a notebook that comes to need more fails there. Each
notebook runs top to bottom in a fresh kernel of this interpreter, with the environment the
test sets: plots off-screen (MPLBACKEND=Agg), small shapes in 06 (MINIROBERA_NOTEBOOK_QUICK=1),
nothing downloaded (HF_HUB_OFFLINE=1: roberta-base if it is cached, else the random stand-in,
built once in a temporary folder). A failing cell (every exercise's solution asserts its
answer) or a section that prints "skipping this section" fails the run: exit status 1.
The notebooks need the real roberta-base vocab.json and merges.txt (see walkthrough.py).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT = 120  # seconds
KERNEL_NAME = "minirobera-notebooks"


def run(path: Path, kernel_name: str) -> str | None:
    """Execute one notebook; None when it ran clean, else what went wrong."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        return str(e)
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []))
    if "skipping this section" in printed:
        return f"a section was skipped:\n{printed}"
    return None


def main(argv: list[str]) -> int:
    chosen = [p for p in sorted(NOTEBOOKS.glob("*.ipynb"))
              if not argv or any(p.name.startswith(a) for a in argv)]
    if not chosen:
        print(f"no notebook in {NOTEBOOKS} matches {argv}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        # a kernelspec that runs this very interpreter, found first through JUPYTER_PATH
        spec = Path(tmp) / "jupyter" / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "minirobera notebooks", "language": "python"}))
        os.environ.update({
            "JUPYTER_PATH": str(Path(tmp) / "jupyter"), "MPLBACKEND": "Agg",
            "MINIROBERA_NOTEBOOK_QUICK": "1", "HF_HUB_OFFLINE": "1",
            "MINIROBERA_WALKTHROUGH_CACHE": str(Path(tmp) / "walkthrough-cache"),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PLATFORM_DIRS": "1"})
        failed = []
        for path in chosen:
            start = time.monotonic()
            problem = run(path, KERNEL_NAME)
            status = "ok" if problem is None else "FAILED"
            print(f"{path.name:40} {status:6} {time.monotonic() - start:5.1f} s", flush=True)
            if problem is not None:
                print(problem, file=sys.stderr)
                failed.append(path.name)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
