"""The hub client against a real HTTP server (tests/hub_server.py), no mocks of requests.

Every test gets its own fake hub + CDN on 127.0.0.1 and its own HF_HOME in tmp_path, so the
cache layout can be asserted file by file. Interop with transformers / huggingface_hub runs
them for real (skipped when not installed); one `network` test talks to huggingface.co and
runs only with MINIROBERA_NETWORK_TESTS=1.
"""

import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # hub_server.py is a plain helper module beside us
import hub_server as hub_server_module  # noqa: E402
from hub_server import git_blob_sha1, hub_server, sha256, tree, use_hub  # noqa: E402,F401 (fixture)

from minirobera import hub  # noqa: E402

REPO = "tiny-org/tiny-roberta"
CONFIG = json.dumps({"model_type": "roberta", "hidden_size": 8}).encode()
NOTES = b"a small file in a sub folder\n"
WEIGHTS = random.Random(0).randbytes(200_000)  # "LFS": served through the CDN, etag = sha256
FILES = {"config.json": CONFIG, "model.safetensors": WEIGHTS, "sub/notes.txt": NOTES}


@pytest.fixture(autouse=True)
def hub_env(monkeypatch, tmp_path, hub_server):
    """HF_ENDPOINT at the fake hub, HF_HOME in tmp_path, no setting from outside."""
    return use_hub(monkeypatch, tmp_path, hub_server, REPO, FILES)


def repo_dir(tmp_path, repo_id=REPO) -> Path:
    return hub_server_module.repo_dir(tmp_path, repo_id)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more: connection refused


# ---------------------------------------------------------------------- local folders

def test_local_folder_never_uses_the_network(hub_server, tmp_path):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "config.json").write_bytes(CONFIG)
    assert hub.cached_file(folder, "config.json") == str(folder / "config.json")
    assert hub.cached_file(str(folder), "vocab.json", required=False) is None
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        hub.cached_file(folder, "vocab.json")
    assert hub_server.requests == []


# ---------------------------------------------------------------------- downloads and layout

def test_download_builds_the_shared_cache_layout(hub_server, tmp_path):
    paths = {name: hub.cached_file(REPO, name) for name in FILES}
    commit = hub_server.repos[REPO].refs["main"]
    etags = {name: hub_server.etag(REPO, name) for name in FILES}
    assert etags["model.safetensors"] == sha256(WEIGHTS)      # LFS: blob named by its sha256
    assert etags["config.json"] == git_blob_sha1(CONFIG)      # small file: git blob id
    root = repo_dir(tmp_path)
    assert tree(root) == {"refs/main", *(f"blobs/{e}" for e in etags.values()),
                          *(f"snapshots/{commit}/{name}" for name in FILES)}
    assert (root / "refs" / "main").read_text() == commit
    for name, data in FILES.items():
        pointer = root / "snapshots" / commit / name
        assert paths[name] == str(pointer)
        assert pointer.is_symlink()
        depth = "../" * (name.count("/") + 2)
        assert os.readlink(pointer) == f"{depth}blobs/{etags[name]}"  # relative, like huggingface_hub
        assert (root / "blobs" / etags[name]).read_bytes() == data
        assert Path(paths[name]).read_bytes() == data


def test_second_call_makes_no_get(hub_server):
    first = hub.cached_file(REPO, "model.safetensors")
    hub_server.requests.clear()
    assert hub.cached_file(REPO, "model.safetensors") == first
    assert [r.method for r in hub_server.requests] == ["HEAD"]  # checks for a new commit, no bytes


