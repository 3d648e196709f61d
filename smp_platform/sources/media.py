"""Media paths from dataset files, confined to the dataset's folder.

A path is kept only when it names a place inside the dataset: an absolute path, one that climbs
out with ``..``, or one that leads out through a symbolic link is refused with a reason
(the post keeps no media path), and such a file is never opened. A path to a file that exists
becomes absolute; one to a missing file stays as given (docs/CONTRACTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from smp_platform.sources.quarantine import UNSAFE_MEDIA_PATH, BadValue


class MediaResolver:
    """Resolves media paths against the dataset roots; raises :class:`BadValue` when unsafe.

    Folders are checked once each, so a dataset without its media costs one stat per folder
    rather than per post.
    """

    def __init__(self, roots: Iterable[Path]) -> None:
        self._roots = [os.path.realpath(root) for root in roots]
        self._roots_with_folder: dict[str, list[str]] = {}  # relative folder -> roots having it

    def __call__(self, given: str | None) -> str | None:
        if given is None or not given.strip():
            return given
        if "\x00" in given:
            raise BadValue(UNSAFE_MEDIA_PATH, f"{given!r} holds a NUL byte")
        if os.path.isabs(given):
            raise BadValue(
                UNSAFE_MEDIA_PATH,
                f"{given} is absolute; media paths must be relative to the dataset folder",
            )
        relative = os.path.normpath(given)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            raise BadValue(UNSAFE_MEDIA_PATH, f"{given} climbs out of the dataset folder")
        folder = os.path.dirname(relative)
        roots = self._roots_with_folder.get(folder)
        if roots is None:
            roots = [r for r in self._roots if os.path.isdir(os.path.join(r, folder))]
            self._roots_with_folder[folder] = roots
        for root in roots:
            candidate = os.path.join(root, relative)
            if os.path.isfile(candidate):
                real = os.path.realpath(candidate)
                if os.path.commonpath((real, root)) != root:
                    raise BadValue(
                        UNSAFE_MEDIA_PATH,
                        f"{given} is a link to {real}, outside the dataset folder {root}",
                    )
                return real
        return given
