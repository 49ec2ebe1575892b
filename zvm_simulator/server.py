"""The HTTP(S) transport of the simulator: a stdlib ``ThreadingHTTPServer`` on loopback.

Each connection runs in its own daemon thread with HTTP/1.1 keep-alive. TLS is set up per
connection in that thread (a failed handshake, such as a client refusing the certificate,
only ends that connection). The transport adds what the API layer cannot: the ``latency``
fault (a sleep before every answer), dropping a list answer mid-body (headers with the full
``Content-Length``, part of the body, then the socket shut down), and the request log, which
is written before the answer is sent, so a client that got its answer finds its request
logged. :meth:`SimulatorServer.stop` also shuts the open keep-alive connections, so nothing
is served after it returns.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from zvm_simulator.api import Response, ZvmApi
from zvm_simulator.settings import RequestRecord
from zvm_simulator.wire import error_body

__all__ = ["SimulatorServer"]

log = logging.getLogger(__name__)

_IDLE_CONNECTION_TIMEOUT = 120.0
"""Seconds a keep-alive connection may stay silent before its thread closes it."""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        ssl_context: ssl.SSLContext | None,
        record: Callable[[RequestRecord], None],
        server_version: str,
        ipv6: bool,
    ) -> None:
        if ipv6:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.api: ZvmApi | None = None
        self.ssl_context = ssl_context
        self.record = record
        self.server_version = server_version
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._closing = False

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's thread: TLS handshake, then the HTTP handler."""
        connection: socket.socket = request
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every answer.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            request.settimeout(_IDLE_CONNECTION_TIMEOUT)
            try:
                connection = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                log.debug("TLS handshake with %s failed: %s", client_address, error)
                return
        with self._open_lock:
            if self._closing:  # accepted just before stop(): do not serve it
                connection.close()
                return
            self._open.add(connection)
        try:
            _Handler(connection, client_address, self)
        finally:
            with self._open_lock:
                self._open.discard(connection)
            if connection is not request:
                connection.close()

    def close_connections(self) -> None:
        """Shut every open connection (their threads then end) and refuse new ones."""
        with self._open_lock:
            self._closing = True
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection failed (the client went away...): log quietly, never print."""
        log.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_CONNECTION_TIMEOUT
    server: _HttpServer

    def version_string(self) -> str:
        return self.server.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        arrived = datetime.now(UTC)
        url = urllib.parse.urlsplit(self.path)
        params = {
            name.lower(): value
            for name, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        }
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            response = Response(400, error_body("The request body could not be read."))
        else:
            headers = {name.lower(): value for name, value in self.headers.items()}
            api = self.server.api
            if api is None:
                response = Response(503, error_body("The simulator is starting."))
            else:
                if api.faults.latency > 0:
                    api.faults.injected.add("latency")
                    time.sleep(api.faults.latency)
                response = api.handle(self.command, url.path, params, headers, body)
        self.server.record(
            RequestRecord(
                at=arrived,
                method=self.command,
                path=url.path,
                params=params,
                status=response.status,
            )
        )
        self._send(response)

    def _read_body(self) -> bytes:
        """The request body (Content-Length or chunked); ValueError when malformed."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"x", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError(length)
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if not any(name.lower() == "cache-control" for name, _ in response.headers):
            self.send_header("Cache-Control", "no-cache")
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if response.drop_after is None:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: response.drop_after])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class SimulatorServer:
    """A bound HTTP(S) server; :meth:`serve` starts answering with an API in a daemon thread.

    Binding happens at construction (``port`` 0 picks a free port), so :attr:`url` is known
    before the API that needs it (for ``href`` links) is built.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        record: Callable[[RequestRecord], None],
        server_version: str = "Microsoft-HTTPAPI/2.0",
    ) -> None:
        ipv6 = ":" in host
        self._httpd = _HttpServer(
            (host, port),
            ssl_context=ssl_context,
            record=record,
            server_version=server_version,
            ipv6=ipv6,
        )
        bound_port = self._httpd.server_address[1]
        scheme = "https" if ssl_context is not None else "http"
        shown = f"[{host}]" if ipv6 else host
        self.url = f"{scheme}://{shown}:{bound_port}"
        self._thread: threading.Thread | None = None

    def serve(self, api: ZvmApi) -> None:
        """Start answering requests with ``api``."""
        self._httpd.api = api
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"zvm-simulator {self.url}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close open connections, release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()
