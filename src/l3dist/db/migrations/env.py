"""Alembic environment: runs migrations on the URL given by l3dist.db.session.alembic_config."""

from __future__ import annotations

from alembic import context

from l3dist.db.models import Base
from l3dist.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
