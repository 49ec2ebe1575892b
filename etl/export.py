"""``zvm-etl export``: a view or a ready query, written as CSV, JSON or Parquet, in chunks.

What can be exported: every view (``v_tasks``, ``v_failover_tests``...) and every ready
query of ``sql/queries/`` (by its file name without ``.sql``). Nothing else: a name is
checked against those lists before it reaches any SQL, and filter and parameter values
are always bound, never pasted in.

Filters:

- on a view, ``since``/``until`` keep the rows whose ``started_at`` is in ``[since,
  until)`` and ``zvm`` those whose ``zvm`` is that name; a view without that column
  refuses the filter (:class:`~etl.errors.ExportError`) rather than ignore it;
- on a ready query, ``zvm`` sets its ``zvm`` parameter and ``params`` its others (``days``
  ...); ``since``/``until`` are refused: a query's window is its ``days`` parameter.

Rows are read :data:`CHUNK_ROWS` at a time through a server-side cursor on PostgreSQL and
MariaDB (``stream_results``; SQLite's cursor is lazy already) into pandas frames, and each
frame is written before the next is read, so memory stays flat whatever the row count.
Values come out the same from every database: timestamps as UTC (ISO-8601 with ``Z`` in
CSV and JSON, ``timestamp[us, UTC]`` in Parquet), days as ``YYYY-MM-DD`` text, whole
numbers as integers, and text as UTF-8. Booleans are what the database gives (``true`` /
``false`` on PostgreSQL, ``1``/``0`` elsewhere, as in the views).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl.errors import ExportError, UnknownExportName
from etl.queries import bind_parameters, read_query
from etl.warehouse.engine import connect
from etl.warehouse.sqlfiles import query_names, view_names
from etl.warehouse.types import UtcDateTime

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CHUNK_ROWS",
    "FORMATS",
    "ExportResult",
    "Source",
    "export",
    "export_names",
    "read_chunks",
    "read_frame",
    "resolve",
    "write_chunks",
]

CHUNK_ROWS = 10_000
"""Rows read and written at a time."""

FORMATS = ("csv", "json", "parquet")

_SQLITE_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$")
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Source:
    """What an export reads: one statement and the values to bind to it."""

    name: str
    kind: str  # "view" or "query"
    statement: sa.Executable
    params: dict[str, Any]


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: ``rows`` rows in ``chunks`` chunks to ``path`` (None: a stream)."""

    name: str
    format: str
    rows: int
    chunks: int
    columns: list[str]
    path: Path | None


def export_names() -> list[str]:
    """Everything that can be exported: the views, then the ready queries, each sorted."""
    return sorted(view_names()) + query_names()


def resolve(
    connection: Connection,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    zvm: str | None = None,
    params: Mapping[str, str | int] | None = None,
) -> Source:
    """The statement that reads ``name`` with these filters (see the module docstring).

    UnknownExportName when ``name`` is neither a view nor a ready query; ExportError for a
    filter or parameter that does not apply to it.
    """
    if name in view_names():
        if params:
            raise ExportError(
                f"{name} is a view: --param is for ready queries (a view takes --since, "
                "--until and --zvm where it has the columns)"
            )
        return _view_source(connection, name, since=since, until=until, zvm=zvm)
    if name in query_names():
        if since is not None or until is not None:
            raise ExportError(
                f"{name} is a ready query: --since and --until filter views by started_at; "
                "a query's window is its days parameter (--param days=N)" + _takes(name)
            )
        given = dict(params or {})
        if zvm is not None:
            if "zvm" not in read_query(name).parameters:
                raise ExportError(
                    f"the query {name} covers every ZVM together and has no zvm parameter, "
                    "so --zvm cannot filter it" + _takes(name)
                )
            given["zvm"] = zvm
        query = read_query(name)
        values = bind_parameters(query, given)
        statement = sa.text(query.sql(dialect=connection.dialect.name))
        return Source(name, "query", statement, values)
    raise UnknownExportName(name, export_names())


