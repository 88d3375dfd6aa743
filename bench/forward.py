"""Forward-pass benchmark: minirobera (Numba / NumPy) vs transformers, ONNX Runtime, the GEMM floor.

    python bench/forward.py            # full run (~9 min on 2 cores)
    python bench/forward.py --quick    # 2 rounds, no 32x128 (~2 min)

roberta-base's config (../shared/roberta-base/config.json or --config) with random weights:
the cost does not depend on the values. The checkpoint is written once (RobertaForMaskedLM,
model.safetensors, by transformers if installed, else by minirobera) to bench/_work/.

Every implementation runs in its OWN processes (PyTorch and NumPy in one process distort each
other: spinning BLAS / OpenMP threads), all with the same thread count (2); two processes
each (--procs), taking turns round by round, so that one unlucky process (where its weights
landed in memory) does not decide an implementation's median. A driver hands
the processes one measurement at a time, alternating their order every round, and pauses
between hand-overs so the last one's idle threads stop spinning. Before each measurement
it waits (up to --wait-quiet seconds) for the machine to be quiet, and it records how much
CPU other processes used during the timed runs ("foreign load", in cores).

Implementations (--impls):
    minirobera-numba   minirobera.RobertaModel, MINIROBERA_KERNELS=numba
    minirobera-numpy   minirobera.RobertaModel, MINIROBERA_KERNELS=numpy
    fastpath-numba     bench/fastpath.py: fused.py's schedule with BLAS for every product (as it
                       was before the few-row kernel), in one script
    hf-eager, hf-sdpa  transformers RobertaModel (torch), attn_implementation eager / sdpa
    floor              the matrix multiplies of fastpath alone (weights pre-transposed)
    onnxruntime        transformers RobertaModel exported by torch.onnx.export (dynamo exporter,
                       dynamic batch and sequence axes; cached in bench/_work/onnx/, export not
                       timed, its output checked against torch's once), run by ONNX Runtime:
                       CPUExecutionProvider, intra-op threads = --threads, graph optimizations
                       ORT_ENABLE_ALL. What a user who wants fast CPU inference would pick instead:
                       the upper anchor, not a target. Needs the `bench` extra
                       (pip install -e '.[bench]'); left out of the default set, with the reason
                       printed, where onnxruntime / onnxscript / torch are not installed
  on request only:
    minirobera-readable  minirobera.RobertaModel running layers.encoder, the readable encoder
                       (three q/k/v GEMMs, no reused buffers), instead of fused.encoder: what
                       fused.py is worth (Numba kernels in both)
    torch-floor        the same matrix multiplies in torch (is its BLAS faster than ours?)
    *-numba-par        fastpath / minirobera with the kernels on 2 Numba threads (workqueue)

Prints per shape the median ms of each, the ratio to transformers eager (and sdpa), the
fraction of the GEMM floor, the ratio to ONNX Runtime, then peak RSS of load + one 1x128
forward against the checkpoint size; writes the same as a markdown table (--out, default
bench/_work/forward.md). Before the runs it measures the machine's read bandwidth (a
STREAM-like sum of 1 GiB in a fresh process) and reports 1x8 against the time the encoder's
weights take to read at that rate. After them it keeps the run's figures as its CPU model's
entry of bench/forward-cpus.json (committed: one entry per CPU the benchmark has run on) and
prints every CPU's rows. The NumPy workers report which OpenBLAS kernels they run
(threadpoolctl's `architecture`; OPENBLAS_CORETYPE, if the user sets it, changes them).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
WORK = HERE / "_work"
DEFAULT_CONFIG = Path(os.environ.get("MINIROBERA_ROBERTA_BASE")
                      or REPO.parent / "shared" / "roberta-base") / "config.json"
SHAPES = [(1, 8), (1, 128), (1, 512), (8, 128), (32, 128)]
IMPLS = ["minirobera-numba", "minirobera-numpy", "fastpath-numba", "hf-eager", "hf-sdpa",
         "floor", "onnxruntime"]
EXTRA = ["fastpath-numba-par", "minirobera-numba-par",  # kernels multi-threaded (workqueue)
         "minirobera-readable",  # layers.encoder instead of fused.encoder: what fused.py is worth
         "torch-floor"]  # the floor's matmuls in torch (MKL): is its BLAS faster than ours?


def _kernels_of(impl: str) -> str:  # minirobera-numba(-par) / -numpy / -readable -> backend
    return "numpy" if impl == "minirobera-numpy" else "numba"


def openblas_kernels() -> str | None:
    """The kernel set NumPy's OpenBLAS runs in this process ("SkylakeX", "Haswell", "Zen",
    ...: threadpoolctl's `architecture`), or None (threadpoolctl not installed, NumPy not on
    OpenBLAS). OpenBLAS picks it from the CPU when it loads, unless OPENBLAS_CORETYPE was set
    before then (bench/blas.py compares kernel sets that way)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    libs = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
    # NumPy's own first, where another library (torch, SciPy) brings an OpenBLAS too
    libs.sort(key=lambda i: "numpy" not in i.get("filepath", ""))
    return libs[0].get("architecture") if libs else None


