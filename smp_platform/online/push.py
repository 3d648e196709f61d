"""Push a fresh post: into the warehouse, and its request-time features online within seconds.

``POST /v1/posts`` and ``smp ingest --push`` take a post in a draft's shape (see
:mod:`smp_platform.online.drafts`) with its id (SMP-Video ``post.pid``, SMPD ``text.Pid``) and:

1. upsert it into the warehouse as the file readers would (same record models, same content
   hashes; its author row is the body's ``user`` / ``user_data`` block, else a copy of the
   author's latest stored row, else none), so the nightly refresh finds it like any new post;
2. compute the views a post's own fields give (``PUSHED_GROUPS``: tabular, text, perplexity;
   never image: a pushed post has no media file) with the refresh's own
   :func:`~smp_platform.pipeline.refresh.compute_group` from the refresh's own warehouse reads
   (:meth:`Warehouse.posts_frame`, ``author_history``, ``author_label_history``), so the pushed
   row is the row the nightly refresh will compute, as far as the warehouse knows then;
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smp_platform.core.config import Settings
from smp_platform.online.drafts import DRAFT_POST_ID, Draft, DraftError, parse_draft, read_json_file

log = logging.getLogger(__name__)

# Where each format keeps the post's id in the body.
ID_FIELD = {"smp-video": ("post", "pid"), "smpd": ("text", "Pid")}


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
    :class:`~smp_platform.online.drafts.DraftError` with the reason the quarantine would give."""
    block, key = ID_FIELD.get(str(body.get("format")), (None, None))
    if block is not None and isinstance(body.get(block), Mapping):
        value = body[block].get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DraftError(f"missing id: {block}.{key} is required to push a post")
    draft = parse_draft(body)
    if draft.post["post_id"] == DRAFT_POST_ID:
        raise DraftError(f"wrong type: {block}.{key} {DRAFT_POST_ID!r} is reserved for drafts")
    return draft


def _author_row(draft: Draft, warehouse: Any) -> dict[str, Any] | None:
    """The author row stored with the post: the body's own, else the author's latest."""
    if draft.author is not None:
        return {**draft.author, "post_id": draft.post["post_id"]}
    latest = warehouse.latest_author(draft.user_id)
    if latest is None:
        return None
    return {**latest, "post_id": draft.post["post_id"]}


def pushed_batch(draft: Draft, author: dict[str, Any] | None, source: str) -> Any:
    """The one-post :class:`~smp_platform.infra.warehouse.ParsedBatch` the warehouse ingests: the
    file readers' own assembly (content hashes, columns) of one post."""
    from smp_platform.sources.assembly import PostDraft, assemble_batch
    from smp_platform.sources.quarantine import QuarantineLog

    post = {**draft.post, "media_path": None, "source_file": source}
    # assemble_batch writes the content hashes into the dicts it is given: copies
    author = dict(author) if author is not None else None
    return assemble_batch([PostDraft(post, author, source, 0, "")], [], QuarantineLog())


def pushed_groups(settings: Settings) -> list[str]:
    """The request-time groups this data dir computes (a group switched off is off here too)."""
    from feature_repo.feature_views import PUSHED_GROUPS

    enabled = {
        "tabular": True,
        "text": settings.encoders.text_model is not None,
        "perplexity": settings.encoders.perplexity_model is not None,
    }
    return [group for group in PUSHED_GROUPS if enabled[group]]


def store_post(settings: Settings, draft: Draft, source: str) -> tuple[str, Any, Any, Any]:
    """Upsert the post; returns ("inserted" | "unchanged") and the refresh's three reads of it
    (posts, author history, author label history). Raises :class:`PostConflict`."""
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
        posts = warehouse.posts_frame([post_id])
        history = warehouse.author_history([post_id])
        labels = warehouse.author_label_history([post_id])
    return outcome, posts, history, labels


def _open_warehouse(settings: Settings) -> Any:
    """The warehouse for writing. Readers never take the writer lock, and DuckDB refuses a
    writer while another process reads the file (a service worker reloading its author index,
    for well under a second): retried for ``service.push_lock_wait_s``, then
    :class:`~smp_platform.core.errors.DataDirBusy`."""
    import time

    import duckdb

    from smp_platform.core.errors import DataDirBusy
    from smp_platform.infra.warehouse import Warehouse

    deadline = time.monotonic() + settings.service.push_lock_wait_s
    while True:
        try:
            return Warehouse(settings.warehouse_path)
        except duckdb.IOException as error:
            if time.monotonic() >= deadline:
                raise DataDirBusy(f"the warehouse is open in another process: {error}") from None
            time.sleep(0.1)


def compute_pushed_features(
    settings: Settings, posts: Any, history: Any, labels: Any
) -> dict[str, Any]:
    """The pushed groups' view frames, by the refresh's own functions. Raises
    :class:`~smp_platform.features.encoders.EncoderUnavailable` or ``ImportError`` when a
    configured encoder cannot be loaded in this process."""
    from smp_platform.pipeline.refresh import compute_group, input_hashes, with_extra_inputs

    frames: dict[str, Any] = {}
    posts = posts.assign(input_hash=input_hashes(posts))
    for group in pushed_groups(settings):
        keyed = with_extra_inputs(group, posts, labels)
        computed, _ = compute_group(group, keyed, history, settings, labels)
        frames.update(computed)
    return frames


def push_post(
    settings: Settings, draft: Draft, *, source: str, gateway: Any | None = None
) -> PushResult:
    """Store a fresh post and push its request-time features online (the caller holds the
    writer lock). Every configured group or none: a post online with some views missing would
    be predicted from nulls, so when an encoder cannot be loaded nothing is pushed and the
    result says why (the nightly refresh puts the post online)."""
    from smp_platform.features.encoders import EncoderUnavailable
    from smp_platform.infra.feast_store import FeatureStoreGateway

    outcome, posts, history, labels = store_post(settings, draft, source)
    result = PushResult(str(draft.post["post_id"]), outcome)
    try:
        frames = compute_pushed_features(settings, posts, history, labels)
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


def read_pushed_posts(path: Path) -> list[Draft]:
    """The posts of a JSON file: one ``POST /v1/posts`` body, or a list of them. Every post is
    checked before any is written; a file a user can fix raises :class:`UserError`."""
    from smp_platform.core.errors import UserError

    body = read_json_file(path, "post")
    bodies = body if isinstance(body, list) else [body]
    drafts = []
    for i, item in enumerate(bodies):
        where = f"{path}" if not isinstance(body, list) else f"{path} item {i}"
        if not isinstance(item, dict):
            raise UserError(f"{where} is a JSON {type(item).__name__}, expected a post object")
        try:
            drafts.append(parse_pushed_post(item))
        except DraftError as error:
            raise UserError(f"invalid post in {where}: {error}") from None
    return drafts


def push_file(settings: Settings, path: Path) -> list[PushResult]:
    """``smp ingest --push``: every post of the file stored and pushed (caller holds the lock).
    A conflicting post stops the run (the ones before it are stored) with a UserError."""
    from smp_platform.core.errors import UserError
    from smp_platform.infra.feast_store import FeatureStoreGateway

    drafts = read_pushed_posts(path)
    gateway = FeatureStoreGateway(settings)  # one Feast store for the file, not one per post
    results = []
    for draft in drafts:
        try:
            results.append(push_post(settings, draft, source=str(path), gateway=gateway))
        except PostConflict as error:
            raise UserError(str(error)) from None
    return results
