"""Database: models, engine/session helpers and Alembic migrations."""
