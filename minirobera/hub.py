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
HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT.

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
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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

_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SAFE_NAME = re.compile(r"[\w.-]+")  # etags and commits become file names: nothing else allowed
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9_])?")
_DIGITS = re.compile(r"[0-9]+")  # not \d: int() would also take "+5" and other scripts' digits


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


def _check_filename(filename: object) -> str:
    if not isinstance(filename, str) or not filename:
        raise TypeError(f"filename must be a non-empty string like 'config.json', got {filename!r}")
    parts = filename.split("/")
    if filename.startswith("/") or "\\" in filename or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"filename must be a relative path inside the repo like 'config.json' "
                         f"or 'onnx/model.onnx', got {filename!r}")
    return filename


def _check_revision(revision: object) -> str:
    if not isinstance(revision, str) or not revision.strip():
        raise TypeError(f"revision must be a branch, tag or commit hash like 'main', got {revision!r}")
    if any(p in ("", ".", "..") for p in revision.split("/")) or "\\" in revision:
        raise ValueError(f"revision {revision!r} is not a valid branch, tag or commit hash")
    return revision


def _check_repo_id(name: str) -> str:
    """A hub repo id (`name` or `org/name`), or a ValueError that says why not."""
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    parts = name.split("/")
    valid = (0 < len(parts) <= 2 and len(name) <= 96 and "--" not in name and ".." not in name
             and all(_REPO_PART.fullmatch(p) for p in parts))
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
            return (self.root / "refs" / revision).read_text().strip() or None
        except OSError:
            return None

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
    for _ in range(MAX_REDIRECTS):
        try:
            resp = session.request(method, url, headers=_headers(url, target, extra),
                                   allow_redirects=False, stream=(method == "GET"), timeout=timeout)
        except _requests().exceptions.InvalidHeader as exc:
            # urllib3 refuses an answer whose Content-Length copies differ before we see it;
            # an invalid header of our own request (a token with a newline) is raised as is
            urllib3 = _requests().packages.urllib3
            if not isinstance(exc.__context__, urllib3.exceptions.InvalidHeader):
                raise
            raise HubError(f"{target.filename!r} of {target.repo_id!r} ({url}): the server sent "
                           f"a header that cannot be read ({exc}); cannot tell the file's size. "
                           f"Check HF_ENDPOINT and any proxy between you and the hub.") from exc
        if not resp.is_redirect:
            return resp, url
        location = urljoin(url, resp.headers["Location"])
        if stop_at_other_host and _origin(location) != _origin(url):
            return resp, location  # a 302 to the CDN: the metadata is on this answer
        resp.close()
        url = location  # a renamed repo (301/307 on the same host), or a CDN hop
    raise HubError(f"too many redirects (more than {MAX_REDIRECTS}) starting from {target.url}")


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
        missing.commit = resp.headers.get("X-Repo-Commit")  # for the .no_exist marker
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
        except _transient():
            if attempt == tries - 1:
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
        if not value or not _SAFE_NAME.fullmatch(value) or value.strip(".") == "":
            raise HubError(f"{target.endpoint} does not look like a Hugging Face hub: the answer "
                           f"for {target.url} has no usable {label} header ({value!r}). Check "
                           f"HF_ENDPOINT, proxies and firewalls.")
    where = f"{target.filename!r} of {target.repo_id!r} ({resp.url})"
    size = parse_size_header(raw_size, size_header, where) if raw_size else None
    return FileMetadata(commit=commit, etag=etag, size=size, location=location)


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


def _body_chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body as it arrives; a broken connection becomes _Dropped after the bytes that came.

    Reads `resp.raw` directly: requests' iter_content would drop the last partial chunk when
    the connection breaks, and those bytes would then be downloaded twice.
    """
    decode = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
    try:
        while chunk := resp.raw.read(CHUNK_BYTES, decode_content=decode):
            yield chunk
    except _transport_errors() as exc:
        raise _Dropped(f"connection dropped: {exc}") from exc


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
            part.unlink()
            raise _Dropped(f"the server refused the resume range for {url}")
        _raise_for_status(resp, url, target)
        resumed = have > 0 and resp.status_code == 206
        if resumed and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            part.unlink()
            raise _Dropped(f"the server resumed {url} at the wrong offset")
        if have and not resumed:  # a 200 to a Range request: the server sends it all again
            progress.update(-have)
        with _writing(part):
            handle = open(part, "ab" if resumed else "wb")
        with handle:
            for chunk in _body_chunks(resp):
                with _writing(part):
                    handle.write(chunk)
                progress.update(len(chunk))


def _fetch(session: requests.Session, meta: FileMetadata, part: Path, target: _Target,
           quiet: bool) -> None:
    """Download into `part` until it holds the whole file, resuming and retrying as needed."""
    have = part.stat().st_size if part.exists() else 0
    if meta.size is not None:
        if have > meta.size:  # not a prefix of this file: start over
            part.unlink()
            have = 0
        _check_space(part.parent, meta.size - have)
    progress = _Progress(target.filename, meta.size, have, _show_progress(meta.size, quiet))
    failures = 0
    try:
        while meta.size is None or have < meta.size:
            try:
                _fetch_once(session, meta, part, target, progress)
                if meta.size is None or part.stat().st_size >= meta.size:
                    return
                raise _Dropped(f"the server closed {meta.location} before the end of the file")
            except _transient() as exc:
                now = part.stat().st_size if part.exists() else 0
                failures = 0 if now > have else failures + 1  # bytes arrived: not stuck
                have = now
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
        _fetch(session, meta, part, target, quiet)
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
        f"HF_HUB_CACHE at a cache that has it.")


def _known_absent(repo: RepoCache, target: _Target) -> bool:
    """True when the cache holds the hub's earlier 404 for this file (a .no_exist marker)."""
    commit = repo.commit_for(target.revision)
    return commit is not None and repo.no_exist(commit, target.filename).exists()


def _remember_missing(repo: RepoCache, target: _Target, resp_commit: Optional[str]) -> None:
    """Mark a 404'd file in .no_exist/<commit>/ as huggingface_hub does (best effort)."""
    if resp_commit and _SAFE_NAME.fullmatch(resp_commit):
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
            logger.info("using the cached %s: %s", target.filename, exc)
            return cached
        if not isinstance(exc, _transient()):
            raise
        if _known_absent(repo, target):  # as transformers: a remembered 404 needs no hub
            raise EntryNotFoundError(
                f"file {target.filename!r} does not exist in {target.repo_id!r} at revision "
                f"{target.revision!r} (the hub said so earlier; it cannot be reached now: "
                f"{exc})") from exc
    try:  # nothing cached: now it is worth waiting for the hub
        return _fetch_metadata(session, target, tries=RETRIES)
    except _transient() as exc:
        raise LocalEntryNotFoundError(
            f"cannot reach the hub for {target.url} ({exc}), and {target.filename!r} of "
            f"{target.repo_id!r} is not in the cache at {repo.cache_dir}. Check your connection "
            f"and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache.") from exc


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
