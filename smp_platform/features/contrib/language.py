"""The language of the post text, detected (lingua-language-detector): the posts' own
``post_text_language`` is ``un`` (unknown) for many of them, and a declared language is not
always the written one.

``detected_language`` is the ISO 639-1 code of the most likely language ('unknown' when the
text is empty or has no letters to tell by), ``language_confidence`` its confidence (0..1;
null for an empty text). The detector's models ship in its wheel (Apache-2.0); nothing is
downloaded. It runs in low-accuracy mode by default: 0.3 s to load and 140 MB, against 4 s and
1.3 GB for the high-accuracy models (measured here), which a service worker would carry too;
``feature_options = {language = {accuracy = "high"}}`` switches.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from smp_platform.features import (
    Dtype,
    EncoderUnavailable,
    FeatureGroup,
    FeatureInputs,
    Field,
    Input,
    Rule,
    View,
)

PACKAGE = "lingua-language-detector"
UNKNOWN = "unknown"

LANGUAGE = View(
    "post_language_id",
    "The language the post text is written in, as detected from the text",
    (
        Field(
            "detected_language",
            Dtype.STRING,
            "ISO 639-1 code of the most likely language; 'unknown' without text to tell by",
            rule=Rule(max_null_fraction=0.0),
        ),
        Field(
            "language_confidence",
            Dtype.FLOAT64,
            "the detector's confidence in that language (0..1); null for an empty text",
            rule=Rule(min_value=0.0, max_value=1.0, max_null_fraction=1.0),
        ),
    ),
)


def _accuracy(settings: Any) -> str:
    return str(settings.feature_options.get("language", {}).get("accuracy", "low"))


def identity(settings: Any) -> str:
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise EncoderUnavailable(
            f"switched off: the {PACKAGE} package is not installed "
            "(pip install 'smp-platform[contrib]')"
        ) from None
    return f"lingua-{version}:{_accuracy(settings)}"


def load(settings: Any) -> Any:
    from lingua import LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages()
    if _accuracy(settings) != "high":
        builder = builder.with_low_accuracy_mode()
    return builder.with_preloaded_language_models().build()


def compute(inputs: FeatureInputs, detector: Any) -> pd.DataFrame:
    texts = [t if isinstance(t, str) else "" for t in inputs.posts["title"]]
    unique = list(dict.fromkeys(texts))  # real posts repeat texts: each is detected once
    found = detector.compute_language_confidence_values_in_parallel(unique)
    language, confidence = {}, {}
    for text, values in zip(unique, found, strict=True):
        top = values[0] if values else None
        if not text.strip() or top is None or top.value <= 0:
            language[text] = UNKNOWN
            confidence[text] = np.nan if not text.strip() else 0.0
        else:
            language[text] = top.language.iso_code_639_1.name.lower()
            confidence[text] = float(top.value)
    return pd.DataFrame(
        {
            "post_id": inputs.posts["post_id"].to_numpy(),
            "detected_language": [language[t] for t in texts],
            "language_confidence": np.array([confidence[t] for t in texts], dtype=np.float64),
        }
    )


group = FeatureGroup(
    name="language",
    description="the language of the post text, detected",
    views=(LANGUAGE,),
    compute=compute,
    reads=frozenset({Input.POST}),
    identity=identity,
    load=load,
    # Not in the default service: on two time folds of the bundled posts it was not better on
    # both (SRC -0.003 / +0.001, MAE +0.004 / +0.008; docs/ACCURACY.md). Registered, its view
    # is served by name in popularity_all_v1.
    services=(),
)
