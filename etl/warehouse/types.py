"""Column types that behave the same on SQLite, PostgreSQL and MariaDB/MySQL.

:class:`UtcDateTime` stores instants. Python code only ever sees timezone-aware UTC
datetimes, whatever the database does:

============  ============================  ==========================================
database      column type                   what is stored
============  ============================  ==========================================
PostgreSQL    ``TIMESTAMP WITH TIME ZONE``  the instant (microseconds)
MariaDB/MySQL ``DATETIME(6)``               naive UTC, microseconds (plain ``DATETIME``
                                            would round the source's milliseconds away)
SQLite        SQLAlchemy ``DateTime``       naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``
============  ============================  ==========================================

A naive datetime is refused when bound: nothing could tell whether it meant UTC or the
local time of whichever host ran the code, and a silent guess corrupts the history.

:class:`Json` stores documents: ``JSONB`` on PostgreSQL (indexable, compact), ``JSON``
elsewhere. MariaDB's ``JSON`` is an alias of ``LONGTEXT`` with a validity check; the
SQLAlchemy JSON type decodes it on the way out, so Python always reads back the dict or
list that was written. A Python ``None`` is stored as SQL NULL, not as the JSON ``null``.

Both keep ``alembic check`` quiet: Alembic compiles a TypeDecorator to its dialect type
(``TIMESTAMP WITH TIME ZONE``, ``DATETIME(6)``, ``JSONB``...), which is exactly what the
database reflects back (MariaDB's ``LONGTEXT`` for JSON is a synonym Alembic knows).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["Json", "JsonText", "NaiveDatetimeError", "UtcDateTime"]

_MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone was given where an instant is stored."""


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: binds aware datetimes of any zone, always returns aware UTC ones."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        if dialect.name in _MYSQL_DIALECTS:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a timezone-aware datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"naive datetime {value.isoformat()} refused: the warehouse stores instants, "
                "pass an aware datetime (e.g. datetime.now(UTC) or dt.replace(tzinfo=UTC))"
            )
        utc = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return utc
        return utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Json(TypeDecorator[Any]):
    """A JSON document: ``JSONB`` on PostgreSQL, ``JSON`` elsewhere; None is SQL NULL."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))


class JsonText(Json):
    """A JSON document kept as its text: ``JSON`` on PostgreSQL too (validated text, not
    ``JSONB``), ``JSON`` elsewhere. For large documents written far more often than they
    are searched (the raw task payloads): PostgreSQL validates ``JSON`` in one pass and
    stores the text as it came, where ``JSONB`` would build and store a binary tree,
    which made it the costliest column of a first load. The ``->``/``->>`` operators work
    on both; containment (``@>``) and the ``?`` operators need ``payload::jsonb``."""

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSON(none_as_null=True))
        return super().load_dialect_impl(dialect)
