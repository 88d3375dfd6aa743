"""minirobera/blas.py: which OpenBLAS kernels NumPy gets, and how soon its idle threads sleep,
decided at `import minirobera`.

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


@pytest.fixture(autouse=True)
def _keep_this_process_decision():
    # the in-process configure() calls below overwrite what `import minirobera` recorded, and
    # layers.layer_parts reads it (blas.idle_threads_nap): put it back for the other tests
    saved = blas.decision, blas._naps, blas.applied
    yield
    blas.decision, blas._naps, blas.applied = saved

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
    for var in (blas.ENV, blas.TIMEOUT_ENV, blas.SWITCH):
        monkeypatch.delenv(var, raising=False)
    assert blas.configure() == (
        f"set {blas.ENV}=Zen (AMD Zen 4: AVX2 kernels beat OpenBLAS's AVX-512 ones); "
        f"set {blas.TIMEOUT_ENV}=22 (idle OpenBLAS threads sleep after 1-2 ms)")
    assert os.environ[blas.ENV] == "Zen"  # monkeypatch restores the environment afterwards
    assert os.environ[blas.TIMEOUT_ENV] == "22"
    assert blas.applied == {blas.ENV: "Zen", blas.TIMEOUT_ENV: "22"}
    assert blas.idle_threads_nap()


@pytest.mark.parametrize("numpy_loaded, cpu, preset, timeout, switch, want_value, want_timeout, "
                         "naps, want_decision", [
    (True, ZEN4, None, None, None, None, "22", True,  # the timeout, re-read (faked here)
     f"NumPy was imported first: OpenBLAS had already chosen its kernels; set "
     f"{blas.TIMEOUT_ENV}=22 (idle OpenBLAS threads sleep after 1-2 ms), then had OpenBLAS "
     f"re-read it"),
    (True, ZEN4, None, "20", None, None, "20", True, "NumPy was imported first"),
    (False, ZEN4, "SkylakeX", None, None, "SkylakeX", "22", True,
     f"left {blas.ENV}=SkylakeX as found in the environment; set {blas.TIMEOUT_ENV}=22"),
    (False, ZEN4, None, "28", None, "Zen", "28", False,
     f"set {blas.ENV}=Zen (AMD Zen 4: AVX2 kernels beat OpenBLAS's AVX-512 ones); "
     f"left {blas.TIMEOUT_ENV}=28 as found"),
    (False, ZEN4, None, None, "openblas", None, None, False,
     "OpenBLAS's own choices (MINIROBERA_BLAS=openblas)"),
    (False, ZEN4, None, None, " AUTO ", "Zen", "22", True, f"set {blas.ENV}=Zen"),
    (False, "", None, None, None, None, "22", True,
     f"OpenBLAS's own kernels (not a Zen 4 CPU); set {blas.TIMEOUT_ENV}=22"),
])
def test_configure_leaves_choices_already_made(monkeypatch, numpy_loaded, cpu, preset, timeout,
                                                switch, want_value, want_timeout, naps,
                                                want_decision):
    monkeypatch.setattr(blas, "_read_cpuinfo", lambda: cpu)
    monkeypatch.setattr(blas, "_reread_timeout", lambda: True)  # the real one: in a fresh process
    if numpy_loaded:
        monkeypatch.setitem(sys.modules, "numpy", importlib.import_module("numpy"))
    else:
        monkeypatch.delitem(sys.modules, "numpy", raising=False)
    for var, value in ((blas.ENV, preset), (blas.TIMEOUT_ENV, timeout), (blas.SWITCH, switch)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    assert blas.configure().startswith(want_decision)
    assert os.environ.get(blas.ENV) == want_value
    assert os.environ.get(blas.TIMEOUT_ENV) == want_timeout
    assert blas.idle_threads_nap() is naps  # a timeout found in the environment counts


def test_numpy_first_and_an_openblas_that_cannot_reread_keeps_spinning(monkeypatch):
    monkeypatch.setattr(blas, "_reread_timeout", lambda: False)
    monkeypatch.setitem(sys.modules, "numpy", importlib.import_module("numpy"))
    for var in (blas.ENV, blas.TIMEOUT_ENV, blas.SWITCH):
        monkeypatch.delenv(var, raising=False)
    assert blas.configure() == (
        "NumPy was imported first: OpenBLAS had already chosen its kernels, and its idle "
        f"threads spin ~0.1 s (this OpenBLAS cannot re-read {blas.TIMEOUT_ENV} once loaded)")
    assert blas.TIMEOUT_ENV not in os.environ  # nothing left behind for child processes
    assert blas.applied == {}
    assert not blas.idle_threads_nap()  # so no layer split


def test_configure_rejects_an_unknown_switch(monkeypatch):
    monkeypatch.setenv(blas.SWITCH, "mkl")
    with pytest.raises(ValueError, match=r"MINIROBERA_BLAS must be 'auto' or 'openblas', "
                                         r"got 'mkl'"):
        blas.configure()


def _fresh(code, **env):
    """Run `code` in a new interpreter with OPENBLAS_CORETYPE, OPENBLAS_THREAD_TIMEOUT and
    MINIROBERA_BLAS unset unless given in env; it prints JSON of the two variables,
    blas.decision, the kernels OpenBLAS reports and blas.idle_threads_nap()."""
    clean = {k: v for k, v in os.environ.items()
             if k not in (blas.ENV, blas.TIMEOUT_ENV, blas.SWITCH)}
    clean.update(env)
    code += ("\nimport json, os\nfrom minirobera import blas\n"
             "print(json.dumps([os.environ.get(blas.ENV), os.environ.get(blas.TIMEOUT_ENV), "
             "blas.decision, blas.openblas_corename(), blas.idle_threads_nap()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=clean, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _reads_coretype():  # only a DYNAMIC_ARCH OpenBLAS looks at OPENBLAS_CORETYPE
    return "DYNAMIC_ARCH" in (blas.openblas_config() or "")


def test_import_first_sets_this_cpus_choice():
    value, timeout, decision, corename, naps = _fresh("import minirobera, numpy")
    want = blas.coretype_for_this_cpu()
    assert value == want
    assert (timeout, naps) == ("22", True)
    if want is None:
        assert decision.startswith("OpenBLAS's own kernels")
    else:
        assert decision.startswith(f"set {blas.ENV}={want}")
        if _reads_coretype():  # NumPy's wheel runs its Haswell code for "Zen"; others say Zen
            assert corename in ("Haswell", "Zen")


def test_numpy_first_gets_the_timeout_but_not_the_kernels():
    if blas.rereading_openblas() is None:
        pytest.skip("this OpenBLAS cannot re-read OPENBLAS_THREAD_TIMEOUT once loaded")
    value, timeout, decision, corename, naps = _fresh("import numpy, minirobera")
    assert (value, timeout, naps) == (None, "22", True)
    assert decision == (
        "NumPy was imported first: OpenBLAS had already chosen its kernels; set "
        f"{blas.TIMEOUT_ENV}=22 (idle OpenBLAS threads sleep after 1-2 ms), then had OpenBLAS "
        "re-read it and restart its threads")
    # the kernels stay OpenBLAS's own pick (MINIROBERA_BLAS=openblas, minirobera first)
    assert corename == _fresh("import minirobera, numpy", MINIROBERA_BLAS="openblas")[3]


def test_the_switch_keeps_openblas_own_choice():
    value, timeout, decision, corename, naps = _fresh("import minirobera, numpy",
                                                      MINIROBERA_BLAS="openblas")
    assert (value, timeout, naps) == (None, None, False)
    assert decision == "OpenBLAS's own choices (MINIROBERA_BLAS=openblas)"
    assert corename == _fresh("import numpy")[3]  # what OpenBLAS picks itself


@pytest.mark.skipif(platform.machine() != "x86_64", reason="Sandybridge is an x86-64 kernel set")
def test_a_choice_already_made_is_kept():
    value, timeout, decision, corename, _ = _fresh("import minirobera, numpy",
                                                   OPENBLAS_CORETYPE="Sandybridge",
                                                   OPENBLAS_THREAD_TIMEOUT="26")
    assert (value, timeout) == ("Sandybridge", "26")
    assert decision.startswith(f"left {blas.ENV}=Sandybridge")
    assert f"left {blas.TIMEOUT_ENV}=26" in decision
    if _reads_coretype():
        assert corename == "Sandybridge"


_SPIN = """
import time
import numpy as np
a, w = np.ones((512, 768), np.float32), np.ones((768, 3072), np.float32)
a @ w; a @ w  # OpenBLAS's threads at work
busy = time.process_time()
time.sleep(0.4)  # the main thread idles: what CPU time the process takes is OpenBLAS's
print('{"idle_cpu": %.4f}' % (time.process_time() - busy))
"""


@pytest.mark.parametrize("imports", ["import minirobera", "import numpy, minirobera"])
def test_idle_openblas_threads_sleep_soon_after_import_minirobera(imports):
    if not blas.threads() or blas.threads() < 2:
        pytest.skip("one BLAS thread (or threads minirobera cannot ask): none to idle")
    if imports.startswith("import numpy") and blas.rereading_openblas() is None:
        pytest.skip("this OpenBLAS cannot re-read OPENBLAS_THREAD_TIMEOUT once loaded")
    with_nap = subprocess.run([sys.executable, "-c", imports + _SPIN],
                              capture_output=True, text=True, timeout=120,
                              env={k: v for k, v in os.environ.items() if k != blas.TIMEOUT_ENV})
    own = subprocess.run([sys.executable, "-c", "import minirobera" + _SPIN],
                         capture_output=True, text=True, timeout=120,
                         env={**{k: v for k, v in os.environ.items()
                                 if k != blas.TIMEOUT_ENV}, "MINIROBERA_BLAS": "openblas"})
    assert with_nap.returncode == own.returncode == 0, with_nap.stderr + own.stderr
    nap = json.loads(with_nap.stdout)["idle_cpu"]
    spin = json.loads(own.stdout)["idle_cpu"]
    # OpenBLAS's own default spins ~0.1 s (2**28 clock ticks) after the last call
    assert nap < 0.03 and spin > 0.05, (nap, spin)
