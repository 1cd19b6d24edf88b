"""The ShopGuard database: its engine (``engine.py``: SQLite by default, any SQLAlchemy URL) and
the Alembic migrations of every table the service keeps (``migrations/``)."""
