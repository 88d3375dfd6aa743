"""Finding model files: a local folder, or the Hugging Face hub and the cache it shares.

Owns `cached_file`, the one function every loader calls to turn `(path_or_repo_id, filename)`
into a path on disk, and everything behind it for hub repo ids:

- the URL layout `{HF_ENDPOINT}/{repo_id}/resolve/{revision}/{filename}` and the metadata HEAD
  (commit, etag, size, and where the bytes live: the hub itself or a CDN it redirects to);
- the download: `blobs/<etag>.incomplete`, resumed with `Range`, size and sha256 checked, then
  renamed into place, under a lock, with retries and a progress bar on stderr;
- the cache layout that transformers and huggingface_hub use, so a file either of them
  downloaded is found here and the other way round:

      $HF_HUB_CACHE  (default $HF_HOME/hub, $HF_HOME default ~/.cache/huggingface)
      ├── .locks/models--FacebookAI--roberta-base/<etag>.lock
      └── models--FacebookAI--roberta-base/
          ├── blobs/<etag>                      the bytes, named by the hub's etag
          ├── refs/main                         the commit that "main" resolved to
          ├── .no_exist/<commit>/<file>         empty marker: the hub said 404 for this file
          └── snapshots/<commit>/config.json -> ../../blobs/<etag>   (a relative symlink)

Environment, read at call time: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE (or
TRANSFORMERS_OFFLINE), HF_TOKEN, HF_TOKEN_PATH, HF_HUB_DISABLE_PROGRESS_BARS,
HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT, and minirobera's own MINIROBERA_MAX_DOWNLOAD_BYTES.

The server is untrusted (anyone can run a mirror, and HF_ENDPOINT or a proxy may point
anywhere), so every answer is checked before it touches the disk:

- repo ids, filenames and revisions are checked before the first request (huggingface_hub's
  rules for repo ids; no `..`, absolute paths, backslashes, control characters or over-long
  parts in the others), since they become paths in the cache;
- the commit (X-Repo-Commit) must be 40 hex digits and the ETag a short plain name, since
  they become folder and file names;
- only `identity` encoding is asked for and accepted: a compressed body's size says nothing
  about the file's;
- a body is read up to the size the server announced and no further (one byte more is an
  error that stops the download); without an announced size, up to `max_download_bytes()`
  (50 GB, settable with MINIROBERA_MAX_DOWNLOAD_BYTES);
- redirects go to http(s) URLs only;
- what a refused answer sent is deleted, so the cache never holds half a lie
  (`HubProtocolError`). Only a download that broke off on a network error keeps its
  `.incomplete` part, to resume from it.

A host name that does not resolve (no network, no DNS) is not retried: the error says at once
how to run without the network (a local folder; see `cached_file`).

Leaves out: dataset and space repos, uploads, `snapshot_download`, the Xet protocol (the hub
still serves every file over plain HTTPS), `force_download`, and proxies beyond what
`requests` reads from the environment. Without symlink support (some Windows setups) the
snapshot gets a copy of the blob instead of a link.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
import re
import shutil
import socket
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Iterator, Optional, Union
from urllib.parse import quote, urljoin, urlsplit

if TYPE_CHECKING:  # the annotations only: requests itself is imported on the first request
    import requests

try:
    import fcntl  # the download lock (POSIX)
except ImportError:  # pragma: no cover - Windows: downloads stay atomic, just not de-duplicated
    fcntl = None

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
RETRIES = 5                # tries per request on 5xx / dropped connections (reset when bytes arrive)
BACKOFF_SECONDS = 1.0      # first wait between tries, doubling each time; tests set it near 0
MAX_BACKOFF_SECONDS = 8.0
MAX_REDIRECTS = 10
CHUNK_BYTES = 1 << 20
PROGRESS_MIN_BYTES = 10 << 20  # smaller files download without a progress bar

# The most bytes one file may have when the server does not announce a size, and the largest
# size it may announce: the hub's own limit for one file over plain HTTP (huggingface_hub's
# MAX_HTTP_DOWNLOAD_SIZE), far above any real shard (2-10 GB). $MINIROBERA_MAX_DOWNLOAD_BYTES
# overrides it (see max_download_bytes).
MAX_DOWNLOAD_BYTES = 50_000_000_000
MAX_NAME_BYTES = 200   # one part of a filename or revision: it becomes a file name in the cache,
                       # plus a temp suffix, and file systems stop at 255 bytes
MAX_ETAG_CHARS = 128   # the hub's are 40 (git blob sha1) or 64 (sha256) characters

_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# an etag becomes a file name (blobs/<etag>, .locks/.../<etag>.lock): a plain ASCII name only
_ETAG = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ETAG_CHARS - 1}}}")
# huggingface_hub's REPO_ID_REGEX for one part: 1-96 of [A-Za-z0-9_.-], a word character at both ends
_REPO_PART = re.compile(r"\w(?:[\w.-]{0,94}\w)?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# what git refuses in a ref name (git check-ref-format), besides the checks paths get
_NOT_IN_REF = re.compile(r"[ ~^:?*\[]|@\{|\.lock(?:/|$)|(?:^|/)\.|\.$")
_DIGITS = re.compile(r"[0-9]+")  # not \d: int() would also take "+5" and other scripts' digits

# What to do without the network, for the errors that find neither the hub nor the cache.
OFFLINE_HINT = (
    "To run without the network, give a local folder instead of a repo id: one that holds "
    "config.json, the weights (model.safetensors or pytorch_model.bin) and the tokenizer files "
    "(vocab.json and merges.txt, or tokenizer.json), as in `minirobera fill-mask --model "
    "./roberta-base \"...\"` or `RobertaForMaskedLM.from_pretrained(\"./roberta-base\")`. "
    "HF_HUB_OFFLINE=1 helps only once the files are in the cache.")


# ----------------------------------------------------------------------------------- errors
# All are OSError, as transformers raises OSError for these, so `except OSError` keeps working.

class HubError(OSError):
    """A hub request or a cache operation failed; the message says what and where."""


class RepositoryNotFoundError(HubError):
    """The repo does not exist, or it is private and no valid token was sent."""


class GatedRepoError(RepositoryNotFoundError):
    """The repo is gated or private and the request carried no token that gives access."""


class RevisionNotFoundError(HubError):
    """The branch, tag or commit does not exist in the repo."""


class EntryNotFoundError(HubError, FileNotFoundError):
    """The file is not in the repo (the hub said 404, or the cache knows it is absent)."""


class LocalEntryNotFoundError(HubError, FileNotFoundError):
    """The hub could not be asked (offline mode or no connection) and the cache lacks the file."""


class CorruptDownloadError(HubError):
    """The downloaded bytes did not match the hub's size or sha256, twice in a row."""


