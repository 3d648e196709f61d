"""Prefect flows: refresh (nightly features), train, promote, and their deployments."""
