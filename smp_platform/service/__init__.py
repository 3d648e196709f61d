"""The online prediction service (FastAPI), HTTP only: popularity by post ID from the Feast
online store, drafts and pushed posts through :mod:`smp_platform.online`."""
