"""The work of a feature refresh, as plain functions (the Prefect flow in ``flows/refresh.py``
composes them; tests call them directly).

A refresh computes, for every feature group, the rows whose inputs or encoder changed since the
last run, validates each batch with Great Expectations, writes the valid ones as parquet parts of
the Feast offline store, and materializes the event-time window it wrote to the online store.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd

from smp_platform.config import Settings

log = logging.getLogger(__name__)

# Bump when a tabular feature's definition changes: every tabular row is then recomputed.
TABULAR_VERSION = "tabular-v1"


@dataclass(frozen=True)
class FeatureGroup:
    """A set of views computed together by one encoder."""

    name: str
    views: tuple[str, ...]


GROUPS = (
    FeatureGroup("tabular", ("post_author", "post_temporal", "post_content")),
    FeatureGroup("text", ("post_text_semantics",)),
    FeatureGroup("image", ("post_image_semantics",)),
    FeatureGroup("perplexity", ("post_perplexity",)),
)


@dataclass
class BatchResult:
    group: str
    rows_written: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    quarantine: list[tuple[str, str]] = field(default_factory=list)  # (post_id, reason)
    min_ts: datetime | None = None
    max_ts: datetime | None = None


@dataclass
class RefreshSummary:
    stale: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    disabled: dict[str, str] = field(default_factory=dict)
    quarantined: int = 0
    materialized_windows: int = 0

    def add(self, result: BatchResult) -> None:
        for view, n in result.rows_written.items():
            self.written[view] = self.written.get(view, 0) + n
        self.failures.extend(result.failures)
        self.quarantined += len(result.quarantine)

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
            parts.append(f"{len(self.failures)} batch(es) failed validation and were not written")
        if self.quarantined:
            parts.append(f"{self.quarantined} post(s) quarantined")
        return "; ".join(parts)


def _hash(*values: Any) -> str:
    return hashlib.sha1(
        "\x1f".join("" if v is None else str(v) for v in values).encode()
    ).hexdigest()[:16]


def input_hashes(posts: pd.DataFrame) -> pd.Series:
    """What a post's features depend on: its own content and its author's, as loaded."""
    authors = posts.get("author_content_hash", pd.Series([None] * len(posts), index=posts.index))
    values = [
        _hash(content, author)
        for content, author in zip(posts["content_hash"], authors, strict=True)
    ]
    return pd.Series(values, index=posts.index, name="input_hash")


# -- encoders, loaded once per process (a Dask worker keeps its own) -------------------------
# Keyed on what an encoder depends on (encoder settings, converted-weights dir), so a copy of the
# settings that differs elsewhere (say, in training) does not load the models again.
@lru_cache(maxsize=8)
def _load_encoder(group: str, encoders_json: str, models_dir: str) -> Any:
    from pathlib import Path

    from smp_platform.config import EncoderSettings

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
    """The encoder_id a group's rows carry (raises EncoderUnavailable when switched off)."""
    if group == "tabular":
        return TABULAR_VERSION
    identity = str(load_encoder(group, settings).encoder_id)
    captioner = load_captioner(settings) if group == "text" else None
    # Generated captions feed caption_title_similarity: a new captioner recomputes the group.
    return f"{identity}+{captioner.encoder_id}" if captioner is not None else identity


def stale_posts(posts: pd.DataFrame, stored: pd.DataFrame, encoder_id: str) -> pd.DataFrame:
    """Posts whose current inputs/encoder have no stored row (new, changed or re-encoded)."""
    current = posts[["post_id", "input_hash"]].assign(encoder_id=encoder_id)
    merged = current.merge(
        stored[["post_id", "input_hash", "encoder_id"]],
        on=["post_id", "input_hash", "encoder_id"],
        how="left",
        indicator=True,
    )
    fresh_ids = set(merged.loc[merged["_merge"] == "both", "post_id"])
    return posts[~posts["post_id"].isin(fresh_ids)]


