"""The refresh verb: features of new and changed posts, validated, stored, materialized.

For every feature group (the views' ``group`` tag) a refresh computes the rows whose inputs or
encoder changed since the last run, validates each batch with Great Expectations, writes the
valid ones as parquet parts of the Feast offline store, and materializes the event-time window
it wrote to the online store. The bookkeeping lives here and only here: feature functions return
their view's fields, and :func:`compute_group` adds ``input_hash`` (post content, author
content, and the media file's size + mtime) and ``encoder_id`` (the weights' fingerprint, from
settings, without loading a model).

:func:`refresh` runs it all in this process; ``flows/refresh.py`` runs the same
:func:`plan_refresh` / :func:`process_batch` / :func:`finish_refresh` as Prefect tasks (threads
or Dask); the benchmarks call them stage by stage.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd

from feature_repo.data_sources import EVENT_TIMESTAMP
from feature_repo.entities import POST_ID
from feature_repo.feature_views import (
    ENCODER_ID,
    INPUT_HASH,
    VIEW_FIELDS,
    embedding_columns,
    groups,
)
from smp_platform.core.config import Settings

log = logging.getLogger(__name__)

# Bump when a tabular feature's definition changes: every tabular row is then recomputed.
# v2: the post_terms and post_author_popularity views.
TABULAR_VERSION = "tabular-v2"


@dataclass
class BatchResult:
    group: str
    rows_written: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    quarantine: list[tuple[str, str]] = field(default_factory=list)  # (post_id, reason)
    min_ts: datetime | None = None
    max_ts: datetime | None = None
    post_ids: list[str] = field(default_factory=list)  # posts whose rows were written


@dataclass
class RefreshSummary:
    stale: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    disabled: dict[str, str] = field(default_factory=dict)
    quarantined: int = 0
    materialized_windows: int = 0
    drift: str = ""  # the written posts vs the champion's training frame (README, "Drift")

    def add(self, result: BatchResult) -> None:
        for view, n in result.rows_written.items():
            self.written[view] = self.written.get(view, 0) + n
        self.failures.extend(result.failures)
        self.quarantined += len(result.quarantine)

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def failure_message(self) -> str:
        """Why the run failed, for the CLI and the flow's Failed state."""
        reasons = "\n".join(f"  - {failure}" for failure in self.failures)
        written = sum(self.written.values())
        return (
            f"refresh failed: {len(self.failures)} batch(es) failed and were not written; "
            f"their posts are retried by the next refresh ({written:,} feature rows of the "
            f"other batches written and put online):\n{reasons}"
        )

    def __str__(self) -> str:
        written = sum(self.written.values())
        parts = [f"{written:,} feature rows written"]
        if self.written:
            parts.append(
                "(" + ", ".join(f"{v} {n:,}" for v, n in sorted(self.written.items())) + ")"
            )
        parts.append(f"{self.materialized_windows} materialization window(s)")
        if self.disabled:
            parts.append(
                "switched off: " + ", ".join(f"{g} ({why})" for g, why in self.disabled.items())
            )
        if self.failures:
            parts.append(f"{len(self.failures)} batch(es) failed and were not written")
        if self.quarantined:
            parts.append(f"{self.quarantined} post(s) quarantined")
        if self.drift:
            parts.append(f"drift: {self.drift}")
        return "; ".join(parts)


def _hash(*values: Any) -> str:
    return hashlib.sha1(
        "\x1f".join("" if v is None else str(v) for v in values).encode()
    ).hexdigest()[:16]


def media_fingerprint(path: Any) -> tuple[int, int] | None:
    """(size, mtime_ns) of a post's media file; None when there is no readable file."""
    if not isinstance(path, str | os.PathLike) or not str(path):
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def input_hashes(posts: pd.DataFrame) -> pd.Series:
    """What a post's features depend on: its own content and its author's, as loaded, and the
    content of its media file (size + mtime), so a changed image at the same path is recomputed.

    A post without a media file hashes as before media counted, so stored rows stay current.
    """
    n = len(posts)
    authors = posts.get("author_content_hash", pd.Series([None] * n, index=posts.index))
    media = posts.get("media_path", pd.Series([None] * n, index=posts.index))
    values = []
    for content, author, path in zip(posts["content_hash"], authors, media, strict=True):
        fingerprint = media_fingerprint(path)
        values.append(
            _hash(content, author) if fingerprint is None else _hash(content, author, *fingerprint)
        )
    return pd.Series(values, index=posts.index, name=INPUT_HASH, dtype=object)


