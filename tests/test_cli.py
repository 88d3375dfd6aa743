"""The `minirobera` command line: tables, --json, stdin, exit codes.

Subprocess runs (`python -m minirobera ...`, as a user types it) check the real entry
point, stdin and exit codes; the rest call cli.main in-process to stay fast. JSON results
are compared with the Python pipelines, whose parity with transformers test_pipelines.py
holds.
"""

import io
import json
import subprocess
import sys

import pytest


from minirobera import cli  # noqa: E402
from minirobera.pipelines import pipeline  # noqa: E402



def run_cli(*args, stdin=""):
    """`python -m minirobera ARGS` in a subprocess -> CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "minirobera", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def call(*args, stdin=None):
    """cli.main in-process -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), stdin=stdin if stdin is not None else io.StringIO(""),
                    stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


# ============================================================================ subprocess

def test_fill_mask_table(tiny):
    done = run_cli("fill-mask", "Hello I'm a <mask> model.", "--model", tiny("mlm"),
                   "--top-k", "3")
    assert done.returncode == 0, done.stderr
    expected = pipeline("fill-mask", tiny("mlm"))("Hello I'm a <mask> model.", top_k=3)
    lines = done.stdout.splitlines()
    assert lines[0] == "Hello I'm a <mask> model."
    assert lines[1].split() == ["score", "token", "token_str", "sequence"]
    for line, p in zip(lines[2:], expected):
        assert line.split()[:2] == [f"{p['score']:.4f}", str(p["token"])]
        assert repr(p["token_str"]) in line and line.endswith(p["sequence"])
    assert len(lines) == 2 + 3


def test_stdin_one_input_per_line_as_json(tiny):
    texts = ["Hello <mask>.", "The <mask> of <mask>.", "A <mask> day"]
    done = run_cli("fill-mask", "--model", tiny("mlm"), "--top-k", "2", "--json",
                   "--targets", "\u0120Paris", "--targets", "\u0120day", "--target", "\u0120world",
                   stdin="\n".join(texts[:2]) + "\n\n" + texts[2] + "\n")
    assert done.returncode == 0, done.stderr
    expected = pipeline("fill-mask", tiny("mlm"))(texts, top_k=2,
                                                   targets=["\u0120Paris", "\u0120day",
                                                            "\u0120world"])
    assert json_lines(done.stdout) == json.loads(json.dumps(expected))


@pytest.mark.parametrize("args,code,prefix,message", [
    (["fill-mask", "Hello world", "--model", "{mlm}"], 2, "minirobera fill-mask",
     "No mask_token (<mask>) found"),
    (["fill-mask", "--model", "{mlm}"], 2, "minirobera fill-mask", "stdin was empty"),
    (["fill-mask", "a <mask>", "--model", "{empty}"], 1, "minirobera fill-mask", "not found"),
    # argparse's own errors: one line too (no usage block), exit code 2
    (["fill-mask", "a <mask>", "--top-k", "many"], 2, "minirobera fill-mask",
     "argument --top-k: invalid int value: 'many' (see minirobera fill-mask --help)"),
    (["translate", "x"], 2, "minirobera", "invalid choice: 'translate'"),
    ([], 2, "minirobera", "the following arguments are required: COMMAND"),
    (["qa", "--context", "x"], 2, "minirobera qa", "required: --question"),
    (["fill-mask", "a <mask>", "--bogus"], 2, "minirobera fill-mask",
     "unrecognized arguments: --bogus (see minirobera fill-mask --help)"),
], ids=["no-mask", "empty-stdin", "no-checkpoint", "bad-int", "bad-command", "no-command",
        "missing-required", "unknown-flag"])
def test_exit_codes_and_one_line_errors(args, code, prefix, message, tiny, tmp_path):
    args = [a.format(mlm=tiny("mlm"), empty=tmp_path) for a in args]
    done = run_cli(*args, stdin="")
    assert done.returncode == code, (done.stdout, done.stderr)
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"{prefix}: error: "), done.stderr


