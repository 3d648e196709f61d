"""Feature computation: tabular (SQL/pandas) and model-based groups (encoders, signals)."""
