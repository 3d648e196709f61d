"""The online store checked against the offline store, and put right (issue 18).

The record of materialized parts (:mod:`smp_platform.pipeline.materialize`) says what was put
online, not what is there now: a Redis flushed, evicted under ``maxmemory`` or replaced by an
empty replica, or an ``online.db`` removed, leaves the record saying "all online" while every
lookup answers 404. So every refresh, including one with nothing else to do, asks the online
store itself:

- **check** (:func:`check_online`): per view, the offline store's latest row of every post
  (post_id, input_hash, encoder_id: DuckDB over the parts) against the row the online store
  holds (the same two bookkeeping fields, read through the store's own ``online_read`` in
  chunks: SQLite and Redis alike, and any store of the user's own). A post whose online row
  is absent or another one (older, or a pushed row the nightly one supersedes) is missing;
- **restore** (:func:`restore_online`): the missing posts' latest offline rows written online as
  they are (their event and write times kept), what a materialize of their windows would write,
  without rewriting the posts that are fine;
- **rebuild** (:func:`rebuild_online`, ``smp materialize --full``): every latest offline row
  written online again, in bounded chunks of posts.

The outcome is kept in ``<data dir>/status/online.json`` (per view: posts offline, online,
missing; and a sample of post ids the service checks live for ``/readyz`` and ``/metrics``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smp_platform.core.config import Settings
from smp_platform.core.status import ONLINE, write_status
from smp_platform.features.registry import groups_for
from smp_platform.features.schema import ENCODER_ID, INPUT_HASH, POST_ID
from smp_platform.infra.feast_store import FeatureStoreGateway

log = logging.getLogger(__name__)

# Posts per chunk of a full rebuild: bounded memory (one chunk of one view at a time).
REBUILD_CHUNK_POSTS = 20_000
# Post ids kept for the service's live coverage check (one online read per view of these).
SAMPLE_POSTS = 256


@dataclass
class ViewCoverage:
    """One view: posts with a row offline, of them online with that row, the ones missing,
    and a sample of its stored posts for the service's live check."""

    view: str
    offline: int
    online: int
    missing: list[str] = field(default_factory=list)
    sample: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return 1.0 if self.offline == 0 else self.online / self.offline


@dataclass
class OnlineCoverage:
    views: dict[str, ViewCoverage]
    checked_at: datetime

    @property
    def missing(self) -> int:
        return sum(len(v.missing) for v in self.views.values())

    @property
    def complete(self) -> bool:
        return self.missing == 0

    def __str__(self) -> str:
        if self.complete:
            posts = max((v.offline for v in self.views.values()), default=0)
            return f"online store complete ({posts:,} posts in {len(self.views)} view(s))"
        gaps = ", ".join(
            f"{v.view} {len(v.missing):,}/{v.offline:,}"
            for v in self.views.values()
            if v.missing
        )
        return f"online store lacks {self.missing:,} row(s): {gaps}"

    def as_json(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "views": {
                v.view: {
                    "offline": v.offline,
                    "online": v.online,
                    "missing": len(v.missing),
                    "ratio": round(v.ratio, 6),
                    "sample": v.sample,
                }
                for v in self.views.values()
            },
        }


def checked_views(settings: Settings) -> list[str]:
    """Every view the refresh materializes: the served feature service's views and those a
    service of the user's own reads (a superset costs a read per view, and misses none)."""
    return [view.name for view in groups_for(settings).views]


def check_online(
    settings: Settings,
    gateway: FeatureStoreGateway | None = None,
    views: Sequence[str] | None = None,
) -> OnlineCoverage:
    """Per view, the posts whose latest offline row the online store does not hold."""
    gateway = gateway or FeatureStoreGateway(settings)
    out: dict[str, ViewCoverage] = {}
    for view in views or checked_views(settings):
        current = gateway.current_rows(view)
        ids = current[POST_ID].astype(str).tolist()
        expected = zip(
            current[INPUT_HASH].astype(str), current[ENCODER_ID].astype(str), strict=True
        )
        held = gateway.online_keys(view, ids)
        missing = [
            pid for pid, want, got in zip(ids, expected, held, strict=True) if got != tuple(want)
        ]
        sample = random.Random(0).sample(sorted(ids), min(SAMPLE_POSTS, len(ids)))
        out[view] = ViewCoverage(view, len(ids), len(ids) - len(missing), missing, sample)
    return OnlineCoverage(out, datetime.now(UTC))


def restore_online(
    settings: Settings, coverage: OnlineCoverage, gateway: FeatureStoreGateway | None = None
) -> dict[str, int]:
    """Write the missing posts' latest offline rows online; returns rows written per view."""
    gateway = gateway or FeatureStoreGateway(settings)
    written: dict[str, int] = {}
    for name, view in coverage.views.items():
        for start in range(0, len(view.missing), REBUILD_CHUNK_POSTS):
            chunk = view.missing[start : start + REBUILD_CHUNK_POSTS]
            n = gateway.write_online(name, gateway.latest_rows(name, chunk))
            written[name] = written.get(name, 0) + n
    if written:
        log.warning(
            "online store restored: %s",
            ", ".join(f"{v} {n:,}" for v, n in sorted(written.items())),
        )
    return written


def rebuild_online(
    settings: Settings,
    on_chunk: Callable[[str, int, int], None] | None = None,
    gateway: FeatureStoreGateway | None = None,
) -> dict[str, int]:
    """Every latest offline row of every view written online again (``smp materialize
    --full``), in chunks of :data:`REBUILD_CHUNK_POSTS` posts. Rows online that the offline
    store does not hold (posts pushed since the last refresh) are left as they are."""
    gateway = gateway or FeatureStoreGateway(settings)
    gateway.apply()
    written: dict[str, int] = {}
    for view in checked_views(settings):
        ids = sorted(gateway.current_rows(view)[POST_ID].astype(str))
        for start in range(0, len(ids), REBUILD_CHUNK_POSTS):
            chunk = ids[start : start + REBUILD_CHUNK_POSTS]
            written[view] = written.get(view, 0) + gateway.write_online(
                view, gateway.latest_rows(view, chunk)
            )
            if on_chunk is not None:
                on_chunk(view, start + len(chunk), len(ids))
    return written


def check_and_restore(
    settings: Settings, gateway: FeatureStoreGateway | None = None
) -> tuple[OnlineCoverage, dict[str, int]]:
    """What every refresh ends with: check, restore what is missing, check again, and keep the
    outcome for the service. Returns the coverage after the restore and the rows restored."""
    gateway = gateway or FeatureStoreGateway(settings)
    coverage = check_online(settings, gateway)
    restored: dict[str, int] = {}
    if not coverage.complete:
        log.warning("%s: restoring from the offline store", coverage)
        restored = restore_online(settings, coverage, gateway)
        coverage = check_online(settings, gateway)
    write_online_status(settings, coverage)
    return coverage, restored


def write_online_status(settings: Settings, coverage: OnlineCoverage) -> None:
    """Keep the check's outcome for the service (``status/online.json``)."""
    write_status(settings.root, ONLINE, coverage.as_json())