class CacheError(HubError):
    """The cache folder could not be written (permissions, read-only disk, disk full)."""


class HubProtocolError(HubError):
    """The server's answer broke the hub's protocol in a way that could harm the cache: an
    invalid commit or ETag, a compressed or over-long body, a redirect to a non-HTTP URL.
    Refused at once (never retried), and nothing it sent is kept."""


class _ServerError(Exception):
    """A 5xx / 429 answer: worth another try after a pause."""


class _Dropped(Exception):
    """The connection broke in the middle of a response body."""


def _requests():
    """The requests module, imported when minirobera first talks to the hub: a model loaded
    from a folder, or offline from the cache, never loads it, nor the memory its TLS stack
    takes (bench/README.md, "What limits the targets", peak RSS)."""
    import requests

    return requests


@functools.lru_cache(maxsize=None)
def _transient() -> tuple:
    """The errors worth another try after a pause (requests imported by then)."""
    requests = _requests()
    return (requests.ConnectionError, requests.Timeout, _ServerError, _Dropped)


@functools.lru_cache(maxsize=None)
def _transport_errors() -> tuple:
    """What a broken connection raises from the middle of a body: urllib3's errors, as
    requests vendors them, and requests' own."""
    requests = _requests()
    return (requests.packages.urllib3.exceptions.HTTPError, requests.RequestException)


# ------------------------------------------------------------------------------ environment

def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str:
    """The hub's base URL: $HF_ENDPOINT, else https://huggingface.co (no trailing slash)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hf_home() -> Path:
    """$HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface."""
    default = os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(os.environ.get("HF_HOME") or default)))


def hub_cache_dir() -> Path:
    """The cache shared with transformers: $HF_HUB_CACHE, else $HF_HOME/hub."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(explicit)))
    return hf_home() / "hub"