def with_extra_inputs(
    group: str, posts: pd.DataFrame, label_history: pd.DataFrame | None
) -> pd.DataFrame:
    """``posts`` with ``input_hash`` also covering what one group's rows depend on beyond the
    post: for ``tabular``, the author's earlier labels (``post_author_popularity``), so a new
    label recomputes the author's later posts, never the labelled post itself."""
    if group != "tabular" or label_history is None:
        return posts
    from smp_platform.features.author_history import label_history_keys

    keys = label_history_keys(label_history).reindex(posts[POST_ID]).fillna("").to_numpy()
    hashes = [h if not k else _hash(h, k) for h, k in zip(posts[INPUT_HASH], keys, strict=True)]
    return posts.assign(**{INPUT_HASH: hashes})


# -- encoders, loaded once per process (a Dask worker keeps its own) -------------------------
# Keyed on what an encoder depends on (encoder settings, converted-weights dir), so a copy of the
# settings that differs elsewhere (say, in training) does not load the models again.
@lru_cache(maxsize=8)
def _load_encoder(group: str, encoders_json: str, models_dir: str) -> Any:
    from pathlib import Path

    from smp_platform.core.config import EncoderSettings

    enc = EncoderSettings.model_validate_json(encoders_json)
    if group == "text":
        from smp_platform.features.text_embedding import TextEncoder

        return TextEncoder.from_settings(enc)
    if group == "captioner":
        from smp_platform.features.captions import ImageCaptioner

        return ImageCaptioner.from_settings(enc)
    if group == "image":
        from smp_platform.features.image_embedding import ImageEncoder

        return ImageEncoder.from_settings(enc)
    if group == "perplexity":
        from smp_platform.features.perplexity import PerplexityScorer

        return PerplexityScorer.from_settings(Path(models_dir), enc)
    raise ValueError(group)


def load_encoder(group: str, settings: Settings) -> Any:
    return _load_encoder(group, settings.encoders.model_dump_json(), str(settings.models_dir))


def load_captioner(settings: Settings) -> Any:
    """The configured image-to-text model, or None when captions come only with the data."""
    return load_encoder("captioner", settings) if settings.encoders.captioner else None


def encoder_identity(group: str, settings: Settings) -> str:
    """The encoder_id a group's rows carry, from the configured weights' fingerprint without
    loading a model (raises EncoderUnavailable when the group is switched off)."""
    enc = settings.encoders
    if group == "tabular":
        return TABULAR_VERSION
    if group == "text":
        from smp_platform.features.text_embedding import TextEncoder

        identity = TextEncoder.identity(enc)
        if enc.captioner:
            from smp_platform.features.captions import ImageCaptioner

            # Generated captions feed caption_title_similarity: a new captioner recomputes it.
            identity += "+" + ImageCaptioner.identity(enc)
        return identity
    if group == "image":
        from smp_platform.features.image_embedding import ImageEncoder

        return ImageEncoder.identity(enc)
    if group == "perplexity":
        from smp_platform.features.perplexity import PerplexityScorer

        return PerplexityScorer.identity(enc)
    raise ValueError(group)


def stale_posts(posts: pd.DataFrame, stored: pd.DataFrame, encoder_id: str) -> pd.DataFrame:
    """Posts whose current inputs/encoder have no stored row (new, changed or re-encoded)."""
    keys = [POST_ID, INPUT_HASH, ENCODER_ID]
    current = posts[[POST_ID, INPUT_HASH]].assign(**{ENCODER_ID: encoder_id})
    merged = current.merge(stored[keys], on=keys, how="left", indicator=True)
    fresh_ids = set(merged.loc[merged["_merge"] == "both", POST_ID])
    return posts[~posts[POST_ID].isin(fresh_ids)]


def stale_in_any_view(
    posts: pd.DataFrame, gateway: Any, view_names: Sequence[str], encoder_id: str
) -> pd.DataFrame:
    """Posts stale in any view of a group: the views of one batch are written one after the
    other, so a run that died between them left some current and others not. The whole group
    is recomputed for such a post, and its views are complete together again."""
    stale_ids: set[str] = set()
    for view in view_names:
        stale_ids.update(stale_posts(posts, gateway.current_rows(view), encoder_id)[POST_ID])
    return posts[posts[POST_ID].isin(stale_ids)]


