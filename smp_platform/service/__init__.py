"""The online prediction service (FastAPI): popularity by post ID from the Feast online store."""
