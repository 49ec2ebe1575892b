"""A fast fake ZVM for the benchmark: pre-rendered task bytes over loopback HTTP.

Run it as its own process (``python -m bench.fakezvm --dataset =DIR --dataset zvm07=DIR2``);
it prints one JSON line ``{"url": "http://127.0.0.1:PORT"}`` when it listens and serves until
SIGTERM/SIGINT. Each ``--dataset PREFIX=DIR`` is one ZVM: an empty prefix serves at the root
(``http://127.0.0.1:PORT``), ``zvm07`` under ``http://127.0.0.1:PORT/zvm07`` (the product's
client joins its API paths to that URL, logins included).

What a ZVM answers, as the product uses it (it imports nothing from ``etl``):

- ``POST /v1/session/add`` (any Basic credentials) → 200 with ``x-zerto-session``;
  ``DELETE /v1/session`` ends it; API calls without a live session get 401;
- ``GET /v1/tasks`` with ``startedAfterDate``/``startedBeforeDate``/``completedAfterDate``/
  ``completedBeforeDate`` (names in any case; UTC with ``Z``; bounds inclusive, compared in
  100 ns ticks): a binary search over the tasks, which are sorted by Started, then the bytes go
  out with ``os.sendfile`` straight from the dataset file (a 110 MB answer takes well under a
  second); the ``completed*`` filters scan only the tasks started within 12 hours before the
  bound (no task runs longer);
- ``GET /v1/tasks/types``; ``GET /v1/tasks/{id}`` (the id index is read on first use; an id
  the ZVM does not show answers 404);
- bench control: ``POST {prefix}/_bench/visible?tasks=K`` shows only the first K tasks
  (default: the dataset's base; the rest are "new tasks" for the incremental cases), and
  ``GET {prefix}/_bench/stats`` returns request counts.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import signal
import socket
import sys
import threading
import urllib.parse
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.datasets import Dataset

__all__ = ["FakeZvm", "main", "parse_filter_ticks"]

MAX_DURATION_MS = 12 * 3_600_000
"""The simulator's longest task: the ``completed*`` filters look back this far in Started."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z)?", re.I
)


def parse_filter_ticks(value: str) -> int:
    """A filter date (UTC; a trailing ``Z`` or none) as 100 ns ticks since the epoch."""
    match = _DATE.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second, fraction, _zone = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
        tzinfo=UTC,
    )  # fmt: skip
    seconds = int((moment - _EPOCH).total_seconds())
    return seconds * 10_000_000 + int((fraction or "").ljust(7, "0"))


