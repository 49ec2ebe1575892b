"""The warehouse side: schema, per-dialect upserts, engine and Alembic wiring."""
