"""A hostile hub: the client against a real HTTP server that lies (tests/hub_server.py).

Issue 22, item 5 (and issue 21, item 5: the first run without a network). Every answer a
server sends is untrusted: sizes, encodings, commit hashes, ETags, redirects, names. Each test
sets up one attack and expects the library's own error (HubError and its subclasses) with a
clear message, in under a second, with nothing half-written left in the cache; the size
attacks also bound what the client read (the server counts the bytes it got rid of, and one
test measures peak RSS in a fresh interpreter). A seeded fuzz run mutates headers and bodies
at random and accepts only a correct download or a HubError (MINIROBERA_HUB_FUZZ_CASES and
MINIROBERA_HUB_FUZZ_SEED run it longer, or on other cases: 4,500 more passed when it was written).

No mocks of requests: the bytes go through real sockets on 127.0.0.1.
"""

import gzip
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # hub_server.py is a plain helper module beside us
import hub_server as hub_server_module  # noqa: E402
from hub_server import default_lfs, git_blob_sha1, hub_server, sha256, tree, use_hub  # noqa: E402,F401 (fixture)

from minirobera import hub  # noqa: E402

REPO = "evil-org/tiny"
CONFIG = json.dumps({"model_type": "roberta", "hidden_size": 8}).encode()
WEIGHTS = random.Random(22).randbytes(100_000)   # "LFS": through the CDN, etag = sha256
TWELVE = b"twelve bytes"                         # the case: HEAD says 12
ZEROS = bytes(5_000_000)                         # compresses to ~5 KB with gzip
FILES = {"config.json": CONFIG, "model.safetensors": WEIGHTS, "twelve.txt": TWELVE,
         "zeros.txt": ZEROS, "empty.txt": b"", "empty.bin": b""}
ATTACK = 2_000_000_000     # what an endless body would send if nobody stopped reading
READ_BOUND = 64 << 20      # what the server may get rid of before the client hangs up (socket
                           # buffers included): far below the attack, far above the file


@pytest.fixture(autouse=True)
def hub_env(monkeypatch, tmp_path, hub_server):
    """HF_ENDPOINT at the fake hub, HF_HOME in tmp_path, no setting from outside."""
    return use_hub(monkeypatch, tmp_path, hub_server, REPO, FILES)


def repo_dir(tmp_path, repo_id=REPO) -> Path:
    return hub_server_module.repo_dir(tmp_path, repo_id)


_LAYOUT = re.compile(r"refs/.+|blobs/[A-Za-z0-9][\w.-]*|snapshots/[0-9a-f]{40}/.+"
                     r"|\.no_exist/[0-9a-f]{40}/.+", re.ASCII)


def assert_nothing_half_written(root: Path, files: dict = FILES, *, resumable: bool = False) -> None:
    """The cache holds only the hub's layout; every snapshot entry is the right file; every
    blob is linked from a snapshot; refs hold commit hashes. An `.incomplete` part is allowed
    only with `resumable` (a download cut by the network keeps it), and then only as a prefix
    of a file of the repo."""
    if not root.exists():
        return
    paths = tree(root)
    assert all(_LAYOUT.fullmatch(p) for p in paths), paths
    linked = set()
    for path in paths:
        full = root / path
        if path.startswith("snapshots/"):
            name = path.split("/", 2)[2]
            assert full.read_bytes() == files[name], path
            linked.add(os.path.realpath(full))
        elif path.startswith("refs/"):
            assert re.fullmatch(r"[0-9a-f]{40}", full.read_text()), path
    for path in paths:
        if path.startswith("blobs/") and path.endswith(".incomplete"):
            assert resumable, f"{path} left behind"
            data = (root / path).read_bytes()
            assert any(content.startswith(data) for content in files.values()), path
        elif path.startswith("blobs/"):
            assert os.path.realpath(root / path) in linked, f"{path} is linked from no snapshot"


@contextmanager
def within(seconds: float):
    start = time.monotonic()
    yield
    took = time.monotonic() - start
    assert took < seconds, f"took {took:.2f} s"