# ============================================================================ the worker side

def _load(impl: str, ckpt: Path, threads: int, model_class: str = "RobertaModel"):
    """-> (run(ids, mask) callable, details dict). Runs inside the worker process."""
    if impl.startswith("hf-"):
        import torch
        import transformers
        torch.set_num_threads(threads)
        cls = getattr(transformers, model_class)
        model = cls.from_pretrained(ckpt, attn_implementation=impl[3:]).eval()

        def run(ids, mask):
            with torch.inference_mode():
                out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
            return out[0]
        return run, {"torch": torch.__version__, "transformers": transformers.__version__}
    if impl == "onnxruntime":
        # only onnxruntime (and NumPy) in this process: the export and its check against torch
        # run in a child process (_onnx_model), so no torch thread pool sits beside ORT's
        import onnxruntime as ort
        path, meta = _onnx_model(ckpt, threads, model_class)
        sess = ort.InferenceSession(str(path), _ort_options(ort, threads),
                                    providers=["CPUExecutionProvider"])

        def run(ids, mask):
            # all outputs, as the others compute them (RobertaModel: the pooler too)
            return sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return run, {"onnxruntime": ort.__version__, **meta}
    if impl.startswith("minirobera-"):
        import minirobera
        from minirobera import kernels
        kernels.set_backend(_kernels_of(impl))
        model = getattr(minirobera, model_class).from_pretrained(ckpt)
        if impl == "minirobera-readable":
            from minirobera import fused, layers
            fused.encoder = lambda x, blocks, bias, n_head, act, eps, **keep: layers.encoder(
                x, blocks, bias, n_head, act, eps)

        def run(ids, mask):
            return model(input_ids=ids, attention_mask=mask)[0]
        return run, {"kernels": kernels.get_backend(), "blas": openblas_kernels()}
    sys.path.insert(0, str(HERE))
    import fastpath
    from safetensors.numpy import load_file
    from minirobera import kernels
    kernels.set_backend("numba")
    config = json.loads((ckpt / "config.json").read_text())
    fp = fastpath.fast_params(load_file(ckpt / "model.safetensors"),
                              config["num_hidden_layers"])
    heads = config["num_attention_heads"]
    if impl == "torch-floor":
        return _torch_floor(fp, heads, threads), {}
    if impl == "floor":
        return ((lambda ids, mask: fastpath.gemm_floor(fp, *ids.shape, n_head=heads)),
                {"blas": openblas_kernels()})
    return ((lambda ids, mask: fastpath.forward(fp, ids, mask, n_head=heads)),
            {"blas": openblas_kernels()})


ORT_NEEDS = ("onnxruntime", "onnx", "onnxscript", "torch", "transformers")


def _ort_missing() -> list[str]:
    """What the onnxruntime implementation needs (export + run) and is not installed here."""
    return [m for m in ORT_NEEDS if importlib.util.find_spec(m) is None]


def _ort_options(ort, threads: int):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return so


def _onnx_model(ckpt: Path, threads: int, model_class: str) -> tuple[Path, dict]:
    """-> (model.onnx, what the export recorded), exported once per checkpoint, model class and
    torch / transformers / onnxscript versions into bench/_work/onnx/ (a fresh process:
    `--onnx-export`; its chatter goes to stderr, stdout is the worker's protocol)."""
    st = (ckpt / "model.safetensors").stat()
    versions = [importlib.metadata.version(m) for m in ("torch", "transformers", "onnxscript")]
    key = "|".join([str(ckpt.resolve()), str(st.st_size), str(st.st_mtime_ns), model_class]
                   + versions)
    out = WORK / "onnx" / f"{ckpt.name}-{model_class}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    if not (out / "meta.json").is_file():
        tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
        print(f"exporting {model_class} to ONNX ({out}) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--onnx-export", str(tmp),
                        "--model-class", model_class, "--ckpt", str(ckpt),
                        "--threads", str(threads)], check=True, stdout=sys.stderr, cwd=REPO)
        try:
            os.replace(tmp, out)
        except OSError:  # another process got there first
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return out / "model.onnx", json.loads((out / "meta.json").read_text())


