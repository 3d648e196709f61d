"""Push a fresh post: into the warehouse, and its request-time features online within seconds.

``POST /v1/posts`` and ``smp ingest --push`` take a post in a draft's shape (see
:mod:`smp_platform.sources.draft`) with its id (the format's ``id_field``: SMP-Video
``post.pid``, SMPD ``text.Pid``) and:

1. upsert it into the warehouse as the file readers would (same record models, same content
   hashes; its author row is the body's ``user`` / ``user_data`` block, else a copy of the
   author's latest stored row, else none), so the nightly refresh finds it like any new post;
2. compute the views of the request-time groups (those a post's own fields give; never the
   image group: a pushed post has no media file) with the refresh's own
   :func:`~smp_platform.features.runtime.compute_group` from the refresh's own warehouse reads
   (:meth:`Warehouse.feature_inputs`), so the pushed row is the row the nightly refresh will
   compute, as far as the warehouse knows then;
3. write those rows online through each view's Feast ``PushSource``
   (:meth:`FeatureStoreGateway.push_online`), stamped with ``PUSHED_EVENT_TIME``, older than any
   post: the nightly materialize, which writes the post's own time, supersedes them in SQLite
   and in Redis alike. The offline store is never written here: the nightly row is computed
   (and validated) by the refresh as for any post.

The caller holds the data dir's writer lock for the whole push (the CLI waits as any writing
command does; the service waits ``service.push_lock_wait_s`` and answers 503 otherwise), so a
push never interleaves with a nightly refresh's warehouse or materialize writes.

A post id already stored with the same content is a retry: nothing changes in the warehouse, and
the online rows are written only where none exists yet. With other content it is a
:class:`PostConflict` and nothing is written: corrections of stored posts come with their files
(``smp ingest``) and the nightly refresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.errors import DataDirBusy
from smp_platform.core.formats import FORMATS
from smp_platform.features.encoders import EncoderUnavailable
from smp_platform.features.group import FeatureGroup, FeatureInputs
from smp_platform.features.registry import groups_for
from smp_platform.features.runtime import compute_group
from smp_platform.infra.feast_store import FeatureStoreGateway
from smp_platform.infra.warehouse import Warehouse
from smp_platform.sources import parse_draft, source_reader
from smp_platform.sources.assembly import PostDraft, assemble_batch
from smp_platform.sources.draft import DRAFT_POST_ID, Draft, DraftError
from smp_platform.sources.quarantine import QuarantineLog

log = logging.getLogger(__name__)


class PostConflict(RuntimeError):
    """The post id is stored with other content; nothing was written."""


@dataclass
class PushResult:
    """What a push did (the JSON body of ``POST /v1/posts``)."""

    post_id: str
    stored: str  # "inserted" or "unchanged" (a retry)
    pushed_views: list[str] = field(default_factory=list)
    already_online: list[str] = field(default_factory=list)  # views left as they were
    not_pushed: str | None = None  # why nothing went online (the nightly refresh will do it)

    @property
    def online(self) -> bool:
        return self.not_pushed is None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "post_id": self.post_id,
            "stored": self.stored,
            "online": self.online,
            "pushed_views": self.pushed_views,
            "already_online": self.already_online,
        }
        if self.not_pushed:
            out["not_pushed"] = self.not_pushed
        return out


def parse_pushed_post(body: Mapping[str, Any]) -> Draft:
    """A pushed post from a draft-shaped body that names the post's id; raises
    :class:`~smp_platform.sources.draft.DraftError` with the reason the quarantine would give."""
    fmt = body.get("format")
    # an unknown format is parse_draft's to say
    block, key = source_reader(fmt).id_field if fmt in FORMATS else (None, None)
    if block is not None and isinstance(body.get(block), Mapping):
        value = body[block].get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DraftError(f"missing id: {block}.{key} is required to push a post")
    draft = parse_draft(body)
    if draft.post["post_id"] == DRAFT_POST_ID:
        raise DraftError(f"wrong type: {block}.{key} {DRAFT_POST_ID!r} is reserved for drafts")
    return draft


def _author_row(draft: Draft, warehouse: Warehouse) -> dict[str, Any] | None:
    """The author row stored with the post: the body's own, else the author's latest."""
    if draft.author is not None:
        return {**draft.author, "post_id": draft.post["post_id"]}
    latest = warehouse.latest_author(draft.user_id)
    if latest is None:
        return None
    return {**latest, "post_id": draft.post["post_id"]}


def pushed_batch(draft: Draft, author: dict[str, Any] | None, source: str) -> Any:
    """The one-post :class:`~smp_platform.core.tables.ParsedBatch` the warehouse ingests: the
    file readers' own assembly (content hashes, columns) of one post."""
    post = {**draft.post, "media_path": None, "source_file": source}
    # assemble_batch writes the content hashes into the dicts it is given: copies
    author = dict(author) if author is not None else None
    return assemble_batch([PostDraft(post, author, source, 0, "")], [], QuarantineLog())


