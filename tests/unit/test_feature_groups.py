"""The feature-group registry: groups load by "module:attribute" or a file path, a misdeclared
group fails when the groups are loaded (static declarations) or first used (its compute's
columns), naming the group and the field; the built-in groups declare what the platform needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from smp_platform.core.config import Settings
from smp_platform.features import (
    Dtype,
    FeatureGroup,
    FeatureGroupError,
    FeatureInputs,
    Field,
    Input,
    View,
)
from smp_platform.features.compute import view_frames
from smp_platform.features.probe import probe_inputs
from smp_platform.features.registry import (
    ALL_FEATURE_SERVICE,
    FeatureGroups,
    groups_for,
    load_group,
)
from smp_platform.features.runtime import model_of
from smp_platform.testing.feature_frames import builtin_groups

BUILTIN = list(builtin_groups())


def _compute(inputs: FeatureInputs, model: object) -> pd.DataFrame:
    return pd.DataFrame({"post_id": inputs.posts["post_id"], "shout": 1.0})


def _group(**changes: object) -> FeatureGroup:
    group = FeatureGroup(
        name="shouting",
        views=(View("post_shouting", "capitals", (Field("shout", Dtype.FLOAT64),)),),
        compute=_compute,
    )
    return dataclasses.replace(group, **changes)  # type: ignore[arg-type]


def test_builtin_groups_and_their_services() -> None:
    groups = builtin_groups()
    assert [g.name for g in groups] == ["tabular", "text", "image", "perplexity"]
    assert [g.name for g in groups.request_time] == ["tabular", "text", "perplexity"]
    default = groups.service("popularity_v1")
    assert set(default.views) == {v.name for v in groups.views}
    assert set(groups.service("popularity_tabular_v1").views) == {
        v.name for v in groups.group("tabular").views
    }
    assert groups.service(ALL_FEATURE_SERVICE).columns == default.columns
    with pytest.raises(FeatureGroupError, match="unknown feature service 'nope'"):
        groups.service("nope")


def test_a_group_of_ones_own_joins_the_default_service_and_the_all_service() -> None:
    groups = FeatureGroups([*BUILTIN, _group()])
    assert "post_shouting" in groups.service("popularity_v1").views
    assert "post_shouting" in groups.service(ALL_FEATURE_SERVICE).views
    assert "post_shouting" not in groups.service("popularity_tabular_v1").views
    assert groups.view_of["shout"] == "post_shouting"
    apart = FeatureGroups([*BUILTIN, _group(services=("shouting_v1",))])
    assert "post_shouting" not in apart.service("popularity_v1").views
    assert apart.service("shouting_v1").views == ("post_shouting",)
    assert "post_shouting" in apart.service(ALL_FEATURE_SERVICE).views


def test_strings_are_taken_for_dtypes_and_inputs() -> None:
    group = _group(
        views=(View("post_shouting", "capitals", (Field("shout", "float64"),)),),  # type: ignore[arg-type]
        reads=frozenset({"post", "media"}),
    )
    checked = FeatureGroups([*BUILTIN, group]).group("shouting")
    assert checked.fields[0].dtype is Dtype.FLOAT64
    assert checked.reads == {Input.POST, Input.MEDIA}


@pytest.mark.parametrize(
    ("group", "message"),
    [
        (_group(name="tabular"), "feature group 'tabular'.*the name is already registered"),
        (
            _group(views=(View("post_temporal", "again", (Field("x", Dtype.INT64),)),)),
            "view 'post_temporal' is already declared by group 'tabular'",
        ),
        (
            _group(views=(View("post_shouting", "dup", (Field("post_hour", Dtype.INT64),)),)),
            "field 'post_hour' of view 'post_shouting' is already declared by view "
            "'post_temporal' of group 'tabular'",
        ),
        (
            _group(views=(View("post_shouting", "x", (Field("shout", "float16"),)),)),  # type: ignore[arg-type]
            "feature group 'shouting'.*field 'shout' of view 'post_shouting': dtype "
            "'float16' is unknown; known: float64",
        ),
        (
            _group(views=(View("post_shouting", "x", (Field("post_id", Dtype.STRING),)),)),
            "field 'post_id' of view 'post_shouting': the name is reserved",
        ),
        (_group(views=()), "feature group 'shouting'.*declares no view"),
        (_group(reads=frozenset({"mood"})), "reads 'mood' is unknown; known: post"),
        (_group(name="Has Spaces"), "the name must be lower case"),
    ],
)
def test_a_misdeclared_group_fails_when_loaded_naming_group_and_field(
    group: FeatureGroup, message: str
) -> None:
    with pytest.raises(FeatureGroupError, match=message):
        FeatureGroups([*BUILTIN, group])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"shout": 1.0, "whisper": 0.0},
            "feature group 'shouting'.*view 'post_shouting': compute returned column "
            "'whisper', which the view does not declare",
        ),
        ({}, "view 'post_shouting': compute returned no column for field 'shout'"),
    ],
)
def test_a_compute_that_is_not_what_its_group_declares_fails_on_the_probe(
    columns: dict[str, float], message: str, tmp_path: Path
) -> None:
    def compute(inputs: FeatureInputs, model: object) -> pd.DataFrame:
        return pd.DataFrame({"post_id": inputs.posts["post_id"], **columns})

    group = FeatureGroups([*BUILTIN, _group(compute=compute)]).group("shouting")
    with pytest.raises(FeatureGroupError, match=message):
        view_frames(group, group.compute(probe_inputs(group.reads), None))
    with pytest.raises(FeatureGroupError, match=message):  # the first use in a process
        model_of(group, Settings(data_dir=tmp_path))


def test_frames_are_matched_to_views_by_name_not_position() -> None:
    two = _group(
        views=(
            View("post_a", "a", (Field("a", Dtype.FLOAT64),)),
            View("post_b", "b", (Field("b", Dtype.FLOAT64),)),
        ),
    )
    posts = probe_inputs({Input.POST}).posts
    frames, _ = view_frames(
        two,
        {  # returned in the other order, columns in another order
            "post_b": pd.DataFrame({"b": [2.0, 2.0], "post_id": posts["post_id"]}),
            "post_a": pd.DataFrame({"post_id": posts["post_id"], "a": [1.0, 1.0]}),
        },
    )
    assert list(frames) == ["post_a", "post_b"]
    assert list(frames["post_b"].columns) == ["post_id", "b"]
    assert frames["post_a"]["a"].tolist() == [1.0, 1.0]
    with pytest.raises(FeatureGroupError, match="returned one frame for 2 views"):
        view_frames(two, frames["post_a"])
    with pytest.raises(FeatureGroupError, match="returned view 'post_c' it does not declare"):
        view_frames(two, {**frames, "post_c": frames["post_a"]})


def test_every_builtin_group_passes_its_own_probe(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    for group in builtin_groups():
        if group.has_model:
            continue  # their models are loaded by the models tests
        frames, _ = view_frames(group, group.compute(probe_inputs(group.reads), None))
        assert set(frames) == {v.name for v in group.views}
        assert model_of(group, settings) is None


def test_groups_load_by_module_or_file_and_say_what_is_wrong(tmp_path: Path) -> None:
    assert load_group("smp_platform.features.groups.text:group").name == "text"
    plugin = tmp_path / "shouting.py"
    plugin.write_text(
        "import pandas as pd\n"
        "from smp_platform.features import Dtype, FeatureGroup, Field, View\n"
        "group = FeatureGroup(name='shouting', views=(View('post_shouting', 'x', "
        "(Field('shout', Dtype.FLOAT64),)),), compute=lambda inputs, model: pd.DataFrame())\n"
        "not_a_group = 3\n"
    )
    loaded = load_group(f"{plugin}:group")
    assert loaded.name == "shouting" and loaded.source == f"{plugin}:group"
    with pytest.raises(FeatureGroupError, match="'not_a_group' is a int, not a"):
        load_group(f"{plugin}:not_a_group")
    with pytest.raises(FeatureGroupError, match="cannot import it"):
        load_group("no_such_module_anywhere:group")
    with pytest.raises(FeatureGroupError, match="expected 'module:attribute'"):
        load_group("just_a_module")
    settings = Settings(data_dir=tmp_path, feature_groups=[f"{plugin}:group"])
    assert [g.name for g in groups_for(settings)][-1] == "shouting"


def test_the_setting_comes_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SMP_FEATURE_GROUPS", '["my_team.features:group"]')
    monkeypatch.setenv("SMP_FEATURE_OPTIONS", '{"title_style": {"calls_to_action": ["hi"]}}')
    settings = Settings(data_dir=tmp_path)
    assert settings.feature_groups == ["my_team.features:group"]
    assert settings.feature_options == {"title_style": {"calls_to_action": ["hi"]}}