def test_revision_is_quoted_and_recorded_in_refs(hub_server, tmp_path):
    pr_config = b'{"model_type": "roberta", "from": "pr"}'
    pr_commit = hub_server.add_repo(REPO, {"config.json": pr_config}, revision="refs/pr/1")
    path = hub.cached_file(REPO, "config.json", revision="refs/pr/1")
    assert Path(path).read_bytes() == pr_config
    assert hub_server.requests[0].path == f"/{REPO}/resolve/refs%2Fpr%2F1/config.json"
    assert (repo_dir(tmp_path) / "refs" / "refs" / "pr" / "1").read_text() == pr_commit
    hub_server.requests.clear()  # a cached commit hash never changes: no request at all
    assert hub.cached_file(REPO, "config.json", revision=pr_commit) == path
    assert hub_server.requests == []


def test_legacy_repo_id_follows_the_rename(hub_server, tmp_path):
    hub_server.add_repo("FacebookAI/roberta-base", FILES)
    hub_server.rename("roberta-base", "FacebookAI/roberta-base")
    for name in ("config.json", "model.safetensors"):
        assert Path(hub.cached_file("roberta-base", name)).read_bytes() == FILES[name]
    heads = hub_server.seen(server="hub", method="HEAD")
    assert [r.status for r in heads] == [307, 200, 307, 302]  # rename, file; rename, CDN redirect
    assert len(hub_server.seen(server="cdn", method="GET")) == 1
    assert tree(repo_dir(tmp_path, "roberta-base"))  # cached under the id the user asked for


# ---------------------------------------------------------------------- offline and hub down

def test_offline_mode_uses_only_the_cache(hub_server, monkeypatch, tmp_path):
    path = hub.cached_file(REPO, "config.json")
    hub_server.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.cached_file(REPO, "config.json") == path
    with pytest.raises(hub.EntryNotFoundError, match=r"'vocab\.json'.*tiny-org/tiny-roberta.*HF_HUB_OFFLINE"):
        hub.cached_file(REPO, "vocab.json")  # the snapshot is there, the file is not
    assert hub.cached_file(REPO, "vocab.json", required=False) is None
    with pytest.raises(hub.LocalEntryNotFoundError, match=r"'config\.json'.*'other/repo'.*HF_HUB_OFFLINE"):
        hub.cached_file("other/repo", "config.json", required=False)  # nothing known: an error
    assert hub_server.requests == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert hub.cached_file(REPO, "config.json", local_files_only=True) == path
    with pytest.raises(hub.LocalEntryNotFoundError, match="local_files_only"):
        hub.cached_file("other/repo", "config.json", local_files_only=True)
    assert hub_server.requests == []


def test_hub_unreachable_or_down_falls_back_to_the_cache(hub_server, monkeypatch):
    path = hub.cached_file(REPO, "model.safetensors")
    hub_server.fault("status", status=503, times=None)
    hub_server.requests.clear()
    assert hub.cached_file(REPO, "model.safetensors") == path
    assert len(hub_server.requests) == 1  # a cached file does not wait for retries
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    assert hub.cached_file(REPO, "model.safetensors") == path
    with pytest.raises(hub.LocalEntryNotFoundError, match=r"cannot reach the hub.*'config\.json'"):
        hub.cached_file(REPO, "config.json")


# ---------------------------------------------------------------------- tokens

GATED = "gated-org/gated-model"


@pytest.fixture
def gated(hub_server):
    hub_server.add_repo(GATED, FILES, token="hf_secret")
    return hub_server


def test_gated_repo_without_token_says_so(gated, monkeypatch):
    with pytest.raises(hub.GatedRepoError) as error:
        hub.cached_file(GATED, "config.json")
    message = str(error.value)
    assert "gated or private" in message and "HF_TOKEN" in message and "HTTP 401" in message
    assert f"{gated.url}/{GATED}/resolve/main/config.json" in message
    assert isinstance(error.value, OSError)
    gated.valid_tokens = {"hf_secret", "hf_other_user"}
    with pytest.raises(hub.GatedRepoError, match="HTTP 403.*does not give access"):
        hub.cached_file(GATED, "config.json", token="hf_other_user", required=False)
    with pytest.raises(hub.HubError, match="rejected the token.*invalid or expired.*HF_TOKEN"):
        hub.cached_file(REPO, "config.json", token="hf_expired")  # even a public repo
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    with pytest.raises(hub.GatedRepoError, match="No token was sent"):
        hub.cached_file(GATED, "config.json", token=False)


