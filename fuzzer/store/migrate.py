"""Bringing an older database up to the current tables, in place.

Only additive changes are made: a column the models have and the database
lacks is added with ALTER TABLE ADD COLUMN, and a missing index is created
(a table added since, models.ADDED_TABLES, is created whole by db.py).
Nothing is ever dropped, renamed or rewritten, so a database written by an
older mmfuzz keeps every row and stays readable by it. A new column must be
nullable or carry a server default (what ADD COLUMN can give old rows);
anything else is a mistake in models.py and fails loudly here.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Table, inspect
from sqlalchemy.schema import CreateColumn

from fuzzer.store.models import Base


def missing_columns(conn: Connection) -> list[tuple[Table, Column[object]]]:
    """The model columns absent from tables that exist (missing tables are not counted)."""
    insp = inspect(conn)
    present_tables = set(insp.get_table_names())
    missing: list[tuple[Table, Column[object]]] = []
    for table in Base.metadata.sorted_tables:
        if table.name not in present_tables:
            continue
        present = {c["name"] for c in insp.get_columns(table.name)}
        missing += [(table, column) for column in table.columns if column.name not in present]
    return missing


def add_missing_columns(conn: Connection) -> list[str]:
    """Add what missing_columns finds, and the indexes they need; returns "table.column" names.

    Run inside a write transaction: it inspects again, so two processes
    upgrading the same file one after the other add each column once.
    """
    added, touched = [], []
    for table, column in missing_columns(conn):
        conn.exec_driver_sql(_add_column_sql(conn, table, column))
        added.append(f"{table.name}.{column.name}")
        if table not in touched:
            touched.append(table)
    insp = inspect(conn)
    for table in touched:
        present = {ix["name"] for ix in insp.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                index.create(conn)
    return added


def _add_column_sql(conn: Connection, table: Table, column: Column[object]) -> str:
    if column.primary_key or not (column.nullable or column.server_default is not None):
        raise RuntimeError(
            f"models.py: {table.name}.{column.name} cannot be added to an existing table "
            "(a new column must be nullable or have a server_default)"
        )
    prep = conn.dialect.identifier_preparer
    spec = str(CreateColumn(column).compile(dialect=conn.dialect))
    for fk in column.foreign_keys:
        # SQLite only takes a foreign key on a new column inline, as REFERENCES.
        target = fk.column
        spec += f" REFERENCES {prep.format_table(target.table)} ({prep.quote(target.name)})"
    return f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {spec}"
