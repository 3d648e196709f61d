"""Score a draft: a post that does not exist yet, given in the fields of a source format.

The nightly path and this one share every definition: a draft is parsed by its format's record
models (:func:`smp_platform.sources.parse_draft`), its features are computed by the
request-time feature groups' own compute functions with their models loaded once per process
(:func:`smp_platform.features.runtime.request_frames`), its author from the warehouse's authors
as of the draft's time (:mod:`smp_platform.online.authors`), and the model matrix and CatBoost
are the service's compiled :class:`~smp_platform.online.scorer.Scorer`. An author the warehouse
does not know is scored as the refresh scores an author with no data (no earlier posts, unknown
counts) and the answer says ``author_known: false``.

A draft carries no media file and the service never opens a path a request names: the groups
that cannot run at request time (the image embedding) are null, as the refresh leaves them for
a post whose image cannot be read, and the answer lists them in ``not_computed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.tables import (
    AUTHOR_COLUMNS,
    AUTHOR_PROFILE_COLUMNS,
    POST_COLUMNS,
    frame_from_records,
)
from smp_platform.features.encoders import EncoderUnavailable
from smp_platform.features.group import FeatureGroup, FeatureInputs
from smp_platform.features.registry import FeatureGroups, groups_for
from smp_platform.features.runtime import model_of, request_frames
from smp_platform.online.authors import AuthorIndex
from smp_platform.online.block import FeatureBlock, block_from_frames
from smp_platform.online.scorer import Scorer
from smp_platform.sources.draft import Draft

BEST_TIME_HOURS = 48
BEST_TIMES_SHOWN = 5
TOP_FEATURES_PER_VIEW = 3


class DraftScoringUnavailable(RuntimeError):
    """The champion reads features whose model cannot be loaded in this process."""


@dataclass
class Timings:
    """Where a draft's time went (benchmarks/score_latency.py prints it)."""

    inputs_s: float = 0.0  # the draft as the groups' inputs (author as of its time)
    groups_s: dict[str, float] = field(default_factory=dict)  # each feature group's compute
    model_s: float = 0.0  # feature block, model matrix, CatBoost (and SHAP / the 48 hours)

    def add(self, group: str, seconds: float) -> None:
        self.groups_s[group] = self.groups_s.get(group, 0.0) + seconds


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


# -- the draft as a group's inputs -------------------------------------------------------------
def draft_inputs(draft: Draft, authors: AuthorIndex) -> tuple[FeatureInputs, bool]:
    """The draft as the refresh's one-row inputs (its author's profile, history and earlier
    labels as of the draft's time), and whether the author is known to the warehouse."""
    known = authors.knows(draft.user_id)
    author = draft.author if draft.author is not None else authors.latest.get(draft.user_id, {})
    row = {**draft.post, **{k: author.get(k) for k in AUTHOR_PROFILE_COLUMNS}, "media_path": None}
    columns = {**POST_COLUMNS, **{k: AUTHOR_COLUMNS[k] for k in AUTHOR_PROFILE_COLUMNS}}
    posts = frame_from_records([row], columns)
    prior, days = authors.history(draft.user_id, draft.posted_at)
    history = pd.DataFrame(
        {
            "post_id": [draft.post["post_id"]],
            "author_prior_posts": pd.array([prior], dtype="Int64"),
            "author_days_since_previous_post": [days],
        }
    )
    labels = authors.label_history(str(draft.post["post_id"]), draft.user_id, draft.posted_at)
    return FeatureInputs(posts, history, labels), known


def draft_groups(
    groups: FeatureGroups, scorer: Scorer
) -> tuple[list[FeatureGroup], dict[str, str]]:
    """The groups whose views hold a feature the champion reads and that run at request time,
    and, per view of those that cannot, why it is not computed."""
    needed = groups.groups_of_columns(scorer.column_features)
    not_computed = {
        view.name: group.not_at_request_time
        for group in needed
        if not group.request_time
        for view in group.views
    }
    return [g for g in needed if g.request_time], not_computed


def load_draft_models(settings: Settings, groups: list[FeatureGroup]) -> None:
    """Load (once per process) the models of the groups a draft needs; raises
    :class:`DraftScoringUnavailable` naming what is missing."""
    for group in groups:
        try:
            model_of(group, settings)
        except ImportError as error:
            raise DraftScoringUnavailable(
                f"draft scoring needs the {group.name} group's model, which needs the "
                f"[features] extra (pip install 'smp-platform[features]'); this process lacks "
                f"it ({error}). Lookups by post_id are unaffected."
            ) from error
        except EncoderUnavailable as error:
            raise DraftScoringUnavailable(
                f"draft scoring needs the {group.name} group the champion was trained with: {error}"
            ) from error