def test_the_command_line_never_imports_the_reference():
    code = ("import sys, minirobera.cli, minirobera.pipelines, minirobera.modeling; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


# ============================================================================ in-process

def test_classify_table_and_json(tiny):
    code, out, _ = call("classify", "I love it", "Meh.", "--model", tiny("sentiment"))
    assert code == 0
    best = pipeline("text-classification", tiny("sentiment"))(["I love it", "Meh."])
    blocks = out.split("\n\n")
    for block, result in zip(blocks, best):
        assert block.splitlines()[2].split() == [result["label"], f"{result['score']:.4f}"]
    code, out, _ = call("classify", "I love it", "--all", "--json", "--model", tiny("sentiment"))
    assert json_lines(out) == [pipeline("text-classification", tiny("sentiment"))(
        "I love it", top_k=None)]


def test_classify_pairs_and_function(tiny):
    code, out, _ = call("classify", "Is it good?", "--pair", "Yes.", "--function", "sigmoid",
                        "--top-k", "2", "--json", "--model", tiny("sentiment"))
    assert code == 0
    expected = pipeline("text-classification", tiny("sentiment"))(
        {"text": "Is it good?", "text_pair": "Yes."}, function_to_apply="sigmoid", top_k=2)
    assert json_lines(out) == [expected]


@pytest.mark.parametrize("aggregation", ["none", "simple", "max"])
def test_ner(aggregation, tiny):
    text = "My name is Wolfgang and I live in Berlin."
    code, out, _ = call("ner", text, "--aggregation", aggregation, "--keep-all", "--json",
                        "--model", tiny("ner"))
    assert code == 0
    expected = pipeline("ner", tiny("ner"))(text, aggregation_strategy=aggregation,
                                            ignore_labels=[])
    assert json_lines(out) == [json.loads(json.dumps(expected))]
    code, out, _ = call("ner", text, "--aggregation", aggregation, "--model", tiny("ner"))
    key = "entity" if aggregation == "none" else "entity_group"
    assert out.splitlines()[1].split() == [key, "score", "start", "end", "word"]


def test_qa_context_from_argument_or_stdin(tiny):
    context = "My name is Wolfgang and I live in Berlin."
    expected = pipeline("question-answering", tiny("qa"))(question="Where?", context=context,
                                                           top_k=2)
    code, out, _ = call("qa", "-q", "Where?", "-c", context, "--top-k", "2", "--json",
                        "--model", tiny("qa"))
    assert code == 0 and json_lines(out) == [expected]
    code, out, _ = call("qa", "-q", "Where?", "--top-k", "2", "--model", tiny("qa"),
                        stdin=io.StringIO(context + "\n"))
    assert code == 0
    assert out.splitlines()[2].split()[:3] == [f"{expected[0]['score']:.4f}",
                                               str(expected[0]["start"]),
                                               str(expected[0]["end"])]


def test_embed(tiny):
    code, out, _ = call("embed", "Hello world", "--json", "--model", tiny("base"))
    assert code == 0
    [vectors] = json_lines(out)
    assert vectors == pipeline("feature-extraction", tiny("base"))("Hello world")
    code, out, _ = call("embed", "Hello world", "--model", tiny("base"))
    assert "4 tokens x 16 dimensions" in out


def test_targets_flag_does_not_swallow_the_text(tiny, capsys):
    code, out, err = call("fill-mask", "--targets", " Paris", "Hello <mask>", "--targets",
                          " London", "--json", "--model", tiny("mlm"))
    assert code == 0, err
    expected = pipeline("fill-mask", tiny("mlm"))("Hello <mask>", targets=[" Paris", " London"])
    assert json_lines(out) == [expected]
    assert call("fill-mask", "--help")[0] == 0  # argparse prints help to sys.stdout
    assert "repeat the flag for more" in " ".join(capsys.readouterr().out.split())


def test_argparse_errors_in_process_go_to_the_given_stderr(tiny):
    code, out, err = call("fill-mask", "a <mask>", "--top-k", "abc")
    assert (code, out) == (2, "")
    assert err == ("minirobera fill-mask: error: argument --top-k: invalid int value: 'abc' "
                   "(see minirobera fill-mask --help)\n")


@pytest.mark.parametrize("command,flags,extra", [
    ("fill-mask", ["--model", "{mlm}"], "; the <mask> must be among the kept tokens"),
    ("classify", ["--model", "{sentiment}"], ""),
    ("embed", ["--model", "{base}"], ""),
])
def test_too_long_points_at_truncate(command, flags, extra, tiny):
    flags = [f.format(mlm=tiny("mlm"), sentiment=tiny("sentiment"), base=tiny("base"))
             for f in flags]
    code, _, err = call(command, "word " * 600 + "<mask>.", *flags)
    assert code == 2
    assert err == (f"minirobera {command}: error: an input is 604 tokens long but the model "
                   f"takes at most 512; pass --truncate to keep the first 512 tokens{extra}\n")
    assert "tokenizer_kwargs" not in err and "truncation=True" not in err
    code, out, err = call(command, "word " * 600 + "<mask>.", "--truncate", "--json", *flags)
    if command == "fill-mask":  # the <mask> at the end is cut away: transformers' error
        assert code == 2 and "No mask_token" in err
    else:
        assert code == 0 and len(json_lines(out)) == 1


def test_top_k_zero_prints_no_predictions(tiny):
    code, out, _ = call("fill-mask", "Hello <mask>.", "--top-k", "0", "--model", tiny("mlm"))
    assert code == 0 and out.splitlines() == ["Hello <mask>.", "  (no predictions)"]
    code, out, _ = call("fill-mask", "Hello <mask>.", "--top-k", "0", "--json",
                        "--model", tiny("mlm"))
    assert json_lines(out) == [[]]


def test_bad_option_values_exit_2(tiny):
    code, _, err = call("fill-mask", "a <mask>", "--top-k", "-1", "--model", tiny("mlm"))
    assert code == 2 and err.startswith("minirobera fill-mask: error: top_k must be >= 0")
    code, _, err = call("qa", "-q", "Who?", "--model", tiny("qa"))
    assert code == 2 and "stdin was empty" in err
    code, _, err = call("ner", "x", "--aggregation", "none", "--stride", "4",
                        "--model", tiny("ner"))
    assert code == 2 and "stride needs" in err


# ============================================================================ bytes that are not UTF-8

def test_bad_utf8_line_is_reported_and_the_others_run(tiny):
    """Issue 22 item 8: one bad line is named (by number) and skipped; the batch goes on and
    the exit code is 2 at the end. In a subprocess, so the real sys.stdin reads the bytes."""
    stdin = b"Hello <mask>.\ncaf\xe9 <mask>\n\nA <mask> day\n\xff\xfe\n"
    done = subprocess.run([sys.executable, "-m", "minirobera", "fill-mask", "--model", tiny("mlm"),
                           "--top-k", "2", "--json"], input=stdin, capture_output=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        "minirobera fill-mask: error: not valid UTF-8 on stdin (line 2): line skipped",
        "minirobera fill-mask: error: not valid UTF-8 on stdin (line 5): line skipped"]
    expected = pipeline("fill-mask", tiny("mlm"))(["Hello <mask>.", "A <mask> day"], top_k=2)
    assert json_lines(done.stdout.decode()) == json.loads(json.dumps(expected))


def test_bad_utf8_in_process_and_in_a_text_stream(tiny):
    bad = io.TextIOWrapper(io.BytesIO(b"ok <mask>\n\xc3(\n"), encoding="utf-8")
    code, out, err = call("fill-mask", "--model", tiny("mlm"), "--json", stdin=bad)
    assert code == 2 and len(json_lines(out)) == 1
    assert err == "minirobera fill-mask: error: not valid UTF-8 on stdin (line 2): line skipped\n"
    # a text stream that decoded with surrogateescape (a C locale) carries the bad byte as a
    # lone surrogate: the same report, never "lone surrogate"
    escaped = io.StringIO(b"x \xe9 <mask>\nok <mask>\n".decode("utf-8", "surrogateescape"))
    code, out, err = call("fill-mask", "--model", tiny("mlm"), "--json", stdin=escaped)
    assert code == 2 and len(json_lines(out)) == 1 and "surrogate" not in err
    assert "not valid UTF-8 on stdin (line 1)" in err


def test_only_bad_lines_exit_2_without_running(tiny):
    code, out, err = call("fill-mask", "--model", tiny("mlm"),
                          stdin=io.TextIOWrapper(io.BytesIO(b"\xff\n"), encoding="utf-8"))
    assert (code, out) == (2, "") and "not valid UTF-8 on stdin (line 1)" in err


def test_bad_utf8_qa_context_names_the_line(tiny):
    stdin = io.TextIOWrapper(io.BytesIO(b"My name is Wolfgang.\nI live in \xe9Berlin\n"),
                             encoding="utf-8")
    code, out, err = call("qa", "-q", "Where?", "--model", tiny("qa"), stdin=stdin)
    assert (code, out) == (2, "")
    assert err == "minirobera qa: error: not valid UTF-8 on stdin (line 2)\n"


# ============================================================================ warnings (issue 21, item 6)

def test_targets_as_help_writes_them_do_not_warn(tiny, caplog):
    code, out, err = call("fill-mask", "Hello <mask>.", "--targets", " Paris", "--targets", " day",
                          "--json", "--model", tiny("mlm"))
    assert code == 0 and err == "" and not caplog.records
    expected = pipeline("fill-mask", tiny("mlm"))("Hello <mask>.", targets=["\u0120Paris", "\u0120day"])
    assert json_lines(out) == [json.loads(json.dumps(expected))]
    assert {p["token_str"] for p in expected} == {" Paris", " day"}
    # a target of two tokens still falls back to its first, and says so
    code, out, err = call("fill-mask", "Hello <mask>.", "--targets", " New York", "--json",
                          "--model", tiny("mlm"))
    assert code == 0 and "' New York' is not in the vocabulary" in caplog.text
    assert json_lines(out)[0][0]["token_str"] == " New"


def test_warnings_are_one_line_each_without_internals(tiny):
    """Loading an MLM checkpoint as a bare encoder warns about unused / new weights; the CLI
    shows each message once, on one line, without Python's file and source-line echo."""
    done = run_cli("embed", "Hello", "--model", tiny("mlm"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("minirobera embed: warning: Some weights ")
                                   for line in lines)
    assert "pipelines.py" not in done.stderr and "from_pretrained(" not in done.stderr
