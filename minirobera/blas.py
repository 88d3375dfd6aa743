"""Which matrix-multiply kernels NumPy's OpenBLAS runs, and how long its idle threads spin:
chosen once, at ``import minirobera``; and OpenBLAS's thread count, for layers.encoder's splits.

What this file owns: two decisions, taken at ``import minirobera``, the first only if nothing
has imported NumPy yet. First, the kernels. About 90% of a forward pass is matrix multiplies
(layers.linear and the two attention products), all done by the OpenBLAS that ships inside
NumPy's wheel. OpenBLAS picks its kernels by CPU when the library loads, and on AMD Zen 4 it
picks the AVX-512 "SkylakeX" ones. Zen 4 runs each 512-bit instruction as two 256-bit
halves, and OpenBLAS's AVX2 kernels for Zen (in NumPy's wheel, the same code as "Haswell")
were faster at most float32 shapes roberta-base uses (bench/blas.py, three runs: 0.51-0.92
of the time with 8 rows, 0.85-1.11 with 128, 0.94-1.03 with 1,024), and minirobera's whole
forward took 0.81-0.82x the time at 1x8, 0.94x at 1x128 and 0.97-1.01x at 1x512 and 8x128.
So on Zen 4, and only there, minirobera sets ``OPENBLAS_CORETYPE=Zen``.

Second, on every CPU: how long OpenBLAS's idle threads spin before they sleep. After each
call they busy-wait for new work for 2**28 clock ticks (~0.1 s) by default. That is harmless
while only OpenBLAS runs, but layers.encoder also runs a layer's work on two Python threads,
one core each, with OpenBLAS on one thread meanwhile, and then the still-spinning OpenBLAS
thread takes a core from them: a 1x128 forward took 1.2x as long split as not. So minirobera
sets ``OPENBLAS_THREAD_TIMEOUT=22`` (2**22 ticks, 1-2 ms, longer than the gaps between the
matrix multiplies of a forward); measured in separate processes, 8x128 took 0.95x the time
and 1x8 / 1x128 were unchanged (bench/README.md). ``idle_threads_nap`` says whether this
(or a value as short, set by you) is in effect; the layer split runs only then.

What it leaves out: everything else about BLAS (threads stay OpenBLAS's default, one per
core). It never overrides a choice already made:

- ``OPENBLAS_CORETYPE`` or ``OPENBLAS_THREAD_TIMEOUT`` already in the environment (set by you,
  or inherited from a parent process whose minirobera set it): left as it is;
- ``MINIROBERA_BLAS=openblas``: OpenBLAS keeps its own choices (``auto``, the default, is the
  rules above; any other value is an error);
- NumPy already imported: OpenBLAS has chosen its kernels, and that stays. The timeout is
  still set: OpenBLAS read its environment when NumPy loaded it, so minirobera has it read
  the environment again (``openblas_read_env``) and stops its threads
  (``blas_thread_shutdown_``), which OpenBLAS starts again on its next multi-threaded call,
  with the new timeout. That stop-and-restart is what OpenBLAS itself does before every
  ``fork()`` (its ``pthread_atfork`` handler), and like a fork it must not happen while
  another thread is inside an OpenBLAS call: at ``import minirobera`` there rarely is one.
  An OpenBLAS without those functions (or not on its own threads) keeps spinning, and
  ``decision`` says so.

The variables are process-wide: NumPy code outside minirobera, and child processes, get the
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

import contextlib
import functools
import os
import sys
import threading

ENV = "OPENBLAS_CORETYPE"
TIMEOUT_ENV = "OPENBLAS_THREAD_TIMEOUT"
NAP = 22  # idle OpenBLAS threads sleep after 2**NAP clock ticks (OpenBLAS's default: 2**28)
SWITCH = "MINIROBERA_BLAS"  # "auto" (default) or "openblas"

# what configure() did, for bench scripts and curious readers
decision = "not taken yet"
applied = {}  # the variables configure() set in this process's environment
_naps = False  # configure(): whether OpenBLAS's idle threads sleep within 2**NAP ticks


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
        with open("/proc/cpuinfo", errors="replace") as fh:
            return fh.read()
    except OSError:  # not Linux: nothing to go on, so OpenBLAS decides
        return ""


def coretype_for_this_cpu():
    """openblas_coretype() of the CPU this runs on."""
    return openblas_coretype(_read_cpuinfo())


def env_choice(environ, name, choices):
    """The value of environment variable `name`, lower-cased, if it is one of `choices`;
    choices[0] when it is unset or empty; a ValueError naming the variable otherwise."""
    value = environ.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ValueError(f"the environment variable {name} must be "
                         f"{' or '.join(repr(c) for c in choices)}, got {environ[name]!r}")
    return value


def decide(environ, numpy_loaded: bool):
    """-> (the variables to set, {name: value}; what was decided and why), for a process
    with this environment. configure() applies it to this process; scripts that start NumPy
    processes apply it to their children's environment."""
    switch = env_choice(environ, SWITCH, ("auto", "openblas"))
    if switch == "openblas":
        return {}, f"OpenBLAS's own choices ({SWITCH}=openblas)"
    settings = {}
    want = coretype_for_this_cpu()
    if numpy_loaded:
        why = "NumPy was imported first: OpenBLAS had already chosen its kernels"
    elif ENV in environ:
        why = f"left {ENV}={environ[ENV]} as found in the environment"
    elif want is None:
        why = "OpenBLAS's own kernels (not a Zen 4 CPU)"
    else:
        settings[ENV] = want
        why = f"set {ENV}={want} (AMD Zen 4: AVX2 kernels beat OpenBLAS's AVX-512 ones)"
    if TIMEOUT_ENV in environ:
        why += f"; left {TIMEOUT_ENV}={environ[TIMEOUT_ENV]} as found in the environment"
    else:
        settings[TIMEOUT_ENV] = str(NAP)
        why += f"; set {TIMEOUT_ENV}={NAP} (idle OpenBLAS threads sleep after 1-2 ms)"
    return settings, why