def draft_frames(
    groups: list[FeatureGroup], inputs: FeatureInputs, settings: Settings, timings: Timings
) -> dict[str, pd.DataFrame]:
    """Every view frame of ``groups`` for the draft rows, by the groups' own compute."""
    frames: dict[str, pd.DataFrame] = {}
    for group in groups:
        started = time.perf_counter()
        computed, _ = request_frames(group, inputs, settings)
        frames.update(computed)
        timings.add(group.name, time.perf_counter() - started)
    return frames


# -- scoring -----------------------------------------------------------------------------------
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
    groups = groups_for(settings)
    needed, not_computed = draft_groups(groups, scorer)
    load_draft_models(settings, needed)
    started = time.perf_counter()
    inputs, known = draft_inputs(draft, authors)
    timings.inputs_s += time.perf_counter() - started
    frames = draft_frames(needed, inputs, settings, timings)
    started = time.perf_counter()
    post_ids = list(inputs.posts["post_id"])
    block = block_from_frames(frames.values(), groups.fields, post_ids)
    popularity = float(scorer.predict(block, np.array([0]))[0])
    timings.model_s += time.perf_counter() - started
    result = DraftScore(popularity, known, _iso(draft.posted_at), not_computed, timings=timings)
    if explain:
        shap, base = scorer.explain(block, np.array([0]))
        result.base_value = float(base)
        result.contributions = contributions_by_view(scorer, shap[0], block, groups.view_of)
    if best_time:
        result.curve = best_time_curve(needed, inputs, frames, scorer, settings, timings)
        ranked = sorted(result.curve, key=lambda point: -point["popularity"])
        result.best_times = ranked[:BEST_TIMES_SHOWN]
    return result


def best_time_curve(
    groups: list[FeatureGroup],
    inputs: FeatureInputs,
    frames: dict[str, pd.DataFrame],
    scorer: Scorer,
    settings: Settings,
    timings: Timings,
) -> list[dict[str, Any]]:
    """The draft published at each hour of the next 48 from its time: the views that describe
    the publication time are recomputed by their group; every other view stays as it is (the
    author's "as of" features too)."""
    started = time.perf_counter()
    posts = inputs.posts
    shifted = posts.loc[posts.index.repeat(BEST_TIME_HOURS)].reset_index(drop=True)
    moments = [posts["posted_at"].iloc[0] + timedelta(hours=h) for h in range(BEST_TIME_HOURS)]
    shifted["posted_at"] = pd.Series(moments, dtype="datetime64[us]")
    hourly_inputs = FeatureInputs(shifted, inputs.author_history, inputs.label_history)
    hourly: dict[str, pd.DataFrame] = {}
    for group in groups:
        timed = [v.name for v in group.views if v.publication_time]
        if timed:
            computed, _ = request_frames(group, hourly_inputs, settings)
            hourly.update({name: computed[name] for name in timed})
    kept = [frame for name, frame in frames.items() if name not in hourly]
    post_ids = list(shifted["post_id"])
    fields = groups_for(settings).fields
    block = block_from_frames([*kept, *hourly.values()], fields, post_ids)
    values = scorer.predict(block, np.arange(BEST_TIME_HOURS))
    timings.model_s += time.perf_counter() - started
    return [
        {"post_time": _iso(moment), "popularity": float(value)}
        for moment, value in zip(moments, values.tolist(), strict=True)
    ]


def contributions_by_view(
    scorer: Scorer, shap_row: np.ndarray, block: FeatureBlock, view_of: dict[str, str]
) -> list[dict[str, Any]]:
    """SHAP values of one row summed per feature view, largest magnitude first, each with its
    top features (an embedding's principal components count as the embedding)."""
    per_feature: dict[str, float] = {}
    for feature, value in zip(scorer.column_features, shap_row.tolist(), strict=True):
        per_feature[feature] = per_feature.get(feature, 0.0) + value
    per_view: dict[str, list[tuple[str, float]]] = {}
    for feature, value in per_feature.items():
        per_view.setdefault(view_of.get(feature, "other"), []).append((feature, value))
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