def test_token_from_env_reaches_the_hub_and_never_the_cdn(gated, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    for name in ("config.json", "model.safetensors"):
        assert Path(hub.cached_file(GATED, name)).read_bytes() == FILES[name]
    hub_requests, cdn_requests = gated.seen(server="hub"), gated.seen(server="cdn")
    assert hub_requests and all(r.headers["authorization"] == "Bearer hf_secret" for r in hub_requests)
    assert cdn_requests and all("authorization" not in r.headers for r in cdn_requests)


@pytest.mark.parametrize("where", ["HF_HOME/token", "HF_TOKEN_PATH"])
def test_token_from_the_token_file(gated, monkeypatch, tmp_path, where):
    token_file = tmp_path / "home" / "token" if where == "HF_HOME/token" else tmp_path / "elsewhere"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text("hf_secret\n")
    if where == "HF_TOKEN_PATH":
        monkeypatch.setenv("HF_TOKEN_PATH", str(token_file))
    assert Path(hub.cached_file(GATED, "model.safetensors")).read_bytes() == WEIGHTS
    assert all("authorization" not in r.headers for r in gated.seen(server="cdn"))


# ---------------------------------------------------------------------- faults

def test_retries_after_500_and_dropped_connections(hub_server):
    hub_server.fault("status", status=500, server="hub", method="HEAD", filename="config.json")
    hub_server.fault("drop", server="hub", method="GET", filename="config.json")
    hub_server.fault("status", status=502, server="cdn", method="GET", filename="model.safetensors")
    assert Path(hub.cached_file(REPO, "config.json")).read_bytes() == CONFIG
    assert Path(hub.cached_file(REPO, "model.safetensors")).read_bytes() == WEIGHTS
    assert [r.status for r in hub_server.seen(filename="config.json")] == [500, 200, -1, 200]
    assert [r.status for r in hub_server.seen(server="cdn")] == [502, 200]


def test_persistent_server_error_gives_up_with_a_clear_error(hub_server):
    hub_server.fault("status", status=500, times=None)
    with pytest.raises(hub.LocalEntryNotFoundError, match=r"HTTP 500.*'config\.json'.*not in the cache"):
        hub.cached_file(REPO, "config.json")
    assert len(hub_server.requests) == 1 + hub.RETRIES  # one look, then bounded retries


def test_cut_mid_body_resumes_with_range_without_downloading_twice(hub_server, tmp_path):
    hub_server.fault("cut", server="cdn", filename="model.safetensors", after=70_000)
    path = hub.cached_file(REPO, "model.safetensors")
    assert Path(path).read_bytes() == WEIGHTS
    gets = hub_server.seen(server="cdn", method="GET")
    assert [r.headers.get("range") for r in gets] == [None, "bytes=70000-"]
    assert [r.status for r in gets] == [200, 206]
    assert sum(r.body_bytes for r in gets) == len(WEIGHTS)


def test_failed_download_leaves_no_half_file_and_resumes_later(hub_server, monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "RETRIES", 3)
    hub_server.fault("cut", server="cdn", after=70_000)
    hub_server.fault("cut", server="cdn", after=0, times=None)
    with pytest.raises(hub.HubError, match=r"failed 3 times.*resume from the 70000 bytes"):
        hub.cached_file(REPO, "model.safetensors")
    root, commit = repo_dir(tmp_path), hub_server.repos[REPO].refs["main"]
    blob = root / "blobs" / sha256(WEIGHTS)
    assert tree(root) == {"refs/main", f"blobs/{blob.name}.incomplete"}  # no snapshot entry
    assert (root / "blobs" / f"{blob.name}.incomplete").stat().st_size == 70_000
    hub_server.faults.clear()
    path = hub.cached_file(REPO, "model.safetensors")
    assert path == str(root / "snapshots" / commit / "model.safetensors")
    assert Path(path).read_bytes() == WEIGHTS
    gets = hub_server.seen(server="cdn", method="GET")
    assert gets[-1].headers["range"] == "bytes=70000-"
    assert sum(r.body_bytes for r in gets) == len(WEIGHTS)


def test_server_ignoring_range_restarts_cleanly(hub_server, tmp_path):
    blobs = repo_dir(tmp_path) / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha256(WEIGHTS)}.incomplete").write_bytes(b"x" * 50_000)  # appended to = corrupt
    hub_server.fault("ignore_range", server="cdn")
    assert Path(hub.cached_file(REPO, "model.safetensors")).read_bytes() == WEIGHTS
    gets = hub_server.seen(server="cdn", method="GET")
    assert len(gets) == 1 and gets[0].headers["range"] == "bytes=50000-" and gets[0].status == 200


