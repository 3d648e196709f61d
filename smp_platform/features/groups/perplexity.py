"""The perplexity group: the perplexity of the post text under a causal language model (the
packaged SmolLM2-135M by default, or a local GPT-2 as in the paper), the fluency signal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from smp_platform.features.group import AblationStage, FeatureGroup, FeatureInputs
from smp_platform.features.perplexity import PerplexityScorer
from smp_platform.features.schema import NON_NEGATIVE, Dtype, Field, Rule, View
from smp_platform.features.signals import compute_perplexity

if TYPE_CHECKING:
    from smp_platform.core.config import Settings

PERPLEXITY = View(
    "post_perplexity",
    "Perplexity of the post text under a causal language model",
    (
        Field(
            "perplexity",
            Dtype.FLOAT64,
            "perplexity of the post text under a causal LM",
            rule=Rule(min_value=1, strict_min=True),
        ),
        Field("log_perplexity", Dtype.FLOAT64, rule=Rule(min_value=0, strict_min=True)),
        Field("text_token_count", Dtype.INT64, "LM tokens scored (bounded)", rule=NON_NEGATIVE),
    ),
)


def identity(settings: Settings) -> str:
    return PerplexityScorer.identity(settings.encoders)


def load(settings: Settings) -> PerplexityScorer:
    return PerplexityScorer.from_settings(settings.models_dir, settings.encoders)


def compute(inputs: FeatureInputs, scorer: Any) -> pd.DataFrame:
    return compute_perplexity(inputs.posts, scorer)


group = FeatureGroup(
    name="perplexity",
    description="perplexity of the post text under a causal language model",
    views=(PERPLEXITY,),
    compute=compute,
    identity=identity,
    load=load,
    ablation=(AblationStage(30, "+ perplexity"),),
)
