"""Feast feature repository: the one definition of every feature the platform serves.

``feast apply`` executes every ``.py`` file here, so this package holds definitions only.
The platform builds the same objects through :func:`feature_repo.feature_services.definitions`
with its own data directory; the module-level objects (for the ``feast`` CLI) read the data
directory from ``SMP_DATA_DIR`` (default ``.smp``).
"""
