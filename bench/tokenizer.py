"""Tokenizer speed: minirobera vs the reference (tokenizers, via transformers) vs tiktoken.

    python bench/tokenizer.py [--roberta-dir ../shared/roberta-base] [--mb 4] [--repeat 3]

Encodes a few MB of English prose found on this machine (license texts under /usr/share and
standard-library docstrings) through each tokenizer's full call path: one batch of lines in,
input ids + attention mask out. Every implementation runs single-threaded
(RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false) in its own fresh process:

  cold  the first pass in that process (empty caches; loading the files is timed apart),
  warm  the best of the next `--repeat` passes over the same text.

MB/s are UTF-8 megabytes per second of CPU time (process_time), which is steadier than wall
time on a shared machine; wall-clock figures are printed too. tiktoken (ranks derived from the
same merges.txt, ids only, no special tokens or mask, a loop over lines) is an upper anchor;
it is skipped with a message when not installed.
"""

import argparse
import ast
import glob
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = ("minirobera", "reference", "tiktoken")


def build_corpus(megabytes: float) -> str:
    """Deterministic English prose from this machine: licenses, then stdlib docstrings."""
    target, parts, total, seen = int(megabytes * 1e6), [], 0, set()
    licenses = sorted(glob.glob("/usr/share/common-licenses/*")) + \
        sorted(glob.glob("/usr/share/doc/*/copyright"))
    for path in licenses:
        if total > target // 2:
            break
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        digest = hashlib.sha1(text.encode()).digest()
        if digest not in seen:
            seen.add(digest)
            parts.append(text)
            total += len(text)
    for text in _stdlib_docstrings():
        if total > target:
            break
        parts.append(text)
        total += len(text)
    return "\n".join(parts)


def _stdlib_docstrings():
    lib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for path in sorted(lib.glob("*.py")) + sorted(lib.glob("*/*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


# --- one implementation, in its own process ------------------------------------------------

def load(name: str, folder: Path):
    """-> encode(lines), a function running that implementation's full batch path."""
    if name == "minirobera":
        from minirobera import RobertaTokenizer
        tok = RobertaTokenizer.from_pretrained(folder)
        return lambda lines: tok(lines)
    if name == "reference":
        from transformers import AddedToken, RobertaTokenizer
        mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)
        tok = RobertaTokenizer.from_pretrained(str(folder), mask_token=mask, model_max_length=512)
        return lambda lines: tok(lines, verbose=False)
    if name == "tiktoken":
        enc = tiktoken_encoding(folder)
        return lambda lines: [enc.encode_ordinary(line) for line in lines]
    raise ValueError(f"unknown implementation {name!r}; choose from {IMPLEMENTATIONS}")


def tiktoken_encoding(folder: Path):
    """A tiktoken Encoding whose ranks come from the same merges.txt (rank = merge order)."""
    import tiktoken
    from minirobera.bpe import BYTE_DECODER, read_merges_txt
    ranks = {bytes([b]): i for i, b in enumerate(sorted(BYTE_DECODER.values()))}
    for a, b in read_merges_txt(str(folder / "merges.txt")):
        merged = bytes(BYTE_DECODER[c] for c in a + b)
        ranks.setdefault(merged, len(ranks))
    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    return tiktoken.Encoding("roberta-merges", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={})


def run_one(name: str, folder: Path, corpus_path: Path, repeat: int) -> dict:
    text = corpus_path.read_text(encoding="utf-8")
    lines = [line for line in text.split("\n") if line]
    megabytes = len(text.encode("utf-8")) / 1e6
    t0 = time.process_time()
    encode = load(name, folder)
    load_s = time.process_time() - t0
    timings = []
    for _ in range(1 + repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        out = encode(lines)
        timings.append((time.process_time() - c0, time.perf_counter() - w0))
        del out
    (cold_cpu, cold_wall), warm = timings[0], min(timings[1:])
    return {"name": name, "MB": megabytes, "lines": len(lines), "load_s": load_s,
            "cold": megabytes / cold_cpu, "warm": megabytes / warm[0],
            "cold_wall": megabytes / cold_wall, "warm_wall": megabytes / warm[1]}


def spawn(name: str, args, corpus_path: Path):
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, __file__, "--child", name, "--corpus", str(corpus_path),
           "--roberta-dir", str(args.roberta_dir), "--repeat", str(args.repeat)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "skipped": last}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(results):
    ref = next((r for r in results if r["name"] == "reference" and "skipped" not in r), None)
    print(f"{'implementation':<12} {'cold MB/s':>10} {'warm MB/s':>10} {'cold x ref':>11} "
          f"{'warm x ref':>11} {'load s':>7}   (wall: cold, warm MB/s)")
    for r in results:
        if "skipped" in r:
            print(f"{r['name']:<12} skipped: {r['skipped']}")
            continue
        ratio = (f"{r['cold'] / ref['cold']:>10.2f}x {r['warm'] / ref['warm']:>10.2f}x"
                 if ref else f"{'-':>11} {'-':>11}")
        print(f"{r['name']:<12} {r['cold']:>10.2f} {r['warm']:>10.2f} {ratio} {r['load_s']:>7.2f}"
              f"   ({r['cold_wall']:.2f}, {r['warm_wall']:.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--roberta-dir", type=Path, default=Path(
        os.environ.get("MINIROBERA_ROBERTA_BASE") or REPO.parent / "shared" / "roberta-base"))
    parser.add_argument("--mb", type=float, default=4.0, help="corpus size in MB")
    parser.add_argument("--repeat", type=int, default=3, help="warm passes (best is kept)")
    parser.add_argument("--only", choices=IMPLEMENTATIONS, action="append")
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.child == "tiktoken":
            try:
                import tiktoken  # noqa: F401
            except ImportError:
                sys.exit("tiktoken is not installed (pip install tiktoken)")
        print(json.dumps(run_one(args.child, args.roberta_dir, args.corpus, args.repeat)))
        return
    corpus_path = Path(os.environ.get("TMPDIR", "/tmp")) / "minirobera-bench-corpus.txt"
    corpus_path.write_text(build_corpus(args.mb), encoding="utf-8")
    results = [spawn(name, args, corpus_path) for name in (args.only or IMPLEMENTATIONS)]
    first = next((r for r in results if "skipped" not in r), None)
    if first:
        print(f"corpus: {first['MB']:.2f} MB, {first['lines']} lines; single-threaded, "
              f"each implementation in a fresh process; CPU time")
    report(results)


if __name__ == "__main__":
    main()
