"""Errors a user can cause: the CLI prints the message and exits with ``exit_code``."""


class UserError(Exception):
    exit_code = 2


class DataDirBusy(UserError):
    """Another writing command held the data dir for longer than the configured wait."""


class RefreshFailed(UserError):
    """A refresh had failed batches (or could not materialize): what was good is stored and
    online, the failed posts are retried by the next run, and the run ends Failed."""

    exit_code = 1


class SourceError(Exception):
    """The input cannot be read at all (no such directory, no posts file, unreadable file).

    Defined here, not in :mod:`smp_platform.sources`, so the CLI can catch it without importing
    the readers (and pandas) before a command runs."""
