"""The dataset formats the platform reads: a name and the module of its reader, one line each.

A reader module exposes ``reader``, a :class:`~smp_platform.sources.draft.SourceReader` (how
its files are read, and the blocks of a draft in its fields). The CLI's ``--format`` choices,
the service's draft and push bodies and :func:`smp_platform.sources.read_source` all come from
this table and those readers. Light on purpose: the CLI lists the names without importing a
reader (or pandas).
"""

from enum import StrEnum

READERS: dict[str, str] = {
    "smp-video": "smp_platform.sources.smp_video",
    "smpd": "smp_platform.sources.smpd",
}
FORMATS: tuple[str, ...] = tuple(READERS)
DEFAULT_FORMAT = "smp-video"
# The same names as an enum, for typed command-line choices (built from READERS, not a list of
# its own).
SourceFormat = StrEnum("SourceFormat", {name: name for name in READERS})  # type: ignore[misc]