# -- computing one batch ---------------------------------------------------------------------
def compute_group(
    group: str, posts: pd.DataFrame, history: pd.DataFrame | None, settings: Settings
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Feature frames per view for a batch of posts, and (post_id, reason) to quarantine."""
    no_quarantine = pd.DataFrame(columns=["post_id", "reason"])
    keys = pd.DataFrame(
        {"post_id": posts["post_id"].to_numpy(), "event_timestamp": posts["posted_at"].to_numpy()}
    )
    if group == "tabular":
        from smp_platform.features import tabular

        assert history is not None
        frames = {
            "post_author": tabular.compute_author_features(posts, history),
            "post_temporal": tabular.compute_temporal_features(posts),
            "post_content": tabular.compute_content_features(posts),
        }
        encoder_id = TABULAR_VERSION
        quarantine = no_quarantine
    else:
        from smp_platform.features import signals

        encoder = load_encoder(group, settings)
        encoder_id = encoder_identity(group, settings)
        if group == "text":
            from smp_platform.features.captions import resolve_captions

            captions = resolve_captions(posts, load_captioner(settings))
            frames = {
                "post_text_semantics": signals.compute_text_semantics(
                    posts, encoder, captions=captions
                )
            }
            quarantine = no_quarantine
        elif group == "image":
            image_frame, quarantine = signals.compute_image_semantics(posts, encoder)
            frames = {"post_image_semantics": image_frame}
        else:
            frames = {"post_perplexity": signals.compute_perplexity(posts, encoder)}
            quarantine = no_quarantine
    hashes = dict(zip(posts["post_id"], posts["input_hash"], strict=True))
    for view, frame in frames.items():
        frame = frame.drop(columns=["event_timestamp"], errors="ignore").merge(keys, on="post_id")
        # One definition of "inputs" for every group, so staleness checks agree with writes.
        frame["input_hash"] = frame["post_id"].map(hashes)
        frame["encoder_id"] = encoder_id
        frames[view] = frame
    return frames, quarantine


def process_batch(
    group: str,
    post_ids: list[str],
    settings: Settings,
    created_at: datetime,
) -> BatchResult:
    """Compute, validate and write one batch of one group (the unit of parallel work)."""
    from smp_platform.store import FeatureStoreGateway
    from smp_platform.validation import validate_batch
    from smp_platform.warehouse import Warehouse

    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.posts_frame(post_ids)
        history = warehouse.author_history(post_ids) if group == "tabular" else None
    posts = posts.assign(input_hash=input_hashes(posts))
    frames, quarantine = compute_group(group, posts, history, settings)
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
        gateway.write_view(view, frame, created_at)
        result.rows_written[view] = len(frame)
    ts = pd.to_datetime(posts["posted_at"], utc=True)
    if len(ts):
        result.min_ts, result.max_ts = ts.min().to_pydatetime(), ts.max().to_pydatetime()
    return result


def _embedding_dims(frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for frame in frames.values():
        for column in ("text_embedding", "image_embedding"):
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


def plan_refresh(settings: Settings, groups: tuple[FeatureGroup, ...] = GROUPS) -> RefreshPlan:
    """Which posts of which group need computing, split in bounded batches."""
    from smp_platform.features.encoders import EncoderUnavailable
    from smp_platform.store import FeatureStoreGateway
    from smp_platform.warehouse import Warehouse

    gateway = FeatureStoreGateway(settings)
    gateway.apply()
    # Only the keys the input hash is made of: the batches read their posts' columns later.
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        posts = warehouse.post_input_keys()
    posts = posts.assign(input_hash=input_hashes(posts))
    plan = RefreshPlan(batches=[], stale={}, disabled={})
    for group in groups:
        try:
            encoder_id = encoder_identity(group.name, settings)
        except EncoderUnavailable as exc:
            plan.disabled[group.name] = str(exc)
            log.warning("feature group %s switched off: %s", group.name, exc)
            continue
        stored = gateway.current_rows(group.views[0])
        todo = stale_posts(posts, stored, encoder_id)
        plan.stale[group.name] = len(todo)
        ids = todo["post_id"].tolist()
        batch = (
            settings.refresh_batch_size if group.name == "tabular" else settings.model_batch_size
        )
        size = max(1, batch)
        plan.batches += [(group.name, ids[i : i + size]) for i in range(0, len(ids), size)]
    return plan


def materialize_written(
    settings: Settings, results: list[BatchResult], overlap: timedelta | None = None
) -> int:
    """Materialize the event-time window this refresh wrote, with an overlap for late rows."""
    from smp_platform.store import FeatureStoreGateway

    stamps = [r for r in results if r.min_ts is not None and r.rows_written]
    if not stamps:
        return 0
    overlap = (
        overlap if overlap is not None else timedelta(hours=settings.materialize_overlap_hours)
    )
    start = min(r.min_ts for r in stamps if r.min_ts) - overlap
    end = max(r.max_ts for r in stamps if r.max_ts) + timedelta(seconds=1)
    views = sorted({v for r in stamps for v in r.rows_written})
    return FeatureStoreGateway(settings).materialize(start, end, views)


def now_utc() -> datetime:
    return datetime.now(UTC)