class FakeZvm:
    """One served ZVM: a dataset, how much of it is visible, and its request counts."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.visible = dataset.base
        self.fd = os.open(dataset.json_path, os.O_RDONLY)
        self.types_body = json.dumps(dataset.meta["types"]).encode()
        self.counts: dict[str, int] = {}
        self._ids: dict[str, int] | None = None
        self._lock = threading.Lock()

    def count(self, what: str) -> None:
        with self._lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def select(self, params: dict[str, str]) -> list[tuple[int, int]]:
        """(offset, length) spans of the tasks matching the filters, in Started order."""
        ds = self.dataset
        started = ds.started
        lo, hi = 0, self.visible
        sa, sb = params.get("startedafterdate"), params.get("startedbeforedate")
        ca, cb = params.get("completedafterdate"), params.get("completedbeforedate")
        if sa:
            lo = max(lo, bisect.bisect_left(started, -(-parse_filter_ticks(sa) // 10_000), 0, hi))
        if sb:
            hi = min(hi, bisect.bisect_right(started, parse_filter_ticks(sb) // 10_000, 0, hi))
        if not ca and not cb:
            return [ds.span(lo, hi)] if lo < hi else []
        ca_ms = -(-parse_filter_ticks(ca) // 10_000) if ca else None
        cb_ms = parse_filter_ticks(cb) // 10_000 if cb else None
        if ca_ms is not None:
            lo = max(lo, bisect.bisect_left(started, ca_ms - MAX_DURATION_MS, 0, hi))
        if cb_ms is not None:
            hi = min(hi, bisect.bisect_right(started, cb_ms, 0, hi))
        spans: list[tuple[int, int]] = []
        run_start = -1
        completed = ds.completed
        for index in range(lo, hi):
            done = completed[index]
            keep = (
                done >= 0 and (ca_ms is None or done >= ca_ms) and (cb_ms is None or done <= cb_ms)
            )
            if keep and run_start < 0:
                run_start = index
            elif not keep and run_start >= 0:
                spans.append(ds.span(run_start, index))
                run_start = -1
        if run_start >= 0:
            spans.append(ds.span(run_start, hi))
        return spans

    def find(self, identifier: str) -> tuple[int, int] | None:
        """The (offset, length) of one visible task, or None."""
        with self._lock:
            if self._ids is None:
                lines = (self.dataset.folder / "ids.txt").read_text().splitlines()
                self._ids = {line: index for index, line in enumerate(lines)}
            index = self._ids.get(identifier.strip().lower())
        if index is None or index >= self.visible:
            return None
        return self.dataset.span(index, index + 1)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], zvms: dict[str, FakeZvm]) -> None:
        super().__init__(address, _Handler)
        self.zvms = zvms
        self.sessions: set[str] = set()
        self.sessions_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path).rstrip("/")
        params = {k.lower(): v for k, v in urllib.parse.parse_qsl(url.query)}
        head, _, rest = path.lstrip("/").partition("/")
        zvm = self.server.zvms.get(head)
        if zvm is not None and head:
            path = "/" + rest
        else:
            zvm = self.server.zvms.get("")
        if zvm is None:
            self._send(404, b'{"Message":"no such ZVM"}')
            return
        route = path.lower()
        if route == "/v1/session/add" and self.command == "POST":
            session = uuid.uuid4().hex
            with self.server.sessions_lock:
                self.server.sessions.add(session)
            zvm.count("login")
            self._send(200, b"", extra=[("x-zerto-session", session)], content_type=None)
            return
        if route.startswith("/_bench/"):
            self._control(zvm, route, params)
            return
        session = self.headers.get("x-zerto-session", "")
        with self.server.sessions_lock:
            known = session in self.server.sessions
            if known and route == "/v1/session" and self.command == "DELETE":
                self.server.sessions.discard(session)
        if not known:
            self._send(401, b'{"Message":"Authorization has been denied for this request."}')
            return
        if route == "/v1/session":
            self._send(200, b"", content_type=None)
        elif route == "/v1/tasks" and self.command == "GET":
            zvm.count("list")
            try:
                spans = zvm.select(params)
            except ValueError as exc:
                self._send(400, json.dumps({"Message": f"bad filter {exc}"}).encode())
                return
            self._send_spans(zvm, spans)
        elif route == "/v1/tasks/types":
            zvm.count("types")
            self._send(200, zvm.types_body)
        elif route.startswith("/v1/tasks/"):
            zvm.count("by_id")
            found = zvm.find(path.rsplit("/", 1)[-1])
            if found is None:
                self._send(404, b'{"Message":"Task was not found."}')
            else:
                self._send_spans(zvm, [found], array=False)
        else:
            self._send(404, b'{"Message":"No HTTP resource was found."}')

    def _control(self, zvm: FakeZvm, route: str, params: dict[str, str]) -> None:
        if route == "/_bench/visible":
            zvm.visible = max(0, min(int(params["tasks"]), zvm.dataset.tasks))
            self._send(200, json.dumps({"visible": zvm.visible}).encode())
        elif route == "/_bench/stats":
            body = {"visible": zvm.visible, "tasks": zvm.dataset.tasks, "requests": zvm.counts}
            self._send(200, json.dumps(body).encode())
        else:
            self._send(404, b"{}")

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        extra: list[tuple[str, str]] | None = None,
        content_type: str | None = "application/json; charset=utf-8",
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra or []:
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_spans(
        self, zvm: FakeZvm, spans: list[tuple[int, int]], *, array: bool = True
    ) -> None:
        size = sum(length for _, length in spans)
        if array:
            size += 2 + max(len(spans) - 1, 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        out = self.connection.fileno()
        if array:
            self.wfile.write(b"[")
        for number, (offset, length) in enumerate(spans):
            if number and array:
                self.wfile.write(b",")
            sent = 0
            while sent < length:
                done = os.sendfile(out, zvm.fd, offset + sent, length - sent)
                if done == 0:
                    raise ConnectionError("the client went away")
                sent += done
        if array:
            self.wfile.write(b"]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="PREFIX=DIR",
        help="serve the dataset in DIR under /PREFIX (empty PREFIX: the root); repeatable",
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    zvms: dict[str, FakeZvm] = {}
    for item in args.dataset:
        prefix, _, folder = item.partition("=")
        zvms[prefix.strip("/")] = FakeZvm(Dataset.open(Path(folder)))
    server = _Server(("127.0.0.1", args.port), zvms)
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