def read_chunks(
    connection: Connection, source: Source, *, chunk_rows: int = CHUNK_ROWS
) -> Generator[pd.DataFrame, None, None]:
    """The rows of ``source``, ``chunk_rows`` at a time, as frames with uniform values (see
    the module docstring). At least one frame comes, empty when there are no rows, so
    writers always learn the columns."""
    import pandas as pd

    result = connection.execute(
        source.statement,
        source.params,
        execution_options={"stream_results": True, "max_row_buffer": chunk_rows},
    )
    columns = list(result.keys())
    dialect = connection.dialect.name
    seen = False
    try:
        for rows in result.partitions(chunk_rows):
            seen = True
            frame = pd.DataFrame([tuple(row) for row in rows], columns=columns, dtype=object)
            yield _uniform(frame, dialect=dialect)
    finally:
        result.close()
    if not seen:
        yield pd.DataFrame({column: pd.Series([], dtype=object) for column in columns})


def read_frame(connection: Connection, source: Source) -> pd.DataFrame:
    """All the rows of ``source`` as one frame: for small answers (the report's queries)."""
    import pandas as pd

    frames = list(read_chunks(connection, source))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def write_chunks(
    chunks: Iterator[pd.DataFrame], fmt: str, *, stream: IO[bytes] | None, path: Path | None
) -> tuple[int, int, list[str]]:
    """Write the frames as ``fmt`` to ``stream`` (CSV, JSON) or ``path`` (any format);
    returns (rows, chunks, columns)."""
    if fmt == "parquet":
        if path is None:
            raise ExportError("Parquet is a binary file format: give --out PATH")
        return _write_parquet(chunks, path)
    if stream is None:
        raise ValueError("CSV and JSON need a stream to write to")
    rows = count = 0
    columns: list[str] = []
    if fmt == "json":
        stream.write(b"[")
    for frame in chunks:
        if count == 0:
            columns = [str(c) for c in frame.columns]
        if fmt == "csv":
            text = frame.to_csv(
                index=False, header=count == 0, date_format=_TIMESTAMP_FORMAT, lineterminator="\n"
            )
        else:
            records = frame.to_json(
                orient="records", date_format="iso", date_unit="us", force_ascii=False
            )
            text = records[1:-1]
            if text and rows:
                text = "," + text
        stream.write(text.encode("utf-8"))
        rows += len(frame)
        count += 1
    if fmt == "json":
        stream.write(b"]\n")
    stream.flush()
    return rows, count, columns