@contextmanager
def largest_file_seen(folder: Path):
    """Watch `folder` (every millisecond) while the block runs; yields a list that ends up
    holding the largest file size seen in it."""
    largest, done = [0], threading.Event()

    def watch():
        while not done.is_set():
            for path in list(folder.rglob("*")) if folder.exists() else []:
                try:
                    largest[0] = max(largest[0], path.stat().st_size)
                except OSError:
                    pass
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield largest
    finally:
        done.set()
        watcher.join()


def sent(hub_server, **match) -> int:
    """Body bytes the server got rid of, over the requests that match."""
    return sum(r.body_bytes for r in hub_server.seen(**match))


# ---------------------------------------------------------------------- zero bytes

@pytest.mark.parametrize("name", ["empty.txt", "empty.bin"], ids=["small-file", "lfs-file"])
def test_a_zero_byte_file_downloads_and_works(hub_server, monkeypatch, tmp_path, name):
    with within(1.0):
        path = hub.cached_file(REPO, name)
    assert Path(path).read_bytes() == b""
    commit, etag = hub_server.repos[REPO].refs["main"], hub_server.etag(REPO, name)
    assert etag == (sha256(b"") if name.endswith(".bin") else git_blob_sha1(b""))
    assert tree(repo_dir(tmp_path)) == {"refs/main", f"blobs/{etag}", f"snapshots/{commit}/{name}"}
    assert hub.cached_file(REPO, name, required=False) == path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.cached_file(REPO, name) == path


# ---------------------------------------------------------------------- sizes

@pytest.mark.parametrize("framing", ["chunked", "until-close"])
@pytest.mark.parametrize("name, server", [("twelve.txt", "hub"), ("model.safetensors", "cdn")],
                         ids=["small-file", "lfs-file"])
def test_a_body_longer_than_announced_stops_at_once(hub_server, tmp_path, name, server, framing):
    """HEAD says 12 bytes (or the LFS size); the GET streams 2 GB: the client must stop at
    the announced size plus one byte, and keep nothing."""
    size = len(FILES[name])
    framed = {"chunked": True} if framing == "chunked" else {"headers": {"Content-Length": None}}
    hub_server.fault("hostile", server=server, method="GET", filename=name, stream=ATTACK, **framed)
    blobs = repo_dir(tmp_path) / "blobs"
    with within(1.0), largest_file_seen(blobs) as largest, \
            pytest.raises(hub.HubProtocolError, match=rf"{re.escape(repr(name))}.*sent more than "
                                                      rf"the {size} bytes it announced"):
        hub.cached_file(REPO, name)
    assert largest[0] <= size  # the blob never grew past the announced size
    assert size < sent(hub_server, server=server, method="GET") < READ_BOUND
    assert len(hub_server.seen(server=server, method="GET")) == 1  # refused, never retried
    assert tree(repo_dir(tmp_path)) == {"refs/main"}


RSS_PROBE = """
import json, resource, sys
import requests, minirobera.hub as hub
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    hub.cached_file(sys.argv[1], sys.argv[2])
    outcome = "downloaded"
except hub.HubProtocolError as exc:
    outcome = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "grew_kib": after - before}))
"""


