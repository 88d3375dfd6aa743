"""A stand-in for the Hugging Face hub over real HTTP on 127.0.0.1, for the hub client's tests.

Owns `HubServer`: two threaded `http.server` servers on random ports, standard library only.

- the "hub" answers HEAD and GET on `/{repo_id}/resolve/{revision}/{filename}` with the hub's
  headers: X-Repo-Commit, ETag (the git blob sha1 for small files), and for large ("LFS")
  files a 302 to the "CDN" carrying X-Linked-Etag (the sha256) and X-Linked-Size, as the real
  hub does; errors carry X-Error-Code (RepoNotFound 401, GatedRepo 401/403,
  RevisionNotFound 404, EntryNotFound 404);
- renamed repos answer 307 with a relative Location (`roberta-base` -> `FacebookAI/roberta-base`);
- the "CDN" serves blobs by sha256 with `Range` support (206 / 416);
- faults are queued and fire on matching requests: an HTTP status (500, ...), a connection
  cut mid-body, a connection dropped before any answer, a Range ignored (200 with the whole
  body), corrupt bytes (same length, wrong sha256), a slow body, the size header sent twice
  (identical, which RFC 9110 section 8.6 lets a client accept, or differing; as two header
  lines or one "n, m" line);
- hostile answers, for the client's defences (tests/test_hostile_hub.py): any header replaced
  or removed (an ETag of 5,000 characters, X-Repo-Commit "..", Content-Encoding gzip, no size
  at all), another body, another status, a chunked body, an endless stream after the body
  (counted, and stopped as soon as the client hangs up), a redirect to any URL (file:///...);
- every request is recorded (server, method, path, headers, status, body bytes sent), so tests
  can assert what reached which host.

Leaves out: the hub's API routes (/api/models/...), Xet, auth beyond one bearer token per repo.

>>> import requests
>>> with HubServer() as hub:
...     commit = hub.add_repo("org/tiny", {"config.json": b"{}"})
...     answer = requests.get(f"{hub.url}/org/tiny/resolve/main/config.json")
>>> answer.content, answer.headers["X-Repo-Commit"] == commit
(b'{}', True)
"""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional
from urllib.parse import quote, unquote, urlsplit

try:  # the server itself needs no pytest (a notebook or a script can start one); the
    import pytest  # `hub_server` fixture below does
except ImportError:
    pytest = None


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file: what the hub sends as ETag for small files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_lfs(filename: str) -> bool:
    """Which files the hub keeps in LFS (and so serves through the CDN)."""
    return filename.endswith((".safetensors", ".bin", ".h5", ".msgpack", ".ot", ".onnx"))


@dataclass
class Request:
    """One request as the server saw it."""

    server: str                 # "hub" or "cdn"
    method: str
    path: str                   # as sent, still URL-quoted
    headers: dict               # header names lower-cased
    status: int = 0
    body_bytes: int = 0         # body bytes actually written to the socket
    at: float = field(default_factory=time.monotonic)  # arrival time


@dataclass
class Fault:
    """A misbehaviour that fires on the next `times` matching requests (None = forever)."""

    kind: str                   # "status", "cut", "drop", "ignore_range", "corrupt", "slow",
                                # "duplicate_size", "hostile", "redirect"
    filename: Optional[str] = None
    server: Optional[str] = None
    method: Optional[str] = None
    times: Optional[int] = 1
    status: int = 500
    after: int = 0              # cut: body bytes sent before the connection is closed
    delay: float = 0.0          # slow: seconds to spread the body over
    # duplicate_size: the answer's size header (X-Linked-Size on the hub's redirect to the CDN,
    # else Content-Length) is sent twice, the second copy `differ` bytes off (0 = identical),
    # as two header lines or, with `one_line`, as one "n, m" line
    differ: int = 0
    one_line: bool = False
    # hostile: on the answer for the file (or the hub's error answer about it)
    headers: dict = field(default_factory=dict)   # replaced or added; a value of None removes it
    body: Optional[bytes] = None                  # sent instead of the file's bytes
    code: Optional[int] = None                    # sent instead of the answer's status
    chunked: bool = False                         # Transfer-Encoding: chunked, no Content-Length
    stream: int = 0                               # filler bytes after the body (stops when the
                                                  # client hangs up; body_bytes counts them)
    # redirect: a 302 to this URL instead of the answer
    location: str = ""

    def matches(self, server: str, method: str, filename: str) -> bool:
        return ((self.filename is None or self.filename == filename)
                and (self.server is None or self.server == server)
                and (self.method is None or self.method == method)
                and (self.times is None or self.times > 0))


