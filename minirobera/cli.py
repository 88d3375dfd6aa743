"""The `minirobera` command line: the task pipelines from a shell.

Owns argument parsing, reading inputs (arguments, or stdin one input per line), the
readable tables printed by default, the JSON Lines printed with --json, and exit codes:
0 done, 1 a file or download problem (hub, disk), 2 bad usage or bad input, each
reported as one line on stderr without a traceback. A stdin line that is not valid UTF-8
is reported ("not valid UTF-8 on stdin (line N)") and skipped; the other lines run, and
the exit code is 2 at the end. Leaves every computation to
pipelines.py.

    minirobera fill-mask "The capital of France is <mask>." --top-k 3
    echo "I love it" | minirobera classify --model cardiffnlp/twitter-roberta-base-sentiment-latest
    minirobera ner "My name is Wolfgang and I live in Berlin" --aggregation simple
    minirobera qa --question "Where do I live?" --context "My name is Wolfgang and I live in Berlin"
    minirobera embed "Hello world" --json

With --json each input gives one line holding exactly what the Python pipeline returns for
that input (inside a list call), so `jq` and scripts can read the output line by line.

>>> args = build_parser().parse_args(["fill-mask", "--targets", " Paris", "a <mask>",
...                                   "--targets", " Rome", "--top-k", "2"])
>>> args.texts, args.targets, args.top_k
(['a <mask>'], [' Paris', ' Rome'], 2)
"""

import argparse
import json
import os
import sys
import warnings
from typing import List, Optional

from .bpe import find_surrogate
from .pipelines import DEFAULT_MODELS, InputTooLongError, pipeline

AGGREGATIONS = ["none", "simple", "first", "average", "max"]


class UsageError(Exception):
    """Bad usage found after argparse (e.g. no text anywhere): exit code 2."""


class ArgumentsError(SystemExit):
    """argparse refused the arguments; `message` is the one line to show. Exit code 2."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: "minirobera fill-mask: error: ..." and exit code 2.

    argparse prints the whole usage block before its error; here the error alone says what
    was wrong and where --help is, like every other error of this command line. The error
    is raised (ArgumentsError, a SystemExit with code 2) so `main` writes it to its stderr.
    """

    def error(self, message: str):
        raise ArgumentsError(f"{self.prog}: error: {message} (see {self.prog} --help)")


# ==================================================================== arguments

