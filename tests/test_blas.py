"""minirobera/blas.py: which OpenBLAS kernels NumPy gets, decided at `import minirobera`.

The rule is a pure function of /proc/cpuinfo's text; what `import minirobera` does with it
depends on import order and the environment, so those checks run in fresh interpreters.
"""

import importlib
import json
import os
import platform
import subprocess
import sys

import pytest

from minirobera import blas

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
flags\t\t: fpu sse2 avx avx2 fma avx512f
"""


@pytest.mark.parametrize("cpuinfo, want", [
    (ZEN4, "Zen"),
    (ZEN4.replace(" avx512f", ""), None),                      # Zen 3: no AVX-512
    (ZEN4.replace(": 25", ": 26"), None),                      # Zen 5: full-width AVX-512
    (ZEN4.replace("AuthenticAMD", "GenuineIntel").replace(": 25", ": 6"), None),
    ("", None),                                                # not Linux
    ("processor\t: 0\nvendor_id\t: AuthenticAMD\n\nprocessor\t: 1\ncpu family\t: 25\n"
     "flags\t\t: avx512f\n", None),                            # only the first block counts
])
def test_coretype_rule(cpuinfo, want):
    assert blas.openblas_coretype(cpuinfo) == want


def test_configure_sets_zen_on_zen4_before_numpy(monkeypatch):
    # in process, with the CPU and the import order faked: runs on every machine
    monkeypatch.setattr(blas, "_read_cpuinfo", lambda: ZEN4)
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    monkeypatch.delenv(blas.ENV, raising=False)
    monkeypatch.delenv(blas.SWITCH, raising=False)
    assert blas.configure().startswith(f"set {blas.ENV}=Zen")
    assert os.environ[blas.ENV] == "Zen"  # monkeypatch restores the environment afterwards


@pytest.mark.parametrize("numpy_loaded, preset, switch, want_value, want_decision", [
    (True, None, None, None, "NumPy was imported first"),
    (False, "SkylakeX", None, "SkylakeX", f"left {blas.ENV}=SkylakeX"),
    (False, None, "openblas", None, "OpenBLAS's own choice (MINIROBERA_BLAS=openblas)"),
    (False, None, " AUTO ", "Zen", f"set {blas.ENV}=Zen"),
])
def test_configure_leaves_choices_already_made(monkeypatch, numpy_loaded, preset, switch,
                                                want_value, want_decision):
    monkeypatch.setattr(blas, "_read_cpuinfo", lambda: ZEN4)
    if numpy_loaded:
        monkeypatch.setitem(sys.modules, "numpy", importlib.import_module("numpy"))
    else:
        monkeypatch.delitem(sys.modules, "numpy", raising=False)
    for var, value in ((blas.ENV, preset), (blas.SWITCH, switch)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    assert blas.configure().startswith(want_decision)
    assert os.environ.get(blas.ENV) == want_value


def test_configure_rejects_an_unknown_switch(monkeypatch):
    monkeypatch.setenv(blas.SWITCH, "mkl")
    with pytest.raises(ValueError, match=r"MINIROBERA_BLAS must be 'auto' or 'openblas', "
                                         r"got 'mkl'"):
        blas.configure()


def _fresh(code, **env):
    """Run `code` in a new interpreter with OPENBLAS_CORETYPE and MINIROBERA_BLAS unset unless
    given in env; it prints JSON of the variable, blas.decision and the kernels OpenBLAS
    reports."""
    clean = {k: v for k, v in os.environ.items() if k not in (blas.ENV, blas.SWITCH)}
    clean.update(env)
    code += ("\nimport json, os\nfrom minirobera import blas\n"
             "print(json.dumps([os.environ.get(blas.ENV), blas.decision, "
             "blas.openblas_corename()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=clean, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _reads_coretype():  # only a DYNAMIC_ARCH OpenBLAS looks at OPENBLAS_CORETYPE
    return "DYNAMIC_ARCH" in (blas.openblas_config() or "")


def test_import_first_sets_this_cpus_choice():
    value, decision, corename = _fresh("import minirobera, numpy")
    want = blas.coretype_for_this_cpu()
    assert value == want
    if want is None:
        assert "own choice" in decision
    else:
        assert decision.startswith(f"set {blas.ENV}={want}")
        if _reads_coretype():  # NumPy's wheel runs its Haswell code for "Zen"; others say Zen
            assert corename in ("Haswell", "Zen")


def test_numpy_first_sets_nothing():
    value, decision, _ = _fresh("import numpy, minirobera")
    assert value is None
    assert decision.startswith("NumPy was imported first")


def test_the_switch_keeps_openblas_own_choice():
    value, decision, corename = _fresh("import minirobera, numpy", MINIROBERA_BLAS="openblas")
    assert value is None
    assert decision == "OpenBLAS's own choice (MINIROBERA_BLAS=openblas)"
    assert corename == _fresh("import numpy, minirobera")[2]  # what OpenBLAS picks itself


@pytest.mark.skipif(platform.machine() != "x86_64", reason="Sandybridge is an x86-64 kernel set")
def test_a_choice_already_made_is_kept():
    value, decision, corename = _fresh("import minirobera, numpy",
                                       OPENBLAS_CORETYPE="Sandybridge")
    assert value == "Sandybridge"
    assert decision.startswith(f"left {blas.ENV}=Sandybridge")
    if _reads_coretype():
        assert corename == "Sandybridge"