def is_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set to 1/ON/YES/TRUE."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def get_token() -> Optional[str]:
    """The user's token: $HF_TOKEN, else the file $HF_TOKEN_PATH (default $HF_HOME/token)."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        path = os.environ.get("HF_TOKEN_PATH") or str(hf_home() / "token")
        try:
            token = Path(os.path.expanduser(path)).read_text()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
    return token.strip() or None


def _timeout(name: str) -> float:
    return float(os.environ.get(name) or 10.0)


def max_download_bytes() -> int:
    """The most bytes one download may have: $MINIROBERA_MAX_DOWNLOAD_BYTES, else 50 GB.

    It bounds a body whose size the server did not announce (huggingface_hub accepts such
    answers, so a mirror may send them), and a larger announced size is refused before the
    first byte. 50 GB (MAX_DOWNLOAD_BYTES) is the hub's own limit for one file over plain HTTP.

    >>> MAX_DOWNLOAD_BYTES  # without MINIROBERA_MAX_DOWNLOAD_BYTES in the environment
    50000000000
    """
    value = os.environ.get("MINIROBERA_MAX_DOWNLOAD_BYTES", "").strip().replace("_", "")
    if not value:
        return MAX_DOWNLOAD_BYTES
    if not _DIGITS.fullmatch(value):
        raise ValueError(f"MINIROBERA_MAX_DOWNLOAD_BYTES must be a number of bytes like "
                         f"50000000000, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------- names and URLs

def hub_url(repo_id: str, filename: str, revision: str = "main", endpoint: Optional[str] = None) -> str:
    """The resolve URL of one file; the revision is quoted whole, so `refs/pr/1` stays one segment.

    >>> hub_url("FacebookAI/roberta-base", "config.json", endpoint="https://huggingface.co")
    'https://huggingface.co/FacebookAI/roberta-base/resolve/main/config.json'
    >>> hub_url("org/model", "onnx/model.onnx", "refs/pr/1", endpoint="http://127.0.0.1:8080")
    'http://127.0.0.1:8080/org/model/resolve/refs%2Fpr%2F1/onnx/model.onnx'
    """
    base = (endpoint or hub_endpoint()).rstrip("/")
    return f"{base}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"


def repo_folder_name(repo_id: str) -> str:
    """The cache folder of a model repo, the name huggingface_hub uses.

    >>> repo_folder_name("FacebookAI/roberta-base")
    'models--FacebookAI--roberta-base'
    >>> repo_folder_name("roberta-base")
    'models--roberta-base'
    """
    return "--".join(["models", *repo_id.split("/")])


def normalize_etag(etag: Optional[str]) -> Optional[str]:
    """An ETag header as a file name: weak marker and quotes removed.

    >>> normalize_etag('W/"a1b2c3"')
    'a1b2c3'
    """
    if etag is None:
        return None
    return etag.strip().removeprefix("W/").strip('"') or None


def parse_size_header(value: str, header: str, where: str) -> int:
    """A size header (Content-Length, X-Linked-Size) in bytes; HubError naming `where` if unusable.

    The same size repeated ("42, 42": two copies of the header, which requests joins with
    ", ", or a proxy that merged them) counts as that size, as RFC 9110 section 8.6 allows.
    Differing copies are refused: trusting either could cut the file short or wait forever.

    >>> parse_size_header("898823, 898823", "Content-Length", "'x.bin'")
    898823
    >>> parse_size_header("898823, 12", "Content-Length", "'x.bin'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    minirobera.hub.HubError: 'x.bin': the server sent Content-Length '898823, 12' (differing values)...
    """
    copies = [copy.strip(" \t") for copy in value.split(",")]
    if not all(_DIGITS.fullmatch(copy) for copy in copies):
        problem = "not a size in bytes"
    elif len({int(copy) for copy in copies}) > 1:
        problem = "differing values"
    else:
        return int(copies[0])
    raise HubError(f"{where}: the server sent {header} {value!r} ({problem}); cannot tell the "
                   f"file's size. Check HF_ENDPOINT and any proxy between you and the hub.")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return parts.scheme, (parts.hostname or "").lower(), port


def _path_problem(name: str) -> Optional[str]:
    """Why `name` cannot be a relative path inside a cache folder, or None if it can.

    >>> _path_problem("onnx/model.onnx") is None
    True
    >>> [_path_problem(n) for n in ("../x", "C:x", "a\\\\b", "a\\x00b")]
    ["an empty, '.' or '..' part", 'an absolute path', 'a backslash', 'a control character']
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate, not valid Unicode"
    if _CONTROL.search(name):
        return "a control character"
    if "\\" in name:
        return "a backslash"
    if name.startswith("/") or PureWindowsPath(name).anchor:  # "/x", "C:x", "//host/share"
        return "an absolute path"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "an empty, '.' or '..' part"
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        return f"a part longer than {MAX_NAME_BYTES} bytes"
    return None


def _check_filename(filename: object) -> str:
    if not isinstance(filename, str) or not filename:
        raise TypeError(f"filename must be a non-empty string like 'config.json', got {filename!r}")
    problem = _path_problem(filename)
    if problem:
        raise ValueError(f"filename must be a relative path inside the repo like 'config.json' "
                         f"or 'onnx/model.onnx', got {filename!r} ({problem})")
    return filename


def _check_revision(revision: object) -> str:
    if not isinstance(revision, str) or not revision.strip():
        raise TypeError(f"revision must be a branch, tag or commit hash like 'main', got {revision!r}")
    problem = _path_problem(revision)
    if problem is None and _NOT_IN_REF.search(revision):
        problem = "a character or part git does not allow in a ref name"
    if problem:
        raise ValueError(f"revision {revision!r} is not a valid branch, tag or commit hash "
                         f"({problem})")
    return revision


def _check_repo_id(name: str) -> str:
    """A hub repo id (`name` or `org/name`), or a ValueError that says why not.

    huggingface_hub's rules: one or two parts of 1 to 96 ASCII letters, digits, `_`, `.` or
    `-`, starting and ending with a letter, digit or `_`; no `--` or `..`; no `.git` at the end.
    """
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    parts = name.split("/")
    valid = (len(parts) <= 2 and "--" not in name and ".." not in name
             and not name.endswith(".git") and all(_REPO_PART.fullmatch(p) for p in parts))
    if looks_like_path or not valid:
        raise ValueError(
            f"{name!r} is not a local folder (no such directory) and not a hub repo id like "
            f"'FacebookAI/roberta-base': check the path, or the repo id's spelling")
    return name


# ------------------------------------------------------------------------------ the cache

@dataclass(frozen=True)
class RepoCache:
    """The cache folder of one repo, and the paths inside it (the layout in the module doc).

    >>> repo = RepoCache(Path("/cache"), "FacebookAI/roberta-base")
    >>> print(repo.pointer("e2da8e2f", "config.json").as_posix())
    /cache/models--FacebookAI--roberta-base/snapshots/e2da8e2f/config.json
    """

    cache_dir: Path
    repo_id: str

    @property
    def root(self) -> Path:
        """The repo's folder: <cache_dir>/models--<org>--<name>.

        >>> RepoCache(Path("/cache"), "FacebookAI/roberta-base").root.name
        'models--FacebookAI--roberta-base'
        """
        return self.cache_dir / repo_folder_name(self.repo_id)

    def blob(self, etag: str) -> Path:
        """Where a file's bytes live, named by its etag (shared by every snapshot that has it).

        >>> print(RepoCache(Path("/cache"), "org/m").blob("a1b2").as_posix())
        /cache/models--org--m/blobs/a1b2
        """
        return self.root / "blobs" / etag

    def pointer(self, commit: str, filename: str) -> Path:
        """The path users get: snapshots/<commit>/<filename>, a symlink to the blob."""
        return self.root / "snapshots" / commit / filename

    def lock(self, etag: str) -> Path:
        """The lock file held while that blob downloads.

        It is the path huggingface_hub locks too, so a download by either waits for the other.

        >>> print(RepoCache(Path("/cache"), "org/m").lock("a1b2").as_posix())
        /cache/.locks/models--org--m/a1b2.lock
        """
        return self.cache_dir / ".locks" / repo_folder_name(self.repo_id) / f"{etag}.lock"

    def no_exist(self, commit: str, filename: str) -> Path:
        """The empty marker saying the hub answered 404 for this file at this commit.

        With it, offline mode can tell "not in the repo" from "not downloaded yet".

        >>> print(RepoCache(Path("/cache"), "org/m").no_exist("c0ffee", "tokenizer.json").as_posix())
        /cache/models--org--m/.no_exist/c0ffee/tokenizer.json
        """
        return self.root / ".no_exist" / commit / filename

    def commit_for(self, revision: str) -> Optional[str]:
        """The commit a revision resolved to last time (a commit hash resolves to itself)."""
        if _COMMIT.fullmatch(revision):
            return revision
        try:
            commit = (self.root / "refs" / revision).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None
        return commit if _COMMIT.fullmatch(commit) else None  # never a path like ".."

    def lookup(self, revision: str, filename: str) -> Optional[str]:
        """The cached file for this revision, or None."""
        commit = self.commit_for(revision)
        if commit is not None and self.pointer(commit, filename).is_file():
            return str(self.pointer(commit, filename))
        return None


def _cache_error(path: Path, exc: OSError) -> CacheError:
    reason = "no space left on the disk" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return CacheError(f"cannot write to the hub cache at {path}: {reason}. Make that folder "
                      f"writable or free space there, or set HF_HUB_CACHE (or HF_HOME) to another "
                      f"folder.")


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed write into a CacheError that names the path."""
    try:
        yield
    except HubError:
        raise
    except OSError as exc:
        raise _cache_error(path, exc) from exc


def _write_atomic(path: Path, text: str) -> None:
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def _write_ref(repo: RepoCache, revision: str, commit: str) -> None:
    """refs/<revision> holds the commit it resolved to (nothing to store for a commit hash)."""
    if revision == commit:
        return
    if repo.commit_for(revision) != commit:
        _write_atomic(repo.root / "refs" / revision, commit)


def _link(pointer: Path, blob: Path) -> None:
    """snapshots/<commit>/<file> -> a relative symlink to the blob, replaced atomically."""
    with _writing(pointer):
        pointer.parent.mkdir(parents=True, exist_ok=True)
        tmp = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            os.symlink(os.path.relpath(blob, pointer.parent), tmp)
        except (OSError, NotImplementedError) as exc:
            if getattr(exc, "errno", None) not in (errno.EPERM, errno.EOPNOTSUPP, None):
                raise
            shutil.copyfile(blob, tmp)  # no symlinks here (Windows without developer mode)
        os.replace(tmp, pointer)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path`, so one process downloads a blob while others wait."""
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    with handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting for another download of the same file (lock %s)", path)
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------ HTTP

@dataclass(frozen=True)
class FileMetadata:
    """What the HEAD answer says about one file."""

    commit: str
    etag: str            # blob name; the sha256 of the bytes for large ("LFS") files
    size: Optional[int]
    location: str        # where the bytes are: the resolve URL or the CDN URL it redirects to


@dataclass(frozen=True)
class _Target:
    """One file request, for building URLs and error messages."""

    repo_id: str
    filename: str
    revision: str
    token: Optional[str]
    endpoint: str

    @property
    def url(self) -> str:
        return hub_url(self.repo_id, self.filename, self.revision, self.endpoint)


def _headers(url: str, target: _Target, extra: Optional[dict] = None) -> dict:
    from minirobera import __version__

    headers = {"User-Agent": f"minirobera/{__version__}; requests/{_requests().__version__}",
               "Accept-Encoding": "identity"}  # real sizes, and Range offsets into real bytes
    # The token goes to the hub's own host only: never to a CDN or anywhere a redirect points.
    if target.token and _origin(url) == _origin(target.endpoint):
        headers["Authorization"] = f"Bearer {target.token}"
    return {**headers, **(extra or {})}


def _send(session: requests.Session, method: str, url: str, target: _Target, *,
          stop_at_other_host: bool, extra: Optional[dict] = None, timeout: float = 10.0,
          ) -> tuple[requests.Response, str]:
    """One request with redirects followed by hand, so the token stays on the hub's host.

    Returns the response and its URL; with `stop_at_other_host`, a redirect to another host
    (the hub's CDN) is returned as is, with the redirect target as the URL.
    """
    requests = _requests()
    if not _is_http(url):
        raise HubProtocolError(f"HF_ENDPOINT or the file's location {_shown(url)} is not an "
                               f"http(s) URL; {target.filename!r} of {target.repo_id!r} is only "
                               f"fetched over HTTP(S). Check HF_ENDPOINT.")
    for _ in range(MAX_REDIRECTS):
        try:
            resp = session.request(method, url, headers=_headers(url, target, extra),
                                   allow_redirects=False, stream=(method == "GET"), timeout=timeout)
        except requests.exceptions.InvalidHeader as exc:
            # urllib3 refuses an answer whose Content-Length copies differ before we see it;
            # an invalid header of our own request (a token with a newline) is raised as is
            urllib3 = requests.packages.urllib3
            if not isinstance(exc.__context__, urllib3.exceptions.InvalidHeader):
                raise
            raise HubError(f"{target.filename!r} of {target.repo_id!r} ({url}): the server sent "
                           f"a header that cannot be read ({exc}); cannot tell the file's size. "
                           f"Check HF_ENDPOINT and any proxy between you and the hub.") from exc
        except requests.RequestException as exc:
            if isinstance(exc, _transient()):
                raise
            raise HubError(f"the request for {target.filename!r} of {target.repo_id!r} to {url} "
                           f"failed: {exc}. Check HF_ENDPOINT and any proxy between you and the "
                           f"hub.") from exc
        except (ValueError, UnicodeError) as exc:  # requests parses a redirect's Location even
            raise HubProtocolError(                # when it does not follow it
                f"the answer from {url} for {target.filename!r} of {target.repo_id!r} cannot be "
                f"read: {exc}. Check HF_ENDPOINT and any proxy between you and the hub.") from exc
        if not resp.is_redirect:
            return resp, url
        location = _redirect_target(resp, url, target)
        if stop_at_other_host and _origin(location) != _origin(url):
            return resp, location  # a 302 to the CDN: the metadata is on this answer
        resp.close()
        url = location  # a renamed repo (301/307 on the same host), or a CDN hop
    raise HubError(f"too many redirects (more than {MAX_REDIRECTS}) starting from {target.url}")


def _redirect_target(resp: requests.Response, url: str, target: _Target) -> str:
    """Where a redirect points, as an absolute http(s) URL; HubProtocolError for anything else
    (file:///..., a Location that is no URL)."""
    location = resp.headers["Location"]
    try:
        absolute = urljoin(url, location)
    except ValueError:
        absolute = location
    if _is_http(absolute):
        return absolute
    resp.close()
    raise HubProtocolError(f"a redirect from {url} points to {_shown(location)}, which is not an "
                           f"http(s) URL; {target.filename!r} of {target.repo_id!r} is only fetched "
                           f"over HTTP(S). Check HF_ENDPOINT and any proxy between you and the hub.")


def _is_http(url: str) -> bool:
    """True for an absolute http(s) URL with a host and a readable port.

    >>> [_is_http(u) for u in ("https://hf.co/x", "file:///etc/passwd", "http://[::1", "http://h:99999")]
    [True, False, False, False]
    """
    try:
        parts = urlsplit(url)
        parts.port  # raises for a port out of range
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _shown(value: str, limit: int = 60) -> str:
    """A header value for an error message: repr, cut to `limit` characters.

    >>> _shown("a" * 5000, 8)
    "'aaaaaaaa'... (5000 characters)"
    """
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def _raise_for_status(resp: requests.Response, url: str, target: _Target) -> None:
    """Turn an HTTP error answer into an exception that says what is wrong, in words."""
    status = resp.status_code
    if status < 400:
        return
    code = resp.headers.get("X-Error-Code", "")
    where = f"(HTTP {status} for {url})"
    repo, name, rev = target.repo_id, target.filename, target.revision
    if status >= 500 or status == 429:
        raise _ServerError(f"the server answered HTTP {status} {resp.reason} for {url}")
    detail = resp.headers.get("X-Error-Message") or resp.reason
    if status in (401, 403) and _origin(url) != _origin(target.endpoint):
        raise HubError(f"the file server refused the download link for {name!r} {where}; "
                       f"signed links expire, so run again to get a fresh one.")
    if status == 401 and "invalid credentials" in detail.lower():
        raise HubError(f"the hub rejected the token {where}: it is invalid or expired. Fix or "
                       f"unset HF_TOKEN (or the token file $HF_HOME/token, or token=...).")
    if code == "GatedRepo" or (status in (401, 403) and code != "RepoNotFound"):
        raise GatedRepoError(_access_message(target, where))
    if code == "RepoNotFound":
        raise RepositoryNotFoundError(
            f"repository {repo!r} was not found on {target.endpoint} {where}. Check the repo id; "
            f"if it is private or gated, you need a token with access to it: set HF_TOKEN "
            f"(or pass token=...)." + (" The token sent was not accepted." if target.token else ""))
    if code == "RevisionNotFound":
        raise RevisionNotFoundError(
            f"revision {rev!r} does not exist in {repo!r} {where}: use a branch, tag or commit "
            f"hash of that repo.")
    if status == 404:
        what = "does not exist" if code == "EntryNotFound" else "or the repository does not exist"
        missing = EntryNotFoundError(f"file {name!r} {what} in {repo!r} at revision {rev!r} {where}.")
        commit = resp.headers.get("X-Repo-Commit")
        missing.commit = commit and _checked_commit(commit, url)  # for the .no_exist marker
        raise missing
    raise HubError(f"the hub refused the request for {name!r} of {repo!r} {where}: {detail}")


def _access_message(target: _Target, where: str) -> str:
    page = f"{target.endpoint}/{target.repo_id}"
    if target.token:
        hint = (f"The token sent does not give access: request access on {page} with the account "
                f"the token belongs to, or use another token (HF_TOKEN or token=...).")
    else:
        hint = (f"No token was sent: request access on {page}, then set HF_TOKEN to a token of "
                f"that account (or save it in $HF_HOME/token, or pass token=...).")
    return f"access to {target.repo_id!r} was refused {where}: the repository is gated or private. {hint}"


def _pause(attempt: int) -> None:
    time.sleep(min(BACKOFF_SECONDS * 2 ** attempt, MAX_BACKOFF_SECONDS))


def _fetch_metadata(session: requests.Session, target: _Target, *, tries: int = 1) -> FileMetadata:
    """HEAD the resolve URL, following renames on the hub's host but not the CDN redirect."""
    for attempt in range(tries):
        try:
            resp, url = _send(session, "HEAD", target.url, target, stop_at_other_host=True,
                              timeout=_timeout("HF_HUB_ETAG_TIMEOUT"))
            _raise_for_status(resp, url, target)
            return _metadata(resp, url, target)
        except _transient() as exc:
            if attempt == tries - 1 or _unresolved_name(exc):  # DNS failures do not heal in seconds
                raise
            _pause(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _metadata(resp: requests.Response, location: str, target: _Target) -> FileMetadata:
    headers = resp.headers
    commit = headers.get("X-Repo-Commit")
    etag = normalize_etag(headers.get("X-Linked-Etag") or headers.get("ETag"))
    # a redirect's Content-Length is the size of the redirect, not of the file
    size_header = ("X-Linked-Size" if headers.get("X-Linked-Size") else
                   None if resp.is_redirect else "Content-Length")
    raw_size = headers.get(size_header) if size_header else None
    for label, value in (("X-Repo-Commit", commit), ("ETag", etag)):
        if not value:
            raise HubError(f"{target.endpoint} does not look like a Hugging Face hub: the answer "
                           f"for {target.url} has no usable {label} header ({value!r}). Check "
                           f"HF_ENDPOINT, proxies and firewalls.")
    commit, etag = _checked_commit(commit, target.url), _checked_etag(etag, target.url)
    where = f"{target.filename!r} of {target.repo_id!r} ({resp.url})"
    if not resp.is_redirect:  # a redirect's own body is not the file
        _check_identity(resp, where)
    size = parse_size_header(raw_size, size_header, where) if raw_size else None
    return FileMetadata(commit=commit, etag=etag, size=size, location=location)


def _checked_commit(value: str, url: str) -> str:
    """X-Repo-Commit as sent, if it is a commit hash (it becomes a folder name in the cache)."""
    return _checked(value, _COMMIT, url, "X-Repo-Commit", "a commit hash is 40 hexadecimal "
                    "digits (0-9, a-f)")


def _checked_etag(value: str, url: str) -> str:
    """The normalised ETag, if it is a plain file name (it names the blob in the cache)."""
    return _checked(value, _ETAG, url, "ETag", f"the cached file is named after it, so it must "
                    f"be 1 to {MAX_ETAG_CHARS} ASCII letters, digits, '.', '_' or '-', starting "
                    f"with a letter or digit (the hub sends a 40- or 64-digit hash)")


def _checked(value: str, pattern, url: str, header: str, rule: str) -> str:
    if pattern.fullmatch(value):
        return value
    raise HubProtocolError(f"the answer for {url} carries an invalid {header} {_shown(value)}: "
                           f"{rule}. Refused; nothing was written to the cache. Check "
                           f"HF_ENDPOINT and any proxy between you and the hub.")


def _check_identity(resp: requests.Response, where: str) -> None:
    """Refuse a compressed answer: only `identity` was asked for (Accept-Encoding)."""
    coding = resp.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):
        raise HubProtocolError(
            f"{where}: the server sent Content-Encoding {_shown(coding)} although only "
            f"'identity' was asked for. A compressed body's size says nothing about the file's "
            f"(a few KB can inflate to GB), so it is refused and nothing of it is kept. Check "
            f"HF_ENDPOINT and any proxy between you and the hub.")


def _unresolved_name(exc: BaseException) -> Optional[BaseException]:
    """The host-name lookup failure (DNS) behind `exc`, at any depth of its causes, or None.

    >>> _unresolved_name(OSError("x")) is None
    True
    >>> cause = socket.gaierror(-2, "Name or service not known")
    >>> wrapped = OSError("connection failed")
    >>> wrapped.__cause__ = cause
    >>> _unresolved_name(wrapped) is cause
    True
    """
    seen, todo = set(), [exc]
    while todo:
        error = todo.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        # urllib3 2 wraps the gaierror in NameResolutionError (and requests wraps that twice)
        if isinstance(error, socket.gaierror) or type(error).__name__ == "NameResolutionError":
            return error
        todo += [error.__cause__, error.__context__, getattr(error, "reason", None), *error.args]
    return None


# ------------------------------------------------------------------------------ download

class _Progress:
    """A one-line progress bar on stderr, drawn at most 5 times a second."""

    def __init__(self, name: str, total: Optional[int], done: int, enabled: bool):
        self.name, self.total, self.done, self.enabled = name, total, done, enabled
        self.start, self.last = time.monotonic(), 0.0

    def update(self, n: int) -> None:
        self.done += n
        if self.enabled and time.monotonic() - self.last >= 0.2:
            self._draw()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self) -> None:
        self.last = now = time.monotonic()
        rate = self.done / max(now - self.start, 1e-6) / 1e6
        total = f"/{self.total / 1e6:.1f}" if self.total else ""
        pct = f"{100 * self.done / self.total:3.0f}% " if self.total else ""
        sys.stderr.write(f"\r{self.name}: {pct}{self.done / 1e6:.1f}{total} MB  {rate:.1f} MB/s")
        sys.stderr.flush()


