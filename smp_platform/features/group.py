"""The feature group: the unit a user adds. One object declares everything the platform needs.

A group is its views (fields with dtypes, descriptions and validation rules), what it reads,
its identity (a code version, or its model's weights fingerprint: stored with every row, so a
changed identity recomputes the group), how it loads its model (lazily, once per process),
whether it can run at request time (drafts and pushed posts) and its batch size, the feature
services its views join and its rows of the ablation. Its ``compute`` is a pure function:
:class:`FeatureInputs` (and the loaded model) in, one frame per view out, matched to the views
by name. Refresh, staleness, drafts, push, validation, drift, tuning, the ablation and the
feature services all iterate over the registered groups (:mod:`smp_platform.features.registry`);
nothing outside a group's own file names it or its views.

A minimal group (``docs/examples/feature_group.py`` is a complete one)::

    group = FeatureGroup(
        name="title_shape",
        views=(View("post_title_shape", "How the title looks", (
            Field("title_exclamations", Dtype.INT64, "'!' in the title", rule=NON_NEGATIVE),
        )),),
        compute=lambda inputs, model: pd.DataFrame({
            "post_id": inputs.posts["post_id"],
            "title_exclamations": inputs.posts["title"].fillna("").str.count("!"),
        }),
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from smp_platform.core.config import DEFAULT_FEATURE_SERVICE
from smp_platform.core.errors import UserError
from smp_platform.features.schema import Field, View

if TYPE_CHECKING:
    import pandas as pd

    from smp_platform.core.config import Settings

# Where the ablation puts a group that declares no stages of its own: after the built-in rows.
PLUGIN_ABLATION_ORDER = 100


class Input(StrEnum):
    """What a group's rows depend on. The input hash stored with each row covers exactly these,
    so a change to one of them recomputes the group's rows, and nothing else does."""

    POST = "post"  # the post's own columns (text, tags, time, place, media metadata)
    AUTHOR_PROFILE = "author_profile"  # the author's row as loaded with the post (counts...)
    AUTHOR_HISTORY = "author_history"  # the author's posts before this one (not hashed)
    LABEL_HISTORY = "label_history"  # the popularity of the author's earlier posts
    MEDIA = "media"  # the post's media file (size and mtime are hashed)


@dataclass
class FeatureInputs:
    """What a group's ``compute`` receives for a batch of posts.

    ``posts``: one row per post, the warehouse's post columns (``post_id``, ``user_id``,
    ``posted_at``, ``title``, ``tags``, ... ``media_path``) and the author's columns
    (``follower_count``, ...). ``author_history``: per post, ``author_prior_posts`` and
    ``author_days_since_previous_post`` (groups reading :attr:`Input.AUTHOR_HISTORY`).
    ``label_history``: every post of the batch's authors with its ``popularity`` (null when
    unlabelled), for groups reading :attr:`Input.LABEL_HISTORY`. Absent inputs are None.
    """

    posts: pd.DataFrame
    author_history: pd.DataFrame | None = None
    label_history: pd.DataFrame | None = None


@dataclass
class GroupResult:
    """A compute result with posts set aside: their inputs could not be used (an unreadable
    image); they get no row, and the refresh quarantines them with the reason."""

    frames: pd.DataFrame | Mapping[str, pd.DataFrame]
    set_aside: Sequence[tuple[str, str]] = ()  # (post_id, reason)


Frames = "pd.DataFrame | Mapping[str, pd.DataFrame] | GroupResult"
Compute = Callable[[FeatureInputs, Any], Any]


@dataclass(frozen=True)
class AblationStage:
    """A row of the ablation (``smp evaluate``) the group contributes to.

    Rows are cumulative and sorted by ``order`` across every group; stages of several groups
    with the same label are one row. ``features``: the group's fields that enter at this row
    (None: every field not entered by another stage of the group); ``adapt``: embeddings that
    get the CLIP-Adapter from this row on (the others are only reduced with PCA).
    """

    order: int
    label: str
    features: tuple[str, ...] | None = None
    adapt: tuple[str, ...] = ()


class FeatureGroupError(UserError):
    """A group is misdeclared, or its compute returned columns it did not declare: the message
    names the group and the field. Raised when the groups are loaded or first used, before
    any batch is computed."""


@dataclass(frozen=True)
class FeatureGroup:
    """Everything the platform knows about one feature group (see the module docstring).

    ``identity(settings)`` returns what every row of the group stores as ``encoder_id`` (for a
    model: its name and weights fingerprint, computed without loading it) and raises
    :class:`~smp_platform.features.encoders.EncoderUnavailable` when the group is switched off;
    without it the ``version`` is the identity. ``load(settings)`` returns the model ``compute``
    receives (None without it). ``batch_size``: posts per refresh batch (None: the settings'
    ``model_batch_size`` for a group with a model, else ``refresh_batch_size``).
    """

    name: str
    views: tuple[View, ...]
    compute: Compute
    reads: frozenset[Input] = frozenset({Input.POST})
    version: str = "1"
    identity: Callable[[Settings], str] | None = None
    load: Callable[[Settings], Any] | None = None
    request_time: bool = True
    not_at_request_time: str = "computed by the nightly refresh only"
    batch_size: int | None = None
    services: tuple[str, ...] = (DEFAULT_FEATURE_SERVICE,)
    ablation: tuple[AblationStage, ...] = ()
    description: str = ""
    source: str = field(default="", compare=False)  # "module:attribute" it was loaded from

    @property
    def fields(self) -> list[Field]:
        return [f for view in self.views for f in view.fields]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def has_model(self) -> bool:
        return self.load is not None

    def encoder_id(self, settings: Settings) -> str:
        """The identity stored with every row (raises EncoderUnavailable when switched off)."""
        return self.identity(settings) if self.identity is not None else self.version

    def refresh_batch_size(self, settings: Settings) -> int:
        if self.batch_size is not None:
            return max(1, self.batch_size)
        size = settings.model_batch_size if self.has_model else settings.refresh_batch_size
        return max(1, size)

    def stages(self) -> tuple[AblationStage, ...]:
        """The group's ablation rows: its own, else one row of all its fields after the rest."""
        if self.ablation:
            return self.ablation
        return (AblationStage(PLUGIN_ABLATION_ORDER, f"+ {self.name}"),)

    def describe(self) -> str:
        return f"feature group {self.name!r}" + (f" ({self.source})" if self.source else "")

    def view_description(self, view: View) -> str:
        """The view's description, else the group's: the Feast UI shows every view with one."""
        return view.description or self.description or f"features of group {self.name}"

    def view_tags(self, view: View) -> dict[str, str]:
        """The Feast tags of one of the group's views, derived from its declaration (so a
        user's group gets them too) and overridable by the view's own ``tags``: which group
        writes it, from what, when it is computed and which feature services serve it."""
        tags = {
            "group": self.name,
            "reads": ",".join(sorted(str(r) for r in self.reads)),
            "computed": "request time and refresh" if self.request_time else "refresh",
            "optional": str(view.optional).lower(),
        }
        if self.description:
            tags["group_description"] = self.description
        return {**tags, **view.tags}