def export(
    engine: Engine,
    name: str,
    *,
    fmt: str = "csv",
    out: Path | None = None,
    stdout: IO[bytes] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    zvm: str | None = None,
    params: Mapping[str, str | int] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ExportResult:
    """Export view or ready query ``name`` as ``fmt`` to ``out`` (else to ``stdout``).

    A file is written next to ``out`` under a temporary name and renamed when complete, so
    a failed export never leaves half a file behind.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        _require_pyarrow()
        if out is None:
            raise ExportError("Parquet is a binary file format: give --out PATH")
    if since is not None and until is not None and until <= since:
        raise ExportError("--until must be later than --since")
    with connect(engine) as connection:
        source = resolve(connection, name, since=since, until=until, zvm=zvm, params=params)
        # Closed before the connection is, even when writing fails half-way.
        with contextlib.closing(read_chunks(connection, source, chunk_rows=chunk_rows)) as chunks:
            if out is None:
                rows, count, columns = write_chunks(chunks, fmt, stream=stdout, path=None)
            else:
                rows, count, columns = _write_file(chunks, fmt, out)
    return ExportResult(name, fmt, rows, count, columns, out)


def _write_file(chunks: Iterator[pd.DataFrame], fmt: str, out: Path) -> tuple[int, int, list[str]]:
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        if fmt == "parquet":
            os.close(handle)
            written = write_chunks(chunks, fmt, stream=None, path=Path(temporary))
        else:
            with os.fdopen(handle, "wb") as stream:
                written = write_chunks(chunks, fmt, stream=stream, path=None)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return written


def _view_source(
    connection: Connection,
    name: str,
    *,
    since: datetime | None,
    until: datetime | None,
    zvm: str | None,
) -> Source:
    with connection.execute(sa.text(f"SELECT * FROM {name} WHERE 1 = 0")) as probe:
        columns = list(probe.keys())
    wanted = {"--since": since, "--until": until}
    if any(value is not None for value in wanted.values()) and "started_at" not in columns:
        raise ExportError(
            f"the view {name} has no started_at column, so --since/--until cannot filter it "
            f"(its columns: {', '.join(columns)})"
        )
    if zvm is not None and "zvm" not in columns:
        raise ExportError(
            f"the view {name} has no zvm column, so --zvm cannot filter it "
            f"(its columns: {', '.join(columns)})"
        )
    view = sa.table(name, sa.column("started_at", UtcDateTime()), sa.column("zvm", sa.String()))
    statement = sa.select(sa.text("*")).select_from(view)
    if since is not None:
        statement = statement.where(view.c.started_at >= since)
    if until is not None:
        statement = statement.where(view.c.started_at < until)
    if zvm is not None:
        statement = statement.where(view.c.zvm == zvm)
    return Source(name, "view", statement, {})


def _takes(name: str) -> str:
    parameters = read_query(name).parameters
    if not parameters:
        return "; it takes no parameters"
    listed = ", ".join(f"{p.name} (default {p.default!r})" for p in parameters.values())
    return f"; its parameters: {listed}"


def _uniform(frame: pd.DataFrame, *, dialect: str) -> pd.DataFrame:
    """The same values whatever the database: each column is typed from its values (the
    frame comes in as Python objects): UTC timestamps, ``YYYY-MM-DD`` days, nullable whole
    numbers (a SUM is a decimal on MariaDB and PostgreSQL, an integer on SQLite), floats,
    text."""
    import pandas as pd

    for column in frame.columns:
        series = frame[column]
        values = series[series.notna()]
        if values.empty:
            continue
        kinds = set(map(type, values))
        if all(issubclass(k, datetime) for k in kinds):
            frame[column] = pd.to_datetime(series, utc=True)
        elif all(issubclass(k, date) for k in kinds):
            frame[column] = series.map(lambda v: v.isoformat() if isinstance(v, date) else None)
        elif kinds == {bool}:
            frame[column] = series.astype("boolean")
        elif all(issubclass(k, int) and k is not bool for k in kinds) or (
            all(issubclass(k, int | Decimal) and k is not bool for k in kinds)
            and all(_whole(v) for v in values)
        ):
            frame[column] = series.map(lambda v: None if v is None else int(v)).astype("Int64")
        elif all(issubclass(k, int | float | Decimal) and k is not bool for k in kinds):
            frame[column] = series.map(lambda v: None if v is None else float(v)).astype("Float64")
        elif (
            dialect == "sqlite"
            and kinds == {str}
            and _SQLITE_TIMESTAMP.match(values.iloc[0])
            and values.str.fullmatch(_SQLITE_TIMESTAMP).all()
        ):
            frame[column] = pd.to_datetime(series, utc=True, format="ISO8601")
    return frame


def _whole(value: object) -> bool:
    """An int, or a Decimal without a fraction part in its type (``SUM`` gives ``Decimal('3')``;
    a rate rounded to 4 places gives ``Decimal('1.0000')``, which stays a number with places)."""
    if isinstance(value, Decimal):
        return int(value.as_tuple().exponent) >= 0
    return isinstance(value, int)


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ExportError("Parquet needs pyarrow: pip install 'zvm-task-etl[parquet]'") from None


def _write_parquet(chunks: Iterator[pd.DataFrame], path: Path) -> tuple[int, int, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    rows = count = 0
    columns: list[str] = []
    try:
        for frame in chunks:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if schema is None:
                # A column with no value yet has no type: text is the safe guess.
                schema = pa.schema(
                    [
                        f.with_type(pa.string()) if pa.types.is_null(f.type) else f
                        for f in table.schema
                    ]
                ).remove_metadata()
                columns = list(schema.names)
                writer = pq.ParquetWriter(str(path), schema)
            try:
                table = table.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ExportError(
                    f"a later chunk of rows does not fit the Parquet columns the first one set "
                    f"({exc}); export as CSV or JSON instead"
                ) from None
            assert writer is not None
            writer.write_table(table)
            rows += table.num_rows
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return rows, count, columns