def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per task (sub-parsers are `Parser`s too)."""
    parser = Parser(
        prog="minirobera", description="RoBERTa task pipelines in NumPy, equal to transformers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_fill_mask, _add_classify, _add_ner, _add_qa, _add_embed,
                _add_convert_fairseq):
        add(sub)
    parser.commands = sub.choices  # {"fill-mask": its Parser, ...}
    return parser


def _add_fill_mask(sub):
    p = _command(sub, "fill-mask", "predict the token behind each <mask>", "fill-mask")
    p.add_argument("--top-k", type=int, default=5, help="predictions per mask (default 5)")
    # One target per flag (action="append"): a flag taking several values would swallow the
    # TEXT after it, and a comma list cannot hold "," itself, which is a token too.
    p.add_argument("--targets", "--target", action="append", metavar="TOKEN",
                   help="score only this token; repeat the flag for more: --targets ' Paris' "
                        "--targets ' Rome' (mind the leading space of a word)")
    p.add_argument("--truncate", action="store_true",
                   help="cut texts longer than the model takes (the <mask> must survive)")


def _add_classify(sub):
    p = _command(sub, "classify", "label each text (sentiment, topics, ...)",
                 "text-classification")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--top-k", type=int, help="show the k best labels")
    group.add_argument("--all", action="store_true", help="show every label")
    p.add_argument("--function", choices=["softmax", "sigmoid", "none"],
                   help="score function (default: what the model's config implies)")
    p.add_argument("--pair", metavar="TEXT", help="second text of a pair, for every input")
    p.add_argument("--truncate", action="store_true", help="cut texts longer than the model")


def _add_ner(sub):
    p = _command(sub, "ner", "label each token or word (named entities)",
                 "token-classification")
    p.add_argument("--aggregation", choices=AGGREGATIONS, default="simple",
                   help="group tokens into words/entities (default simple; none = per token)")
    p.add_argument("--keep-all", action="store_true", help="also show the 'O' (outside) label")
    p.add_argument("--stride", type=int, help="overlap of the windows over long texts")


def _add_qa(sub):
    p = _command(sub, "qa", "answer a question from a context", "question-answering",
                 texts=False)
    p.add_argument("--question", "-q", required=True)
    p.add_argument("--context", "-c", help="the text to search (default: all of stdin)")
    p.add_argument("--top-k", type=int, default=1, help="number of answers (default 1)")
    p.add_argument("--impossible", action="store_true",
                   help="allow the empty answer (handle_impossible_answer)")
    p.add_argument("--max-answer-len", type=int, default=15, help="in tokens (default 15)")


def _add_embed(sub):
    p = _command(sub, "embed", "the last hidden state of each text", "feature-extraction")
    p.add_argument("--truncate", action="store_true", help="cut texts longer than the model")


def _add_convert_fairseq(sub):
    help_text = ("convert a fairseq RoBERTa checkpoint (model.pt + dict.txt) into a folder "
                 "transformers loads: config.json, model.safetensors, tokenizer files")
    p = sub.add_parser("convert-fairseq", help=help_text, description=help_text)
    p.add_argument("src", metavar="SRC.pt", help="the fairseq checkpoint")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write")
    p.add_argument("--dict", help="dict.txt (default: the one beside SRC.pt)")
    p.add_argument("--model-class", default="RobertaForMaskedLM",
                   help="the transformers class to write (default RobertaForMaskedLM)")
    p.add_argument("--head", help="the classification head to keep, when there are several")
    p.set_defaults(task="convert-fairseq")


def _convert_fairseq(args, stdout) -> int:
    from .fairseq import convert
    for path in convert(args.src, args.out_dir, dict_path=args.dict,
                        model_class=args.model_class, head=args.head):
        stdout.write(f"wrote {path}\n")
    return 0


def _command(sub, name, help_text, task, texts=True):
    p = sub.add_parser(name, help=help_text, description=help_text)
    if texts:
        p.add_argument("texts", nargs="*", metavar="TEXT",
                       help="input texts; none: read stdin, one text per line")
    p.add_argument("--model", "-m", default=DEFAULT_MODELS[task],
                   help=f"folder or hub repo id (default {DEFAULT_MODELS[task]})")
    p.add_argument("--revision", help="branch, tag or commit on the hub (default main)")
    p.add_argument("--json", action="store_true", help="JSON Lines: one result per input")
    p.set_defaults(task=task)
    return p


def read_texts(texts: List[str], stdin, bad_lines: Optional[List[int]] = None) -> List[str]:
    """The TEXT arguments, else the non-empty lines of stdin (UsageError when there are none).

    A stdin line that is not valid UTF-8 is left out and its number (from 1) appended to
    `bad_lines`, so one bad line does not stop the others; without `bad_lines` it is a
    UsageError.

    >>> import io
    >>> read_texts([], io.StringIO("first line\\n\\nsecond\\n"))
    ['first line', 'second']
    >>> bad = []
    >>> read_texts([], io.BytesIO(b"caf\\xe9\\nok\\n"), bad), bad
    (['ok'], [1])
    """
    if texts:
        return texts
    if stdin is None or stdin.isatty():
        raise UsageError("no text given: pass TEXT arguments or pipe text on stdin "
                         "(one input per line)")
    lines, bad = [], []
    for number, line in enumerate(_stdin_lines(stdin), 1):
        if line is None:
            bad.append(number)
        elif line.strip():
            lines.append(line)
    if bad and bad_lines is None:
        raise UsageError(not_utf8(bad[0]))
    if bad_lines is not None:
        bad_lines += bad
    if not lines and not bad:
        raise UsageError("stdin was empty: pass TEXT arguments or pipe one input per line")
    return lines


def not_utf8(line: int) -> str:
    return f"not valid UTF-8 on stdin (line {line})"


def _stdin_lines(stdin):
    """Each line of stdin without its line end, or None where it is not valid UTF-8.

    Bytes are read where stdin has them (sys.stdin.buffer), so the check is UTF-8 itself
    whatever the locale; a text stream's undecodable bytes show up as lone surrogates
    (Python's surrogateescape), which are bad lines too.
    """
    raw = getattr(stdin, "buffer", stdin)
    for line in raw:
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                yield None
                continue
        line = line.rstrip("\r\n")
        yield None if find_surrogate(line) >= 0 else line


# ==================================================================== running

def run(args, stdin, bad_lines: Optional[List[int]] = None):
    """Run the pipeline of `args.task`; return (inputs, one result per input). The numbers
    of stdin lines left out as not UTF-8 are appended to `bad_lines`."""
    if args.task == "question-answering":
        context = args.context if args.context is not None else _read_all(stdin)
        pipe = pipeline(args.task, args.model, revision=args.revision)
        result = pipe(question=args.question, context=context, top_k=args.top_k,
                      handle_impossible_answer=args.impossible,
                      max_answer_len=args.max_answer_len)
        return [args.question], [result]
    texts = read_texts(args.texts, stdin, bad_lines)
    if not texts:
        return [], []
    pipe = pipeline(args.task, args.model, revision=args.revision)
    options, inputs = _options(args), texts
    if args.task == "fill-mask" and args.targets:
        options["targets"] = vocab_spellings(pipe.tokenizer, args.targets)
    if args.task == "text-classification" and args.pair is not None:
        inputs = [{"text": t, "text_pair": args.pair} for t in texts]
    results = pipe(inputs, **options)
    if args.task == "fill-mask" and len(inputs) == 1:
        results = [results]  # the pipeline unwraps a list of one text
    return texts, results


def vocab_spellings(tokenizer, targets: List[str]) -> List[str]:
    """Each target as its vocabulary entry where the text is exactly one token (' Paris' ->
    'ĠParis'), so --targets ' Paris', as --help writes it, scores that token without the
    pipeline's "not in the vocabulary" warning; any other target is passed on unchanged
    (the pipeline then takes its first token, and says so).

    >>> from minirobera.tokenizer import RobertaTokenizer, _tiny
    >>> vocab_spellings(RobertaTokenizer(*_tiny()), ["ab", " ", " ab"])
    ['ab', 'Ġ', ' ab']
    """
    vocab, out = tokenizer.get_vocab(), []
    for target in targets:
        ids = [] if target in vocab else tokenizer(target, add_special_tokens=False)["input_ids"]
        out.append(tokenizer.convert_ids_to_tokens(ids[0]) if len(ids) == 1 else target)
    return out


def _read_all(stdin) -> str:
    if stdin is None or stdin.isatty():
        raise UsageError("no context given: pass --context TEXT or pipe the context on stdin")
    raw = getattr(stdin, "buffer", stdin).read()
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as e:
        raise UsageError(not_utf8(raw.count(b"\n", 0, e.start) + 1)) from None
    if find_surrogate(text) >= 0:
        raise UsageError(not_utf8(text.count("\n", 0, find_surrogate(text)) + 1))
    text = text.rstrip("\r\n")  # the newline `echo` adds is not part of the text
    if not text.strip():
        raise UsageError("stdin was empty: pass --context TEXT or pipe the context on stdin")
    return text


def _options(args) -> dict:
    """Command-line flags -> the pipeline's call options."""
    if args.task == "fill-mask":
        options = {"top_k": args.top_k, "targets": args.targets}
        if args.truncate:
            options["tokenizer_kwargs"] = {"truncation": True}
        return options
    if args.task == "text-classification":
        options = {"function_to_apply": args.function, "truncation": args.truncate or None}
        if args.all:
            options["top_k"] = None
        elif args.top_k is not None:
            options["top_k"] = args.top_k
        return options
    if args.task == "token-classification":
        return {"aggregation_strategy": args.aggregation, "stride": args.stride,
                "ignore_labels": [] if args.keep_all else None}
    return {"truncation": args.truncate or None}  # feature-extraction


# ==================================================================== printing

def print_results(task: str, inputs: List[str], results: list, as_json: bool, out) -> None:
    """JSON Lines, or one readable table per input.

    >>> results = [[{"label": "positive", "score": 0.98765}], [{"label": "negative", "score": 0.5}]]
    >>> print_results("text-classification", ["I love it", "Meh."], results, False, sys.stdout)
    I love it
      label     score
      positive  0.9877
    <BLANKLINE>
    Meh.
      label     score
      negative  0.5000
    >>> print_results("text-classification", ["I love it"], results[:1], True, sys.stdout)
    [{"label": "positive", "score": 0.98765}]
    """
    for i, (text, result) in enumerate(zip(inputs, results)):
        if as_json:
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
            continue
        if i:
            out.write("\n")
        out.write(f"{_short(text, 100)}\n")
        for line in TABLES[task](result):
            out.write(f"  {line}\n".rstrip() + "\n")


def table(headers: List[str], rows: List[list]) -> List[str]:
    """Left-aligned columns, two spaces apart; floats with 4 decimals.

    >>> for line in table(["label", "score"], [["positive", 0.98765], ["neutral", 0.01]]):
    ...     print(line)
    label     score
    positive  0.9877
    neutral   0.0100
    """
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
            for row in [headers] + cells]


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _short(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[:width - 3] + "..."


def _fill_mask_table(result) -> List[str]:
    per_mask = result if result and isinstance(result[0], list) else [result]
    lines = []
    for m, predictions in enumerate(per_mask):
        if len(per_mask) > 1:
            lines.append(f"mask {m + 1} of {len(per_mask)}:")
        if not predictions:  # --top-k 0
            lines.append("(no predictions)")
            continue
        lines += table(["score", "token", "token_str", "sequence"],
                       [[p["score"], p["token"], repr(p["token_str"]), _short(p["sequence"], 70)]
                        for p in predictions])
    return lines


def _classify_table(result) -> List[str]:
    rows = result if isinstance(result, list) else [result]
    return table(["label", "score"], [[r["label"], r["score"]] for r in rows])


def _ner_table(result) -> List[str]:
    if not result:
        return ["(no entities)"]
    key = "entity_group" if "entity_group" in result[0] else "entity"
    return table([key, "score", "start", "end", "word"],
                 [[e[key], e["score"], e["start"], e["end"], repr(e["word"])] for e in result])


def _qa_table(result) -> List[str]:
    rows = result if isinstance(result, list) else [result]
    return table(["score", "start", "end", "answer"],
                 [[a["score"], a["start"], a["end"], repr(a["answer"])] for a in rows])


def _embed_table(result) -> List[str]:
    vectors = result[0]  # [1][T][D] -> [T][D]
    shown = min(6, len(vectors[0]))
    lines = [f"{len(vectors)} tokens x {len(vectors[0])} dimensions (first {shown} shown; "
             "--json for all)"]
    lines += table(["token"] + [f"d{j}" for j in range(shown)],
                   [[t] + [float(v) for v in row[:shown]] for t, row in enumerate(vectors)])
    return lines


TABLES = {"fill-mask": _fill_mask_table, "text-classification": _classify_table,
          "token-classification": _ner_table, "question-answering": _qa_table,
          "feature-extraction": _embed_table}


# ==================================================================== entry point

def main(argv: Optional[List[str]] = None, stdin=None, stdout=None, stderr=None) -> int:
    """Run the command line; return the exit code (the console script exits with it).

    >>> import io
    >>> err = io.StringIO()
    >>> main(["fill-mask", "--top-k", "abc"], stderr=err)
    2
    >>> print(err.getvalue(), end="")  # doctest: +ELLIPSIS
    minirobera fill-mask: error: argument --top-k: invalid int value: 'abc' (see ... --help)
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # argparse would blame "minirobera"; name the command they were given to
            parser.commands[args.command].error(
                f"unrecognized arguments: {' '.join(unknown)}")
    except ArgumentsError as e:  # one line, as every other error here
        stderr.write(e.message + "\n")
        return 2
    except SystemExit as exit_:  # --help: argparse printed it
        return int(exit_.code or 0)
    prog = f"minirobera {args.command}"
    bad_lines: List[int] = []
    try:
        if args.command == "convert-fairseq":
            return _convert_fairseq(args, stdout)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inputs, results = run(args, stdin, bad_lines)
        _warn(stderr, prog, caught)
        print_results(args.task, inputs, results, args.json, stdout)
    except InputTooLongError as e:
        return _fail(stderr, prog, _too_long_message(args, e), 2)
    except (UsageError, ValueError, TypeError) as e:
        return _fail(stderr, prog, e, 2)
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        _silence_stdout()
        return 0
    except OSError as e:  # missing files, hub errors (HubError is an OSError), disk
        return _fail(stderr, prog, e, 1)
    except KeyboardInterrupt:
        return 130
    for line in bad_lines:  # the other lines ran; these are reported, and the exit code says so
        _fail(stderr, prog, f"{not_utf8(line)}: line skipped", 2)
    return 2 if bad_lines else 0


def _too_long_message(args, error: InputTooLongError) -> str:
    """The pipeline's advice names Python arguments; on the command line it is --truncate."""
    if not hasattr(args, "truncate"):  # ner and qa cut or split long texts themselves
        return str(error)
    keep = ("; the <mask> must be among the kept tokens" if args.task == "fill-mask" else "")
    return (f"an input is {error.length} tokens long but the model takes at most {error.limit}; "
            f"pass --truncate to keep the first {error.limit} tokens{keep}")


def _warn(stderr, prog: str, caught) -> None:
    """Each distinct warning as one line, "minirobera TASK: warning: ...": the message,
    never the file and source line Python's default display adds."""
    for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
        stderr.write(f"{prog}: warning: {message}\n")


def _fail(stderr, prog: str, error, code: int) -> int:
    message = " ".join(str(error).split()) or type(error).__name__
    stderr.write(f"{prog}: error: {message}\n")
    return code


def _silence_stdout() -> None:
    # Python flushes stdout again at exit, which would raise BrokenPipeError once more.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. under pytest)
        pass
