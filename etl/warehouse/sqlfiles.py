"""The warehouse's SQL files: versioned view definitions and analyst queries.

Layout under ``sql/`` (see :mod:`etl.resources` for where that directory is)::

    views/<name>.v<N>.sql              version N of a view, portable SQL
    views/<dialect>/<name>.v<N>.sql    the same version for one database, where SQL differs
    queries/<name>.sql                 an analyst question
    queries/<dialect>/<name>.sql       ...for one database, where SQL differs

A file holds one ``SELECT`` (what the view shows, runnable as it is in a SQL console); the
``CREATE VIEW`` around it is added here, so a file cannot create a view under another name.
The dialect directories are ``postgresql``, ``mysql`` (also used for MariaDB) and ``sqlite``;
the dialect's file wins over the portable one.

**Versions are immutable.** A migration names the exact version it creates
(``create_view_sql("v_tasks", 1, ...)``), so replaying old migrations always builds the views
those revisions built. To change a view, add ``<name>.v<N+1>.sql`` and a migration that
drops version N and creates N+1 (and, on downgrade, the reverse); never edit a released
version. Views read tables only, never other views, so each can be replaced on its own
(PostgreSQL refuses to drop a view that another view depends on).
"""

from __future__ import annotations

import re
from pathlib import Path

from etl.resources import sql_dir

__all__ = [
    "create_view_sql",
    "drop_view_sql",
    "query_names",
    "query_sql",
    "view_names",
    "view_select",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VIEW_FILE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.sql$")
_DIALECT_DIRS = {"mariadb": ("mariadb", "mysql")}
_MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})


def view_select(name: str, version: int, *, dialect: str, root: Path | None = None) -> str:
    """The ``SELECT`` of version ``version`` of view ``name`` for ``dialect`` (a SQLAlchemy
    dialect name such as ``postgresql``); FileNotFoundError when no file fits."""
    return _read(_checked(name), "views", f"{name}.v{version}.sql", dialect=dialect, root=root)


def create_view_sql(name: str, version: int, *, dialect: str, root: Path | None = None) -> str:
    """``CREATE VIEW <name> AS <select>`` for version ``version`` of view ``name``.

    On MariaDB/MySQL the view runs with the privileges of whoever queries it (``SQL SECURITY
    INVOKER``), not those of the account that ran the migration: that account may be
    renamed or dropped later, which would break a ``DEFINER`` view for everyone.
    """
    select = view_select(name, version, dialect=dialect, root=root)
    security = " SQL SECURITY INVOKER" if dialect in _MYSQL_DIALECTS else ""
    return f"CREATE{security} VIEW {name} AS\n{select}"


def drop_view_sql(name: str) -> str:
    """``DROP VIEW IF EXISTS <name>`` (the same statement on all three databases)."""
    return f"DROP VIEW IF EXISTS {_checked(name)}"


def view_names(*, root: Path | None = None) -> frozenset[str]:
    """Every view that has a file (of any version, for any dialect)."""
    views = (root or sql_dir()) / "views"
    return frozenset(
        match["name"] for path in views.rglob("*.sql") if (match := _VIEW_FILE.match(path.name))
    )


def query_names(*, root: Path | None = None) -> list[str]:
    """The analyst queries, by name (file name without ``.sql``), sorted."""
    queries = (root or sql_dir()) / "queries"
    return sorted({path.stem for path in queries.rglob("*.sql") if _NAME.match(path.stem)})


def query_sql(name: str, *, dialect: str, root: Path | None = None) -> str:
    """The text of analyst query ``name`` for ``dialect``."""
    return _read(_checked(name), "queries", f"{name}.sql", dialect=dialect, root=root)


def _checked(name: str) -> str:
    # Names are pasted into DDL: only plain lower-case identifiers are allowed.
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a valid view or query name")
    return name


def _read(name: str, kind: str, filename: str, *, dialect: str, root: Path | None) -> str:
    base = (root or sql_dir()) / kind
    candidates = [base / d / filename for d in _DIALECT_DIRS.get(dialect, (dialect,))]
    candidates.append(base / filename)
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8").strip().rstrip(";").rstrip()
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"no SQL for {kind[:-1]} {name!r} on {dialect}: looked for {tried}")