def onnx_export(args) -> None:
    """transformers `--model-class` (default attention: sdpa) from the checkpoint -> ONNX in
    `--onnx-export` DIR (model.onnx + model.onnx.data), dynamic batch and sequence axes, all
    of the model's outputs; then ORT's outputs against torch's on a few inputs (one with
    padding), asserted < 1e-3; meta.json records exporter, opset and the max abs difference.

    The exporter: torch 2.13's default, dynamo=True (torch.export + onnxscript), with
    `dynamic_shapes`; it exports RobertaModel / RobertaForMaskedLM with symbolic batch and
    sequence (checked here against torch at other shapes than the example's). The legacy
    TorchScript exporter (dynamo=False, `dynamic_axes`) is only the fallback if that fails."""
    import onnxruntime as ort
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    model = getattr(transformers, args.model_class).from_pretrained(args.ckpt).eval()
    ids, mask = (torch.from_numpy(a) for a in _inputs(2, 16))
    mask[1, 10:] = 0  # example with padding: the mask must stay an input, not be folded away
    with torch.inference_mode():
        names = list(model(input_ids=ids, attention_mask=mask).keys())
    out = Path(args.onnx_export)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.onnx"
    inputs = ["input_ids", "attention_mask"]
    try:
        B, T = torch.export.Dim("batch"), torch.export.Dim("sequence")
        torch.onnx.export(model, (), str(path), kwargs={"input_ids": ids, "attention_mask": mask},
                          dynamo=True, external_data=True, input_names=inputs, output_names=names,
                          dynamic_shapes={n: {0: B, 1: T} for n in inputs})
        exporter = "dynamo"
    except Exception as e:  # noqa: BLE001
        print(f"dynamo export failed ({type(e).__name__}: {e}); falling back to dynamo=False",
              file=sys.stderr, flush=True)
        for f in out.iterdir():
            f.unlink()
        with torch.inference_mode():
            ndim = {n: v.ndim for n, v in model(input_ids=ids, attention_mask=mask).items()}

        class Positional(torch.nn.Module):  # the tracer passes positionals, which transformers
            def __init__(self):             # 5's forward wrappers collide with (use_cache)
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                out = self.model(input_ids=input_ids, attention_mask=attention_mask)
                return tuple(out[n] for n in names)
        torch.onnx.export(Positional().eval(), (ids, mask), str(path), dynamo=False,
                          opset_version=17,
                          input_names=inputs, output_names=names,
                          dynamic_axes={n: {0: "batch", 1: "sequence"} if ndim.get(n, 3) > 2
                                        else {0: "batch"} for n in inputs + names})
        exporter = "legacy (TorchScript)"
    import onnx
    opset = max(o.version for o in onnx.load(str(path), load_external_data=False).opset_import
                if o.domain in ("", "ai.onnx"))
    sess = ort.InferenceSession(str(path), _ort_options(ort, args.threads),
                                providers=["CPUExecutionProvider"])
    diff = 0.0
    for B, T, pad in ((1, 8, 0), (3, 37, 11), (1, 512, 0)):
        ids, mask = _inputs(B, T)
        mask[-1, T - pad:] = 0
        got = sess.run(None, {"input_ids": ids, "attention_mask": mask})
        with torch.inference_mode():
            want = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        for n, g in zip(names, got):
            diff = max(diff, float(np.abs(g - want[n].numpy()).max()))
    print(f"ONNX Runtime vs torch, max abs difference over {names}: {diff:.2e}", flush=True)
    if not diff < 1e-3:
        raise SystemExit(f"the ONNX export does not compute what torch does (max abs diff {diff})")
    (out / "meta.json").write_text(json.dumps({
        "exporter": exporter, "opset": opset, "attn": model.config._attn_implementation,
        "max_abs_diff_vs_torch": float(f"{diff:.3g}"), "torch": torch.__version__,
        "transformers": transformers.__version__}))


