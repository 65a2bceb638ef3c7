"""Opening a database: URL checks, the engine and its per-connection setup, errors.

SQLite is the default (docs/ARCHITECTURE.md, decision 8). Many worker processes write to
one file, so every SQLite connection runs in WAL mode with a 30 s busy timeout
and foreign keys on, and a write transaction starts with BEGIN IMMEDIATE: it
takes the write lock before its first read, so two writers never both read
"no such bucket" and race to insert it. Any other SQLAlchemy URL works too;
nothing here emits SQLite-only SQL to it.

PostgreSQL (a `postgresql://` URL, driven by psycopg 3) is set up apart, in
the section at the end: a pooled connection is pinged before use, so one cut by
a server restart is replaced; an engine for a command that only reads opens its
connections with default_transaction_read_only; and schema creation and
migration run under a transaction-level advisory lock, so processes opening a
new database together create it once. An error that means the server is away
(a cut or refused connection) is a StoreUnreachable, which the Store retries
for a while (retry.py).

Everything a user can get wrong (a missing or corrupt file, an unwritable
directory, a bad URL, a locked or unreachable database) comes out as a
StoreError whose message is one readable line.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import URL, Connection, Engine, create_engine, event, exc, inspect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from fuzzer.store.migrate import add_missing_columns, missing_columns
from fuzzer.store.models import ADDED_TABLES, Base

DEFAULT_URL = "sqlite:///db/mmfuzz.sqlite"
BUSY_TIMEOUT_MS = 30_000
_WRITE = "mmfuzz_write"  # execution option: this transaction will write


class StoreError(Exception):
    """A database problem a user can cause or fix; the message is one line."""


class StoreUnreachable(StoreError):
    """The database server is away (connection cut or refused): worth trying again."""


def reason(error: BaseException) -> str:
    """The first line of what the driver said, without SQLAlchemy's decoration."""
    orig = getattr(error, "orig", None) or error
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


@contextmanager
def guarded(where: str, *, networked: bool = False) -> Iterator[None]:
    """Turn driver errors (locked, disk full, read-only, gone) into a StoreError; on a
    networked database (not SQLite) a lost connection into a StoreUnreachable."""
    try:
        yield
    except exc.DBAPIError as e:
        if networked and (e.connection_invalidated
                          or isinstance(e, (exc.OperationalError, exc.InterfaceError))):
            raise StoreUnreachable(f"{where}: {reason(e)}") from e
        raise StoreError(f"{where}: {reason(e)}") from e


def open_engine(url: str | None, *, create: bool,
                read_only: bool = False) -> tuple[Engine, str]:
    """An engine on a checked database, and the name to show users for it.

    With create, missing directories and tables are created. Without it, the
    database must exist and hold all of mmfuzz's first tables. Either way,
    tables and columns added since the database was made are added in place
    (migrate.py); existing rows are never rewritten.

    With read_only, for a command that only reads: a SQLite file (when not
    create) is opened read-only (`mode=ro`, `PRAGMA query_only`), so nothing
    the engine runs can write it, even as root; only a database that needs the
    newer tables or columns is written, once, to add them, before it is opened
    read-only. On PostgreSQL the engine's transactions are read-only (the schema
    step alone may still write).
    """
    parsed = _parse(url or DEFAULT_URL)
    sqlite = parsed.get_backend_name() == "sqlite"
    where = _where(parsed)
    if sqlite:
        _check_sqlite_file(parsed, where, create=create)
    ro = read_only and not create and sqlite and _sqlite_path(parsed) is not None
    if ro and _needs_upgrade(parsed, where):
        open_engine(url, create=False)[0].dispose()  # adds them, or says why it cannot
    engine = _engine(_read_only_url(parsed) if ro else parsed, where,
                     **_pg_engine_args(read_only) if _is_pg(parsed) else {})
    if sqlite:
        _setup_sqlite(engine, readonly=ro)
    _forget_across_fork(engine)
    try:
        _schema(engine, where, create=create)
    except BaseException:
        engine.dispose()
        raise
    return engine, where


def _read_only_url(url: URL) -> URL:
    """The SQLite file's URL as a read-only URI (`file:PATH?mode=ro`)."""
    path = _sqlite_path(url)
    assert path is not None
    return url.set(database=f"file:{quote(str(path.resolve()))}",
                   query={"mode": "ro", "uri": "true"})


def _needs_upgrade(url: URL, where: str) -> bool:
    """Whether the SQLite file lacks tables or columns added since it was made."""
    engine = _engine(_read_only_url(url), where)
    try:
        with _opening(where), engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            if not present:
                return False  # not an mmfuzz database at all: _schema says so
            return any(t.name not in present for t in Base.metadata.sorted_tables) or bool(
                missing_columns(conn))
    finally:
        engine.dispose()