def test_corrupt_blob_is_detected_and_fetched_again(hub_server):
    hub_server.fault("corrupt", server="cdn")
    assert Path(hub.cached_file(REPO, "model.safetensors")).read_bytes() == WEIGHTS
    assert len(hub_server.seen(server="cdn", method="GET")) == 2


def test_corrupt_blob_twice_is_an_error_and_nothing_is_kept(hub_server, tmp_path):
    hub_server.fault("corrupt", server="cdn", times=None)
    with pytest.raises(hub.CorruptDownloadError, match="corrupt twice.*sha256"):
        hub.cached_file(REPO, "model.safetensors")
    assert tree(repo_dir(tmp_path)) == {"refs/main"}
    assert len(hub_server.seen(server="cdn", method="GET")) == 2



# The size header sent twice: Content-Length on file answers, X-Linked-Size on the hub's
# redirect of an LFS file to the CDN. Both forms: two header lines (requests joins them with
# ", ") and one "n, n" line.

@pytest.mark.parametrize("one_line", [False, True], ids=["two-lines", "one-line"])
@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_identical_duplicate_size_headers_are_accepted(hub_server, tmp_path, name, one_line):
    duplicated = hub_server.fault("duplicate_size", filename=name, times=2, one_line=one_line)
    path = hub.cached_file(REPO, name)
    assert duplicated.times == 0  # both the HEAD and the GET carried the duplicate
    assert Path(path).read_bytes() == FILES[name]
    root, commit, etag = repo_dir(tmp_path), hub_server.repos[REPO].refs["main"], hub_server.etag(REPO, name)
    assert tree(root) == {"refs/main", f"blobs/{etag}", f"snapshots/{commit}/{name}"}
    assert path == str(root / "snapshots" / commit / name)


@pytest.mark.parametrize("one_line", [False, True], ids=["two-lines", "one-line"])
@pytest.mark.parametrize("server, method, name, header", [
    ("hub", "HEAD", "config.json", "Content-Length"),      # refused by urllib3: reworded by us
    ("hub", "GET", "config.json", "Content-Length"),
    ("hub", "HEAD", "model.safetensors", "X-Linked-Size"),  # urllib3 lets it through: ours
    ("cdn", "GET", "model.safetensors", "Content-Length"),
], ids=["hub-head", "hub-get", "redirect-head", "cdn-get"])
def test_differing_size_headers_are_refused_and_nothing_is_cached(hub_server, tmp_path, server,
                                                                  method, name, header, one_line):
    hub_server.fault("duplicate_size", server=server, method=method, filename=name, differ=12,
                     one_line=one_line, times=None)
    size = len(FILES[name])
    with pytest.raises(hub.HubError, match=rf"{header}.*{size}, {size + 12}") as error:
        hub.cached_file(REPO, name)
    assert repr(name) in str(error.value) and "invalid literal" not in str(error.value)
    assert len(hub_server.seen(server=server, method=method)) == 1  # no retries: it will not heal
    # refused before a byte was written: no blob, no .incomplete, no snapshot pointer
    assert tree(repo_dir(tmp_path)) == ({"refs/main"} if method == "GET" else set())