def _torch_floor(fp, n_head, threads):
    """fastpath.gemm_floor with torch.matmul (MKL / oneDNN) instead of NumPy's OpenBLAS."""
    import torch
    torch.set_num_threads(threads)
    ws = [{k: torch.from_numpy(lp[k]) for k in ("wqkv", "wo", "wi", "w2")} for lp in fp["layers"]]
    D, F = fp["word"].shape[1], fp["layers"][0]["wi"].shape[1]

    def run(ids, mask):
        B, T = ids.shape
        N, Dh = B * T, D // n_head
        x = torch.full((N, D), 0.01)
        qkv, tmp = torch.empty((N, 3 * D)), torch.empty((N, D))
        q, k, v = torch.full((3, B, n_head, T, Dh), 0.01)
        s, ctx_h = torch.empty((B, n_head, T, T)), torch.empty((B, n_head, T, Dh))
        ctx, inter = torch.full((N, D), 0.01), torch.full((N, F), 0.01)
        with torch.inference_mode():
            for w in ws:
                torch.matmul(x, w["wqkv"], out=qkv)
                torch.matmul(q, k.transpose(2, 3), out=s)
                torch.matmul(s, v, out=ctx_h)
                torch.matmul(ctx, w["wo"], out=tmp)
                torch.matmul(x, w["wi"], out=inter)
                torch.matmul(inter, w["w2"], out=tmp)
        return tmp
    return run


def _inputs(B: int, T: int, vocab: int = 50265):
    rng = np.random.default_rng(B * 1000 + T)
    ids = rng.integers(3, vocab - 1, (B, T)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 0, 2  # <s> ... </s>
    return ids, np.ones((B, T), np.int64)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def worker(args) -> None:
    """Line protocol on stdin/stdout: `B T reps` -> one JSON line of times; EOF ends."""
    run, details = _load(args.worker, Path(args.ckpt), args.threads)
    print(json.dumps({"ready": True, **details}), flush=True)
    for line in sys.stdin:
        B, T, reps = map(int, line.split())
        ids, mask = _inputs(B, T)
        times, cpu = [], []
        for _ in range(reps):
            c0, t0 = _cpu_seconds(), time.perf_counter()
            run(ids, mask)
            times.append(time.perf_counter() - t0)
            cpu.append(_cpu_seconds() - c0)
        print(json.dumps({"times": times, "cpu": cpu}), flush=True)


def rss_probe(args) -> None:
    """Fresh process: load RobertaForMaskedLM + one 1x128 forward; print peak RSS (VmHWM)."""
    def hwm():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import numpy as np  # baseline: the interpreter with numpy
    before = hwm()
    if args.rss.startswith("hf-"):  # the runtime: libraries imported, kernels loaded
        import torch  # noqa: F401
        import transformers  # noqa: F401
    elif args.rss == "onnxruntime":
        import onnxruntime  # noqa: F401
    else:
        import minirobera.modeling  # noqa: F401
        from minirobera import kernels
        kernels.set_backend(_kernels_of(args.rss))
        kernels.gelu_bias(np.ones((1, 4), np.float32), np.ones(4, np.float32))
    runtime = hwm()
    run, _ = _load(args.rss, Path(args.ckpt), args.threads, "RobertaForMaskedLM")
    after_load = hwm()
    run(*_inputs(1, 128))
    print(json.dumps({"baseline": before, "runtime": runtime, "load": after_load, "peak": hwm()}),
          flush=True)


def bandwidth_probe(args) -> None:
    """Fresh process: the machine's achievable read bandwidth, STREAM-like: a 1 GiB float32
    array (several times any L3 here) summed by a Numba prange loop on --threads threads,
    best of 5; prints GB/s. What a forward that reads every weight once is bounded by."""
    import numba

    @numba.njit(parallel=True, fastmath=True, nogil=True)
    def read(a):
        total = np.float32(0.0)
        for i in numba.prange(a.shape[0]):
            total += a[i]
        return total

    a = np.ones(2**28, np.float32)
    read(a[:1024])
    best = min(_timed(read, a) for _ in range(5))
    print(json.dumps({"GBps": a.nbytes / best / 1e9, "threads": numba.get_num_threads()}),
          flush=True)


def _timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def measure_bandwidth(args) -> float | None:
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--bandwidth", "1",
                        "--threads", str(args.threads)], env=_env("bandwidth", args.threads),
                       capture_output=True, text=True, cwd=REPO)
    if p.returncode:
        print(f"bandwidth probe failed: {p.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])["GBps"]


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), with what a VM's generic name hides: the widest
    vector extension and, for Intel, the Sapphire Rapids class mark (AVX512-FP16)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.startswith("model name")), platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), []))
    marks = []
    if "avx512_fp16" in flags:
        marks.append("Sapphire Rapids class")
    marks.append("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2")
    return f"{name} ({', '.join(marks)}), {os.cpu_count()} cores"


