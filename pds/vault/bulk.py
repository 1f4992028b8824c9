"""Inserting many record rows at the speed of the database driver, not of the ORM.

PostgreSQL takes them by binary COPY (over twice executemany's rate on these machines), streamed:
the server stores the first rows while the caller is still making the rest. SQLite takes them by one
executemany. Values are converted by the columns' own SQLAlchemy types, so what lands is exactly
what an ORM insert would have written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

PG_COPY_TYPES = {  # the record table's columns as PostgreSQL names their types
    "UUID": "uuid",
    "VARCHAR": "text",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "TIMESTAMP": "timestamptz",
    "BYTEA": "bytea",
    "BOOLEAN": "bool",
}

Row = Sequence[Any]


def insert_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Row],
    *,
    repeating: Collection[str] = (),
) -> None:
    """Insert rows (values in `columns` order) in the connection's transaction.

    `rows` may be a generator: if making a row raises, the exception comes out of here with nothing
    of the rows inserted and the transaction usable. `repeating` names columns whose values recur
    across rows (a citizen, the batch's time): each distinct value is converted for the driver once.
    """
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
    else:
        _executemany(connection, table, columns, rows, repeating)


def _executemany(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Row],
    repeating: Collection[str],
) -> None:
    rows = list(rows)
    if not rows:
        return
    # column by column: map() runs each column's processor without a Python loop of our own
    processors = _processors(connection, table, columns, repeating)
    values = [
        column if process is None else list(map(process, column))
        for column, process in zip(zip(*rows, strict=True), processors, strict=True)
    ]
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608  our own table and column names
    connection.exec_driver_sql(sql, list(zip(*values, strict=True)))


def _processors(
    connection: Connection, table: Table, columns: Sequence[str], repeating: Collection[str]
) -> list[Callable[[Any], Any] | None]:
    """Each column's bind processor (None: the value goes as it is), remembered for `repeating`."""
    steps = []
    for name in columns:
        process = table.c[name].type._cached_bind_processor(connection.dialect)
        if process is not None and name in repeating:
            process = _remembered(process)
        steps.append(process)
    return steps


def _remembered(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    seen: dict[Any, Any] = {}  # one batch's distinct values: dropped with the converter

    def remembered(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            seen[value] = out = process(value)
            return out

    return remembered


_COPY_TYPES: dict[tuple[str, tuple[str, ...]], list[str]] = {}


def _copy_types(connection: Connection, table: Table, columns: Sequence[str]) -> list[str]:
    key = (table.name, tuple(columns))
    if key not in _COPY_TYPES:
        compiled = (table.c[name].type.compile(connection.dialect) for name in columns)
        _COPY_TYPES[key] = [PG_COPY_TYPES[t.split("(")[0].split(" ")[0]] for t in compiled]
    return _COPY_TYPES[key]


def _copy(connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[Row]) -> None:
    import psycopg
    from psycopg import sql

    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    types = _copy_types(connection, table, columns)
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # Rows are still being made while the COPY runs; if making one raises, the savepoint undoes
        # the COPY and the caller's transaction goes on. Each row's foreign keys are checked by a
        # query PostgreSQL prepares once per session; pds's engine plans every statement afresh
        # (plan_cache_mode=force_custom_plan, pds/db.py), which here meant planning two lookups per
        # row, half the COPY's time. Their plan is a primary-key probe whatever the values, so for
        # the COPY alone the cached plan is used (set_config(..., true) is undone with the savepoint).
        cursor.execute(_BEFORE_COPY)
        cursor.nextset()
        previous = cursor.fetchone()[0]  # type: ignore[index]
        try:
            with cursor.copy(statement) as copy:
                copy.set_types(types)
                for row in _chain(first, rows):
                    copy.write_row(row)
        except BaseException:
            with contextlib.suppress(psycopg.Error):  # a lost connection: the first error says more
                cursor.execute(_UNDO_COPY)
            raise
        cursor.execute(sql.SQL(_AFTER_COPY).format(sql.Literal(previous)))
    except psycopg.Error as exc:  # as SQLAlchemy would raise it: a lost race (23505) is then retried
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
    finally:
        cursor.close()


_BEFORE_COPY = (
    "SAVEPOINT pds_bulk_copy; "
    "SELECT current_setting('plan_cache_mode'), set_config('plan_cache_mode', 'auto', true)"
)
_AFTER_COPY = "SELECT set_config('plan_cache_mode', {}, true); RELEASE SAVEPOINT pds_bulk_copy"
_UNDO_COPY = "ROLLBACK TO SAVEPOINT pds_bulk_copy; RELEASE SAVEPOINT pds_bulk_copy"


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest
