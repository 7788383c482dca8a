"""Read models: one module per query, each a table in PostgreSQL built only from events."""
