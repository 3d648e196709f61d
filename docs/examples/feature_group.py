"""A feature group of your own, in one file: how a post's title is written.

Register it by its module and attribute, nothing else to edit::

    export PYTHONPATH=/path/to/this/folder
    export SMP_FEATURE_GROUPS='["feature_group:group"]'      # or in smp.toml:
    #   feature_groups = ["feature_group:group"]             # ("/abs/path/feature_group.py:group")
    smp refresh && smp train && smp promote

``feast apply`` (run by every refresh), the default feature service (so training, the lookup,
draft scoring, push and drift), the validation of every batch and ``smp evaluate`` (a row of
its own) then pick it up. Options come from ``settings.feature_options["title_style"]``
(``SMP_FEATURE_OPTIONS='{"title_style": {"calls_to_action": ["link in bio"]}}'``).

What the platform asks of a group (docs/EXTENDING.md has the rest):

- its **views**, each a table keyed by ``post_id`` with typed, described fields and the rule
  each field's values must satisfy (checked on every batch by Great Expectations: a failing
  batch is not written);
- what it **reads**: here the post's own columns only, so a change to the author or the media
  file leaves its rows current;
- its **identity**, stored with every row: a change recomputes the group's rows, and only
  them. Here the version and the configured phrases;
- how it **loads** its model: once per process, lazily (here: compiled patterns);
- a pure **compute**: the inputs (and the model) in, one frame per view out, matched by name;
- that it can run at **request time** (drafts and pushed posts): it reads no media file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from smp_platform.features import (
    NON_NEGATIVE,
    Dtype,
    FeatureGroup,
    FeatureInputs,
    Field,
    Input,
    Rule,
    View,
)

VERSION = "title-style-v1"  # bump when compute changes: every row of the group is recomputed
DEFAULT_CALLS_TO_ACTION = ("follow", "like", "share", "comment", "link in bio", "subscribe")
# Pictographs, dingbats, flags and the like: enough to count emoji in a title.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\U0001f1e6-\U0001f1ff]")

STYLE = View(
    "post_title_style",
    "How the title is written: exclamations, questions, emoji, calls to action",
    (
        Field("title_exclamations", Dtype.INT64, "'!' in the title", rule=NON_NEGATIVE),
        Field("title_is_question", Dtype.BOOL, "the title ends with '?'"),
        Field("title_emoji_count", Dtype.INT64, "emoji in the title", rule=NON_NEGATIVE),
        Field(
            "title_calls_to_action",
            Dtype.INT64,
            "calls to action in the title ('follow', 'link in bio', ...)",
            rule=Rule(min_value=0, max_null_fraction=0.0),
        ),
    ),
)


def _phrases(settings: Any) -> tuple[str, ...]:
    options = settings.feature_options.get("title_style", {})
    return tuple(options.get("calls_to_action", DEFAULT_CALLS_TO_ACTION))


def identity(settings: Any) -> str:
    """The version and the phrases: other phrases are other features."""
    digest = hashlib.sha256(json.dumps(_phrases(settings)).encode()).hexdigest()[:8]
    return f"{VERSION}@{digest}"


@dataclass(frozen=True)
class Patterns:
    calls_to_action: re.Pattern[str]


def load(settings: Any) -> Patterns:
    """Compiled once per process, when the group is first used."""
    words = "|".join(re.escape(p) for p in sorted(_phrases(settings), key=len, reverse=True))
    return Patterns(re.compile(rf"\b(?:{words})\b", re.IGNORECASE))


def compute(inputs: FeatureInputs, patterns: Patterns) -> pd.DataFrame:
    """One row per post: its post_id and the view's fields (pure: no I/O)."""
    titles = inputs.posts["title"].fillna("").astype(str)
    return pd.DataFrame(
        {
            "post_id": inputs.posts["post_id"],
            "title_exclamations": titles.str.count("!").astype("int64"),
            "title_is_question": titles.str.rstrip().str.endswith("?"),
            "title_emoji_count": titles.map(lambda t: len(EMOJI.findall(t))).astype("int64"),
            "title_calls_to_action": titles.map(
                lambda t: len(patterns.calls_to_action.findall(t))
            ).astype("int64"),
        }
    )


group = FeatureGroup(
    name="title_style",
    description="how the title is written",
    views=(STYLE,),
    compute=compute,
    reads=frozenset({Input.POST}),
    identity=identity,
    load=load,
    request_time=True,
)
