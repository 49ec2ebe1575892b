"""What went wrong in the warehouse, told from the database's own error code.

A pass that fails on the warehouse rolls back the window it was writing: the cursors and
every window committed before stay, and the next pass starts from them. What the operator
should do differs by cause, and a driver's message rarely says it, so :func:`classify`
reads the error code each driver exposes (PostgreSQL's SQLSTATE, MariaDB/MySQL's error
number, SQLite's result code) and :func:`describe` turns it into one sentence that says
what happened and what to do:

============  ==========================================================  =========
kind          PostgreSQL / MariaDB / SQLite codes                         retried
============  ==========================================================  =========
conflict      40P01 deadlock, 40001 serialization / 1213 deadlock          at once
lock_timeout  55P03, 57014 / 1205 lock wait timeout / SQLITE_BUSY          next pass
read_only     25006 / 1290, 1792, 1836 / SQLITE_READONLY                  next pass
denied        42501 / 1142, 1143, 1044, 1227 / SQLITE_AUTH                next pass
disk_full     53100 / 1021, 1114, 3 / SQLITE_FULL                         next pass
connection    class 08, 57P01-57P03 / 2002, 2003, 2006, 2013 / CANTOPEN   next pass
============  ==========================================================  =========

Only a ``conflict`` is worth retrying at once (:data:`CONFLICT_ATTEMPTS`): the database
chose this transaction as the victim of a deadlock, and the same work run again usually
goes through. Anything else the database said is reported as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import URL
from sqlalchemy.exc import DBAPIError

from etl.warehouse.engine import display_url, unavailable

__all__ = ["CONFLICT_ATTEMPTS", "Fault", "FaultKind", "classify", "describe"]

FaultKind = Literal[
    "conflict", "lock_timeout", "read_only", "denied", "disk_full", "connection", "other"
]

CONFLICT_ATTEMPTS = 3
"""How many times a pass runs when the database keeps choosing it as a deadlock's victim."""

_POSTGRES: dict[str, FaultKind] = {
    "40P01": "conflict",
    "40001": "conflict",
    "55P03": "lock_timeout",
    "57014": "lock_timeout",  # statement_timeout / lock_timeout cancelling a statement
    "25006": "read_only",
    "42501": "denied",
    "53100": "disk_full",
    "57P01": "connection",  # admin_shutdown: the backend was terminated
    "57P02": "connection",
    "57P03": "connection",
}
_MYSQL: dict[int, FaultKind] = {
    1213: "conflict",
    1205: "lock_timeout",
    1290: "read_only",  # the server runs with --read-only
    1792: "read_only",  # a READ ONLY transaction
    1836: "read_only",
    1142: "denied",
    1143: "denied",
    1044: "denied",
    1227: "denied",
    1021: "disk_full",
    1114: "disk_full",  # "the table is full"
    3: "disk_full",  # "error writing file"
    2002: "connection",
    2003: "connection",
    2006: "connection",
    2013: "connection",
    1927: "connection",  # connection was killed
    1053: "connection",  # server shutdown in progress
}
_SQLITE: dict[int, FaultKind] = {
    5: "lock_timeout",  # SQLITE_BUSY: another connection held the write lock too long
    6: "lock_timeout",  # SQLITE_LOCKED
    8: "read_only",
    23: "denied",  # SQLITE_AUTH
    13: "disk_full",
    14: "connection",  # SQLITE_CANTOPEN
}

_WHAT: dict[FaultKind, str] = {
    "conflict": "chose this pass's transaction as the victim of a deadlock with another session",
    "lock_timeout": "gave up waiting for a lock another session holds",
    "read_only": "is read-only",
    "denied": "refused the configured user a write",
    "disk_full": "ran out of space",
    "connection": "lost the connection",
    "other": "refused a write",
}
_ADVICE: dict[FaultKind, str] = {
    "conflict": "it was retried at once, up to {attempts} times; if it keeps happening, "
    "another job is writing the ETL's tables: stop it or schedule it apart",
    "lock_timeout": "find the session that holds locks on the ETL's tables (PostgreSQL: "
    "pg_stat_activity; MariaDB: SHOW PROCESSLIST; SQLite: another process writing the file) "
    "and end it or let it finish",
    "read_only": "point warehouse.url at a writable primary rather than a replica, or turn "
    "the read-only mode off (PostgreSQL default_transaction_read_only, MariaDB read_only; "
    "SQLite: mode=ro in the URL or a read-only file)",
    "denied": "grant the ETL's user INSERT, UPDATE and DELETE on the warehouse's tables "
    "(the sql/roles/ scripts make read-only roles for analysts, not for the ETL)",
    "disk_full": "free space on the database's disk or raise its quota",
    "connection": "check that the database server is running and reachable",
    "other": "read the database's message above; if the schema was changed by hand, "
    "`zvm-etl db check` says how it differs",
}


@dataclass(frozen=True)
class Fault:
    """A warehouse error, classified: its ``kind`` and the driver's own ``detail``."""

    kind: FaultKind
    detail: str

    @property
    def retry_at_once(self) -> bool:
        """Whether running the same work again at once is likely to succeed."""
        return self.kind == "conflict"


def classify(exc: BaseException) -> Fault | None:
    """The :class:`Fault` behind ``exc``, or None when it is not a database error."""
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig if exc.orig is not None else exc
    # psycopg's text adds CONTEXT lines that can quote the row being written: keep the
    # primary message only.
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if primary is None and len(args) == 2 and isinstance(args[0], int):
        primary = f"{args[1]} (error {args[0]})"  # MariaDB/MySQL: (errno, message)
    detail = " ".join(str(primary or orig).split()) or type(orig).__name__
    return Fault(_kind(orig, connection_invalidated=exc.connection_invalidated), detail)


def describe(exc: BaseException, url: str | URL, *, in_pass: bool = True) -> str:
    """One secret-free paragraph: what the warehouse at ``url`` did, and what to do.

    ``in_pass``: the failure interrupted a pass, which rolled back its unfinished window;
    the message says so, because an operator reading it wants to know first whether
    anything was lost.
    """
    fault = classify(exc)
    if fault is None:
        return f"unexpected {type(exc).__name__}: {exc}"
    if fault.kind == "connection":
        lost = " The pass's unfinished window was not kept." if in_pass else ""
        return f"{unavailable(url, exc)}{lost}"
    advice = _ADVICE[fault.kind].format(attempts=CONFLICT_ATTEMPTS)
    kept = (
        " The pass's unfinished window was rolled back and its cursors did not move; the "
        "next pass goes on from there."
        if in_pass
        else ""
    )
    return (
        f"the warehouse at {display_url(url)} {_WHAT[fault.kind]} ({fault.detail}).{kept} "
        f"To fix: {advice}."
    )


def _kind(orig: BaseException, *, connection_invalidated: bool) -> FaultKind:
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate in _POSTGRES:
            return _POSTGRES[sqlstate]
        if sqlstate.startswith("08"):
            return "connection"
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return _SQLITE.get(sqlite_code & 0xFF, "other")
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL:
        return _MYSQL[args[0]]
    if connection_invalidated:
        return "connection"
    if type(orig).__name__ == "OperationalError" and not (args and isinstance(args[0], int)):
        # psycopg raises a bare OperationalError, with no SQLSTATE, for a socket that broke.
        return "connection"
    return "other"
