"""Score a draft: a post that does not exist yet, given in the fields of a source format.

The nightly path and this one share every definition:

- a draft is parsed by the sources' own typed record models (``smp_video.PostRecord``,
  ``VideoRecord``, ``UserRecord``; ``smpd.TextRecord``, ``TemporalRecord``, ``CategoryRecord``,
  ``UserRow``) into the warehouse's post and author columns; a bad value is a
  :class:`DraftError` with the reason the quarantine would give;
- its features are computed by the refresh's pure feature functions
  (:mod:`smp_platform.features.tabular`, :mod:`smp_platform.features.signals`) with the
  refresh's encoders (:func:`smp_platform.pipeline.refresh.load_encoder`, loaded once per process);
- the model matrix and CatBoost are the service's :class:`~smp_platform.online.scorer.Scorer`.

**Author features.** The stored ``post_author`` row of a post is its author *as of that post*
(counts, account age, posts before it, days since the previous one), keyed by post_id, so no
stored row is "the author now". A draft's author features are therefore computed by
``compute_author_features`` from the same inputs the refresh gives it: the author's profile
(the draft's own ``user`` / ``user_data`` block when given, else the author row of the author's
latest post in the warehouse) and the author's history strictly before the draft's time (posts
before it, days since the previous one), counted over the warehouse's posts as
:meth:`Warehouse.author_history` counts them. :class:`AuthorIndex` keeps that in memory (user ->
sorted post times, latest author row) so a request never opens the warehouse, which a writing
command may hold. An author the warehouse does not know is scored as the refresh scores an
author with no data (no earlier posts, unknown counts) and the answer says ``author_known:
false``.

**Media.** A draft carries no media file and the service never opens a path a request names:
image features (and generated captions) are null, as the refresh leaves them for a post whose
image cannot be read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from feature_repo.feature_views import DTYPES, VIEWS, Dtype, groups
from smp_platform.core.config import Settings

if TYPE_CHECKING:
    from smp_platform.online.block import FeatureBlock
    from smp_platform.online.scorer import Scorer

log = logging.getLogger(__name__)

DRAFT_POST_ID = "draft"
FORMATS = ("smp-video", "smpd")
BEST_TIME_HOURS = 48
BEST_TIMES_SHOWN = 5
TOP_FEATURES_PER_VIEW = 3
# Groups a draft's features come from; "image" needs a media file, which a draft has none of.
MODEL_GROUPS = ("text", "perplexity")
NO_MEDIA = "a draft carries no media file: image features are null, as for an unreadable image"
VIEW_OF_FEATURE = {f.name: v.name for v in VIEWS for f in v.features}


class DraftError(ValueError):
    """The draft is not a valid post of its format (the message says which field and why)."""


class DraftScoringUnavailable(RuntimeError):
    """The champion reads features whose encoder cannot be loaded in this process."""


# -- parsing ----------------------------------------------------------------------------------
@dataclass
class Draft:
    """A parsed draft: warehouse post columns, and author columns when the draft gave some."""

    post: dict[str, Any]
    author: dict[str, Any] | None

    @property
    def user_id(self) -> str:
        return str(self.post["user_id"])

    @property
    def posted_at(self) -> datetime:
        return self.post["posted_at"]  # type: ignore[no-any-return]


def _block(body: Mapping[str, Any], name: str, *, required: bool) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        if required:
            raise DraftError(f"bad JSON: the draft has no {name!r} block")
        return None
    if not isinstance(value, Mapping):
        raise DraftError(f"bad JSON: {name} is a {type(value).__name__}, expected an object")
    return dict(value)


def _validated(model: Any, record: dict[str, Any], block: str) -> Any:
    from pydantic import ValidationError

    from smp_platform.sources.quarantine import reason_of

    try:
        return model.model_validate(record)
    except ValidationError as error:
        kind, _, detail = reason_of(error).partition(": ")
        raise DraftError(f"{kind}: {block}.{detail}") from None


def parse_draft(body: Mapping[str, Any]) -> Draft:
    """A draft from its source format's fields (``{"format": ..., <file kind>: {...}}``).

    SMP-Video: ``post`` (a row of ``*posts*.jsonl``; ``pid`` optional), optional ``video`` (a row
    of ``*videos*.jsonl``) and ``user`` (a row of ``*users*.jsonl``). SMPD: ``text`` (a record of
    ``*_text.json``; ``Pid`` optional), ``temporalspatial_information``, optional ``category``
    and ``user_data`` (one row of the user data).
    """
    fmt = body.get("format")
    if fmt == "smp-video":
        return _parse_smp_video(body)
    if fmt == "smpd":
        return _parse_smpd(body)
    raise DraftError(f"wrong type: format is {fmt!r}, expected one of {', '.join(FORMATS)}")


def _parse_smp_video(body: Mapping[str, Any]) -> Draft:
    from smp_platform.sources import smp_video

    post_block = _block(body, "post", required=True)
    assert post_block is not None
    post_block.setdefault("pid", DRAFT_POST_ID)
    post_block["video_path"] = None  # never a path a request names
    parsed = _validated(smp_video.PostRecord, post_block, "post")
    post = parsed.columns("draft")
    video = _block(body, "video", required=False)
    if video is not None:
        video.setdefault("pid", parsed.pid)
        post.update(_validated(smp_video.VideoRecord, video, "video").columns())
    author = None
    user = _block(body, "user", required=False)
    if user is not None:
        user.setdefault("uid", parsed.uid)
        author = _validated(smp_video.UserRecord, user, "user").columns()
        if author["user_id"] != parsed.uid:
            raise DraftError(f"wrong type: user.uid {author['user_id']!r} is not post.uid")
    return Draft(post, author)


def _parse_smpd(body: Mapping[str, Any]) -> Draft:
    from smp_platform.sources import smpd

    text_block = _block(body, "text", required=True)
    assert text_block is not None
    text_block.setdefault("Pid", DRAFT_POST_ID)
    text = _validated(smpd.TextRecord, text_block, "text")
    post = text.columns("draft")  # the same columns the ingest gives a post
    temporal = _block(body, "temporalspatial_information", required=True)
    assert temporal is not None
    post.update(_validated(smpd.TemporalRecord, temporal, "temporalspatial_information").columns())
    category = _block(body, "category", required=False)
    if category is not None:
        post.update(_validated(smpd.CategoryRecord, category, "category").columns())
    user = _block(body, "user_data", required=False)
    author = None
    if user is not None:
        author = {"user_id": text.Uid, **_validated(smpd.UserRow, user, "user_data").columns()}
    return Draft(post, author)


# -- the author's history, in memory ----------------------------------------------------------
_AUTHOR_FIELDS = (
    "follower_count",
    "following_count",
    "likes_count",
    "post_count",
    "digg_count",
    "heart_count",
    "friend_count",
    "is_pro",
    "first_post_at",
    "timezone_offset",
)


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
        from smp_platform.infra.warehouse import Warehouse

        with Warehouse(path, read_only=True) as warehouse:
            con = warehouse._con
            posts = con.execute(
                "SELECT user_id, posted_at FROM posts ORDER BY user_id, posted_at"
            ).df()
            columns = ", ".join(f"a.{c}" for c in _AUTHOR_FIELDS)
            latest = con.execute(
                f"SELECT p.user_id, {columns} FROM posts p "
                "JOIN post_authors a ON a.post_id = p.post_id "
                "QUALIFY row_number() OVER "
                "(PARTITION BY p.user_id ORDER BY p.posted_at DESC, p.post_id DESC) = 1"
            ).df()
            labelled = con.execute(
                "SELECT p.post_id, p.user_id, p.posted_at, l.popularity FROM posts p "
                "JOIN labels l ON l.post_id = p.post_id ORDER BY p.user_id, p.posted_at"
            ).df()
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


# -- features ---------------------------------------------------------------------------------
def draft_posts(draft: Draft, authors: AuthorIndex) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The draft as the refresh's one-row ``posts`` and ``history`` frames, and whether the
    author is known to the warehouse."""
    from smp_platform.infra.warehouse import AUTHOR_COLUMNS, POST_COLUMNS, frame_from_records

    known = authors.knows(draft.user_id)
    author = draft.author if draft.author is not None else authors.latest.get(draft.user_id, {})
    row = {**draft.post, **{k: author.get(k) for k in _AUTHOR_FIELDS}, "media_path": None}
    columns = {**POST_COLUMNS, **{k: AUTHOR_COLUMNS[k] for k in _AUTHOR_FIELDS}}
    posts = frame_from_records([row], columns)
    prior, days = authors.history(draft.user_id, draft.posted_at)
    history = pd.DataFrame(
        {
            "post_id": [draft.post["post_id"]],
            "author_prior_posts": pd.array([prior], dtype="Int64"),
            "author_days_since_previous_post": [days],
        }
    )
    # The author's earlier labels travel with the history (compute_draft_features reads them).
    history.attrs["label_history"] = authors.label_history(
        str(draft.post["post_id"]), draft.user_id, draft.posted_at
    )
    return posts, history, known


