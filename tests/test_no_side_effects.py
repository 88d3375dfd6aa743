"""`import minirobera` and using it change nothing in the process: no environment variable, no
BLAS kernel choice, no thread count, no thread timeout (issue 13).

Each check runs in a fresh interpreter, since a process's BLAS is chosen once, when NumPy
loads it, and starts from the environment pytest found (conftest.environ_at_start), so a
change made in this process could not hide the same change made in theirs. threadpoolctl
reports what every loaded BLAS / OpenMP library runs: its kernels ("architecture"), its
version and its thread count.
"""

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("threadpoolctl")

# forwards of a small model on the Numba kernels (or their twins), BLAS's side of the few-row
# rule and the kernel's, and a tokenizer call with a long piece (the compiled merge loop):
# everything minirobera runs that could touch threads
USE = """
import numpy as np
from minirobera import RobertaConfig, RobertaForMaskedLM, bpe
config = RobertaConfig(vocab_size=300, hidden_size=32, num_attention_heads=4,
                       intermediate_size=64, num_hidden_layers=2, max_position_embeddings=140)
model = RobertaForMaskedLM(config, seed=0)
ids = np.random.default_rng(0).integers(3, 300, (4, 128))
model(input_ids=ids, attention_mask=np.ones_like(ids), output_hidden_states=True)
model(input_ids=ids)
model(input_ids=ids[:1, :8])  # a few rows: kernels.few_rows_linear on its own threads
symbols = sorted(set(bpe.BYTE_ENCODER.values()))
encoder = bpe.BytePairEncoder({s: i for i, s in enumerate(symbols)} | {"aa": 256}, [("a", "a")])
assert len(encoder.encode("a" * 3001)) == 1501  # over bpe.COMPILED_PIECE: the compiled loop
"""


def _fresh(environ: dict, imports: str, use: bool) -> dict:
    """Run `imports` (and USE) in a new interpreter; -> what changed and what BLAS reports."""
    code = textwrap.dedent(f"""
        import json, os
        from threadpoolctl import threadpool_info  # first: it sets KMP_DUPLICATE_LIB_OK itself
        env = dict(os.environ)
        {imports}
        {'exec(' + repr(USE) + ')' if use else ''}
        print(json.dumps({{"env_changed": sorted(k for k in set(env) | set(os.environ)
                                                 if env.get(k) != os.environ.get(k)),
                          "pools": threadpool_info()}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=environ)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _pools(report):  # what matters of each library: which it is, its kernels, its threads
    return sorted((p["internal_api"], p["prefix"], p["version"], p.get("architecture"),
                   p["num_threads"]) for p in report["pools"])


@pytest.fixture(scope="module")
def numpy_alone(environ_at_start):
    return _fresh(environ_at_start, "import numpy", use=False)


def test_the_issues_one_liner(environ_at_start):
    code = "import os; e=dict(os.environ); import numpy, minirobera; assert os.environ == e"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=environ_at_start)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("imports", ["import numpy, minirobera", "import minirobera, numpy"],
                         ids=["numpy-first", "minirobera-first"])
def test_import_and_use_leave_environment_and_blas_as_they_were(numpy_alone, environ_at_start,
                                                                imports):
    report = _fresh(environ_at_start, imports, use=True)
    assert report["env_changed"] == []
    # the same libraries, kernels and thread counts as a process that only imported NumPy
    assert _pools(report) == _pools(numpy_alone)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_both_kernel_backends_leave_blas_as_it_was(numpy_alone, environ_at_start, backend):
    report = _fresh({**environ_at_start, "MINIROBERA_KERNELS": backend},
                    "import numpy, minirobera", use=True)
    assert report["env_changed"] == []
    assert _pools(report) == _pools(numpy_alone)
