"""The authors the warehouse knows, in memory, for the request path.

The stored ``post_author`` row of a post is its author *as of that post* (counts, account age,
posts before it, days since the previous one), keyed by post_id, so no stored row is "the author
now". A draft's author features are therefore computed by the tabular group from the same
inputs the refresh gives it: the author's profile (the draft's own ``user`` / ``user_data``
block when given, else the author row of the author's latest post in the warehouse) and the
author's history strictly before the draft's time (posts before it, days since the previous
one), counted over the warehouse's posts as :meth:`Warehouse.author_history` counts them.
:class:`AuthorIndex` keeps that in memory (user -> sorted post times, latest author row,
labelled posts) so a request never opens the warehouse, which a writing command may hold; an
:class:`AuthorDirectory` reloads it when the warehouse file changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smp_platform.infra.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class AuthorIndex:
    """Per author: the sorted times of their posts in the warehouse and their latest author row."""

    times: dict[str, np.ndarray] = field(default_factory=dict)  # datetime64[us], sorted
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the author's labelled posts (post_id, user_id, posted_at, popularity), for the
    # post_author_popularity view
    labelled: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def from_warehouse(cls, path: Path) -> AuthorIndex:
        """Read once from the warehouse (read-only). 300k posts: two scans, under a second."""
        with Warehouse(path, read_only=True) as warehouse:
            posts = warehouse.post_times_by_author()
            latest = warehouse.latest_author_rows()
            labelled = warehouse.labelled_posts_by_author()
        index = cls()
        stamps = posts["posted_at"].to_numpy(dtype="datetime64[us]")
        users = posts["user_id"].astype(str).to_numpy()
        if len(users):
            starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
            ends = np.r_[starts[1:], len(users)]
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                index.times[users[start]] = stamps[start:end]
        if len(labelled):
            labelled["posted_at"] = pd.to_datetime(labelled["posted_at"], utc=True)
            for user, rows in labelled.groupby(labelled["user_id"].astype(str), sort=False):
                index.labelled[str(user)] = rows.reset_index(drop=True)
        for row in latest.to_dict("records"):
            index.latest[str(row.pop("user_id"))] = {
                k: None if _missing(v) else v for k, v in row.items()
            }
        return index

    def label_history(self, post_id: str, user_id: str, at: datetime) -> pd.DataFrame:
        """What ``compute_author_popularity`` reads for a draft: the author's labelled posts
        (a stored post of the same id left out) and the draft itself, unlabelled."""
        rows = self.labelled.get(user_id)
        draft = pd.DataFrame(
            {
                "post_id": [post_id],
                "user_id": [user_id],
                "posted_at": pd.to_datetime([pd.Timestamp(at)], utc=True),
                "popularity": [np.nan],
            }
        )
        if rows is None:
            return draft
        return pd.concat([rows[rows["post_id"] != post_id], draft], ignore_index=True)

    def knows(self, user_id: str) -> bool:
        return user_id in self.times

    def history(self, user_id: str, at: datetime) -> tuple[int, float]:
        """(posts strictly before ``at``, days since the latest of them or NaN), as
        :meth:`Warehouse.author_history` counts them."""
        times = self.times.get(user_id)
        if times is None:
            return 0, float("nan")
        moment = np.datetime64(pd.Timestamp(at).floor("us").to_datetime64(), "us")
        before = int(np.searchsorted(times, moment, side="left"))
        if before == 0:
            return 0, float("nan")
        seconds = (moment - times[before - 1]) / np.timedelta64(1, "s")
        return before, float(seconds) / 86_400.0


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


class AuthorDirectory:
    """The current :class:`AuthorIndex`, reloaded when the warehouse file changes.

    Checked at most every ``check_seconds``; a warehouse that cannot be opened (a writing
    command holds it, or none exists yet) keeps the last index and says so in the log.
    ``guard``: a lock this process's own warehouse writes (a pushed post) hold; DuckDB refuses
    a read-only connection beside a writing one in one process, so while it is held the last
    index is kept rather than waited for.
    """

    def __init__(
        self,
        warehouse_path: Path,
        check_seconds: float = 5.0,
        guard: threading.Lock | None = None,
    ) -> None:
        self.path = Path(warehouse_path)
        self.check_seconds = check_seconds
        self.guard = guard
        self._index = AuthorIndex()
        self._stamp: tuple[float, ...] | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Check the warehouse at the next :meth:`current` (this process just wrote it)."""
        self._checked_at = float("-inf")

    def _file_stamp(self) -> tuple[float, ...]:
        stamp: list[float] = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                stat = os.stat(path)
                stamp += [stat.st_mtime_ns, stat.st_size]
            except OSError:
                stamp += [-1, -1]
        return tuple(stamp)

    def current(self) -> AuthorIndex:
        now = time.monotonic()
        if now - self._checked_at < self.check_seconds:
            return self._index
        with self._lock:
            if now - self._checked_at < self.check_seconds:
                return self._index
            stamp = self._file_stamp()
            if stamp == self._stamp:
                self._checked_at = now
                return self._index
            if self.guard is not None and not self.guard.acquire(blocking=False):
                return self._index  # a push is writing: the next call looks again
            try:
                self._checked_at = now
                self._index = AuthorIndex.from_warehouse(self.path)
                self._stamp = stamp
            except Exception as error:  # noqa: BLE001 - keep the last index, say why
                log.warning("author index not reloaded (kept the last one): %s", error)
            finally:
                if self.guard is not None:
                    self.guard.release()
        return self._index
