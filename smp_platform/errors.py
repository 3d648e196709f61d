"""Errors a user can cause: the CLI prints the message and exits with ``exit_code``."""


class UserError(Exception):
    exit_code = 2


class DataDirBusy(UserError):
    """Another writing command held the data dir for longer than the configured wait."""
