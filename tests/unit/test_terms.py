"""Term strings (stateless, a view's field) and the TF-IDF/SVD fitted inside the model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smp_platform.features.tags import compute_term_strings, tag_terms, terms
from smp_platform.modeling.terms import TermReducer


def test_terms_of_free_text() -> None:
    assert terms("#Sunset,at Beach!! 2023") == ["sunset", "at", "beach", "2023"]
    assert terms("fyp,foryoupage,fyp") == ["fyp", "foryoupage", "fyp"]
    assert terms("Café_Ünïcode") == ["café", "ünïcode"]
    assert terms(None) == []
    assert terms(float("nan")) == []
    assert terms("") == []


def test_tag_terms_keep_phrases_and_drop_duplicates() -> None:
    tags = ["Cute Bird", "falconry", "cute bird", " ", "#Big-Bird"]
    assert tag_terms(tags) == ["cute_bird", "falconry", "big_bird"]
    assert tag_terms(np.array(["A b"], dtype=object)) == ["a_b"]
    assert tag_terms("single tag") == ["single_tag"]
    assert tag_terms(None) == []
    assert tag_terms([]) == []


def test_compute_term_strings() -> None:
    posts = pd.DataFrame(
        {
            "post_id": ["p1", "p2"],
            "posted_at": pd.to_datetime(["2023-01-01 10:00", "2023-01-02 11:00"]),
            "title": ["Hello,World,#fyp", None],
            "tags": [["Cute Bird", "birds"], None],
        }
    )
    out = compute_term_strings(posts)
    assert out["tag_terms"].tolist() == ["cute_bird birds", ""]
    assert out["title_terms"].tolist() == ["hello world fyp", ""]
    assert out["post_id"].tolist() == ["p1", "p2"]
    assert (out["event_timestamp"].to_numpy() == posts["posted_at"].to_numpy()).all()


def _documents() -> list[str]:
    topics = ["cat kitten meow", "car engine race", "cake sugar bake"]
    # Topics 15, 10 and 5 times: with equal counts the three singular values tie, and which
    # 2-d subspace TruncatedSVD returns (so whether two topics project onto one point) depends
    # on the BLAS kernels of the machine. This test failed on one machine and passed on another.
    order = [0, 1, 0, 2, 0, 1]
    documents = [topics[order[i % 6]] + f" extra{i % 2}" for i in range(30)]
    documents[0] += " unique"  # one post's term: below min_df
    return documents


def test_term_reducer_separates_topics_and_ignores_rare_terms() -> None:
    reducer = TermReducer("tag_terms", components=2, min_df=3, seed=0)
    reduced = reducer.fit_transform(_documents())
    assert reduced.shape == (30, 2)
    assert reducer.output_columns == ["tag_terms_svd0", "tag_terms_svd1"]
    # posts of the same topic land on the same point, other topics elsewhere
    assert np.allclose(reduced[0], reduced[6], atol=1e-6)
    assert not np.allclose(reduced[0], reduced[1], atol=1e-3)
    # a term only one post used is not in the vocabulary
    assert "unique" not in reducer.vectorizer.vocabulary_  # type: ignore[union-attr]
    again = reducer.transform(_documents()[:3])
    assert np.allclose(again, reduced[:3])


def test_term_reducer_maps_unknown_and_missing_text_to_the_origin() -> None:
    reducer = TermReducer("tag_terms", components=2, min_df=3)
    reducer.fit_transform(_documents())
    out = reducer.transform(["never seen words", None, float("nan"), ""])
    assert out.shape == (4, 2)
    assert np.allclose(out, 0.0)


def test_term_reducer_without_terms_produces_no_columns() -> None:
    reducer = TermReducer("tag_terms", components=4)
    assert reducer.fit_transform(["", None, ""]).shape == (3, 0)
    assert reducer.output_columns == []
    assert reducer.transform(["cat"]).shape == (1, 0)
    frame = reducer.frame(reducer.transform(["cat"]), pd.RangeIndex(1))
    assert frame.shape == (1, 0)


def test_the_services_numpy_terms_equal_the_fitted_reducer() -> None:
    from smp_platform.online.scorer import _Terms

    reducer = TermReducer("tag_terms", components=2, min_df=3, seed=0)
    reducer.fit_transform(_documents())
    fast = _Terms("tag_terms", reducer)
    assert fast.exact
    posts = [
        *_documents(),
        "cat cat cat kitten",  # repeated terms: sublinear tf
        "never seen words",
        "car  engine\tunique",  # other whitespace, a term below min_df
        None,
        float("nan"),
        "",
    ]
    # equal to the bit: a last-bit difference can move a CatBoost split (see _Terms.reduce)
    np.testing.assert_array_equal(fast.reduce(posts), reducer.transform(posts))
    # a batch is reduced together; each post alone gives the same bits
    alone = np.vstack([fast.reduce([post]) for post in posts])
    np.testing.assert_array_equal(alone, reducer.transform(posts))