def encoder_weight_bytes(ckpt: Path) -> int:
    """Bytes of the encoder's matrices, which a forward of a few tokens reads once each."""
    c = json.loads((ckpt / "config.json").read_text())
    D, F, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    return 4 * L * (4 * D * D + 2 * D * F)


def bandwidth_bound_ms(ckpt: Path, bandwidth: float) -> float:
    """Milliseconds to read the encoder's matrices once at `bandwidth` GB/s."""
    return encoder_weight_bytes(ckpt) / (bandwidth * 1e9) * 1e3


CPU_RECORD = HERE / "forward-cpus.json"  # one entry per CPU model this benchmark ran on


def record_cpu(shapes, med, raw, impls, bandwidth, ckpt, args) -> str:
    """Keep this run's figures as the entry of this CPU model in bench/forward-cpus.json (a
    later run on the same CPU replaces it) and return every CPU's entry as a markdown table."""
    rec = json.loads(CPU_RECORD.read_text()) if CPU_RECORD.exists() else {}
    ratio = {}
    for a, b in PAIRS:
        for s in shapes:
            q = _paired(raw, a, b, s)
            if q:
                ratio[f"{a} / {b} {s[0]}x{s[1]}"] = round(float(np.median(q)), 3)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=REPO).stdout.strip()
    entry = rec[cpu_model()] = {
        "date": time.strftime("%Y-%m-%d"), "code": commit or "?",
        "command": " ".join(["python bench/forward.py"] + sys.argv[1:]),
        "blas": openblas_kernels(), "read GB/s": bandwidth and round(bandwidth, 1),
        "ms": {f"{i} {B}x{T}": round(med[i, (B, T)], 1) for i in impls for B, T in shapes},
        "paired ratios": ratio}
    if bandwidth and ("minirobera-numba", (1, 8)) in med:
        entry["1x8 bandwidth limit ms"] = round(bandwidth_bound_ms(ckpt, bandwidth), 1)
    CPU_RECORD.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    return cpu_table(rec)