def _show_progress(size: Optional[int], quiet: bool) -> bool:
    return (not quiet and not _env_true("HF_HUB_DISABLE_PROGRESS_BARS")
            and size is not None and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty())


def _body_chunks(resp: requests.Response, limit: int, too_long: str) -> Iterator[bytes]:
    """The body as it arrives, never more than `limit` bytes; a broken connection becomes
    _Dropped after the bytes that came.

    Reads `resp.raw` directly and undecoded: requests' iter_content would drop the last partial
    chunk when the connection breaks (those bytes would then be downloaded twice), and would
    inflate a compressed body. Once `limit` bytes came, one more byte is asked for: if the server
    has it, the body is longer than it may be, and HubProtocolError(`too_long`) ends the
    download without that byte written.
    """
    got = 0
    try:
        while chunk := resp.raw.read(min(CHUNK_BYTES, limit - got + 1), decode_content=False):
            got += len(chunk)
            if got > limit:
                raise HubProtocolError(too_long)
            yield chunk
    except _transport_errors() as exc:
        raise _Dropped(f"connection dropped: {exc}") from exc


def _body_limit(resp: requests.Response, meta: FileMetadata, start: int, url: str,
                target: _Target) -> tuple[int, str]:
    """How many bytes this answer may carry (it starts at byte `start` of the file), and the
    message for a body that goes on past it.

    The size announced in the metadata rules; the answer's own Content-Length must agree with
    it. Without either, the ceiling of max_download_bytes() applies.
    """
    where = f"{target.filename!r} of {target.repo_id!r} ({url})"
    raw = resp.headers.get("Content-Length")
    sent = parse_size_header(raw, "Content-Length", where) if raw else None
    if meta.size is not None:
        limit = meta.size - start
        if sent is not None and sent != limit:
            raise HubProtocolError(f"{where}: the answer's Content-Length is {sent} bytes where "
                                   f"{limit} were announced; refused before reading it. Check "
                                   f"HF_ENDPOINT and any proxy between you and the hub.")
        return limit, (f"{where}: the server sent more than the {meta.size} bytes it announced; "
                       f"the download was stopped there and deleted.")
    if sent is not None:
        _check_ceiling(start + sent, where)
        return sent, (f"{where}: the server sent more than the {start + sent} bytes its "
                      f"Content-Length announced; the download was stopped there and deleted.")
    ceiling = max_download_bytes()
    return ceiling - start, (
        f"{where}: the server announced no size and sent more than {ceiling} bytes, the most "
        f"one download may have (MINIROBERA_MAX_DOWNLOAD_BYTES, default 50 GB); the download was "
        f"stopped there and deleted. If the file really is that large, raise "
        f"MINIROBERA_MAX_DOWNLOAD_BYTES.")


