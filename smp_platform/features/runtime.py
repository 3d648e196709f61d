"""A group at run time: its model loaded once per process, checked on a probe batch first, and
its compute run with the bookkeeping of stored rows.

The check runs the group's compute on two made-up posts (:mod:`smp_platform.features.probe`)
as soon as the group is first used in a process (a refresh's plan, a service's first draft):
a compute that returns a column its views do not declare, or misses one, fails there with a
message naming the group and the field, before any real batch is computed.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pandas as pd

from smp_platform.features.compute import ComputedGroup, stored_rows, view_frames
from smp_platform.features.group import FeatureGroup, FeatureInputs
from smp_platform.features.probe import probe_inputs

if TYPE_CHECKING:
    from smp_platform.core.config import Settings

# Models per (group, the settings its loading reads): a Dask worker keeps its own, and a copy of
# the settings that differs elsewhere (say, in training) does not load them again. Not keyed on
# the identity: a weights fingerprint reads 2 MiB of the file, which a draft should not pay.
_models: dict[tuple[str, ...], Any] = {}
_lock = threading.RLock()


def _key(group: FeatureGroup, settings: Settings) -> tuple[str, ...]:
    options = settings.feature_options.get(group.name, {})
    return (
        group.name,
        group.source,
        settings.encoders.model_dump_json(),
        str(settings.models_dir),
        json.dumps(options, sort_keys=True, default=str),
    )


def model_of(group: FeatureGroup, settings: Settings) -> Any:
    """The group's model (None for a group without one), loaded once per process after the
    group passed its check on the probe batch. Raises EncoderUnavailable when its weights
    cannot be loaded, :class:`FeatureGroupError` when its compute is not what it declares."""
    key = _key(group, settings)
    with _lock:
        if key not in _models:
            model = group.load(settings) if group.load is not None else None
            view_frames(group, group.compute(probe_inputs(group.reads), model))
            _models[key] = model
        return _models[key]


def request_frames(
    group: FeatureGroup, inputs: FeatureInputs, settings: Settings
) -> tuple[dict[str, pd.DataFrame], list[tuple[str, str]]]:
    """One frame per view (``post_id`` and the features) and the posts set aside: what a
    draft's features are made of."""
    return view_frames(group, group.compute(inputs, model_of(group, settings)))


def compute_group(group: FeatureGroup, inputs: FeatureInputs, settings: Settings) -> ComputedGroup:
    """The group's rows for a batch of warehouse posts, as the offline store keeps them."""
    frames, set_aside = request_frames(group, inputs, settings)
    return ComputedGroup(stored_rows(group, frames, inputs, group.encoder_id(settings)), set_aside)