@pytest.mark.parametrize("value, size", [
    ("898823", 898823), ("0", 0), ("898823, 898823", 898823), ("898823,898823", 898823),
    (" 7 ,7,\t7 ", 7), ("007, 7", 7),
])
def test_parse_size_header_accepts_one_value_or_identical_copies(value, size):
    assert hub.parse_size_header(value, "Content-Length", "'config.json' (https://hub/x)") == size


@pytest.mark.parametrize("value, why", [
    ("898823, 12", "differing values"), ("1, 1, 2", "differing values"),
    ("", "not a size"), ("abc", "not a size"), ("-1", "not a size"), ("+5", "not a size"),
    ("1.5", "not a size"), ("12,", "not a size"), (", ", "not a size"), ("\u0661\u0662", "not a size"),
])
def test_parse_size_header_refuses_differing_or_bad_values(value, why):
    with pytest.raises(hub.HubError, match=rf"'config\.json' \(https://hub/x\).*X-Linked-Size "
                                           rf"{re.escape(repr(value))} \({why}"):
        hub.parse_size_header(value, "X-Linked-Size", "'config.json' (https://hub/x)")


# ---------------------------------------------------------------------- missing things

def test_missing_file_404_and_required_false(hub_server, monkeypatch, tmp_path):
    url = f"{hub_server.url}/{REPO}/resolve/main/missing.json"
    with pytest.raises(hub.EntryNotFoundError, match=r"'missing\.json' does not exist.*HTTP 404") as error:
        hub.cached_file(REPO, "missing.json")
    assert url in str(error.value) and isinstance(error.value, FileNotFoundError)
    assert hub.cached_file(REPO, "missing.json", required=False) is None
    commit = hub_server.repos[REPO].refs["main"]
    assert (repo_dir(tmp_path) / ".no_exist" / commit / "missing.json").is_file()  # as huggingface_hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the cache remembers the 404
    assert hub.cached_file(REPO, "missing.json", required=False) is None
    with pytest.raises(hub.EntryNotFoundError, match="does not exist"):
        hub.cached_file(REPO, "missing.json")
    # ...and so it does when the hub cannot be reached (transformers reads .no_exist then too)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    assert hub.cached_file(REPO, "missing.json", required=False) is None
    with pytest.raises(hub.EntryNotFoundError, match="said so earlier; it cannot be reached now"):
        hub.cached_file(REPO, "missing.json")


def test_missing_repo_and_revision(hub_server):
    with pytest.raises(hub.RepositoryNotFoundError, match=r"'nobody/nothing' was not found.*HTTP 401") as error:
        hub.cached_file("nobody/nothing", "config.json", required=False)  # still an error
    assert not isinstance(error.value, hub.GatedRepoError)
    assert f"{hub_server.url}/nobody/nothing/resolve/main/config.json" in str(error.value)
    with pytest.raises(hub.RevisionNotFoundError, match="revision 'v9' does not exist"):
        hub.cached_file(REPO, "config.json", revision="v9", required=False)


@pytest.mark.parametrize("repo_id, filename, revision, error", [
    ("./no/such/folder", "config.json", "main", ValueError),
    ("a/b/c", "config.json", "main", ValueError),
    ("org/na me", "config.json", "main", ValueError),
    (REPO, "../secrets", "main", ValueError),
    (REPO, "/etc/passwd", "main", ValueError),
    (REPO, None, "main", TypeError),
    (REPO, "config.json", "", TypeError),
    (REPO, "config.json", "../main", ValueError),
], ids=["missing-folder", "three-parts", "space", "dotdot-file", "absolute-file", "no-file",
        "empty-revision", "dotdot-revision"])
