"""The body of one task listing: received into a spool (memory, then a temporary file) and
decoded one task at a time, so an answer of any size takes bounded memory.

:class:`Spool` receives the bytes as they arrive and notes, while it does, whether the JSON
holds something only the standard library decodes faithfully; :class:`TaskList` iterates
the decoded tasks and removes the spool when done. ``ZvmClient.fetch_task_list`` returns a
TaskList; :func:`gc_paused` is for the loops that decode and consume it.
"""

from __future__ import annotations

import gc
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

import ijson

from etl.errors import ZvmResponseError

__all__ = ["SPOOL_MEMORY", "Spool", "TaskList", "gc_paused"]


_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")
_DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else b for b in range(256))  # 0-9 → 0
_LONG_NUMBER = b"0" * 19
"""19 digits in a row: maybe an integer beyond 64 bits, an ``integer overflow`` that the
streaming parser would fail the whole answer with (found with bytes.translate: a regular
expression would scan 20 times slower)."""


_BOM = b"\xef\xbb\xbf"

SPOOL_MEMORY = 8 * 1024 * 1024
"""Bytes of an answer kept in memory; the rest goes to a temporary file."""


class Spool:
    """An answer's body as it arrives: in memory up to :data:`SPOOL_MEMORY` bytes, then in
    a temporary file. It notes whether the JSON holds what only the standard library reads
    (an escaped surrogate, an integer beyond 64 bits) while it is written, so that the body
    needs no second look."""

    _TAIL = 18  # an escape or a digit run split between two chunks is still seen

    def __init__(self) -> None:
        # Closed by close(), which TaskList calls when its iteration ends.
        self._file: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=SPOOL_MEMORY
        )
        self.content_type = ""
        self.size = 0
        self.needs_stdlib = False
        self._tail = b""

    def reset(self) -> None:
        """Forget what a failed attempt wrote."""
        self._file.seek(0)
        self._file.truncate()
        self.size, self.needs_stdlib, self._tail = 0, False, b""

    def write(self, chunk: bytes) -> None:
        if not self.needs_stdlib:
            seen = self._tail + chunk
            if _SURROGATE_ESCAPE.search(seen) or _LONG_NUMBER in seen.translate(_DIGITS_AS_ZERO):
                self.needs_stdlib = True
            self._tail = seen[-self._TAIL :]  # chunks may be shorter than the tail
        self._file.write(chunk)
        self.size += len(chunk)

    def first_byte(self) -> bytes:
        """The first byte that is not white space (b"" for an empty body), after a UTF-8
        byte order mark, which .NET may write and JSON parsers may ignore (RFC 8259)."""
        self._file.seek(0)
        if self._file.read(len(_BOM)) != _BOM:
            self._file.seek(0)
        while chunk := self._file.read(65536):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]
        return b""

    def read_all(self) -> bytes:
        self._file.seek(0)
        return self._file.read()

    def reader(self) -> IO[bytes]:
        """The body from its start (after a byte order mark), for reading (one reader at
        a time)."""
        self._file.seek(0)
        if self._file.read(len(_BOM)) != _BOM:
            self._file.seek(0)
        return cast(IO[bytes], self._file)

    def close(self) -> None:
        self._file.close()


class TaskList:
    """One ``GET /v1/tasks`` answer (:meth:`etl.zvm.client.ZvmClient.fetch_task_list`):
    the spooled body, iterated as decoded task objects, one at a time (ijson's C parser),
    in order; the spool is closed (its file removed) when the iteration ends.

    An escaped surrogate (``\\ud800``: .NET writes lone ones) or an integer beyond 64 bits
    makes the whole body decode at once with the standard library instead, which keeps
    such a string as it is (the streaming parser would replace it) and reads any integer
    (the streaming parser fails the whole answer on one); normalization then rejects the
    record that holds it. ``error`` turns a decoding failure into the ZvmResponseError to raise.
    """

    def __init__(self, body: Spool | bytes, error: Callable[[Exception], ZvmResponseError]) -> None:
        if isinstance(body, bytes):
            spool = Spool()
            spool.write(body)
            body = spool
        self._spool = body
        self._error = error

    def close(self) -> None:
        """Remove the spooled body (iterating to the end does it too)."""
        self._spool.close()

    def __iter__(self) -> Iterator[Any]:
        spool = self._spool
        try:
            if spool.needs_stdlib:
                try:
                    items = json.loads(spool.read_all())
                except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                    raise self._error(exc) from None
                yield from items if isinstance(items, list) else []
                return
            try:
                yield from ijson.items(spool.reader(), "item", use_float=True)
            except ijson.JSONError as exc:
                raise self._error(exc) from None
        finally:
            spool.close()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding and normalizing build millions of small objects that reference counting
    frees: the cyclic collector, which would run dozens of times, finds nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
