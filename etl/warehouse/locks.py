"""One runner per ZVM, across processes and machines: a lock per ZVM, taken without waiting.

Two ``schedule`` or ``sync`` processes pointed at the same warehouse must never run a pass
over the same ZVM at the same time. :func:`zvm_lock` takes a lock named after the ZVM and
yields whether it got it; a process that does not get it skips the ZVM (it neither fails
nor waits). The lock belongs to a connection or file handle, so a process that dies, even
by SIGKILL, releases it with its connection:

* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection of its
  own, keyed by a 64-bit hash of the ZVM name (advisory locks are per database);
* MariaDB/MySQL: ``GET_LOCK(name, 0)`` on a connection of its own (the name includes the
  database: MySQL's named locks are server-wide);
* SQLite: an exclusive ``flock`` on a file beside the database (``<db>.<zvm>.lock``):
  SQLite warehouses are local files, and advisory file locks die with their process.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from etl.warehouse.engine import connect

__all__ = ["lock_key", "zvm_lock"]

log = logging.getLogger(__name__)


def lock_key(zvm: str) -> int:
    """A stable signed 64-bit key for ``zvm`` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"zvm-task-etl:{zvm}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_name(database: str | None, zvm: str) -> str:
    # MySQL's named locks are server-wide, not per database: the name carries the database
    # so two warehouses on one server do not block each other. At most 64 characters.
    digest = hashlib.sha256(f"{database}\0{zvm}".encode()).hexdigest()[:40]
    return f"zvm-etl:{digest}"


@contextmanager
def zvm_lock(engine: Engine, zvm: str) -> Iterator[bool]:
    """Hold the ZVM's lock for the ``with`` block if it is free; yield whether it was taken."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with _file_lock(engine, zvm) as taken:
            yield taken
        return
    with connect(engine) as conn:
        if dialect == "postgresql":
            key = lock_key(zvm)
            taken = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        elif dialect in ("mysql", "mariadb"):
            name = _lock_name(engine.url.database, zvm)
            taken = conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
                    conn.commit()
        else:
            raise NotImplementedError(f"no per-ZVM lock is written for the {dialect} dialect")


@contextmanager
def _file_lock(engine: Engine, zvm: str) -> Iterator[bool]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield True  # a private in-memory database: no other process can see it
        return
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in zvm)
    path = Path(f"{database}.{safe}.lock")
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
