"""PostgreSQL (the tables in SQLAlchemy Core, their Alembic migrations) and the Redis client factory."""
