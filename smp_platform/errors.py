"""Errors a user can cause: the CLI prints the message and exits with ``exit_code``."""


class UserError(Exception):
    exit_code = 2
