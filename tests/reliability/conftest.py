"""Fault tests break a private copy of the trained platform (``platform_copy``, in
tests/conftest.py): its registry, its online store, its writer lock; never the session's
shared one."""
