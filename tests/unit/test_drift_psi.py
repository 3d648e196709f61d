"""PSI and the reference profile on hand-made distributions with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from smp_platform.modeling.psi import (
    MIN_BIN_SHARE,
    PSI_FLOOR,
    build_profile,
    category_shares,
    measure,
    numeric_cuts,
    numeric_shares,
    plot_drift,
    psi,
    value_bins,
)
from smp_platform.testing.feature_frames import served_feature_columns, served_spec, synthetic_frame


# -- the measure ---------------------------------------------------------------------------
def test_psi_of_known_distributions() -> None:
    # 0.4 ln(0.9/0.5) + (-0.4) ln(0.1/0.5)
    expected = 0.4 * math.log(1.8) + 0.4 * math.log(5.0)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)
    assert psi([0.25] * 4, [0.25] * 4) == 0.0
    # a uniform 10-bin reference against half its mass in one bin
    batch = [0.5] + [0.5 / 9] * 9
    by_hand = (0.5 - 0.1) * math.log(5) + 9 * (0.5 / 9 - 0.1) * math.log((0.5 / 9) / 0.1)
    assert psi([0.1] * 10, batch) == pytest.approx(by_hand)


def test_psi_empty_bins_are_floored_not_infinite() -> None:
    # both empty: the bin adds nothing
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == pytest.approx(0.0)
    # all the mass moved into a bin the reference never filled: large and finite
    moved = psi([1.0, 0.0], [0.0, 1.0])
    assert moved == pytest.approx(2 * (1 - PSI_FLOOR) * math.log(1 / PSI_FLOOR))
    assert math.isfinite(moved)
    with pytest.raises(ValueError, match="bins differ"):
        psi([0.5, 0.5], [1.0])


def test_numeric_bins_are_reference_quantiles_and_nulls_a_bin_of_their_own() -> None:
    values = pd.Series(np.arange(100.0))
    cuts = numeric_cuts(values, 4)
    assert cuts == pytest.approx([24.75, 49.5, 74.25])
    assert numeric_shares(values, cuts) == (pytest.approx([0.25] * 4), 0.0)
    with_nulls = pd.concat([values, pd.Series([np.nan] * 100)])
    shares, null_share = numeric_shares(with_nulls, cuts)
    assert shares == pytest.approx([0.125] * 4) and null_share == 0.5
    # ties merge: a feature that is mostly zero gets 2 cuts (zeros | the 0.9 quantile | rest),
    # not ten bins of zeros
    cuts = numeric_cuts(pd.Series([0.0] * 90 + list(range(1, 11))), 10)
    assert cuts == pytest.approx([0.0, 0.1])


def test_a_mostly_null_feature_gets_fewer_bins() -> None:
    mostly_null = pd.Series([1.0] * 13 + [np.nan] * 87)
    assert value_bins(mostly_null, 10) == int(0.13 / MIN_BIN_SHARE) == 2
    assert value_bins(pd.Series(np.arange(100.0)), 10) == 10
    assert value_bins(pd.Series([np.nan] * 10), 10) == 1


def test_a_feature_going_missing_drifts_by_its_null_share() -> None:
    reference = pd.DataFrame({"post_hour": np.arange(1000) % 20})
    profile = build_profile(reference, served_spec(["post_hour"]), bins=10)
    entry = profile["features"]["post_hour"]
    assert entry["null_share"] == 0.0 and sum(entry["shares"]) == pytest.approx(1.0)
    # the same values on half the posts, null on the other half
    batch = pd.DataFrame({"post_hour": [*(np.arange(500) % 20), *([None] * 500)]})
    report = measure(profile, batch, psi_bound=0.25)
    row = report.table.set_index("feature").loc["post_hour"]
    assert row["batch_null_share"] == 0.5 and row["reference_null_share"] == 0.0
    by_hand = psi([*entry["shares"], 0.0], [*(np.asarray(entry["shares"]) / 2), 0.5])
    assert row["psi"] == pytest.approx(by_hand)
    # every value bin halves (ln 2 each) and the null bin jumps from the floor to 0.5
    assert row["psi"] == pytest.approx(
        0.5 * math.log(2) + (0.5 - PSI_FLOOR) * math.log(0.5 / PSI_FLOOR)
    )
    assert bool(row["drifted"])


def test_categories_never_seen_are_counted_and_named() -> None:
    reference = pd.DataFrame({"language": ["en"] * 60 + ["es"] * 38 + ["fr"] * 2})
    profile = build_profile(reference, served_spec(["language"]))
    entry = profile["features"]["language"]
    # fr holds 2 % of the rows: it joins <other>, and is still a known value
    assert entry["categories"] == ["en", "es"] and "fr" in entry["known"]
    assert entry["shares"] == pytest.approx([0.6, 0.38, 0.02])
    batch = pd.DataFrame({"language": ["en"] * 50 + ["zz"] * 30 + ["fr"] * 10 + [None] * 10})
    assert category_shares(batch["language"], entry["categories"])[:2] == (
        pytest.approx([0.5, 0.0, 0.4]),
        0.1,
    )
    row = measure(profile, batch).table.set_index("feature").loc["language"]
    assert row["unseen_share"] == pytest.approx(0.3)  # zz only: fr was seen in training
    assert row["unseen_examples"] == "zz"
    assert row["batch_null_share"] == pytest.approx(0.1)
    expected = psi([0.6, 0.38, 0.02, 0.0], [0.5, 0.0, 0.4, 0.1])
    assert row["psi"] == pytest.approx(expected)


def test_the_same_distribution_does_not_drift_and_a_shifted_one_does() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"media_duration": rng.normal(30, 5, 5000)})
    profile = build_profile(reference, served_spec(["media_duration"]))
    same = pd.DataFrame({"media_duration": rng.normal(30, 5, 2000)})
    shifted = pd.DataFrame({"media_duration": rng.normal(36, 5, 2000)})  # + 1.2 sd
    assert measure(profile, same).max_psi < 0.05
    assert measure(profile, shifted).max_psi > 1.0


# -- the whole profile -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(400, seed=7)


def test_a_profile_of_every_kind_is_json_and_compact(frame: pd.DataFrame) -> None:
    columns = served_feature_columns()
    profile = build_profile(frame, served_spec(columns), bins=10)
    text = json.dumps(profile)
    assert json.loads(text) == profile
    assert len(text) < 200_000  # never the frame: 400 posts x 384-d embeddings are ~1.2 MB
    kinds = {e["kind"] for e in profile["features"].values()}
    assert kinds == {"numeric", "categorical", "terms", "embedding"}
    assert "tag_terms:terms" in profile["features"]
    # an embedding becomes its norm and its first principal directions
    assert {"text_embedding:norm", "text_embedding:pc0", "text_embedding:pc2"} <= set(
        profile["features"]
    )
    assert len(profile["embeddings"]["text_embedding"]["directions"]) == 3


def test_a_frame_measured_against_its_own_profile_does_not_drift(frame: pd.DataFrame) -> None:
    profile = build_profile(frame, served_spec(served_feature_columns()))
    report = measure(profile, frame, ignore=["post_epoch_days"])
    assert report.max_psi == pytest.approx(0.0, abs=1e-9)
    assert not report.beyond_bound and report.drifted == []
    assert "post_epoch_days" in report.ignored
    assert "post_epoch_days" not in set(report.table["feature"])


def test_texts_about_something_else_drift_along_the_embedding_directions(
    frame: pd.DataFrame,
) -> None:
    profile = build_profile(frame, served_spec(["text_embedding"]))
    rng = np.random.default_rng(1)
    others = rng.normal(size=(len(frame), 384))
    others[:, :8] += 3.0  # a new topic: one direction the reference never took
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    present = frame["text_embedding"].notna().to_numpy()  # the same posts without one
    vectors = others.astype(np.float32)
    batch = frame.assign(
        text_embedding=[v if p else None for v, p in zip(vectors, present, strict=True)]
    )
    drifted = measure(profile, batch).table.set_index("feature")
    assert drifted.loc[["text_embedding:pc0", "text_embedding:pc1"], "psi"].max() > 0.25
    # unit-norm vectors both: the norm alone would not have seen it
    assert drifted.loc["text_embedding:norm", "psi"] < 0.25


def test_the_verdict_counts_the_share_of_drifted_features_and_spares_small_batches() -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({name: rng.normal(size=2000) for name in ("a", "b", "c", "d", "e")})
    profile = build_profile(
        reference.rename(columns=_as_fields), served_spec(list(_FIELDS.values()))
    )
    batch = pd.DataFrame({name: rng.normal(size=200) for name in ("a", "b", "c", "d", "e")})
    batch["a"] += 3.0  # one of five features drifted: share 0.2, not more than 0.2
    batch = batch.rename(columns=_as_fields)
    one = measure(profile, batch, psi_bound=0.25, max_drifted_share=0.2)
    assert one.drifted == [_FIELDS["a"]] and one.drifted_share == pytest.approx(0.2)
    assert not one.beyond_bound
    batch[_FIELDS["b"]] += 3.0
    two = measure(profile, batch, psi_bound=0.25, max_drifted_share=0.2)
    assert two.beyond_bound
    assert "2 of 5 features with PSI > 0.25" in two.reason()
    small = measure(profile, batch.head(10), min_posts=30)
    assert small.drifted and not small.beyond_bound
    assert "never blocking" in small.summary()


_FIELDS = {
    "a": "author_follower_count_log",
    "b": "author_following_count_log",
    "c": "media_duration",
    "d": "music_duration",
    "e": "title_uppercase_ratio",
}


def _as_fields(name: str) -> str:
    return _FIELDS[name]


def test_the_drift_plot_is_a_png(frame: pd.DataFrame, tmp_path) -> None:
    profile = build_profile(frame, served_spec(served_feature_columns()))
    report = measure(profile, frame.assign(author_follower_count_log=20.0))
    path = plot_drift(report, tmp_path / "drift.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.drifted == ["author_follower_count_log"]
