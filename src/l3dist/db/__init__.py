"""The control plane database (SQLAlchemy 2, migrations with Alembic)."""