def needed_groups(scorer: Scorer) -> set[str]:
    """The feature groups whose views hold a feature the champion reads."""
    used = {*scorer.numeric, *scorer.categorical, *(e.name for e in scorer.embeddings)}
    views = {VIEW_OF_FEATURE[name] for name in used if name in VIEW_OF_FEATURE}
    return {group for group, names in groups().items() if views & set(names)}


def load_draft_encoders(settings: Settings, scorer: Scorer) -> dict[str, Any]:
    """The encoders of the model groups the champion reads (cached per process); raises
    :class:`DraftScoringUnavailable` naming what is missing."""
    from smp_platform.pipeline.refresh import load_encoder

    encoders: dict[str, Any] = {}
    for group in sorted(needed_groups(scorer) & set(MODEL_GROUPS)):
        try:
            from smp_platform.features.encoders import EncoderUnavailable

            encoders[group] = load_encoder(group, settings)
        except ImportError as error:
            raise DraftScoringUnavailable(
                f"draft scoring needs the {group} encoder, which needs the [features] extra "
                f"(pip install 'smp-platform[features]'); this process lacks it ({error}). "
                "Lookups by post_id are unaffected."
            ) from error
        except EncoderUnavailable as error:
            raise DraftScoringUnavailable(
                f"draft scoring needs the {group} encoder the champion was trained with: {error}"
            ) from error
    if "text" in encoders and settings.encoders.captioner:
        from smp_platform.pipeline.refresh import load_captioner

        load_captioner(settings)
    return encoders


