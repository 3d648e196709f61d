"""A group's compute result matched to its views by name and held to their declared columns
(:func:`view_frames`), and the keys and bookkeeping every stored row carries
(:func:`stored_rows`: ``event_timestamp``, the post's time; ``input_hash``; ``encoder_id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from smp_platform.features.group import FeatureGroup, FeatureGroupError, FeatureInputs, GroupResult
from smp_platform.features.inputs import input_hashes
from smp_platform.features.schema import ENCODER_ID, EVENT_TIMESTAMP, INPUT_HASH, POST_ID

SetAside = list[tuple[str, str]]  # (post_id, why its inputs could not be used)


def view_frames(group: FeatureGroup, result: Any) -> tuple[dict[str, pd.DataFrame], SetAside]:
    """A compute result as one frame per declared view (``post_id`` + the view's fields in
    declaration order), and the posts it set aside. Raises :class:`FeatureGroupError` naming the
    group, the view and the field when the result is not what the group declares."""
    frames, set_aside = (
        (result.frames, list(result.set_aside)) if isinstance(result, GroupResult) else (result, [])
    )
    where = group.describe()
    if isinstance(frames, pd.DataFrame):
        if len(group.views) != 1:
            raise FeatureGroupError(
                f"{where}: compute returned one frame for {len(group.views)} views; return a "
                "dict of view name -> frame"
            )
        frames = {group.views[0].name: frames}
    if not isinstance(frames, Mapping):
        raise FeatureGroupError(f"{where}: compute returned a {type(frames).__name__}")
    declared = [v.name for v in group.views]
    for name in frames:
        if name not in declared:
            raise FeatureGroupError(f"{where}: compute returned view {name!r} it does not declare")
    out = {}
    for view in group.views:
        if view.name not in frames:
            raise FeatureGroupError(f"{where}: compute returned no frame for view {view.name!r}")
        out[view.name] = _declared_columns(where, view.name, view.feature_names, frames[view.name])
    return out, [(str(p), str(why)) for p, why in set_aside]


def _declared_columns(where: str, view: str, names: list[str], frame: Any) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise FeatureGroupError(f"{where}: view {view!r}: compute returned {type(frame).__name__}")
    columns = [str(c) for c in frame.columns]
    if POST_ID not in columns:
        raise FeatureGroupError(f"{where}: view {view!r}: the frame has no {POST_ID!r} column")
    for column in columns:
        if column not in (POST_ID, EVENT_TIMESTAMP) and column not in names:
            raise FeatureGroupError(
                f"{where}: view {view!r}: compute returned column {column!r}, which the view "
                "does not declare"
            )
    for name in names:
        if name not in columns:
            raise FeatureGroupError(
                f"{where}: view {view!r}: compute returned no column for field {name!r}"
            )
    return frame[[POST_ID, *names]]


@dataclass
class ComputedGroup:
    """A batch's rows of one group, ready to store: per view ``post_id``, ``event_timestamp``,
    the features, ``input_hash`` and ``encoder_id``; and the posts set aside."""

    frames: dict[str, pd.DataFrame]
    set_aside: SetAside = field(default_factory=list)


def stored_rows(
    group: FeatureGroup,
    frames: Mapping[str, pd.DataFrame],
    inputs: FeatureInputs,
    encoder_id: str,
) -> dict[str, pd.DataFrame]:
    """The view frames with the keys and bookkeeping of stored rows (``inputs.posts`` are
    warehouse posts: with ``content_hash``)."""
    posts = inputs.posts
    keys = pd.DataFrame(
        {
            POST_ID: posts[POST_ID].astype(str).to_numpy(),
            EVENT_TIMESTAMP: posts["posted_at"].to_numpy(),
            INPUT_HASH: input_hashes(group.reads, posts, inputs.label_history).to_numpy(),
        }
    )
    stored = {}
    for name, frame in frames.items():
        frame = frame.assign(**{POST_ID: frame[POST_ID].astype(str)}).merge(keys, on=POST_ID)
        stored[name] = frame.assign(**{ENCODER_ID: encoder_id})
    return stored