def cpu_table(rec: dict) -> str:
    head = ["CPU", "date (code)", "read GB/s", "shape", "minirobera (Numba) ms", "eager ms",
            "ONNX Runtime ms", "Numba / eager", "Numba / ONNX Runtime", "bandwidth limit / Numba"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cpu, e in sorted(rec.items()):
        shapes = sorted({k.split()[-1] for k in e["ms"]}, key=lambda s: tuple(map(int, s.split("x"))))
        for s in shapes:
            ms = lambda impl: e["ms"].get(f"{impl} {s}")  # noqa: E731
            pr = lambda b: e["paired ratios"].get(f"minirobera-numba / {b} {s}")  # noqa: E731
            limit = e.get("1x8 bandwidth limit ms") if s == "1x8" else None
            cells = [cpu, f"{e['date']} ({e.get('code', '?')})", e.get("read GB/s"), s, ms("minirobera-numba"),
                     ms("hf-eager"), ms("onnxruntime"), pr("hf-eager"), pr("onnxruntime"),
                     limit and ms("minirobera-numba") and round(limit / ms("minirobera-numba"), 2)]
            lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


# ============================================================================ the driver side

def random_base_model(config_path: Path):
    """minirobera.RobertaModel on the random-weight checkpoint (made once): for the scripts
    that profile minirobera alone (breakdown.py, padding.py)."""
    if not config_path.is_file():
        raise SystemExit(f"no config at {config_path}: pass --config (roberta-base's config.json)")
    ckpt = make_checkpoint(config_path, WORK / "roberta-base-random")
    import warnings

    import minirobera
    with warnings.catch_warnings():  # a RobertaForMaskedLM checkpoint: LM head unused, no pooler
        warnings.simplefilter("ignore")
        return minirobera.RobertaModel.from_pretrained(ckpt)


def make_checkpoint(config_path: Path, out: Path) -> Path:
    """roberta-base-sized RobertaForMaskedLM with random weights, written once."""
    if (out / "model.safetensors").is_file() and (out / "config.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    code = f"""
import json
cfg = json.load(open({str(config_path)!r}))
try:
    import torch, transformers
    torch.manual_seed(0)
    m = transformers.RobertaForMaskedLM(transformers.RobertaConfig(**cfg))
    m.save_pretrained({str(out)!r}, safe_serialization=True)
except ImportError:
    import minirobera
    c = minirobera.RobertaConfig.from_pretrained({str(config_path.parent)!r})
    minirobera.RobertaForMaskedLM(c, seed=0).save_pretrained({str(out)!r})
"""
    print(f"writing a random-weight checkpoint to {out} ...", flush=True)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return out


def _env(impl: str, threads: int) -> dict:
    """A worker's environment: the thread counts and kernels the benchmark sets; everything
    else as the user has it (OPENBLAS_CORETYPE included), the same for every implementation."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    if impl.startswith("minirobera-"):
        env["MINIROBERA_KERNELS"] = _kernels_of(impl)
    if impl.endswith("-par"):  # the kernels on Numba's threads (workqueue) too
        env["MINIROBERA_KERNEL_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class Worker:
    def __init__(self, impl, ckpt, threads):
        self.impl = impl
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--ckpt", str(ckpt),
             "--threads", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=_env(impl, threads), text=True, cwd=REPO)
        self.info = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.impl} died (see its traceback above)")
        return json.loads(line)

    def measure(self, B, T, reps):
        self.proc.stdin.write(f"{B} {T} {reps}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _busy_jiffies():
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    vals = list(map(int, fields))
    return sum(vals) - vals[3] - vals[4], os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def wait_quiet(max_wait: float, threshold: float = 0.25, window: float = 0.3) -> float:
    """Wait until other processes use < `threshold` cores; returns the load last seen."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, hz = _busy_jiffies()
        time.sleep(window)
        load = (_busy_jiffies()[0] - b0) / hz / window
        if load < threshold or time.monotonic() >= deadline:
            return load


def _reps(B, T):
    return 3 if B * T <= 128 else 1


def run_benchmark(args, ckpt):
    shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    impls = args.impls.split(",")
    unknown = sorted(set(impls) - set(IMPLS) - set(EXTRA))
    if unknown:
        raise SystemExit(f"unknown --impls {unknown}; choose from {IMPLS}")
    # --procs processes per implementation, taking turns round by round: one process can be
    # unlucky for its whole life (where its weights landed in memory, which core it started
    # on); measured over two, such an effect shows up in the median instead of deciding it
    workers = {}
    for impl in impls:
        print(f"starting {impl} ({args.procs} processes) ...", flush=True)
        workers[impl] = [Worker(impl, ckpt, args.threads) for _ in range(args.procs)]
    times = {(i, s): [] for i in impls for s in shapes}
    foreign, raw = [], {}
    try:
        for impl in impls:  # warm-up: compile, caches, first-touch of the weights
            for w in workers[impl]:
                for B, T in shapes:
                    w.measure(B, T, 1)
        for r in range(args.rounds):
            order = impls[r % len(impls):] + impls[:r % len(impls)]
            if r % 2:
                order = order[::-1]
            for B, T in shapes:
                for impl in order:
                    time.sleep(args.pause)
                    wait_quiet(args.wait_quiet)
                    # which process: not tied to the round's order (reversed every other
                    # round), so each process gets both orders
                    proc = (r + r // 2) % args.procs
                    b0, hz = _busy_jiffies()
                    t0 = time.perf_counter()
                    res = workers[impl][proc].measure(B, T, _reps(B, T))
                    wall = time.perf_counter() - t0
                    other = ((_busy_jiffies()[0] - b0) / hz - sum(res["cpu"])) / wall
                    foreign.append(max(other, 0.0))
                    times[impl, (B, T)].extend(res["times"])
                    raw.setdefault((impl, (B, T)), []).append(
                        {"process": proc, "round": r, "ms": [
                            round(t * 1e3, 2) for t in res["times"]]})
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        for ws in workers.values():
            for w in ws:
                w.close()
    if args.raw:  # every timing, by process and round, for looking at the spread
        args.raw.parent.mkdir(parents=True, exist_ok=True)
        args.raw.write_text(json.dumps({f"{i} {B}x{T}": v for (i, (B, T)), v in raw.items()}))
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    best = {k: float(np.min(v)) * 1e3 for k, v in times.items()}
    return shapes, impls, med, best, foreign, {i: ws[0].info for i, ws in workers.items()}, raw


def measure_rss(args, ckpt, impls):
    size = (ckpt / "model.safetensors").stat().st_size
    rows = []
    for impl in impls:
        if impl.endswith("floor"):
            continue
        p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--rss", impl,
                            "--ckpt", str(ckpt), "--threads", str(args.threads)],
                           env=_env(impl, args.threads), capture_output=True, text=True, cwd=REPO)
        if p.returncode:
            rows.append((impl, None, p.stderr.strip().splitlines()[-1:]))
            continue
        rows.append((impl, json.loads(p.stdout.strip().splitlines()[-1]), None))
    return size, rows


PAIRS = [("minirobera-numba", "hf-eager"), ("minirobera-numba", "hf-sdpa"),
         ("minirobera-numba", "floor"), ("floor", "hf-eager"),
         ("minirobera-numba", "onnxruntime"), ("onnxruntime", "hf-eager")]


def _per_round(raw, impl, s):  # {round: median ms of impl at shape s in that round}
    rounds = {}
    for e in raw.get((impl, s), []):
        rounds.setdefault(e["round"], []).extend(e["ms"])
    return {r: float(np.median(v)) for r, v in rounds.items()}


def _paired(raw, a, b, s):  # [a / b in each round where both ran]
    ra, rb = _per_round(raw, a, s), _per_round(raw, b, s)
    return [ra[r] / rb[r] for r in ra if r in rb]


def paired_table(shapes, raw):
    """Ratios paired by round: each round's median of one implementation over the other's in
    the same round, then the median (and range) over rounds. The machine's speed drifts by
    10-20% over minutes; pairing by round takes that drift out of the ratio."""
    pairs = [(a, b) for a, b in PAIRS if any((a, s) in raw and (b, s) in raw for s in shapes)]
    if not pairs:
        return ""
    head = ["shape"] + [f"{a} / {b}" for a, b in pairs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in shapes:
        row = [f"{s[0]}x{s[1]}"]
        for a, b in pairs:
            q = _paired(raw, a, b, s)
            row.append(f"{np.median(q):.3f} ({min(q):.2f}-{max(q):.2f})" if q else "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def table(shapes, impls, med, args):
    has = set(impls).__contains__
    head = ["shape"] + [f"{i} ms" for i in impls]
    if has("hf-eager"):
        head += [f"{i} / eager" for i in impls if i.startswith(("minirobera", "fastpath"))]
    if has("hf-sdpa"):
        head += [f"{i} / sdpa" for i in impls if i.startswith(("minirobera-numba", "fastpath"))]
    if has("floor"):
        head += [f"{i} / floor" for i in impls if i.startswith(("minirobera-numba", "fastpath"))]
    if has("floor") and has("hf-eager"):
        head += ["floor / eager (OpenBLAS's GEMMs alone, on its own threads)"]
    if has("onnxruntime"):  # the upper anchor: what a user wanting fast CPU inference would pick
        head += [f"{i} / onnxruntime" for i in impls if i.startswith(("minirobera", "fastpath"))]
        head += ["onnxruntime / eager"] if has("hf-eager") else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in shapes:
        row = [f"{s[0]}x{s[1]}"] + [f"{med[i, s]:,.1f}" for i in impls]
        for ref in ("hf-eager", "hf-sdpa", "floor"):
            if not has(ref):
                continue
            mine = [i for i in impls if i.startswith(("minirobera", "fastpath"))]
            if ref != "hf-eager":
                mine = [i for i in mine if i.startswith(("minirobera-numba", "fastpath"))]
            row += [f"{med[i, s] / med[ref, s]:.3f}" for i in mine]
        if has("floor") and has("hf-eager"):
            row.append(f"{med['floor', s] / med['hf-eager', s]:.3f}")
        if has("onnxruntime"):
            row += [f"{med[i, s] / med['onnxruntime', s]:.3f}" for i in impls
                    if i.startswith(("minirobera", "fastpath"))]
            if has("hf-eager"):
                row.append(f"{med['onnxruntime', s] / med['hf-eager', s]:.3f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 rounds, shapes without 32x128")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--procs", type=int, default=2,
                    help="processes per implementation, taking turns round by round")
    ap.add_argument("--shapes", default=",".join(f"{b}x{t}" for b, t in SHAPES))
    ap.add_argument("--impls", default=",".join(IMPLS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.3,
                    help="seconds between hand-overs (idle BLAS/OpenMP threads stop spinning)")
    ap.add_argument("--wait-quiet", type=float, default=5.0,
                    help="wait up to this long before each measurement for other load to end")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ap.add_argument("--ckpt", type=Path, default=None, help="checkpoint folder (default: make one)")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--out", type=Path, default=WORK / "forward.md")
    ap.add_argument("--raw", type=Path, default=WORK / "forward-times.json",
                    help="every timing by implementation, shape, process and round (JSON)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--rss", help=argparse.SUPPRESS)
    ap.add_argument("--onnx-export", help=argparse.SUPPRESS)
    ap.add_argument("--bandwidth", help=argparse.SUPPRESS)
    ap.add_argument("--no-record", action="store_true",
                    help=f"do not keep this run as this CPU's entry in {CPU_RECORD.name}")
    ap.add_argument("--model-class", default="RobertaModel", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.procs < 1 or args.rounds < 1:
        ap.error("--procs and --rounds must be at least 1")
    if args.worker:
        return worker(args)
    if args.rss:
        return rss_probe(args)
    if args.onnx_export:
        return onnx_export(args)
    if args.bandwidth:
        return bandwidth_probe(args)
    if "onnxruntime" in args.impls.split(",") and _ort_missing():
        why = (f"onnxruntime: not installed: {', '.join(_ort_missing())} "
               f"(pip install -e '.[bench]')")
        if args.impls != parser_default(ap, "impls"):
            ap.error(why)
        print(f"skipping {why}", flush=True)
        args.impls = ",".join(i for i in args.impls.split(",") if i != "onnxruntime")
    if args.quick:
        args.rounds = min(args.rounds, 2)
        if args.shapes == parser_default(ap, "shapes"):
            args.shapes = "1x8,1x128,1x512,8x128"
    ckpt = args.ckpt or make_checkpoint(args.config, WORK / "roberta-base-random")
    t_start = time.time()
    load0 = os.getloadavg()
    bandwidth = measure_bandwidth(args)
    shapes, impls, med, best, foreign, info, raw = run_benchmark(args, ckpt)
    md = [f"Forward pass, roberta-base config, random weights, fp32, {args.threads} threads, "
          f"each implementation in its own processes ({args.procs}, taking turns), "
          f"{args.rounds} alternating rounds, medians.",
          f"Machine: {cpu_model()}; numpy {np.__version__}; "
          f"{json.dumps({k: v for k, v in info.items() if len(v) > 1})}",
          bandwidth_line(bandwidth, ckpt, med, args.threads),
          f"Load: loadavg at start {load0[0]:.2f}; CPU used by other processes during the timed "
          f"runs: median {np.median(foreign):.2f} cores, max {max(foreign):.2f} "
          f"(run took {time.time() - t_start:.0f} s).", "", "Medians (ms) and ratios:", "",
          table(shapes, impls, med, args), "",
          "Ratios paired by round (median over rounds of the two implementations' medians in "
          "the same round; range over rounds):", "", paired_table(shapes, raw), "",
          "Best of all runs (ms), for reference when the machine was not quiet:", "",
          table(shapes, impls, best, args)]
    if not args.no_rss:
        size, rows = measure_rss(args, ckpt, impls)
        md += ["", f"Peak RSS, fresh process: load RobertaForMaskedLM + one 1x128 forward "
                   f"(checkpoint model.safetensors = {size / 2**20:.0f} MiB):", "",
               "| implementation | python+numpy MiB | + runtime (libraries, kernels) MiB | "
               "after load MiB | peak MiB | peak / checkpoint | (peak - runtime) / checkpoint |",
               "|---|---|---|---|---|---|---|"]
        for impl, r, err in rows:
            if r is None:
                md.append(f"| {impl} | failed: {err} | | | | | |")
            else:
                md.append(f"| {impl} | {r['baseline'] / 2**20:.0f} | {r['runtime'] / 2**20:.0f} | "
                          f"{r['load'] / 2**20:.0f} | {r['peak'] / 2**20:.0f} | "
                          f"{r['peak'] / size:.2f} | {(r['peak'] - r['runtime']) / size:.2f} |")
    if not args.no_record:
        md += ["", f"Every CPU this benchmark has run on (bench/{CPU_RECORD.name}; this run "
                   f"replaced its CPU's entry):", "",
               record_cpu(shapes, med, raw, impls, bandwidth, ckpt, args)]
    text = "\n".join(md)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"\n(written to {args.out})")


def bandwidth_line(bandwidth, ckpt, med, threads) -> str:
    if not bandwidth:
        return "Read bandwidth: not measured (the probe failed)."
    limit = bandwidth_bound_ms(ckpt, bandwidth)
    line = (f"Read bandwidth ({threads} threads, STREAM-like sum of 1 GiB): {bandwidth:.1f} GB/s; "
            f"the encoder's weights ({encoder_weight_bytes(ckpt) / 1e6:.0f} MB) take "
            f"{limit:.1f} ms to read: the floor of a forward of a few tokens.")
    at = {i: m for (i, s), m in med.items() if s == (1, 8)}
    if at:
        line += " At 1x8, that floor / the measured forward: " + ", ".join(
            f"{i} {limit / m:.2f}" for i, m in sorted(at.items()))
    return line


def parser_default(ap, dest):
    return ap.get_default(dest)


if __name__ == "__main__":
    main()