@dataclass
class Timings:
    """Where a draft's time went (benchmarks/score_latency.py prints it)."""

    features_s: float = 0.0  # parsing aside: the tabular feature functions
    text_s: float = 0.0  # sentence encoder + similarities
    perplexity_s: float = 0.0  # the causal LM
    model_s: float = 0.0  # feature block, model matrix, CatBoost (and SHAP / the 48 hours)

    @property
    def encoders_s(self) -> float:
        return self.text_s + self.perplexity_s


def compute_draft_features(
    posts: pd.DataFrame,
    history: pd.DataFrame,
    encoders: Mapping[str, Any],
    settings: Settings,
    timings: Timings | None = None,
) -> list[pd.DataFrame]:
    """The views' frames for the draft rows, by the refresh's feature functions."""
    from smp_platform.features import signals, tabular

    timings = timings if timings is not None else Timings()
    started = time.perf_counter()
    frames = [
        tabular.compute_author_features(posts, history),
        tabular.compute_temporal_features(posts),
        tabular.compute_content_features(posts),
        tabular.compute_terms(posts),
    ]
    label_history = history.attrs.get("label_history")
    if label_history is not None:
        frames.append(tabular.compute_author_popularity(posts, label_history))
    timings.features_s += time.perf_counter() - started
    if "text" in encoders:
        from smp_platform.features.captions import resolve_captions
        from smp_platform.pipeline.refresh import load_captioner

        started = time.perf_counter()
        captions = resolve_captions(posts, load_captioner(settings))
        frames.append(signals.compute_text_semantics(posts, encoders["text"], captions=captions))
        timings.text_s += time.perf_counter() - started
    if "perplexity" in encoders:
        started = time.perf_counter()
        frames.append(signals.compute_perplexity(posts, encoders["perplexity"]))
        timings.perplexity_s += time.perf_counter() - started
    return frames