def writer(engine: Engine) -> Engine:
    """The same engine, with transactions marked as writers (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(**{_WRITE: True})


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except exc.ArgumentError as e:
        raise StoreError(f"bad database URL {url!r}: {reason(e)}") from e
    if parsed.drivername == "postgresql":  # the driver mmfuzz installs, not psycopg2
        parsed = parsed.set(drivername=PG_DRIVER)
    return parsed


def _where(url: URL) -> str:
    if url.get_backend_name() == "sqlite" and _sqlite_path(url) is not None:
        return str(url.database)
    return url.render_as_string(hide_password=True)


def _sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for memory and URI-style databases."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("uri") == "true":
        return None
    return Path(database)


def _check_sqlite_file(url: URL, where: str, *, create: bool) -> None:
    path = _sqlite_path(url)
    if path is None:
        return
    if not create:
        if not path.exists():
            raise StoreError(f"no database at {where} (run a campaign first, or pass --db)")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create directory for {where}: {e.strerror}") from e


def _engine(url: URL, where: str, **args: Any) -> Engine:
    try:
        return create_engine(url, **args)
    except exc.NoSuchModuleError as e:
        raise StoreError(f"bad database URL {where}: unknown database {url.drivername!r}") from e
    except exc.ArgumentError as e:
        raise StoreError(f"bad database URL {where}: {reason(e)}") from e
    except ImportError as e:
        raise StoreError(f"cannot use {where}: database driver not installed ({e})") from e


def _setup_sqlite(engine: Engine, *, readonly: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # SQLAlchemy, not the sqlite3 module, decides when transactions begin.
        dbapi.isolation_level = None
        cursor = dbapi.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if readonly:
            cursor.execute("PRAGMA query_only = ON")
        else:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _forget_across_fork(engine: Engine) -> None:
    """A forked worker opens its own connections instead of sharing its parent's."""
    ref = weakref.ref(engine)

    def _after_fork() -> None:
        forked = ref()
        if forked is not None:
            forked.dispose(close=False)  # closing would disturb the parent's connections

    os.register_at_fork(after_in_child=_after_fork)


def _schema(engine: Engine, where: str, *, create: bool) -> None:
    with _opening(where), engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        stale = bool(missing_columns(conn))
    missing = [t.name for t in Base.metadata.sorted_tables if t.name not in present]
    required = [name for name in missing if name not in ADDED_TABLES]
    if required and not create:
        raise StoreError(
            f"{where} is not a readable mmfuzz database: missing tables {', '.join(required)}"
        )
    if not missing and not stale:
        return
    # One writer at a time, so workers opening a fresh or older file together don't
    # collide. An older database gains the newer tables and columns even without
    # create: that adds nothing a user could lose, and the queries need them.
    with _opening(where), writer(engine).begin() as conn:
        if engine.dialect.name == "postgresql":
            _pg_schema_lock(conn)
        if missing:
            Base.metadata.create_all(conn)  # only the tables still missing (checkfirst)
        add_missing_columns(conn)


@contextmanager
def _opening(where: str) -> Iterator[None]:
    try:
        yield
    except exc.OperationalError as e:
        raise StoreError(f"cannot open {where}: {reason(e)}") from e
    except exc.DBAPIError as e:
        raise StoreError(f"{where} is not a readable mmfuzz database: {reason(e)}") from e


# -- PostgreSQL: the engine's setup -------------------------------------------------

PG_DRIVER = "postgresql+psycopg"
PG_CONNECT_TIMEOUT = 10  # seconds to reach the server, for each connection attempt
# pg_advisory_xact_lock's key for creating and migrating the schema: "mmfuzz" in ASCII.
PG_SCHEMA_LOCK = 0x6D6D66757A7A


def _is_pg(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


def _pg_engine_args(read_only: bool) -> dict[str, Any]:
    """pool_pre_ping: a pooled connection cut by a server restart is replaced before use.
    read_only: every transaction on the engine's connections is read-only by default."""
    connect: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT}
    if read_only:
        connect["options"] = "-c default_transaction_read_only=on"
    return {"pool_pre_ping": True, "connect_args": connect}


def _pg_schema_lock(conn: Connection) -> None:
    """Serialize schema creation and migration across processes, for this transaction.

    Without it, two processes creating the tables of a new database together both
    find them missing and both CREATE them: one fails on pg_class's unique index.
    Under the lock the second one's create_all and migration check again and find
    nothing to do. READ WRITE first: a read-only command may have to migrate too.
    """
    conn.exec_driver_sql("SET TRANSACTION READ WRITE")
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_SCHEMA_LOCK})")