@dataclass
class _Repo:
    commits: dict = field(default_factory=dict)      # commit -> {filename: bytes}
    refs: dict = field(default_factory=dict)         # branch / tag / PR ref -> commit
    lfs: Callable[[str], bool] = default_lfs
    token: Optional[str] = None                      # gated: only this bearer token gets in


class HubServer:
    """The fake hub and its CDN; a context manager that stops both servers on exit."""

    def __init__(self, max_lifetime: float = 120.0):
        self.repos: dict[str, _Repo] = {}
        self.renames: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.valid_tokens: Optional[set] = None      # set it to reject other tokens with a 401
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}           # sha256 -> bytes, what the CDN serves
        self._servers = {name: self._start(name) for name in ("hub", "cdn")}
        # Never outlive a forgotten teardown.
        self._timer = threading.Timer(max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()

    # ----------------------------------------------------------------------- set up
    @property
    def url(self) -> str:
        return self._base("hub")

    @property
    def cdn_url(self) -> str:
        return self._base("cdn")

    def add_repo(self, repo_id: str, files: dict[str, bytes], *, revision: str = "main",
                 lfs: Callable[[str], bool] = default_lfs, token: Optional[str] = None) -> str:
        """Publish `files` as one commit of `repo_id` at `revision`; returns the commit hash."""
        repo = self.repos.setdefault(repo_id, _Repo(lfs=lfs, token=token))
        listing = "".join(f"{name}:{git_blob_sha1(data)}\n" for name, data in sorted(files.items()))
        commit = hashlib.sha1(f"{repo_id}@{revision}\n{listing}".encode()).hexdigest()
        repo.commits[commit] = dict(files)
        repo.refs[revision] = commit
        for name, data in files.items():
            if lfs(name):
                self._blobs[sha256(data)] = data
        return commit

    def rename(self, old_id: str, new_id: str) -> None:
        """`old_id` now answers 307 to `new_id`, as the hub does for moved repos."""
        self.renames[old_id] = new_id

    def fault(self, kind: str, **kwargs) -> Fault:
        """Queue a fault; see `Fault` for the fields."""
        fault = Fault(kind, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def etag(self, repo_id: str, filename: str, revision: str = "main") -> str:
        """The blob name the cache should use for this file."""
        repo = self.repos[repo_id]
        data = repo.commits[repo.refs[revision]][filename]
        return sha256(data) if repo.lfs(filename) else git_blob_sha1(data)

    def seen(self, *, server: Optional[str] = None, method: Optional[str] = None,
             filename: Optional[str] = None) -> list[Request]:
        """The recorded requests that match, in order."""
        with self._lock:
            return [r for r in self.requests
                    if (server is None or r.server == server) and (method is None or r.method == method)
                    and (filename is None or unquote(urlsplit(r.path).path).endswith("/" + filename))]

    # ----------------------------------------------------------------------- life cycle
    def stop(self) -> None:
        self._timer.cancel()
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers.values():
            server.server_close()

    def __enter__(self) -> "HubServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _base(self, name: str) -> str:
        host, port = self._servers[name].server_address[:2]
        return f"http://{host}:{port}"

    def _start(self, name: str) -> http.server.ThreadingHTTPServer:
        owner = self

        class Handler(_Handler):
            hub, role = owner, name

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True, name=f"fake-{name}").start()
        return server

    def _take_fault(self, server: str, method: str, filename: str, kinds: tuple) -> Optional[Fault]:
        with self._lock:
            for fault in self.faults:
                if fault.kind in kinds and fault.matches(server, method, filename):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None


class _Handler(http.server.BaseHTTPRequestHandler):
    hub: HubServer
    role: str
    timeout = 10  # a stuck client never pins a server thread for long
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    # ------------------------------------------------------------------------ dispatch
    def _handle(self) -> None:
        self.record = Request(self.role, self.command, self.path,
                              {k.lower(): v for k, v in self.headers.items()})
        with self.hub._lock:
            self.hub.requests.append(self.record)
        if self.role == "hub":
            self._hub()
        else:
            self._cdn()

    def _fault(self, filename: str, *kinds: str) -> Optional[Fault]:
        return self.hub._take_fault(self.role, self.command, filename, kinds)

    def _hostile(self) -> Optional[Fault]:
        """The hostile fault for this request, taken once (it may be asked for twice)."""
        if not hasattr(self, "_hostile_fault"):
            self._hostile_fault = self._fault(self._filename(), "hostile")
        return self._hostile_fault

    def _filename(self) -> Optional[str]:
        pattern = r"/.+?/resolve/[^/]+/(.+)" if self.role == "hub" else r"/blobs/[0-9a-f]{64}/(.+)"
        match = re.fullmatch(pattern, urlsplit(self.path).path)
        return unquote(match[1]) if match else None

    def _early_faults(self, filename: str) -> bool:
        """A status, dropped-connection or redirect fault answers instead of the file; True if
        one did."""
        fault = self._fault(filename, "status", "drop", "redirect")
        if fault is None:
            return False
        if fault.kind == "redirect":
            self._reply(302, {"Location": fault.location})
        elif fault.kind == "drop":
            self.record.status = -1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._reply(fault.status, {"X-Error-Message": "injected fault"})
        return True

    def _hub(self) -> None:
        match = re.fullmatch(r"/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", urlsplit(self.path).path)
        if match is None:
            return self._reply(404, {"X-Error-Message": "not a resolve URL"})
        repo_id, revision, filename = (unquote(match[k]) for k in ("repo", "rev", "file"))
        if repo_id in self.hub.renames:  # a relative Location, as the hub sends
            return self._reply(307, {"Location": f"/{self.hub.renames[repo_id]}/resolve/"
                                                 f"{match['rev']}/{match['file']}"})
        auth = self.headers.get("Authorization")
        valid = self.hub.valid_tokens
        if auth and valid is not None and auth.removeprefix("Bearer ") not in valid:
            return self._reply(401, {"X-Error-Message": "Invalid credentials in Authorization header"})
        repo = self.hub.repos.get(repo_id)
        if repo is None:  # the hub hides whether a private repo exists: 401, not 404
            return self._reply(401, {"X-Error-Code": "RepoNotFound",
                                     "X-Error-Message": "Repository not found"})
        if repo.token is not None and auth != f"Bearer {repo.token}":
            status = 403 if auth else 401
            return self._reply(status, {"X-Error-Code": "GatedRepo", "X-Error-Message":
                                        f"Access to model {repo_id} is restricted."})
        commit = repo.refs.get(revision) or (revision if revision in repo.commits else None)
        if commit is None:
            return self._reply(404, {"X-Error-Code": "RevisionNotFound",
                                     "X-Error-Message": "Invalid rev id"})
        data = repo.commits[commit].get(filename)
        if data is None:
            return self._reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit,
                                     "X-Error-Message": "Entry not found"})
        if self._early_faults(filename):
            return None
        if repo.lfs(filename):
            digest = sha256(data)
            return self._reply(302, {
                "Location": f"{self.hub.cdn_url}/blobs/{digest}/{quote(filename)}?signature=x",
                "X-Repo-Commit": commit, "X-Linked-Etag": f'"{digest}"',
                "X-Linked-Size": str(len(data)), "ETag": f'W/"{git_blob_sha1(digest.encode())}"'},
                filename=filename)
        self._body(data, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"'}, filename)

    def _cdn(self) -> None:
        match = re.fullmatch(r"/blobs/(?P<sha>[0-9a-f]{64})/(?P<file>.+)", urlsplit(self.path).path)
        data = self.hub._blobs.get(match["sha"]) if match else None
        if data is None:
            return self._reply(404, {})
        filename = unquote(match["file"])
        if self._early_faults(filename):
            return None
        self._body(data, {"ETag": f'"{match["sha"]}"'}, filename)

    # ------------------------------------------------------------------------ answers
    def _reply(self, status: int, headers: dict, body: bytes = b"", *,
               filename: Optional[str] = None) -> None:
        hostile = self._hostile()
        status = hostile.code if hostile is not None and hostile.code is not None else status
        self.record.status = status
        self.send_response(status)
        self._send_headers({**headers, "Content-Length": str(len(body))}, filename)
        if self.command != "HEAD" and body:
            self._write(body)

    def _send_headers(self, headers: dict, filename: Optional[str]) -> None:
        """Send the headers; a duplicate_size fault for `filename` sends the size header twice."""
        fault = self._fault(filename, "duplicate_size") if filename is not None else None
        size_header = "X-Linked-Size" if "X-Linked-Size" in headers else "Content-Length"
        hostile = self._hostile()
        if hostile is not None:
            if hostile.chunked:
                headers = {**headers, "Content-Length": None, "Transfer-Encoding": "chunked"}
            headers = {**headers, **hostile.headers}
        for name, value in headers.items():
            if value is None:  # removed by a hostile fault
                continue
            if fault is None or name != size_header:
                self.send_header(name, value)
                continue
            second = str(int(value) + fault.differ)
            if fault.one_line:  # what a client that joins repeated headers sees anyway
                self.send_header(name, f"{value}, {second}")
            else:
                self.send_header(name, value)
                self.send_header(name, second)
        self.end_headers()

    def _body(self, data: bytes, headers: dict, filename: str) -> None:
        """The file, honouring Range unless a fault says otherwise, then the body faults."""
        hostile = self._hostile()
        data = hostile.body if hostile is not None and hostile.body is not None else data
        status, start, end = 200, 0, len(data)
        headers = {**headers, "Accept-Ranges": "bytes"}
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if wanted and self._fault(filename, "ignore_range") is None:
            start = int(wanted[1])
            end = min(int(wanted[2]) + 1, len(data)) if wanted[2] else len(data)
            if start >= len(data):
                return self._reply(416, {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        body = data[start:end]
        if self._fault(filename, "corrupt") is not None:
            body = bytes(b ^ 0xFF for b in body[:1]) + body[1:]
        status = hostile.code if hostile is not None and hostile.code is not None else status
        self.record.status = status
        self.send_response(status)
        self._send_headers({**headers, "Content-Length": str(len(body))}, filename)
        if self.command == "HEAD":
            return
        if hostile is not None and (hostile.chunked or hostile.stream):
            return self._hostile_body(body, hostile)
        cut, slow = self._fault(filename, "cut"), self._fault(filename, "slow")
        if cut is not None:
            self._write(body[:cut.after])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # mid-body: the client sees a short read
            return
        pieces = 10 if slow is not None else 1
        step = -(-len(body) // pieces) or 1
        for i in range(0, len(body), step):
            self._write(body[i:i + step])
            if slow is not None:
                time.sleep(slow.delay / pieces)

    def _hostile_body(self, body: bytes, fault: Fault) -> None:
        """The body, then `fault.stream` filler bytes, chunked if asked; stops quietly when the
        client hangs up (what it has not taken is not counted)."""
        filler = bytes(64 << 10)
        pieces = [body] if body else []
        try:
            for piece in pieces:
                self._write(b"%x\r\n%s\r\n" % (len(piece), piece) if fault.chunked else piece)
            left = fault.stream
            while left > 0:
                piece = filler[:left]
                self._write(b"%x\r\n%s\r\n" % (len(piece), piece) if fault.chunked else piece)
                left -= len(piece)
            if fault.chunked:
                self._write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _write(self, piece: bytes) -> None:
        # counted before the client can have the bytes: a test that reads the count as soon as
        # its download returns must not race this thread (it once saw the count still short)
        self.record.body_bytes += len(piece)
        try:
            self.wfile.write(piece)
            self.wfile.flush()
        except OSError:
            self.record.body_bytes -= len(piece)  # the client went away: not delivered
            raise


def _hub_server():
    """A running HubServer, stopped after the test."""
    with HubServer() as server:
        yield server


hub_server = pytest.fixture(_hub_server, name="hub_server") if pytest else None

# What a hub test clears, so that no setting from outside the test reaches the client.
HUB_ENV_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME",
                "HF_HUB_DISABLE_PROGRESS_BARS", "MINIROBERA_MAX_DOWNLOAD_BYTES",
                "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")


def use_hub(monkeypatch, tmp_path, server, repo_id, files):
    """Point the client at `server` (HF_ENDPOINT), its cache into tmp_path (HF_HOME), with
    nothing set from outside and no waiting between retries; serve `files` as `repo_id`."""
    from minirobera import hub

    for name in HUB_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(hub, "BACKOFF_SECONDS", 0.001)  # retries stay, the waiting goes
    server.add_repo(repo_id, files)
    return server


def repo_dir(tmp_path, repo_id):
    """The cache folder of repo_id under use_hub's HF_HOME."""
    from minirobera import hub

    return tmp_path / "home" / "hub" / hub.repo_folder_name(repo_id)


def tree(folder) -> set:
    """Every file and symlink under folder, as relative paths."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