def test_bad_arguments_are_rejected_before_any_request(hub_server, repo_id, filename, revision, error):
    with pytest.raises(error, match="folder|repo id|filename|revision"):
        hub.cached_file(repo_id, filename, revision=revision)
    assert hub_server.requests == []


# ---------------------------------------------------------------------- the cache folder

def test_unwritable_cache_names_the_path(hub_server, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HF_HUB_CACHE", str(blocker / "hub"))
    with pytest.raises(hub.CacheError, match=f"cannot write to the hub cache at {blocker}/hub") as error:
        hub.cached_file(REPO, "config.json")
    assert "HF_HUB_CACHE" in str(error.value) and isinstance(error.value, OSError)


def test_no_disk_space_names_the_path(hub_server, monkeypatch, tmp_path):
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
    blobs = repo_dir(tmp_path) / "blobs"
    with pytest.raises(hub.CacheError, match=f"not enough disk space in the hub cache at {blobs}"):
        hub.cached_file(REPO, "model.safetensors")
    assert not (repo_dir(tmp_path) / "snapshots").exists()


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_concurrent_downloads_make_one_good_blob(hub_server, tmp_path, workers):
    slow = hub_server.fault("slow", server="cdn", delay=1.5, times=None)
    if workers == "threads":
        results = [None, None]
        def fetch(i):
            results[i] = hub.cached_file(REPO, "model.safetensors")
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    else:
        code = f"from minirobera.hub import cached_file; print(cached_file({REPO!r}, 'model.safetensors'))"
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
        results = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
    assert results[0] == results[1] and Path(results[0]).read_bytes() == WEIGHTS
    heads = hub_server.seen(method="HEAD", filename="model.safetensors")
    (get,) = hub_server.seen(server="cdn", method="GET")  # the second worker waited on the lock
    assert len(heads) == 2 and heads[1].at < get.at + slow.delay  # ...while the first downloaded
    assert tree(repo_dir(tmp_path) / "blobs") == {sha256(WEIGHTS)}


# ---------------------------------------------------------------------- progress bar

class FakeTerminal:
    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True


@pytest.mark.parametrize("setting", ["terminal", "quiet", "env", "not-a-terminal"])
def test_progress_bar_only_on_a_terminal_when_not_asked_to_be_quiet(hub_server, monkeypatch, setting):
    monkeypatch.setattr(hub, "PROGRESS_MIN_BYTES", 1000)
    terminal = FakeTerminal()
    if setting == "not-a-terminal":
        terminal.isatty = lambda: False
    monkeypatch.setattr(sys, "stderr", terminal)
    if setting == "env":
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    hub.cached_file(REPO, "model.safetensors", quiet=setting == "quiet")
    hub.cached_file(REPO, "config.json")  # below the size threshold: never a bar
    if setting == "terminal":
        assert terminal.text.startswith("\rmodel.safetensors:") and "100% 0.2/0.2 MB" in terminal.text
        assert terminal.text.count("\n") == 1
    else:
        assert terminal.text == ""


# ---------------------------------------------------------------------- interop

def _tiny_roberta_checkpoint(folder: Path) -> dict:
    """config.json, model.safetensors and tokenizer files of a tiny random RoBERTa, by transformers."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    bytes_alphabet = [chr(c) for c in range(33, 127)] + [chr(c) for c in range(161, 173)] + \
        [chr(c) for c in range(174, 256)]
    bytes_alphabet += [chr(256 + i) for i in range(256 - len(bytes_alphabet))]
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *bytes_alphabet, "<mask>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    transformers.RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.RobertaConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=16,
                                        max_position_embeddings=40)
    transformers.RobertaForMaskedLM(config).save_pretrained(folder)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


OFFLINE_LOAD = """
import json, sys, torch, transformers
from huggingface_hub import try_to_load_from_cache
repo, folder, names = sys.argv[1], sys.argv[2], sys.argv[3:]
model = transformers.RobertaForMaskedLM.from_pretrained(repo)
reference = transformers.RobertaForMaskedLM.from_pretrained(folder)
a, b = model.state_dict(), reference.state_dict()
print(json.dumps({
    "model_type": transformers.AutoConfig.from_pretrained(repo).model_type,
    "same_weights": a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a),
    "ids": transformers.AutoTokenizer.from_pretrained(repo)("hello <mask>")["input_ids"],
    "reference_ids": transformers.AutoTokenizer.from_pretrained(folder)("hello <mask>")["input_ids"],
    "paths": {name: try_to_load_from_cache(repo, name) for name in names},
}))
"""


def test_transformers_loads_offline_what_minirobera_downloaded(hub_server, tmp_path):
    folder = tmp_path / "tiny-checkpoint"
    folder.mkdir()
    files = _tiny_roberta_checkpoint(folder)
    hub_server.add_repo("tiny-org/tiny-checkpoint", files)
    paths = {name: hub.cached_file("tiny-org/tiny-checkpoint", name) for name in files}
    hub_server.requests.clear()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": closed_port_url()}
    out = subprocess.run([sys.executable, "-c", OFFLINE_LOAD, "tiny-org/tiny-checkpoint", str(folder),
                          *files], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["model_type"] == "roberta" and result["same_weights"]
    assert result["ids"] == result["reference_ids"]
    assert result["paths"] == paths  # huggingface_hub resolves the very files minirobera wrote
    assert hub_server.requests == []


def test_minirobera_finds_what_huggingface_hub_downloaded(hub_server, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    cache = str(hub.hub_cache_dir())
    theirs = {name: huggingface_hub.hf_hub_download(REPO, name, cache_dir=cache, token=False,
                                                    endpoint=hub_server.url)
              for name in ("config.json", "model.safetensors")}
    hub_server.requests.clear()
    for name, path in theirs.items():
        assert hub.cached_file(REPO, name) == path
    assert hub_server.seen(method="GET") == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert {name: hub.cached_file(REPO, name) for name in theirs} == theirs


def test_huggingface_hub_reads_minirobera_cache_and_no_exist_markers(hub_server):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    ours = {name: hub.cached_file(REPO, name) for name in FILES}
    assert hub.cached_file(REPO, "missing.json", required=False) is None
    cache = str(hub.hub_cache_dir())
    for name, path in ours.items():
        assert huggingface_hub.try_to_load_from_cache(REPO, name, cache_dir=cache) == path
    missing = huggingface_hub.try_to_load_from_cache(REPO, "missing.json", cache_dir=cache)
    assert missing is huggingface_hub.file_download._CACHED_NO_EXIST


# ---------------------------------------------------------------------- the real hub

@pytest.mark.network
@pytest.mark.skipif(os.environ.get("MINIROBERA_NETWORK_TESTS") != "1",
                    reason="talks to huggingface.co; set MINIROBERA_NETWORK_TESTS=1")
def test_real_hub_roberta_base_config(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT")
    for repo_id in ("FacebookAI/roberta-base", "roberta-base"):  # the legacy id redirects
        config = json.loads(Path(hub.cached_file(repo_id, "config.json")).read_text())
        assert (config["model_type"], config["vocab_size"], config["hidden_size"]) == ("roberta", 50265, 768)


def test_loading_from_a_folder_never_imports_requests(tmp_path):
    # requests (with its TLS stack, 14 MiB resident) is imported on the first request to the
    # hub; a model read from a folder, or offline from the cache, never needs it
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        import minirobera
        model = minirobera.RobertaModel(minirobera.RobertaConfig(
            vocab_size=40, hidden_size=8, num_attention_heads=2, intermediate_size=6,
            num_hidden_layers=1), seed=0)
        model.save_pretrained({str(tmp_path)!r})
        minirobera.RobertaModel.from_pretrained({str(tmp_path)!r})([0, 5, 2])
        print("requests" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]