def configure() -> str:
    """Set OPENBLAS_CORETYPE and OPENBLAS_THREAD_TIMEOUT where wanted and still in time.

    Called by ``minirobera/__init__.py``; returns (and stores in ``decision``) what it did.
    """
    global decision, _naps, applied
    numpy_loaded = "numpy" in sys.modules
    settings, decision = decide(os.environ, numpy_loaded)
    os.environ.update(settings)
    if numpy_loaded and TIMEOUT_ENV in settings:
        if _reread_timeout():
            decision += ", then had OpenBLAS re-read it and restart its threads"
        else:
            del os.environ[TIMEOUT_ENV]
            settings = {}
            decision = ("NumPy was imported first: OpenBLAS had already chosen its kernels, and "
                        f"its idle threads spin ~0.1 s (this OpenBLAS cannot re-read "
                        f"{TIMEOUT_ENV} once loaded)")
    applied = settings
    # a value found in the environment is taken to have been there when OpenBLAS loaded
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    _naps = value.isdigit() and int(value) <= NAP
    return decision


def idle_threads_nap() -> bool:
    """Whether OpenBLAS's idle threads go to sleep within ~2**NAP clock ticks of their last
    call (configure() set OPENBLAS_THREAD_TIMEOUT, or found it as short): only then may
    other threads have the cores right after a multi-threaded GEMM (layers.layer_parts)."""
    return _naps


def _openblas_libraries():
    """The loaded libraries with "openblas" in their path, as ctypes libraries (Linux only:
    they are found in /proc/self/maps); loads NumPy's BLAS if nothing has yet."""
    import ctypes

    import numpy  # noqa: F401  (loads the BLAS if nothing has yet)
    try:
        with open("/proc/self/maps", errors="replace") as fh:
            # address perms offset dev inode path: the path may hold spaces
            paths = {parts[5].strip().removesuffix(" (deleted)")
                     for parts in (line.split(maxsplit=5) for line in fh)
                     if len(parts) == 6 and "openblas" in parts[5].lower()}
    except OSError:
        return
    for path in sorted(paths):
        try:
            yield ctypes.CDLL(path)
        except OSError:
            continue


@functools.lru_cache(maxsize=None)
def _openblas_function(*symbols):
    """The first of these functions that NumPy's loaded OpenBLAS exports, as a ctypes
    function, or None."""
    for lib in _openblas_libraries():
        for symbol in symbols:
            fn = getattr(lib, symbol, None)
            if fn is not None:
                return fn
    return None


