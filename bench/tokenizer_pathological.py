"""Tokenizer time on pathological inputs: minirobera (Numba and NumPy kernels) vs the reference.

    python bench/tokenizer_pathological.py [--roberta-dir ../shared/roberta-base] [--repeat 3]

Text from the wild holds pieces the pre-tokenizer cannot split: base64 blobs, runs of one
letter or digit, megabytes of spaces or of one emoji, long URLs. Each becomes one pre-token of
up to millions of byte symbols, and a merge loop that is quadratic in a piece's length stalls
on it (issue 15: "a" * 200_000 took 382 s). This script times each such input through the
full call path (`tok(text)`: ids and attention mask) of

  minirobera        long pieces merged by the compiled loop (bpe_numba.py)
  minirobera-numpy  the same with MINIROBERA_KERNELS=numpy: the Python merge_long (bpe.py)
  reference         transformers' RobertaTokenizer (the `tokenizers` library, Rust)

each in a fresh single-threaded process (RAYON_NUM_THREADS=1). Before the cases, each process
tokenizes one unrelated long run, so loading Numba's compiled loop (~0.5 s, once a process)
is not charged to the first case; that warm-up's time is printed apart. A case's time is the
best of --repeat calls, in CPU seconds (process_time). The last column, growth, is the time
at 1M characters over the time at 100k for the letter runs: ~10 means linear.
"""

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = ("minirobera", "minirobera-numpy", "reference")


def cases() -> dict:
    """name -> text; deterministic (seeded), each one pathological in its own way."""
    rng = random.Random(15)
    letters = "abcdefghijklmnopqrstuvwxyz"
    url = "https://example.com/" + "/".join(
        "".join(rng.choice(letters + "0123456789-_.") for _ in range(rng.randint(3, 30)))
        for _ in range(6_000)) + "?q=" + "&".join(f"k{n}=v{n}" for n in range(2_000))
    return {
        "letters 10k": "a" * 10_000,
        "letters 100k": "a" * 100_000,
        "letters 1M": "a" * 1_000_000,
        "random letters 1M": "".join(rng.choice(letters) for _ in range(1_000_000)),
        "digits 1M": "7" * 1_000_000,
        "base64 1 MB": base64.b64encode(rng.randbytes(750_000)).decode(),
        "emoji 1 MB": "\U0001F600" * 250_000,
        "whitespace 1 MB": " " * 1_000_000,
        "long URL": url,
    }


def load(name: str, folder: Path):
    """-> encode(text), that implementation's full call path for one text."""
    if name.startswith("minirobera"):
        from minirobera import RobertaTokenizer
        tok = RobertaTokenizer.from_pretrained(folder)
        return lambda text: tok(text)
    from transformers import AddedToken, RobertaTokenizer
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False)
    tok = RobertaTokenizer.from_pretrained(str(folder), mask_token=mask, model_max_length=512)
    return lambda text: tok(text, verbose=False)


def run_one(name: str, folder: Path, repeat: int) -> dict:
    warnings.simplefilter("ignore")  # "longer than model_max_length": expected here
    encode = load(name, folder)
    t0 = time.process_time()
    encode("b" * 50_000)  # warm-up: loads the compiled loop where there is one
    result = {"name": name, "warm_up_s": time.process_time() - t0, "cases": {}}
    for case, text in cases().items():
        best, ids = float("inf"), None
        for _ in range(repeat):
            t0 = time.process_time()
            ids = encode(text)["input_ids"]
            best = min(best, time.process_time() - t0)
        result["cases"][case] = {"s": best, "chars": len(text), "tokens": len(ids),
                                 "ids_hash": hash(tuple(ids))}
    return result


def spawn(name: str, args) -> dict:
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    if name == "minirobera-numpy":
        env["MINIROBERA_KERNELS"] = "numpy"
    cmd = [sys.executable, __file__, "--child", name, "--roberta-dir", str(args.roberta_dir),
           "--repeat", str(args.repeat)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"name": name, "skipped": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(results):
    ran = [r for r in results if "skipped" not in r]
    for r in results:
        if "skipped" in r:
            print(f"{r['name']}: skipped: {r['skipped']}")
    if not ran:
        return
    ref = next((r for r in ran if r["name"] == "reference"), None)
    names = [r["name"] for r in ran]
    head = f"{'case':<18} {'chars':>9} {'tokens':>8} " + " ".join(f"{n + ' s':>18}" for n in names)
    if ref:
        head += " " + " ".join(f"{n + ' / ref':>24}" for n in names if n != "reference")
    print(head)
    for case in ran[0]["cases"]:
        row = ran[0]["cases"][case]
        line = f"{case:<18} {row['chars']:>9,} {row['tokens']:>8,} "
        line += " ".join(f"{r['cases'][case]['s']:>18.3f}" for r in ran)
        if ref:
            line += " " + " ".join(f"{r['cases'][case]['s'] / ref['cases'][case]['s']:>24.2f}"
                                   for r in ran if r["name"] != "reference")
        same = {r["cases"][case]["ids_hash"] for r in ran}
        print(line + ("" if len(same) == 1 else "   IDS DIFFER"))
    print("warm-up (first long run, loads Numba's cached loop):",
          ", ".join(f"{r['name']} {r['warm_up_s']:.3f} s" for r in ran))
    print("growth 100k -> 1M letters (10 = linear):",
          ", ".join(f"{r['name']} {r['cases']['letters 1M']['s'] / r['cases']['letters 100k']['s']:.1f}"
                    for r in ran))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--roberta-dir", type=Path, default=Path(
        os.environ.get("MINIROBERA_ROBERTA_BASE") or REPO.parent / "shared" / "roberta-base"))
    parser.add_argument("--repeat", type=int, default=3, help="calls per case (best is kept)")
    parser.add_argument("--only", choices=IMPLEMENTATIONS, action="append")
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.roberta_dir, args.repeat)))
        return
    print("single-threaded, each implementation in a fresh process; best of "
          f"{args.repeat} calls, CPU seconds; ids compared across implementations")
    report([spawn(name, args) for name in (args.only or IMPLEMENTATIONS)])


if __name__ == "__main__":
    main()
