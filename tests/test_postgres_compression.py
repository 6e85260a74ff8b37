"""PostgreSQL compresses the big values of mail with lz4 (``db.engine``): the
default of every connection the engine opens, used for what it writes."""

from __future__ import annotations

import psycopg
from servers.postgres import PostgresServer
from sqlalchemy import text

from inboxd.db.engine import LZ4_VALUES, ensure_schema, make_engine, session_setting


def test_mail_bytes_written_through_the_engine_are_lz4_compressed(
    postgres: PostgresServer,
) -> None:
    engine = make_engine(postgres.create_database())
    ensure_schema(engine)
    data = b"The printer on floor 3 jams again. " * 400  # compressible, over 2 KB
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO blob (sha256, size, data) VALUES ('a', :n, :d)"),
            {"n": len(data), "d": data},
        )
    with engine.connect() as conn:
        method = conn.execute(text("SELECT pg_column_compression(data) FROM blob")).scalar_one()
        stored = conn.execute(text("SELECT data FROM blob")).scalar_one()
    engine.dispose()
    assert method == "lz4"
    assert bytes(stored) == data


def test_a_setting_the_server_refuses_leaves_the_connection_as_it_was(
    postgres: PostgresServer,
) -> None:
    """What a server without lz4 does with ``LZ4_VALUES``, shown with a value no
    server takes: the SET fails, is rolled back, and the connection works on."""
    url = postgres.create_database().replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        before = conn.execute("SHOW default_toast_compression").fetchone()
        conn.rollback()
        session_setting("SET default_toast_compression = 'zstd-none'", psycopg.Error)(conn, None)
        assert conn.execute("SHOW default_toast_compression").fetchone() == before
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.rollback()
        session_setting(LZ4_VALUES, psycopg.Error)(conn, None)
        assert conn.execute("SHOW default_toast_compression").fetchone() == ("lz4",)
