"""PostgreSQL: the tables (SQLAlchemy Core) and their Alembic migrations."""