def pushed_groups(settings: Settings) -> list[FeatureGroup]:
    """The request-time groups this data dir computes (a group switched off is off here too)."""
    enabled = []
    for group in groups_for(settings).request_time:
        try:
            group.encoder_id(settings)
        except EncoderUnavailable:
            continue
        enabled.append(group)
    return enabled


def store_post(
    settings: Settings, draft: Draft, source: str, groups: list[FeatureGroup]
) -> tuple[str, FeatureInputs]:
    """Upsert the post; returns ("inserted" | "unchanged") and the refresh's reads of it for
    ``groups``. Raises :class:`PostConflict`."""
    post_id = str(draft.post["post_id"])
    with _open_warehouse(settings) as warehouse:
        batch = pushed_batch(draft, _author_row(draft, warehouse), source)
        stored = warehouse.stored_post_hashes(post_id)
        if stored is None:
            warehouse.ingest(batch)
            outcome = "inserted"
        else:
            wanted = (
                batch.posts["content_hash"].iloc[0],
                batch.authors["content_hash"].iloc[0] if len(batch.authors) else None,
            )
            if stored != wanted:
                raise PostConflict(
                    f"post {post_id} is already stored with other content; a push adds a new "
                    "post. Correct a stored post by loading its files (smp ingest) and "
                    "refreshing"
                )
            outcome = "unchanged"
        reads = {read for group in groups for read in group.reads}
        inputs = warehouse.feature_inputs([post_id], reads)
    return outcome, inputs


def _open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse for writing. Readers never take the writer lock, and DuckDB refuses a
    writer while another process reads the file (a service worker reloading its author index,
    for well under a second): retried for ``service.push_lock_wait_s``, then
    :class:`~smp_platform.core.errors.DataDirBusy`."""
    deadline = time.monotonic() + settings.service.push_lock_wait_s
    while True:
        try:
            return Warehouse(settings.warehouse_path)
        except duckdb.IOException as error:
            if time.monotonic() >= deadline:
                raise DataDirBusy(f"the warehouse is open in another process: {error}") from None
            time.sleep(0.1)


def compute_pushed_features(
    settings: Settings, groups: list[FeatureGroup], inputs: FeatureInputs
) -> dict[str, pd.DataFrame]:
    """The pushed groups' view frames, by the refresh's own computation. Raises
    :class:`~smp_platform.features.encoders.EncoderUnavailable` or ``ImportError`` when a
    configured model cannot be loaded in this process."""
    frames: dict[str, pd.DataFrame] = {}
    for group in groups:
        frames.update(compute_group(group, inputs, settings).frames)
    return frames


def push_post(
    settings: Settings, draft: Draft, *, source: str, gateway: FeatureStoreGateway | None = None
) -> PushResult:
    """Store a fresh post and push its request-time features online (the caller holds the
    writer lock). Every configured group or none: a post online with some views missing would
    be predicted from nulls, so when a model cannot be loaded nothing is pushed and the
    result says why (the nightly refresh puts the post online)."""
    groups = pushed_groups(settings)
    outcome, inputs = store_post(settings, draft, source, groups)
    result = PushResult(str(draft.post["post_id"]), outcome)
    try:
        frames = compute_pushed_features(settings, groups, inputs)
    except (ImportError, EncoderUnavailable) as error:
        result.not_pushed = (
            f"stored, but not pushed online: this process cannot compute the "
            f"request-time features ({type(error).__name__}: {error}); the nightly refresh "
            "will put the post online"
        )
        log.warning("push of %s: %s", result.post_id, result.not_pushed)
        return result
    gateway = gateway or FeatureStoreGateway(settings)
    gateway.apply()  # a no-op when the definitions are those last applied
    result.pushed_views = gateway.push_online(frames, datetime.now(UTC))
    result.already_online = [v for v in frames if v not in result.pushed_views]
    return result