def feature_block(frames: list[pd.DataFrame], repeat: int = 1) -> FeatureBlock:
    """The frames' features as the service's :class:`FeatureBlock` (what the online read gives:
    numbers and flags as float64, strings or None, float32 vectors or None), each row repeated
    ``repeat`` times when the frames have one row."""
    from smp_platform.online.block import FeatureBlock

    n = len(frames[0]) * repeat
    block = FeatureBlock([DRAFT_POST_ID] * n, np.ones(n, dtype=bool))
    for frame in frames:
        for name in frame.columns:
            dtype = DTYPES.get(name)
            if dtype is None:
                continue
            values = list(frame[name]) * repeat if len(frame) != n else list(frame[name])
            if dtype.is_array:
                block.embeddings[name] = [
                    None if v is None else np.asarray(v, dtype=np.float32) for v in values
                ]
            elif dtype == Dtype.STRING:
                block.strings[name] = [None if _missing(v) else str(v) for v in values]
            else:
                block.numeric[name] = np.array(
                    [np.nan if _missing(v) else float(v) for v in values], dtype=np.float64
                )
    return block


# -- scoring ----------------------------------------------------------------------------------
@dataclass
class DraftScore:
    """What a scored draft answers (the service's JSON body, less the model name/version)."""

    popularity: float
    author_known: bool
    post_time: str
    not_computed: dict[str, str] = field(default_factory=dict)
    base_value: float | None = None
    contributions: list[dict[str, Any]] | None = None
    best_times: list[dict[str, Any]] | None = None
    curve: list[dict[str, Any]] | None = None
    timings: Timings = field(default_factory=Timings)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "popularity": self.popularity,
            "author_known": self.author_known,
            "post_time": self.post_time,
        }
        if self.not_computed:
            out["not_computed"] = self.not_computed
        if self.contributions is not None:
            out["base_value"] = self.base_value
            out["contributions"] = self.contributions
        if self.best_times is not None:
            out["best_times"] = self.best_times
            out["curve"] = self.curve
        return out


