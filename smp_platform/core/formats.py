"""The dataset formats the platform reads (one list, for the CLI and the readers)."""

from enum import StrEnum


class SourceFormat(StrEnum):
    SMP_VIDEO = "smp-video"
    SMPD = "smpd"
