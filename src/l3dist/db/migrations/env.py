"""Alembic environment: runs migrations on the URL given by l3dist.db.session.alembic_config.

The API, the worker and the health manager each upgrade the schema when they start, and an
operator starts them together: one upgrade runs at a time (PostgreSQL: a transaction-scoped
advisory lock; SQLite: the write lock taken at BEGIN), and the others then find the schema
current and do nothing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from l3dist.db.models import Base
from l3dist.db.session import make_engine

UPGRADE_LOCK = 0x6C336469  # "l3di": the advisory lock key of schema upgrades
config = context.config
target_metadata = Base.metadata


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    with engine.connect() as connection:
        connection = connection.execution_options(sqlite_immediate=True)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK}
                )
            context.run_migrations()
    engine.dispose()


run()