def _iso(moment: Any) -> str:
    return pd.Timestamp(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def score_draft(
    draft: Draft,
    scorer: Scorer,
    authors: AuthorIndex,
    settings: Settings,
    *,
    explain: bool = False,
    best_time: bool = False,
) -> DraftScore:
    """The champion's popularity for a draft; with ``explain`` the SHAP contributions grouped by
    view, with ``best_time`` the prediction at each of the next 48 hours (one batch)."""
    timings = Timings()
    encoders = load_draft_encoders(settings, scorer)
    started = time.perf_counter()
    posts, history, known = draft_posts(draft, authors)
    timings.features_s += time.perf_counter() - started
    frames = compute_draft_features(posts, history, encoders, settings, timings)
    started = time.perf_counter()
    block = feature_block(frames)
    popularity = float(scorer.predict(block, np.array([0]))[0])
    timings.model_s += time.perf_counter() - started
    result = DraftScore(popularity, known, _iso(draft.posted_at), timings=timings)
    if "image" in needed_groups(scorer):
        result.not_computed["post_image_semantics"] = NO_MEDIA
    if explain:
        shap, base = scorer.explain(block, np.array([0]))
        result.base_value = float(base)
        result.contributions = contributions_by_view(scorer, shap[0], block)
    if best_time:
        result.curve = best_time_curve(posts, frames, scorer, timings)
        ranked = sorted(result.curve, key=lambda point: -point["popularity"])
        result.best_times = ranked[:BEST_TIMES_SHOWN]
    return result


def best_time_curve(
    posts: pd.DataFrame, frames: list[pd.DataFrame], scorer: Scorer, timings: Timings
) -> list[dict[str, Any]]:
    """The draft published at each hour of the next 48 from its time: only the temporal view is
    recomputed (by the refresh's function); the author "as of" features stay as they are."""
    from smp_platform.features import tabular

    started = time.perf_counter()
    shifted = posts.loc[posts.index.repeat(BEST_TIME_HOURS)].reset_index(drop=True)
    moments = [posts["posted_at"].iloc[0] + timedelta(hours=h) for h in range(BEST_TIME_HOURS)]
    shifted["posted_at"] = pd.Series(moments, dtype="datetime64[us]")
    temporal = tabular.compute_temporal_features(shifted)
    temporal_names = set(temporal.columns)
    kept = [
        f.drop(columns=[c for c in f.columns if c in temporal_names and c != "post_id"])
        for f in frames
    ]
    block = _curve_block(kept, temporal)
    values = scorer.predict(block, np.arange(BEST_TIME_HOURS))
    timings.model_s += time.perf_counter() - started
    return [
        {"post_time": _iso(moment), "popularity": float(value)}
        for moment, value in zip(moments, values.tolist(), strict=True)
    ]


def _curve_block(kept: list[pd.DataFrame], temporal: pd.DataFrame) -> FeatureBlock:
    block = feature_block(kept, repeat=BEST_TIME_HOURS)
    hourly = feature_block([temporal])
    block.numeric.update(hourly.numeric)
    block.strings.update(hourly.strings)
    return block


def contributions_by_view(
    scorer: Scorer, shap_row: np.ndarray, block: FeatureBlock
) -> list[dict[str, Any]]:
    """SHAP values of one row summed per feature view, largest magnitude first, each with its
    top features (an embedding's principal components count as the embedding)."""
    per_feature: dict[str, float] = {}
    for feature, value in zip(scorer.column_features, shap_row.tolist(), strict=True):
        per_feature[feature] = per_feature.get(feature, 0.0) + value
    per_view: dict[str, list[tuple[str, float]]] = {}
    for feature, value in per_feature.items():
        per_view.setdefault(VIEW_OF_FEATURE.get(feature, "other"), []).append((feature, value))
    out: list[dict[str, Any]] = []
    for view, items in per_view.items():
        items.sort(key=lambda item: -abs(item[1]))
        out.append(
            {
                "view": view,
                "contribution": sum(v for _, v in items),
                "features": [
                    {"feature": name, "value": _shown(block, name), "contribution": value}
                    for name, value in items[:TOP_FEATURES_PER_VIEW]
                ],
            }
        )
    out.sort(key=lambda entry: -abs(float(entry["contribution"])))
    return out


def _shown(block: FeatureBlock, name: str) -> Any:
    """A feature's value as a person reads it (an embedding as its dimension)."""
    if name in block.numeric:
        value = float(block.numeric[name][0])
        return value if np.isfinite(value) else None
    if name in block.strings:
        return block.strings[name][0]
    if name in block.embeddings:
        vector = block.embeddings[name][0]
        return None if vector is None else f"{len(vector)}-d embedding"
    return None


# -- outside the service: the CLI and the report ----------------------------------------------
def read_json_file(path: Path, what: str) -> Any:
    """The JSON value of a file a user names (``what``: "draft", "post"); a missing or unreadable
    file raises :class:`UserError` saying which."""
    import json

    from smp_platform.core.errors import UserError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no {what} file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not a JSON {what}: {error}") from None


def read_draft_file(path: Path) -> Draft:
    """A draft from a JSON file; a file a user can fix raises :class:`UserError`."""
    from smp_platform.core.errors import UserError

    body = read_json_file(path, "draft")
    if not isinstance(body, dict):
        raise UserError(f"{path} holds a JSON {type(body).__name__}, expected a draft object")
    try:
        return parse_draft(body)
    except DraftError as error:
        raise UserError(f"invalid draft in {path}: {error}") from None


def score_file(
    settings: Settings, path: Path, *, explain: bool = False, best_time: bool = False
) -> dict[str, Any]:
    """The service's answer for a draft file, computed in this process (``smp score``)."""
    from smp_platform.core.errors import UserError
    from smp_platform.infra.mlflow_registry import ModelRegistry
    from smp_platform.online.scorer import Scorer

    draft = read_draft_file(path)
    registry = ModelRegistry(settings)
    version, _ = registry.require_champion()
    model, _ = registry.load_with_columns(version)
    scorer = Scorer(model.unwrap_python_model())
    authors = (
        AuthorIndex.from_warehouse(settings.warehouse_path)
        if settings.warehouse_path.exists()
        else AuthorIndex()
    )
    try:
        result = score_draft(draft, scorer, authors, settings, explain=explain, best_time=best_time)
    except DraftScoringUnavailable as error:
        raise UserError(str(error)) from None
    return {**result.body(), "model_name": settings.train.model_name, "model_version": version}