def _check_ceiling(size: int, where: str) -> None:
    """Refuse an announced size above max_download_bytes(), before the first byte."""
    if size > max_download_bytes():
        raise HubProtocolError(
            f"{where}: the server announced {size} bytes, more than the {max_download_bytes()} "
            f"one download may have (MINIROBERA_MAX_DOWNLOAD_BYTES, default 50 GB, the hub's own "
            f"limit); refused before the first byte. If the file really is that large, raise "
            f"MINIROBERA_MAX_DOWNLOAD_BYTES.")


def _check_space(folder: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: let the write fail with its own error if it must
    if free < needed:
        raise CacheError(f"not enough disk space in the hub cache at {folder}: the download needs "
                         f"{needed / 1e6:.1f} MB, {free / 1e6:.1f} MB are free. Free some space, "
                         f"or set HF_HUB_CACHE (or HF_HOME) to a folder on a bigger disk.")


def _fetch_once(session: requests.Session, meta: FileMetadata, part: Path, target: _Target,
                progress: _Progress) -> None:
    """One GET into `part`, resuming from its current size; raises a _transient() error to retry."""
    have = part.stat().st_size if part.exists() else 0
    extra = {"Range": f"bytes={have}-"} if have else None
    resp, url = _send(session, "GET", meta.location, target, stop_at_other_host=False, extra=extra,
                      timeout=_timeout("HF_HUB_DOWNLOAD_TIMEOUT"))
    with resp:
        if resp.status_code == 416:  # our partial file is no prefix of theirs: start over
            part.unlink(missing_ok=True)
            raise _Dropped(f"the server refused the resume range for {url}")
        _raise_for_status(resp, url, target)
        resumed = have > 0 and resp.status_code == 206
        if resumed and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            part.unlink()
            raise _Dropped(f"the server resumed {url} at the wrong offset")
        _check_identity(resp, f"{target.filename!r} of {target.repo_id!r} ({url})")
        limit, too_long = _body_limit(resp, meta, have if resumed else 0, url, target)
        if have and not resumed:  # a 200 to a Range request: the server sends it all again
            progress.update(-have)
        with _writing(part):
            handle = open(part, "ab" if resumed else "wb")
        with handle:
            for chunk in _body_chunks(resp, limit, too_long):
                with _writing(part):
                    handle.write(chunk)
                progress.update(len(chunk))


def _fetch(session: requests.Session, meta: FileMetadata, part: Path, target: _Target,
           quiet: bool) -> None:
    """Download into `part` until it holds the whole file, resuming and retrying as needed."""
    have = part.stat().st_size if part.exists() else 0
    if meta.size is not None:
        _check_ceiling(meta.size, f"{target.filename!r} of {target.repo_id!r} ({meta.location})")
        if have > meta.size:  # not a prefix of this file: start over
            part.unlink()
            have = 0
        _check_space(part.parent, meta.size - have)
    progress = _Progress(target.filename, meta.size, have, _show_progress(meta.size, quiet))
    failures, furthest = 0, have
    try:
        # an empty file is fetched too: the GET creates it, and shows a server whose HEAD lied
        while meta.size is None or have < meta.size or not part.exists():
            try:
                _fetch_once(session, meta, part, target, progress)
                if meta.size is None or part.stat().st_size >= meta.size:
                    return
                raise _Dropped(f"the server closed {meta.location} before the end of the file")
            except _transient() as exc:
                now = part.stat().st_size if part.exists() else 0
                # new bytes, past the furthest point yet: not stuck. (Against the last try only,
                # a server that refuses every resume would make this loop forever.)
                failures = 0 if now > furthest else failures + 1
                have, furthest = now, max(furthest, now)
                if _unresolved_name(exc):  # no DNS: waiting a few seconds will not bring it back
                    raise HubError(f"downloading {target.filename!r} of {target.repo_id!r}: the "
                                   f"host name of {meta.location} does not resolve ({exc}). Run "
                                   f"again with the network back to resume from the {have} "
                                   f"bytes kept in {part}.") from exc
                if failures >= RETRIES:
                    raise HubError(f"downloading {target.filename!r} of {target.repo_id!r} from "
                                   f"{meta.location} failed {RETRIES} times in a row: {exc}. Run "
                                   f"again to resume from the {have} bytes kept in {part}.") from exc
                logger.warning("%s; retrying (%d/%d)", exc, failures, RETRIES)
                _pause(failures)
    finally:
        progress.close()


def _problem(path: Path, meta: FileMetadata) -> Optional[str]:
    """Why the downloaded file is not the hub's file, or None when size and sha256 agree."""
    size = path.stat().st_size
    if meta.size is not None and size != meta.size:
        return f"size {size} instead of {meta.size} bytes"
    if _SHA256.fullmatch(meta.etag):  # large files: the etag is the sha256 of the bytes
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                digest.update(block)
        if digest.hexdigest() != meta.etag:
            return f"sha256 {digest.hexdigest()} instead of {meta.etag}"
    return None


def _download_blob(session: requests.Session, meta: FileMetadata, blob: Path, target: _Target,
                  quiet: bool = False) -> None:
    """Download to `blob.incomplete`, check it, rename to `blob`; a bad copy is fetched once more."""
    part = blob.with_name(blob.name + ".incomplete")
    with _writing(blob.parent):
        blob.parent.mkdir(parents=True, exist_ok=True)
    problem = None
    for _ in range(2):
        try:
            _fetch(session, meta, part, target, quiet)
        except HubProtocolError:
            part.unlink(missing_ok=True)  # what a server that broke the protocol sent is worth nothing
            raise
        problem = _problem(part, meta)
        if problem is None:
            with _writing(blob):
                os.replace(part, blob)
            return
        logger.warning("download of %s was corrupt (%s); fetching it again", target.filename, problem)
        part.unlink()
    raise CorruptDownloadError(
        f"the download of {target.filename!r} of {target.repo_id!r} from {meta.location} was "
        f"corrupt twice ({problem}); it was deleted. Try again later; if it persists, the file "
        f"on the hub or a proxy between you and it is broken.")


# ------------------------------------------------------------------------------ resolving

def _from_cache_only(repo: RepoCache, target: _Target, why: str) -> str:
    """The cached file when the hub cannot be asked; EntryNotFoundError if known to be absent."""
    name, rev = target.filename, target.revision
    found = repo.lookup(rev, name)
    if found is not None:
        return found
    commit = repo.commit_for(rev)
    if _known_absent(repo, target):
        raise EntryNotFoundError(f"file {name!r} does not exist in {target.repo_id!r} at revision "
                                 f"{rev!r} (the hub said so earlier; {why}).")
    if commit is not None and (repo.root / "snapshots" / commit).is_dir():
        raise EntryNotFoundError(f"file {name!r} of {target.repo_id!r} (revision {rev!r}) is not "
                                 f"in the cache at {repo.root} and {why}.")
    raise LocalEntryNotFoundError(
        f"cannot find {name!r} of {target.repo_id!r} (revision {rev!r}) in the cache at "
        f"{repo.cache_dir}, and {why}. Download it once with the hub reachable, or point "
        f"HF_HUB_CACHE at a cache that has it. {OFFLINE_HINT}")


def _known_absent(repo: RepoCache, target: _Target) -> bool:
    """True when the cache holds the hub's earlier 404 for this file (a .no_exist marker)."""
    commit = repo.commit_for(target.revision)
    return commit is not None and repo.no_exist(commit, target.filename).exists()


def _remember_missing(repo: RepoCache, target: _Target, resp_commit: Optional[str]) -> None:
    """Mark a 404'd file in .no_exist/<commit>/ as huggingface_hub does (best effort)."""
    if resp_commit and _COMMIT.fullmatch(resp_commit):
        try:
            marker = repo.no_exist(resp_commit, target.filename)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            _write_ref(repo, target.revision, resp_commit)
        except (OSError, HubError):
            pass


def _metadata_or_cache(session: requests.Session, repo: RepoCache, target: _Target) -> Union[FileMetadata, str]:
    """The file's metadata from the hub, or its cached path when the hub cannot answer."""
    try:
        return _fetch_metadata(session, target)
    except (EntryNotFoundError, RevisionNotFoundError):
        raise
    except (HubError, *_transient()) as exc:  # hub down, no connection, gated without token...
        cached = repo.lookup(target.revision, target.filename)
        if cached is not None:
            log = logger.warning if isinstance(exc, HubProtocolError) else logger.info
            log("using the cached %s: %s", target.filename, exc)
            return cached
        if not isinstance(exc, _transient()):
            raise
        if _known_absent(repo, target):  # as transformers: a remembered 404 needs no hub
            raise EntryNotFoundError(
                f"file {target.filename!r} does not exist in {target.repo_id!r} at revision "
                f"{target.revision!r} (the hub said so earlier; it cannot be reached now: "
                f"{exc})") from exc
        if _unresolved_name(exc):  # no DNS: offline, most likely; retries would only wait
            raise _unreachable(repo, target, exc) from exc
    try:  # nothing cached: now it is worth waiting for the hub
        return _fetch_metadata(session, target, tries=RETRIES)
    except _transient() as exc:
        raise _unreachable(repo, target, exc) from exc


def _unreachable(repo: RepoCache, target: _Target, exc: BaseException) -> LocalEntryNotFoundError:
    """The error for a hub that cannot be reached when the cache lacks the file."""
    unresolved = _unresolved_name(exc)
    host = urlsplit(target.url).hostname
    why = (f"the host name {host!r} does not resolve: {unresolved}; no network, or no DNS"
           if unresolved else str(exc))
    return LocalEntryNotFoundError(
        f"cannot reach the hub for {target.url} ({why}), and {target.filename!r} of "
        f"{target.repo_id!r} is not in the cache at {repo.cache_dir}. {OFFLINE_HINT} Otherwise "
        f"check your connection and HF_ENDPOINT.")


def _resolve(repo: RepoCache, target: _Target, offline_reason: Optional[str], quiet: bool) -> str:
    if _COMMIT.fullmatch(target.revision):  # a pinned commit that is cached never changes
        pinned = repo.pointer(target.revision, target.filename)
        if pinned.is_file():
            return str(pinned)
    if offline_reason:
        return _from_cache_only(repo, target, offline_reason)
    with _requests().Session() as session:
        try:
            meta = _metadata_or_cache(session, repo, target)
        except EntryNotFoundError as exc:
            _remember_missing(repo, target, getattr(exc, "commit", None))
            raise
        if isinstance(meta, str):
            return meta
        pointer, blob = repo.pointer(meta.commit, target.filename), repo.blob(meta.etag)
        if pointer.is_file():
            try:
                _write_ref(repo, target.revision, meta.commit)
            except CacheError:
                pass  # a read-only cache that already has the file still serves it
            return str(pointer)
        _write_ref(repo, target.revision, meta.commit)
        with _locked(repo.lock(meta.etag)):
            if not blob.is_file():  # another process may have finished it while we waited
                _download_blob(session, meta, blob, target, quiet)
            _link(pointer, blob)
    return str(pointer)


def cached_file(path_or_repo_id: Union[str, os.PathLike], filename: str, *, revision: str = "main",
                required: bool = True, token: Union[str, bool, None] = None,
                local_files_only: bool = False, quiet: bool = False) -> Optional[str]:
    """Return the local path of `filename` from a folder or a hub repo id, downloading if needed.

    A folder never touches the network. A repo id is resolved through the cache shared with
    transformers; `token=None` uses HF_TOKEN or the token file, `token=False` sends none.
    With `required=False` a file the repo does not have gives None; other errors still raise.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = Path(folder, "config.json").write_text("{}")
    ...     found = cached_file(folder, "config.json")
    ...     absent = cached_file(folder, "tokenizer.json", required=False)
    >>> found == os.path.join(folder, "config.json"), absent
    (True, None)
    >>> cached_file("FacebookAI/roberta-base", "config.json")  # doctest: +SKIP
    '/root/.cache/huggingface/hub/models--FacebookAI--roberta-base/snapshots/e2da8e2f.../config.json'
    """
    path_or_repo_id = os.fspath(path_or_repo_id)
    if not isinstance(path_or_repo_id, str):
        raise TypeError(f"path_or_repo_id must be a folder or a hub repo id like "
                        f"'FacebookAI/roberta-base' (a str or a path), got {path_or_repo_id!r}")
    filename, revision = _check_filename(filename), _check_revision(revision)
    if os.path.isdir(path_or_repo_id):
        path = os.path.join(path_or_repo_id, filename)
        if os.path.isfile(path):
            return path
        if required:
            raise FileNotFoundError(f"{filename!r} not found in folder {path_or_repo_id!r}")
        return None
    repo_id = _check_repo_id(path_or_repo_id)
    token = None if token is False else (token if isinstance(token, str) else get_token())
    target = _Target(repo_id, filename, revision, token, hub_endpoint())
    offline_reason = ("HF_HUB_OFFLINE is set (cache only)" if is_offline() else
                      "local_files_only=True (cache only)" if local_files_only else None)
    try:
        return _resolve(RepoCache(hub_cache_dir(), repo_id), target, offline_reason, quiet)
    except EntryNotFoundError:
        if required:
            raise
        return None