def test_an_endless_body_keeps_peak_memory_small(hub_server, tmp_path):
    hub_server.fault("hostile", method="GET", filename="twelve.txt", chunked=True, stream=ATTACK)
    env = {**os.environ, "PYTHONPATH": str(Path(hub.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", RSS_PROBE, REPO, "twelve.txt"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert "more than the 12 bytes it announced" in result["outcome"]
    assert result["grew_kib"] < 50_000  # 50 MB at most, against a 2 GB attack
    assert sent(hub_server, method="GET") < READ_BOUND


def test_a_content_length_above_the_announced_size_is_refused_before_reading(hub_server, tmp_path):
    hub_server.fault("hostile", method="GET", filename="twelve.txt",
                     headers={"Content-Length": str(ATTACK)}, stream=ATTACK)
    with within(1.0), pytest.raises(hub.HubProtocolError,
                                    match=f"Content-Length is {ATTACK} bytes where 12 were announced"):
        hub.cached_file(REPO, "twelve.txt")
    assert sent(hub_server, method="GET") < READ_BOUND
    assert tree(repo_dir(tmp_path)) == {"refs/main"}


@pytest.mark.parametrize("name, header", [("twelve.txt", "Content-Length"),
                                          ("model.safetensors", "X-Linked-Size")],
                         ids=["small-file", "lfs-file"])
def test_no_size_and_an_endless_body_stops_at_the_ceiling(hub_server, monkeypatch, tmp_path, name,
                                                          header):
    monkeypatch.setenv("MINIROBERA_MAX_DOWNLOAD_BYTES", "1_000_000")
    hub_server.fault("hostile", server="hub", method="HEAD", filename=name, headers={header: None})
    server = "cdn" if header == "X-Linked-Size" else "hub"
    hub_server.fault("hostile", server=server, method="GET", filename=name, chunked=True,
                     stream=ATTACK)
    blobs = repo_dir(tmp_path) / "blobs"
    with within(1.0), largest_file_seen(blobs) as largest, \
            pytest.raises(hub.HubProtocolError, match="announced no size and sent more than "
                                                      "1000000 bytes.*MINIROBERA_MAX_DOWNLOAD_BYTES"):
        hub.cached_file(REPO, name)
    assert largest[0] <= 1_000_000
    assert sent(hub_server, server=server, method="GET") < READ_BOUND
    assert tree(repo_dir(tmp_path)) == {"refs/main"}


@pytest.mark.parametrize("name, header", [("config.json", "Content-Length"),
                                          ("model.safetensors", "X-Linked-Size")],
                         ids=["small-file", "lfs-file"])
def test_no_size_anywhere_still_downloads_a_file_under_the_ceiling(hub_server, tmp_path, name,
                                                                   header):
    # huggingface_hub accepts answers without a size, so a mirror may send them
    hub_server.fault("hostile", server="hub", method="HEAD", filename=name, headers={header: None})
    hub_server.fault("hostile", method="GET", filename=name, chunked=True)
    assert Path(hub.cached_file(REPO, name)).read_bytes() == FILES[name]
    assert_nothing_half_written(repo_dir(tmp_path))


def test_the_download_ceiling_is_50_gb_and_settable(monkeypatch):
    assert hub.max_download_bytes() == hub.MAX_DOWNLOAD_BYTES == 50_000_000_000
    monkeypatch.setenv("MINIROBERA_MAX_DOWNLOAD_BYTES", "12345")
    assert hub.max_download_bytes() == 12345
    monkeypatch.setenv("MINIROBERA_MAX_DOWNLOAD_BYTES", "lots")
    with pytest.raises(ValueError, match="MINIROBERA_MAX_DOWNLOAD_BYTES must be a number of bytes"):
        hub.max_download_bytes()


def test_an_announced_size_above_the_ceiling_is_refused_before_the_first_byte(hub_server,
                                                                             monkeypatch, tmp_path):
    monkeypatch.setenv("MINIROBERA_MAX_DOWNLOAD_BYTES", "1000")
    with within(1.0), pytest.raises(hub.HubProtocolError,
                                    match=f"announced {len(WEIGHTS)} bytes, more than the 1000"):
        hub.cached_file(REPO, "model.safetensors")
    assert hub_server.seen(method="GET") == []
    assert tree(repo_dir(tmp_path)) == {"refs/main"}


def test_no_size_on_the_head_and_a_content_length_above_the_ceiling_is_refused(hub_server,
                                                                              monkeypatch, tmp_path):
    monkeypatch.setenv("MINIROBERA_MAX_DOWNLOAD_BYTES", "1000000")
    hub_server.fault("hostile", method="HEAD", filename="twelve.txt", headers={"Content-Length": None})
    hub_server.fault("hostile", method="GET", filename="twelve.txt",
                     headers={"Content-Length": str(ATTACK)}, stream=ATTACK)
    with within(1.0), pytest.raises(hub.HubProtocolError, match=f"announced {ATTACK} bytes, more "
                                                                f"than the 1000000"):
        hub.cached_file(REPO, "twelve.txt")
    assert sent(hub_server, method="GET") < READ_BOUND
    assert tree(repo_dir(tmp_path)) == {"refs/main"}


def test_a_content_length_below_the_announced_size_is_refused(hub_server, tmp_path):
    hub_server.fault("hostile", server="cdn", method="GET", body=WEIGHTS[:-10])
    with within(1.0), pytest.raises(hub.HubProtocolError, match=f"Content-Length is {len(WEIGHTS) - 10} "
                                                                f"bytes where {len(WEIGHTS)}"):
        hub.cached_file(REPO, "model.safetensors")
    assert tree(repo_dir(tmp_path)) == {"refs/main"}


def test_a_body_that_stops_short_is_an_error_and_keeps_only_a_resumable_prefix(hub_server, tmp_path):
    # a chunked body that ends early looks like a dropped connection: retried (resumed), then
    # an error that keeps the prefix for the next run, which finishes it
    hub_server.fault("hostile", server="cdn", method="GET", body=WEIGHTS[:60_000], chunked=True,
                     times=None)
    with within(1.0), pytest.raises(hub.HubError, match="failed 5 times.*resume from the"):
        hub.cached_file(REPO, "model.safetensors")
    assert_nothing_half_written(repo_dir(tmp_path), resumable=True)
    hub_server.faults.clear()
    assert Path(hub.cached_file(REPO, "model.safetensors")).read_bytes() == WEIGHTS
    assert_nothing_half_written(repo_dir(tmp_path))


# ---------------------------------------------------------------------- encodings

@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_compressed_answer_is_refused_and_never_inflated(hub_server, tmp_path, method):
    packed = gzip.compress(ZEROS)  # 5 MB of zeros in ~5 KB: the shape of a compression bomb
    assert len(packed) < 10_000
    if method == "HEAD":  # a server that compresses says so on the HEAD as well
        hub_server.fault("hostile", method="HEAD", headers={"Content-Encoding": "gzip",
                                                            "Content-Length": str(len(packed))})
    hub_server.fault("hostile", method="GET", body=packed, headers={"Content-Encoding": "gzip"})
    blobs = repo_dir(tmp_path) / "blobs"
    with within(1.0), largest_file_seen(blobs) as largest, \
            pytest.raises(hub.HubProtocolError, match="'zeros.txt'.*Content-Encoding 'gzip' although "
                                                      "only 'identity' was asked for"):
        hub.cached_file(REPO, "zeros.txt")
    assert largest[0] == 0
    assert all(r.headers["accept-encoding"] == "identity" for r in hub_server.requests)
    assert len(hub_server.seen(method="GET")) == (method == "GET")
    assert tree(repo_dir(tmp_path)) <= {"refs/main"}


def test_identity_is_asked_for_and_accepted(hub_server, tmp_path):
    hub_server.fault("hostile", method="GET", filename="config.json",
                     headers={"Content-Encoding": "identity"})
    assert Path(hub.cached_file(REPO, "config.json")).read_bytes() == CONFIG
    assert [r.headers["accept-encoding"] for r in hub_server.requests] == ["identity"] * 2


# ---------------------------------------------------------------------- commits and ETags

BAD_COMMITS = ["..", "../../../../tmp/x", "a/b", "." * 40, "A" * 40, "g" * 40, "0" * 39, "0" * 41,
               "0" * 40 + "/..", "x" * 5000]
BAD_ETAGS = ["..", ".", "../../x", "a/b", "-rf", "x" * 5000, "a b", "caf\u00e9", ".hidden"]


@pytest.mark.parametrize("value", BAD_COMMITS, ids=[f"commit{i}" for i in range(len(BAD_COMMITS))])
@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_an_invalid_commit_is_refused_before_the_cache_is_touched(hub_server, tmp_path, name, value):
    hub_server.fault("hostile", method="HEAD", filename=name, headers={"X-Repo-Commit": value})
    with within(1.0), pytest.raises(hub.HubProtocolError, match="invalid X-Repo-Commit.*40 "
                                                                "hexadecimal digits") as error:
        hub.cached_file(REPO, name, required=False)
    assert len(str(error.value)) < 1000  # a 5,000-character header is cut in the message
    assert not repo_dir(tmp_path).exists()
    assert hub_server.seen(method="GET") == []


@pytest.mark.parametrize("value", BAD_ETAGS, ids=[f"etag{i}" for i in range(len(BAD_ETAGS))])
@pytest.mark.parametrize("name, header", [("config.json", "ETag"),
                                          ("model.safetensors", "X-Linked-Etag")])
def test_an_invalid_etag_is_refused_before_the_cache_is_touched(hub_server, tmp_path, name, header,
                                                               value):
    hub_server.fault("hostile", method="HEAD", filename=name, headers={header: f'"{value}"'})
    with within(1.0), pytest.raises(hub.HubProtocolError, match="invalid ETag") as error:
        hub.cached_file(REPO, name)
    assert "writable" not in str(error.value) and len(str(error.value)) < 1000
    assert not repo_dir(tmp_path).exists()
    assert hub_server.seen(method="GET") == []


def test_a_404_with_commit_dotdot_keeps_the_good_cached_copy(hub_server, monkeypatch, tmp_path):
    good = hub.cached_file(REPO, "config.json")
    root = repo_dir(tmp_path)
    before = tree(root)
    hub_server.fault("hostile", method="HEAD", filename="config.json", code=404,
                     headers={"X-Repo-Commit": "..", "X-Error-Code": "EntryNotFound"})
    with within(1.0):
        assert hub.cached_file(REPO, "config.json") == good  # the lie is refused: the cache serves
    assert tree(root) == before  # refs/main untouched, no .no_exist marker
    assert (root / "refs" / "main").read_text() == hub_server.repos[REPO].refs["main"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert Path(hub.cached_file(REPO, "config.json")).read_bytes() == CONFIG


def test_a_404_with_commit_dotdot_and_nothing_cached_is_an_error_not_a_missing_file(hub_server,
                                                                                   tmp_path):
    hub_server.fault("hostile", method="HEAD", filename="config.json", code=404,
                     headers={"X-Repo-Commit": "..", "X-Error-Code": "EntryNotFound"})
    with within(1.0), pytest.raises(hub.HubProtocolError, match="invalid X-Repo-Commit '..'"):
        hub.cached_file(REPO, "config.json", required=False)  # not swallowed as "absent"
    assert not repo_dir(tmp_path).exists()


def test_a_ref_poisoned_by_an_older_client_is_ignored(hub_server, monkeypatch, tmp_path):
    good = hub.cached_file(REPO, "config.json")
    root = repo_dir(tmp_path)
    (root / "refs" / "main").write_text("..")  # what the old client wrote, with its marker
    (root / "config.json").write_bytes(b"")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.LocalEntryNotFoundError, match="cannot find 'config.json'"):
        hub.cached_file(REPO, "config.json")  # never the empty marker at snapshots/../config.json
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert hub.cached_file(REPO, "config.json") == good  # the hub puts the ref right
    assert (root / "refs" / "main").read_text() == hub_server.repos[REPO].refs["main"]


# ---------------------------------------------------------------------- redirects

@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/",
                                      "http://[::1", "http://127.0.0.1:99999/x",
                                      "data:text/plain,hello"])
@pytest.mark.parametrize("server, method, name", [("hub", "HEAD", "config.json"),
                                                  ("hub", "GET", "config.json"),
                                                  ("cdn", "GET", "model.safetensors")],
                         ids=["hub-head", "hub-get", "cdn-get"])
def test_a_redirect_to_a_non_http_url_is_a_hub_error(hub_server, tmp_path, server, method, name,
                                                     location):
    hub_server.fault("redirect", server=server, method=method, filename=name, location=location)
    with within(1.0), pytest.raises(hub.HubProtocolError, match="not an http\\(s\\) URL|cannot be read"):
        hub.cached_file(REPO, name)
    assert tree(repo_dir(tmp_path)) <= {"refs/main"}


def test_an_endpoint_that_is_not_http_is_a_hub_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", f"file://{tmp_path}")
    with pytest.raises(hub.HubProtocolError, match="not an http\\(s\\) URL"):
        hub.cached_file(REPO, "config.json")


# ---------------------------------------------------------------------- names

BAD_NAMES = [
    # repo ids (huggingface_hub's rules)
    ("org/na\0me", "config.json", "main", ValueError), ("org/../x", "config.json", "main", ValueError),
    ("/no/such/folder", "config.json", "main", ValueError), ("org\\x", "config.json", "main", ValueError),
    ("org/" + "x" * 97, "config.json", "main", ValueError), ("caf\u00e9/x", "config.json", "main", ValueError),
    ("a--b/x", "config.json", "main", ValueError), ("org/x.git", "config.json", "main", ValueError),
    ("-org/x", "config.json", "main", ValueError), ("org/x.", "config.json", "main", ValueError),
    (b"org/x", "config.json", "main", TypeError),
    # filenames
    (REPO, "con\0fig.json", "main", ValueError), (REPO, "a/../../b", "main", ValueError),
    (REPO, "/etc/passwd", "main", ValueError), (REPO, "C:x", "main", ValueError),
    (REPO, "a\\b", "main", ValueError), (REPO, "x" * 201, "main", ValueError),
    (REPO, "a\x7f", "main", ValueError), (REPO, "a\ud800", "main", ValueError),
    (REPO, "a//b", "main", ValueError), (REPO, ".", "main", ValueError),
    (REPO, "a\nb", "main", ValueError), (REPO, 7, "main", TypeError),
    # revisions (git's rules for ref names, and paths)
    (REPO, "config.json", "ma\0in", ValueError), (REPO, "config.json", "..", ValueError),
    (REPO, "config.json", "refs/../../x", ValueError), (REPO, "config.json", "main\n", ValueError),
    (REPO, "config.json", "a b", ValueError), (REPO, "config.json", "x~1", ValueError),
    (REPO, "config.json", "refs/heads/x.lock", ValueError), (REPO, "config.json", "x@{1}", ValueError),
    (REPO, "config.json", ".hidden", ValueError), (REPO, "config.json", "x" * 201, ValueError),
    (REPO, "config.json", "/main", ValueError), (REPO, "config.json", "a\\b", ValueError),
    (REPO, "config.json", None, TypeError),
]


@pytest.mark.parametrize("repo_id, filename, revision, error", BAD_NAMES,
                         ids=[f"name{i}" for i in range(len(BAD_NAMES))])
def test_bad_names_are_refused_before_the_first_request(hub_server, tmp_path, repo_id, filename,
                                                        revision, error):
    with pytest.raises(error, match="repo id|filename|revision|path_or_repo_id"):
        hub.cached_file(repo_id, filename, revision=revision)
    assert hub_server.requests == []
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("repo_id, filename, revision", [
    ("x", "config.json", "main"), ("_org/a.b-c_d", "onnx/model.onnx", "refs/pr/1"),
    ("org/" + "x" * 96, "sub/dir/notes.txt", "v1.0"), ("org/x", "config.json", "0" * 40),
])
def test_names_the_hub_allows_pass_the_checks(repo_id, filename, revision):
    hub._check_repo_id(repo_id)
    assert hub._check_filename(filename) == filename and hub._check_revision(revision) == revision


# ---------------------------------------------------------------------- no network (issue 21, item 5)

UNRESOLVABLE = "http://nonexistent.invalid"  # .invalid never resolves (RFC 6761)


def test_an_unresolvable_hub_fails_at_once_and_says_how_to_run_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", UNRESOLVABLE)
    monkeypatch.setattr(hub, "BACKOFF_SECONDS", 1.0)  # real waits: a retry would show
    with within(2.0), pytest.raises(hub.LocalEntryNotFoundError) as error:
        hub.cached_file("FacebookAI/roberta-base", "config.json")
    message = str(error.value)
    assert "'nonexistent.invalid' does not resolve" in message
    assert "local folder" in message and "--model" in message and "from_pretrained" in message
    assert "config.json" in message and "merges.txt" in message and "model.safetensors" in message
    assert "HF_HUB_OFFLINE=1 helps only once the files are in the cache" in message
    assert not (tmp_path / "home" / "hub" / "models--FacebookAI--roberta-base").exists()


def test_an_unresolvable_hub_still_serves_the_cache(hub_server, monkeypatch):
    path = hub.cached_file(REPO, "model.safetensors")
    monkeypatch.setenv("HF_ENDPOINT", UNRESOLVABLE)
    monkeypatch.setattr(hub, "BACKOFF_SECONDS", 1.0)
    with within(2.0):
        assert hub.cached_file(REPO, "model.safetensors") == path


def test_an_unresolvable_cdn_is_not_retried_and_keeps_the_part_to_resume(hub_server, monkeypatch,
                                                                         tmp_path):
    monkeypatch.setattr(hub, "BACKOFF_SECONDS", 1.0)
    hub_server.fault("hostile", method="HEAD", filename="model.safetensors",
                     headers={"Location": f"{UNRESOLVABLE}/blobs/{sha256(WEIGHTS)}/x"})
    with within(2.0), pytest.raises(hub.HubError, match="does not resolve.*Run again"):
        hub.cached_file(REPO, "model.safetensors")
    assert_nothing_half_written(repo_dir(tmp_path), resumable=True)


def test_the_cli_without_a_network_fails_at_once_naming_the_local_folder_route(tmp_path):
    env = {**os.environ, "HF_ENDPOINT": UNRESOLVABLE, "HF_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(Path(hub.__file__).parents[1])}
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        env.pop(name, None)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "minirobera", "fill-mask", "Paris is the <mask>."],
                          env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert done.returncode != 0 and took < 2.0, (took, done.stderr[-2000:])
    assert "does not resolve" in done.stderr and "--model ./roberta-base" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------- fuzzing

def _mutations(rng: random.Random, name: str) -> dict:
    """Keyword arguments for one hostile fault: headers replaced or removed, body framing,
    status, extra bytes. Same-length changes to a small file's bytes are left out: with no
    hash to check them by (its ETag is a git object id, as on the hub), they cannot be told
    from the file."""
    data = FILES[name]
    values = [None, "", "0", "-1", "1e3", "+12", str(len(data) - 1), str(len(data) + 1),
              str(len(data) * 1000), str(2 ** 64), "..", "../x", "a/b", ".", "x" * rng.randrange(1, 400),
              "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([39, 40, 41, 64]))),
              "ABCDEF" * 7, "gzip", "br", "identity", "chunked", "file:///etc/passwd",
              "http://[::1", "ftp://x/y", "//127.0.0.1:1/x", "http://127.0.0.1:99999/x",
              "bytes 0-1/2", "W/\"\"", '"' + "a" * 5000 + '"', "\u00e9\u00e8"]
    names = ["Content-Length", "X-Linked-Size", "ETag", "X-Linked-Etag", "X-Repo-Commit",
             "Content-Encoding", "Location", "Content-Range", "X-Error-Code"]
    fault = {"headers": {rng.choice(names): rng.choice(values) for _ in range(rng.randrange(0, 3))}}
    roll = rng.random()
    if roll < 0.15:
        fault["code"] = rng.choice([200, 204, 206, 301, 302, 304, 307, 400, 403, 404, 416, 500])
    elif roll < 0.35:
        cut = rng.randrange(0, len(data) + 1)
        fault["body"] = data[:cut]
    elif roll < 0.45:
        fault["body"] = data + rng.randbytes(rng.randrange(1, 50))
    elif roll < 0.55 and default_lfs(name):  # an LFS file: its sha256 is checked
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        fault["body"] = bytes(flipped)
    if rng.random() < 0.3:
        fault["chunked"] = True
    if rng.random() < 0.1:
        fault["stream"] = rng.randrange(1, 100_000)
    return fault


FUZZ_CASES = int(os.environ.get("MINIROBERA_HUB_FUZZ_CASES", "300"))


def test_fuzzed_answers_give_the_file_or_a_hub_error(hub_server, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2")
    rng = random.Random(int(os.environ.get("MINIROBERA_HUB_FUZZ_SEED", "2222")))
    outcomes, slowest = {"file": 0, "error": 0}, 0.0
    for case in range(FUZZ_CASES):
        name = rng.choice(["config.json", "model.safetensors", "twelve.txt", "empty.txt"])
        where = rng.choice([("hub", "HEAD"), ("hub", "GET"), ("cdn", "GET")])
        mutation = _mutations(rng, name)
        hub_server.faults.clear()
        hub_server.fault("hostile", server=where[0], method=where[1], filename=name,
                         times=rng.choice([1, 2, None]), **mutation)
        cache = tmp_path / f"case{case}"
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        described = f"case {case}: {name} {where} {mutation}"[:600]
        start = time.monotonic()
        try:
            path = hub.cached_file(REPO, name)
        except hub.HubError:
            outcomes["error"] += 1
        except Exception as exc:  # anything else is a bug: say which case found it
            raise AssertionError(f"{described} raised {exc!r}") from exc
        else:
            assert Path(path).read_bytes() == FILES[name], described
            outcomes["file"] += 1
        slowest = max(slowest, time.monotonic() - start)
        assert_nothing_half_written(cache / hub.repo_folder_name(REPO), resumable=True)
    assert outcomes["file"] > FUZZ_CASES // 10 and outcomes["error"] > FUZZ_CASES // 10, outcomes
    assert slowest < 2.5, slowest
