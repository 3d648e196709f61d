"""Doors to outside systems, one module each: the DuckDB warehouse (every SQL read of it),
Feast (offline parts, materialization, push, reads), the embedded online store, Feast's file
registry, and MLflow (runs, versions, the ``@champion`` alias)."""
