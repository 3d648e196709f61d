"""The author's earlier popularity through the real refresh: a label reaches the features of
the author's later posts only, never the labelled post's own (the leakage guard)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from smp_platform.core.config import EncoderSettings, Settings
from smp_platform.pipeline.ingest import ingest
from smp_platform.pipeline.refresh import check_for_work, refresh
from smp_platform.testing.feature_frames import builtin_groups
from tests.helpers import write_subset

pytestmark = pytest.mark.integration

AUTHOR_VIEW = "post_author_popularity"


def _tabular_views() -> list[str]:
    return [v.name for v in builtin_groups().group("tabular").views]


def _rows(settings: Settings, view: str) -> pd.DataFrame:
    glob = settings.offline_dir / view / "*.parquet"
    return duckdb.sql(f"SELECT * FROM read_parquet('{glob}', union_by_name = true)").df()


def _latest(settings: Settings, view: str) -> pd.DataFrame:
    rows = _rows(settings, view).sort_values("created_at")
    return rows.drop_duplicates("post_id", keep="last").set_index("post_id")


def _relabel(dataset: Path, changes: dict[str, float]) -> None:
    path = next(dataset.glob("*popularity*"))
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for record in records:
        if record["pid"] in changes:
            record["popularity"] = changes[record["pid"]]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, list[str]]:
    """120 real posts, tabular features only; the posts of an author with three of them."""
    root = tmp_path_factory.mktemp("author-popularity")
    dataset = write_subset("train", root / "in", n=120)
    settings = Settings(
        data_dir=root / "data", encoders=EncoderSettings(text_model=None, perplexity_model=None)
    )
    settings.ensure_dirs()
    ingest(settings, "smp-video", dataset)
    refresh(settings)
    posts = pd.read_json(next(dataset.glob("*posts*")), lines=True).sort_values("post_time")
    counts = posts["uid"].value_counts()
    author = counts.index[0]
    assert counts.iloc[0] >= 3
    return settings, dataset, posts.loc[posts["uid"] == author, "pid"].astype(str).tolist()


def test_every_post_has_its_author_popularity_and_terms(labelled) -> None:
    assert {AUTHOR_VIEW, "post_terms"} <= set(builtin_groups().service("popularity_v1").views)
    settings, dataset, by_author = labelled
    history = _latest(settings, AUTHOR_VIEW)
    assert len(history) == 120
    names = builtin_groups().view(AUTHOR_VIEW).feature_names
    assert list(history.columns[history.columns.isin(names)]) == (names)
    labels = pd.read_json(next(dataset.glob("*popularity*")), lines=True).set_index("pid")
    first, second = by_author[0], by_author[1]
    assert history.loc[first, "author_labelled_prior_posts"] == 0
    assert pd.isna(history.loc[first, "author_popularity_mean"])
    assert history.loc[second, "author_labelled_prior_posts"] == 1
    assert history.loc[second, "author_popularity_mean"] == pytest.approx(
        labels.loc[first, "popularity"]
    )
    terms = _latest(settings, "post_terms")["tag_terms"]
    tag_count = _latest(settings, "post_content")["tag_count"].reindex(terms.index)
    assert terms.notna().all()
    assert ((terms.str.len() > 0) == (tag_count > 0)).all()
    assert (tag_count > 0).any()


def test_a_posts_own_label_never_changes_its_features(labelled) -> None:
    settings, dataset, by_author = labelled
    last = by_author[-1]
    before = {view: _latest(settings, view).loc[last] for view in _tabular_views()}
    _relabel(dataset, {last: 99.0})
    ingest(settings, "smp-video", dataset)
    assert check_for_work(settings).stale["tabular"] == 0  # the nightly pre-check agrees
    summary = refresh(settings)
    # nothing the labelled post depends on changed: no row is recomputed, its own included
    assert sum(summary.written.values()) == 0
    for view in _tabular_views():
        pd.testing.assert_series_equal(_latest(settings, view).loc[last], before[view])


def test_an_earlier_label_recomputes_the_authors_later_posts_only(labelled) -> None:
    settings, dataset, by_author = labelled
    first, later = by_author[0], by_author[1:]
    before = _latest(settings, AUTHOR_VIEW)
    _relabel(dataset, {first: 42.0})
    ingest(settings, "smp-video", dataset)
    # the nightly pre-check (no model loaded) sees the same work as the refresh's plan
    assert check_for_work(settings).stale["tabular"] == len(later)
    summary = refresh(settings)
    assert summary.written[AUTHOR_VIEW] == len(later)
    after = _latest(settings, AUTHOR_VIEW)
    # the relabelled post itself: the same row as before
    pd.testing.assert_series_equal(after.loc[first], before.loc[first])
    assert after.loc[later[0], "author_popularity_max"] == 42.0
    assert (
        after.loc[later[0], "author_popularity_mean"]
        != before.loc[later[0], ("author_popularity_mean")]
    )
    # only the new label moved: the other posts keep their rows
    others = after.index.difference(later)
    pd.testing.assert_frame_equal(after.loc[others], before.loc[others])