# -- computing one batch ---------------------------------------------------------------------
def compute_group(
    group: str,
    posts: pd.DataFrame,
    history: pd.DataFrame | None,
    settings: Settings,
    label_history: pd.DataFrame | None = None,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Feature frames per view for a batch of posts (with ``input_hash`` and ``encoder_id``
    added), and (post_id, reason) to quarantine. ``tabular`` needs ``history`` (post counts)
    and ``label_history`` (:meth:`Warehouse.author_label_history` of the batch)."""
    no_quarantine = pd.DataFrame(columns=[POST_ID, "reason"])
    keys = pd.DataFrame(
        {POST_ID: posts[POST_ID].to_numpy(), EVENT_TIMESTAMP: posts["posted_at"].to_numpy()}
    )
    quarantine = no_quarantine
    if group == "tabular":
        from smp_platform.features import tabular

        assert history is not None and label_history is not None
        computed = [
            tabular.compute_author_features(posts, history),
            tabular.compute_temporal_features(posts),
            tabular.compute_content_features(posts),
            tabular.compute_terms(posts),
            tabular.compute_author_popularity(posts, label_history),
        ]
    else:
        from smp_platform.features import signals

        encoder = load_encoder(group, settings)
        if group == "text":
            from smp_platform.features.captions import resolve_captions

            captions = resolve_captions(posts, load_captioner(settings))
            computed = [signals.compute_text_semantics(posts, encoder, captions=captions)]
        elif group == "image":
            image_frame, quarantine = signals.compute_image_semantics(posts, encoder)
            computed = [image_frame]
        else:
            computed = [signals.compute_perplexity(posts, encoder)]
    encoder_id = encoder_identity(group, settings)
    hashes = dict(zip(posts[POST_ID], posts[INPUT_HASH], strict=True))
    frames = {}
    for view, frame in zip(groups()[group], computed, strict=True):
        frame = frame.drop(columns=[EVENT_TIMESTAMP], errors="ignore").merge(keys, on=POST_ID)
        frame[INPUT_HASH] = frame[POST_ID].map(hashes)
        frame[ENCODER_ID] = encoder_id
        frames[view] = frame
    return frames, quarantine


def process_batch(
    group: str,
    post_ids: list[str],
    settings: Settings,
    created_at: datetime,
) -> BatchResult:
    """Compute, validate and write one batch of one group (the unit of parallel work)."""
    from smp_platform.core.faults import fail_point, fault_point
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse
    from smp_platform.validation import validate_batch

    if group == "tabular":
        fail_point("batch-error")
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.posts_frame(post_ids)
        history = warehouse.author_history(post_ids) if group == "tabular" else None
        labels = warehouse.author_label_history(post_ids) if group == "tabular" else None
    posts = with_extra_inputs(group, posts.assign(input_hash=input_hashes(posts)), labels)
    frames, quarantine = compute_group(group, posts, history, settings, labels)
    # Set-aside inputs (e.g. an unreadable image) keep a null feature; the flow records why.
    result = BatchResult(
        group=group,
        quarantine=[(str(r.post_id), str(r.reason)) for r in quarantine.itertuples()],
    )
    gateway = FeatureStoreGateway(settings)
    embedding_dims = _embedding_dims(frames)
    reports = {
        view: validate_batch(view, frame, embedding_dims=embedding_dims)
        for view, frame in frames.items()
    }
    if not all(report.success for report in reports.values()):
        # All views of a group are written together or not at all: no half-refreshed post.
        result.failures.extend(r.summary() for r in reports.values() if not r.success)
        return result
    for view, frame in frames.items():
        if result.rows_written:
            fault_point("between-views")
        gateway.write_view(view, frame, created_at)
        result.rows_written[view] = len(frame)
    result.post_ids = [str(p) for p in posts[POST_ID]]
    ts = pd.to_datetime(posts["posted_at"], utc=True)
    if len(ts):
        result.min_ts, result.max_ts = ts.min().to_pydatetime(), ts.max().to_pydatetime()
    return result


def _embedding_dims(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for frame in frames.values():
        for column in embedding_columns():
            if column in frame:
                lengths = frame[column].dropna().map(len)
                if len(lengths):
                    dims[column] = int(lengths.mode().iloc[0])
    return dims


# -- planning and finishing ------------------------------------------------------------------
@dataclass
class RefreshPlan:
    batches: list[tuple[str, list[str]]]
    stale: dict[str, int]
    disabled: dict[str, str]

    def posts(self, group: str) -> int:
        return sum(len(ids) for g, ids in self.batches if g == group)


def plan_refresh(settings: Settings, group_names: Sequence[str] | None = None) -> RefreshPlan:
    """Which posts of which group need computing, split in bounded batches.

    A group whose encoder is switched off (or whose weights cannot be loaded when there is work
    for it) is reported in ``disabled`` with the reason, and logged as a warning.
    """
    from smp_platform.features.encoders import EncoderUnavailable
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse

    gateway = FeatureStoreGateway(settings)
    gateway.apply()
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.post_input_keys()
        labels = warehouse.author_label_history()  # the tabular group's extra input
    posts = posts.assign(**{INPUT_HASH: input_hashes(posts)})
    plan = RefreshPlan(batches=[], stale={}, disabled={})
    views = groups()
    for group in group_names or list(views):
        try:
            encoder_id = encoder_identity(group, settings)
            todo = stale_in_any_view(
                with_extra_inputs(group, posts, labels), gateway, views[group], encoder_id
            )
            if len(todo) and group != "tabular":
                load_encoder(group, settings)  # weights that cannot load: off now, not mid-run
        except EncoderUnavailable as exc:
            plan.disabled[group] = str(exc)
            log.warning("feature group %s switched off: %s", group, exc)
            continue
        plan.stale[group] = len(todo)
        ids = todo[POST_ID].tolist()
        batch = settings.refresh_batch_size if group == "tabular" else settings.model_batch_size
        size = max(1, batch)
        plan.batches += [(group, ids[i : i + size]) for i in range(0, len(ids), size)]
    return plan


def pending_parts(settings: Settings) -> dict[str, pd.DataFrame]:
    """Per view, the offline parts the online store may lack: every part not recorded as
    materialized, or rewritten since (size or mtime differ). Whoever wrote them and however
    that run ended, the next :func:`materialize_pending` puts them online."""
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse

    gateway = FeatureStoreGateway(settings)
    with Warehouse(settings.warehouse_path) as warehouse:
        done = warehouse.materialized_parts()
    keys = ["part", "size", "mtime_ns"]
    pending = {}
    for view in VIEW_FIELDS:
        parts = gateway.parts(view)
        recorded = done.loc[done["feature_view"] == view, keys]
        merged = parts.merge(recorded, on=keys, how="left", indicator=True)
        todo = merged.loc[merged["_merge"] == "left_only", keys].reset_index(drop=True)
        if len(todo):
            pending[view] = todo
    return pending


def _time_clusters(ranges: pd.DataFrame, gap: timedelta) -> list[tuple[datetime, datetime]]:
    """Merge parts' [min_ts, max_ts] ranges that lie within ``gap`` of each other: a re-encoded
    2015 post and last night's posts become two short windows, not ten years of them."""
    clusters: list[tuple[datetime, datetime]] = []
    for low, high in sorted(zip(ranges["min_ts"], ranges["max_ts"], strict=True)):
        low, high = pd.Timestamp(low).to_pydatetime(), pd.Timestamp(high).to_pydatetime()
        if clusters and low - clusters[-1][1] <= gap:
            clusters[-1] = (clusters[-1][0], max(clusters[-1][1], high))
        else:
            clusters.append((low, high))
    return clusters


def materialize_pending(settings: Settings, overlap: timedelta | None = None) -> int:
    """Materialize every pending part, view by view, over the event-time range its rows span
    (bounded windows), then record the parts: a run that dies before the record repeats the
    work, never skips it. Returns the number of windows materialized."""
    from smp_platform.core.faults import fault_point
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse

    overlap = (
        overlap if overlap is not None else timedelta(hours=settings.materialize_overlap_hours)
    )
    gateway = FeatureStoreGateway(settings)
    windows = 0
    for i, (view, parts) in enumerate(sorted(pending_parts(settings).items())):
        if i:
            fault_point("during-materialize")
        ranges = gateway.part_time_ranges(view, parts["part"].tolist())
        ranges = ranges.dropna(subset=["min_ts", "max_ts"])
        window = timedelta(days=settings.materialize_window_days)
        for low, high in _time_clusters(ranges, window):
            start = low.replace(tzinfo=UTC) - overlap
            end = high.replace(tzinfo=UTC) + timedelta(seconds=1)
            windows += gateway.materialize(start, end, [view])
        record = parts.merge(ranges, on="part", how="left").assign(feature_view=view)
        with Warehouse(settings.warehouse_path) as warehouse:
            warehouse.record_materialized(record)
    return windows


def finish_refresh(
    settings: Settings, plan: RefreshPlan, results: list[BatchResult]
) -> RefreshSummary:
    """Record quarantined inputs, materialize what was written, and sum the run up."""
    summary = RefreshSummary(stale=plan.stale, disabled=plan.disabled)
    for result in results:
        summary.add(result)
        for failure in result.failures:
            log.warning(failure)
    if any(r.quarantine for r in results):
        from smp_platform.infra.warehouse import Warehouse

        with Warehouse(settings.warehouse_path) as warehouse:
            warehouse.quarantine_features(
                [(pid, f"{r.group}: {why}") for r in results for pid, why in r.quarantine]
            )
    from smp_platform.core.faults import fault_point

    fault_point("before-materialize")
    summary.materialized_windows = materialize_pending(settings)
    summary.drift = measure_drift(settings, [p for r in results for p in r.post_ids])
    return summary


def measure_drift(settings: Settings, post_ids: list[str]) -> str:
    """The written posts against the champion's training frame, logged to MLflow. The
    features are stored and online by now: a drift measure that fails (MLflow unreachable)
    is logged and said in the summary, and does not fail the refresh."""
    from smp_platform.pipeline.monitor import refresh_drift

    try:
        return refresh_drift(settings, post_ids)
    except Exception as exc:
        log.warning("drift not measured: %r", exc, exc_info=True)
        return f"not measured: {exc!r}"


BatchDone = Callable[[str, int, "BatchResult"], None]  # (group, posts in the batch, result)


def compute_batches(
    settings: Settings,
    plan: RefreshPlan,
    created_at: datetime,
    on_batch: BatchDone | None = None,
) -> list[BatchResult]:
    """Every batch of the plan, one after the other, in this process."""
    results = []
    for group, ids in plan.batches:
        result = process_batch(group, ids, settings, created_at)
        results.append(result)
        if on_batch is not None:
            on_batch(group, len(ids), result)
    return results


def refresh(settings: Settings, on_batch: BatchDone | None = None) -> RefreshSummary:
    """The whole refresh in this process, without Prefect (the flow runs the same steps).

    Raises :class:`~smp_platform.core.errors.RefreshFailed` after storing what was good when any
    batch failed."""
    from smp_platform.core.errors import RefreshFailed

    plan = plan_refresh(settings)
    results = compute_batches(settings, plan, now_utc(), on_batch)
    summary = finish_refresh(settings, plan, results)
    if summary.failed:
        raise RefreshFailed(summary.failure_message())
    return summary


def failed_batch(group: str, post_ids: Sequence[str], error: BaseException) -> BatchResult:
    """A batch that raised: nothing of it was recorded as written; its posts stay stale."""
    first = post_ids[0] if post_ids else "-"
    return BatchResult(
        group=group,
        failures=[f"{group} batch of {len(post_ids)} post(s) from {first}: {error!r}"],
    )


@dataclass
class WorkCheck:
    """What a refresh would do, learned without loading a model or starting Prefect."""

    stale: dict[str, int]
    pending_parts: int
    disabled: dict[str, str]
    no_warehouse: bool = False

    @property
    def has_work(self) -> bool:
        return any(self.stale.values()) or self.pending_parts > 0

    def __str__(self) -> str:
        if self.no_warehouse:
            return "nothing to do: no posts in this data dir yet (load some with `smp ingest`)"
        if not self.has_work:
            off = f"; switched off: {', '.join(self.disabled)}" if self.disabled else ""
            return f"nothing to do: every post's features are current and online{off}"
        stale = ", ".join(f"{g} {n:,}" for g, n in self.stale.items() if n)
        return f"stale rows: {stale or 'none'}; {self.pending_parts} part(s) to materialize"


def check_for_work(settings: Settings) -> WorkCheck:
    """Stale posts per group (encoder ids from settings, no model loaded) and parts pending
    materialization: what the nightly schedule checks before it loads any model."""
    from smp_platform.features.encoders import EncoderUnavailable
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse

    if not settings.warehouse_path.exists():
        return WorkCheck(stale={}, pending_parts=0, disabled={}, no_warehouse=True)
    gateway = FeatureStoreGateway(settings)
    gateway.apply()  # a no-op unless the definitions changed
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.post_input_keys()
        labels = warehouse.author_label_history()  # the tabular group's extra input
    posts = posts.assign(**{INPUT_HASH: input_hashes(posts)})
    check = WorkCheck(stale={}, pending_parts=0, disabled={})
    for group, view_names in groups().items():
        try:
            encoder_id = encoder_identity(group, settings)
        except EncoderUnavailable as exc:
            check.disabled[group] = str(exc)
            continue
        keyed = with_extra_inputs(group, posts, labels)  # the same keys plan_refresh uses
        check.stale[group] = len(stale_in_any_view(keyed, gateway, view_names, encoder_id))
    check.pending_parts = sum(len(p) for p in pending_parts(settings).values())
    return check


def now_utc() -> datetime:
    return datetime.now(UTC)
