"""Engine, SQLite pragmas and schema management.

A fresh database gets ``create_all`` plus an Alembic stamp at head (as Mailman's
SchemaManager does); an existing one must be at head, or ``inboxd db upgrade``
brings it there. SQLite runs in WAL mode with a busy timeout, so the IMAP
threads, the LMTP listener and the CLI can share one file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

from inboxd.core import jsontext
from inboxd.db import deferred
from inboxd.db.tables import metadata

if TYPE_CHECKING:  # alembic (0.1 s to import) only when the schema must change
    from alembic.config import Config

# The newest migration. ensure_schema compares against it without loading the
# migration scripts; a test checks it against Alembic's own idea of the head.
HEAD_REVISION = "0016"

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaError(Exception):
    """The database schema is not the one this inboxd expects."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling starts no transaction before a SELECT
    # or a SAVEPOINT, so a savepoint would silently run as its own transaction.
    # Take control (SQLAlchemy's documented recipe) and BEGIN explicitly below.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # Mail is blob-heavy (raw bytes, texts). 16 KiB pages (taken when the file is
    # created) need fewer overflow pages per mail, and a 16 MiB cache (default 2)
    # keeps a 500-mail batch from spilling half-written pages into the WAL and
    # reading them back: 10,000 mails took 864k writes and 201k reads before,
    # 397k and 25k after.
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # a 250 to the MTA must survive power loss
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA cache_size=-16384")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: several writers (mailbox threads,
    # LMTP) then wait on busy_timeout instead of failing with SQLITE_BUSY when a
    # deferred read transaction tries to become a writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_read_only(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA query_only=ON")


def _sqlite_begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


LZ4_VALUES = "SET default_toast_compression = 'lz4'"


def session_setting(sql: str, driver_error: type[Exception]) -> Callable[[Any, Any], None]:
    """A connect hook running ``sql`` (a SET); a server that refuses it is left as
    it was (the failed statement rolled back), the connection usable.

    ``LZ4_VALUES``: every mail stores kilobytes that PostgreSQL compresses as it
    writes them (the raw bytes, the message's text and HTML). With its default,
    pglz, those INSERTs cost twice a small one; lz4 (PostgreSQL 14+, when built
    with it) is several times faster at about the same ratio. A column without a
    compression of its own compresses with the session's default when a value is
    written, so the setting per connection covers old and new databases alike, and
    values already stored stay readable whichever method wrote them. A server
    without lz4 keeps pglz.
    """

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(sql)
        except driver_error:
            dbapi_conn.rollback()
        else:
            dbapi_conn.commit()
        finally:
            cursor.close()

    return on_connect


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for ``url``; creates the directory of a SQLite file.

    ``read_only`` (the CLI's ``tickets`` commands): SQLite transactions start
    deferred and writes are refused, so a look at the tickets reads a WAL
    snapshot instead of queueing for the write lock behind a running import."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if read_only:
            event.listen(engine, "connect", _sqlite_read_only)
        event.listen(engine, "begin", _sqlite_begin_deferred if read_only else _sqlite_begin)
        return engine
    # MVCC: PostgreSQL readers never wait
    engine = create_engine(
        url,
        pool_pre_ping=True,
        json_serializer=jsontext.dumps,
        json_deserializer=jsontext.loads,
    )
    driver = engine.dialect.dbapi
    if engine.dialect.name == "postgresql" and driver is not None:
        event.listen(engine, "connect", session_setting(LZ4_VALUES, driver.Error))
        deferred.watch(engine)
    return engine


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The revision Alembic stamped, None for a database it never touched."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(revisions) > 1:
        raise SchemaError(f"database has several schema heads: {', '.join(revisions)}")
    return revisions[0] if revisions else None


def upgrade(engine: Engine) -> str:
    """Bring the schema to head: a fresh DB is created and stamped, an old one migrated."""
    from alembic import command

    cfg = alembic_config(engine)
    tables = set(inspect(engine).get_table_names())
    if not tables - {"alembic_version"}:
        metadata.create_all(engine)
        command.stamp(cfg, "head")
    else:
        command.upgrade(cfg, "head")
    return current_revision(engine) or ""


def ensure_schema(engine: Engine, *, create_if_empty: bool = True) -> None:
    """Refuse to run on a schema that is not at head; initialise an empty database."""
    rev = current_revision(engine)
    if rev is None and create_if_empty:
        tables = set(inspect(engine).get_table_names())
        if not tables - {"alembic_version"}:
            upgrade(engine)
            return
    head = HEAD_REVISION
    if rev != head:
        raise SchemaError(
            f"database schema is at {rev or 'none'}, expected {head}: run 'inboxd db upgrade'"
        )