def rereading_openblas():
    """The loaded OpenBLAS whose threads minirobera sets (the one exporting _SET), if it can
    read its environment again and restart its threads (_reread_timeout), else None. Only
    an OpenBLAS on its own threads (get_parallel 1) can: with OpenMP, or none, there are no
    such threads to restart."""
    lib = next((lib for lib in _openblas_libraries()
                if any(hasattr(lib, name) for name in _SET)), None)
    if lib is None:
        return None
    parallel = next((getattr(lib, name) for name in _PARALLEL if hasattr(lib, name)), None)
    needed = ("openblas_read_env", "openblas_thread_timeout", "blas_thread_shutdown_")
    if parallel is None or parallel() != 1 or not all(hasattr(lib, name) for name in needed):
        return None
    return lib


def _reread_timeout() -> bool:
    """Have NumPy's OpenBLAS read OPENBLAS_THREAD_TIMEOUT from the environment again, and
    stop its threads, which it starts again, with that timeout, on its next multi-threaded
    call (blas_thread_init reads it then). -> whether it now says the value set."""
    lib = rereading_openblas()
    if lib is None:
        return False
    lib.openblas_read_env()
    if lib.openblas_thread_timeout() != int(os.environ[TIMEOUT_ENV]):
        return False
    lib.blas_thread_shutdown_()
    return True


def _openblas_string(*symbols):  # call a no-argument OpenBLAS function returning char *
    import ctypes

    fn = _openblas_function(*symbols)
    if fn is None:
        return None
    fn.restype = ctypes.c_char_p
    return fn().decode()


def openblas_corename():
    """The kernel set the loaded OpenBLAS runs ("Haswell", "SkylakeX", ...), or None when
    NumPy's BLAS is not an OpenBLAS that says."""
    return _openblas_string("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                            "openblas_get_corename64_", "openblas_get_corename")


def openblas_config():
    """The loaded OpenBLAS's build line ("OpenBLAS 0.3.31 ... DYNAMIC_ARCH ..."), or None.
    Only a DYNAMIC_ARCH build reads OPENBLAS_CORETYPE at all."""
    return _openblas_string("scipy_openblas_get_config64_", "scipy_openblas_get_config",
                            "openblas_get_config64_", "openblas_get_config")


# ---------------------------------------------------------------------------------------------
# OpenBLAS's thread count, for layers.encoder's splits over the cores
# ---------------------------------------------------------------------------------------------
# OpenBLAS splits each GEMM over its threads. layers.encoder can instead run slices of the
# batch, or shares of each layer, side by side, one thread each, with OpenBLAS on one thread:
# then the work between the GEMMs (GELU, softmax, LayerNorm, ~7% of a forward) and the small
# per-head attention GEMMs run on every core too, not only the GEMMs. The count is
# process-wide, so blocks that want one thread share it: the first in sets it, the last out
# restores it.
_GET = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
        "openblas_get_num_threads64_", "openblas_get_num_threads")
_SET = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
        "openblas_set_num_threads64_", "openblas_set_num_threads")
_PARALLEL = ("scipy_openblas_get_parallel64_", "scipy_openblas_get_parallel",  # 0 none,
             "openblas_get_parallel64_", "openblas_get_parallel")  # 1 its threads, 2 OpenMP
_lock = threading.Lock()
_single = {"users": 0, "saved": None}


def _after_fork_in_child():  # the child has one thread: no block of the parent's is running
    global _lock
    _lock = threading.Lock()
    _single.update(users=0, saved=None)


os.register_at_fork(after_in_child=_after_fork_in_child)


def threads():
    """How many threads OpenBLAS splits a GEMM over now, or None if it cannot be asked (or
    set: a BLAS whose threads minirobera cannot control is never asked to share the cores)."""
    get, set_ = _openblas_function(*_GET), _openblas_function(*_SET)
    return int(get()) if get is not None and set_ is not None else None


@contextlib.contextmanager
def one_thread():
    """Run the block with OpenBLAS on one thread per call, then restore the count it had.

    Process-wide: while any such block runs, every thread's GEMMs run on one OpenBLAS thread
    (results are unchanged, only slower where a thread would have used more).
    """
    set_ = _openblas_function(*_SET)
    if set_ is None:
        raise RuntimeError("NumPy's BLAS is not an OpenBLAS whose threads can be set")
    with _lock:
        _single["users"] += 1
        if _single["users"] == 1:
            _single["saved"] = threads()
            set_(1)
    try:
        yield
    finally:
        with _lock:
            _single["users"] -= 1
            if _single["users"] == 0:
                set_(_single["saved"])
