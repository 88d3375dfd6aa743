"""Which matrix-multiply kernels NumPy's OpenBLAS runs: chosen once, before NumPy loads it.

What this file owns: one decision, taken when ``import minirobera`` runs before anything has
imported NumPy. About 90% of a forward pass is matrix multiplies (layers.linear and the two
attention products), all done by the OpenBLAS that ships inside NumPy's wheel. OpenBLAS picks
its kernels by CPU when the library loads, and on AMD Zen 4 it picks the AVX-512 "SkylakeX"
ones. Zen 4 runs each 512-bit instruction as two 256-bit halves, and OpenBLAS's AVX2 kernels
for Zen ("Zen", the same code as "Haswell") are faster there at every shape roberta-base
uses: 5-10% for the [128,768] x [768,3072] class of GEMM, 3-5% with 1,024 rows, up to 25%
with 8 rows (bench/README.md, "BLAS kernels"). So on Zen 4, and only there, minirobera sets
``OPENBLAS_CORETYPE=Zen``.

What it leaves out: everything else about BLAS (threads stay OpenBLAS's default, one per
core). It never overrides a choice already made:

- ``OPENBLAS_CORETYPE`` already set, to anything: left as it is. Set it empty
  (``OPENBLAS_CORETYPE=``) to keep OpenBLAS's own pick;
- NumPy already imported: OpenBLAS has chosen, and setting the variable now would change
  nothing but what child processes inherit, so nothing is set.

The variable is process-wide: NumPy code outside minirobera, and child processes, get the
same kernels. minirobera's results differ from the other kernels' by float32 rounding only.
The trade-off is for float32: float64 work gets the AVX2 kernels too, and there they are not
always faster (a 2048x2048 float64 matrix product took ~8% longer here, np.linalg.solve on
1000x1000 ~15% less).

>>> openblas_coretype("vendor_id : AuthenticAMD\\ncpu family : 25\\nflags : fpu avx2 avx512f")
'Zen'
>>> openblas_coretype("vendor_id : GenuineIntel\\ncpu family : 6\\nflags : fpu avx2 avx512f") is None
True
"""

from __future__ import annotations

import ctypes
import os
import sys

ENV = "OPENBLAS_CORETYPE"

# what configure() did, for bench scripts and curious readers
decision = "not taken yet"


def _cpuinfo_fields(cpuinfo: str) -> dict:
    """The first processor's ``key : value`` lines of /proc/cpuinfo."""
    fields = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # end of the first processor's block
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def openblas_coretype(cpuinfo: str):
    """The OPENBLAS_CORETYPE minirobera wants on this CPU, or None for OpenBLAS's own pick.

    Zen 4 is AMD's family 25 (0x19) with AVX-512; Zen 3, the same family without AVX-512,
    already gets the Zen kernels, and Zen 5 (family 26) runs 512-bit instructions at full
    width, so both are left alone.
    """
    f = _cpuinfo_fields(cpuinfo)
    flags = f.get("flags", "").split()
    if (f.get("vendor_id") == "AuthenticAMD" and f.get("cpu family") == "25"
            and "avx512f" in flags):
        return "Zen"
    return None


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return fh.read()
    except OSError:  # not Linux: nothing to go on, so OpenBLAS decides
        return ""


def coretype_for_this_cpu():
    """openblas_coretype() of the CPU this runs on (for scripts that start NumPy processes)."""
    return openblas_coretype(_read_cpuinfo())


def configure() -> str:
    """Set OPENBLAS_CORETYPE if this CPU wants it and it can still take effect.

    Called by ``minirobera/__init__.py``; returns (and stores in ``decision``) what it did.
    """
    global decision
    if ENV in os.environ:
        decision = f"left {ENV}={os.environ[ENV]} as set before minirobera was imported"
    elif "numpy" in sys.modules:
        decision = "NumPy was imported first: OpenBLAS had already chosen its kernels"
    else:
        want = coretype_for_this_cpu()
        if want is None:
            decision = "OpenBLAS's own choice (not a Zen 4 CPU)"
        else:
            os.environ[ENV] = want
            decision = f"set {ENV}={want} (AMD Zen 4: AVX2 kernels beat OpenBLAS's AVX-512 ones)"
    return decision


def openblas_corename():
    """The kernel set the loaded OpenBLAS runs ("Haswell", "SkylakeX", ...), or None when
    NumPy's BLAS is not an OpenBLAS that says (Linux only: it reads /proc/self/maps)."""
    import numpy  # noqa: F401  (loads the BLAS if nothing has yet)
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                       "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None
