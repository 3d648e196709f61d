"""Behaviour of the REAL packaged models: direction and invariance tests, no thresholds on noise."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from smp_platform.core.config import EncoderSettings
from smp_platform.features import perplexity as perplexity_module
from smp_platform.features.encoders import resolve_weights
from smp_platform.features.perplexity import PerplexityScorer, converted_dir

pytestmark = pytest.mark.models

FLUENT = [
    "The children played in the park until the sun went down.",
    "We cooked a simple dinner with fresh vegetables from the market.",
    "My grandmother taught me how to bake bread when I was young.",
    "The train was late again, so I walked to the office in the rain.",
    "This little café serves the best coffee in the whole city.",
]


def _shuffled(sentence: str, seed: int) -> str:
    words = sentence.rstrip(".").split()
    rng = random.Random(seed)
    while True:
        rng.shuffle(words)
        if " ".join(words) != sentence.rstrip("."):
            return " ".join(words) + "."


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def scorer(models_dir: Path) -> PerplexityScorer:
    return PerplexityScorer.from_settings(models_dir, EncoderSettings(device="cpu"))


def test_fluent_text_is_less_perplexing_than_its_shuffled_words(scorer: PerplexityScorer) -> None:
    shuffled = [_shuffled(s, seed) for seed, s in enumerate(FLUENT)]
    scores = scorer.score(FLUENT + shuffled)
    fluent_ppl, shuffled_ppl = scores.perplexity[: len(FLUENT)], scores.perplexity[len(FLUENT) :]
    assert (fluent_ppl < shuffled_ppl).all(), list(zip(fluent_ppl, shuffled_ppl, strict=True))
    np.testing.assert_allclose(scores.log_perplexity, np.log(scores.perplexity))


def test_batched_perplexity_equals_one_by_one(scorer: PerplexityScorer) -> None:
    texts = FLUENT + ["ok", "#fyp #viral #cats", "", "   ", FLUENT[0], "x " * 140]
    batched = scorer.score(texts)
    single = [scorer.score([t]) for t in texts]
    for i, one in enumerate(single):
        assert batched.text_token_count[i] == one.text_token_count[0]
        if np.isnan(one.perplexity[0]):
            assert np.isnan(batched.perplexity[i]) and batched.text_token_count[i] == 0
        else:
            # each text runs at a padded width of its own (bf16 included): the same bits
            assert batched.perplexity[i] == pytest.approx(one.perplexity[0], rel=1e-6)
    assert batched.text_token_count[-1] == scorer.max_tokens  # bounded
    assert batched.text_token_count[texts.index("ok")] >= 1  # one token still gets a prediction


def test_budget_and_head_chunks_do_not_change_scores(
    scorer: PerplexityScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU's 32k-token budget and the chunked LM head give the CPU default's scores."""
    assert scorer.token_budget == EncoderSettings().token_budget_for("cpu") == 2048
    texts = FLUENT + ["ok", "#fyp #viral #cats", "x " * 140, FLUENT[1] + " " + FLUENT[2]]
    reference = scorer.score(texts)
    monkeypatch.setattr(perplexity_module, "HEAD_CHUNK_TOKENS", 7)  # many chunks per batch
    monkeypatch.setattr(scorer, "token_budget", EncoderSettings().token_budget_for("cuda"))
    chunked = scorer.score(texts)
    np.testing.assert_array_equal(chunked.text_token_count, reference.text_token_count)
    np.testing.assert_allclose(chunked.log_perplexity, reference.log_perplexity, rtol=1e-5)


def test_converted_dir_is_cached(
    scorer: PerplexityScorer, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = resolve_weights("packaged:smollm2-135m", setting="encoders.perplexity_model").path
    assert gguf is not None
    cache = converted_dir(gguf, models_dir)
    assert (cache / "config.json").is_file()
    assert [p.name for p in models_dir.iterdir() if ".tmp-" in p.name] == []  # no staging left

    def no_conversion(*_: object) -> None:
        raise AssertionError("converted again instead of using the cache")

    monkeypatch.setattr(perplexity_module, "_load_gguf", no_conversion)
    again = PerplexityScorer.from_settings(models_dir, EncoderSettings(device="cpu"))
    assert again.encoder_id == scorer.encoder_id
    assert again.score([FLUENT[0]]).perplexity[0] == pytest.approx(
        scorer.score([FLUENT[0]]).perplexity[0], rel=1e-6
    )


def test_paraphrase_is_more_similar_than_an_unrelated_sentence() -> None:
    from smp_platform.features.text_embedding import TextEncoder

    encoder = TextEncoder.from_settings(EncoderSettings(device="cpu"))
    assert encoder.dim == 384 and encoder.encoder_id.startswith("sentence:all-MiniLM-L6-v2@")
    triples = [
        (
            "A man is playing a guitar on stage.",
            "Someone performs a song on the guitar at a concert.",
            "The stock market fell sharply this morning.",
        ),
        (
            "My cat loves sleeping in the sun.",
            "The kitten enjoys napping in sunlight.",
            "How to fix a flat bicycle tire.",
        ),
        (
            "Best pizza recipe for beginners",
            "Easy homemade pizza for first-time cooks",
            "Top ten hiking trails in the Alps",
        ),
    ]
    for anchor, paraphrase, unrelated in triples:
        vectors = encoder.encode([anchor, paraphrase, unrelated])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
        assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2, anchor


def test_a_text_encodes_the_same_alone_as_in_a_batch() -> None:
    """A draft's text is encoded alone, the stored post's in a refresh batch of other lengths:
    with each text at a padded width of its own, both give the same vector (no skew)."""
    from smp_platform.features.text_embedding import TextEncoder

    encoder = TextEncoder.from_settings(EncoderSettings(device="cpu"))
    texts = [*FLUENT, "ok", "#fyp #viral #cats", "x " * 300, FLUENT[1] * 3]
    batched = encoder.encode(texts)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(encoder.encode([text])[0], batched[i], atol=1e-6, err_msg=text)


def test_the_stored_features_identity_names_the_numeric_path() -> None:
    """bf16 and float32 give other numbers: the identity differs, so the refresh recomputes."""
    from smp_platform.features.text_embedding import TextEncoder

    for encoder in (TextEncoder, PerplexityScorer):
        fp32 = encoder.identity(EncoderSettings(precision="fp32"))
        bf16 = encoder.identity(EncoderSettings(precision="bf16"))
        assert bf16 == fp32 + ":bf16", (fp32, bf16)
    # auto: MiniLM keeps float32 everywhere (bf16 did not pay); the LM follows the CPU
    assert TextEncoder.identity(EncoderSettings(precision="auto")) == TextEncoder.identity(
        EncoderSettings(precision="fp32")
    )


def test_bf16_weights_stored_once_give_the_numbers_autocast_gives(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under CPU bf16 autocast, Linear weights stored as bf16 (cast once at load) give the same
    bits as float32 weights cast on every call: a speed-up, not another feature."""
    from smp_platform.features import text_embedding
    from smp_platform.features.text_embedding import TextEncoder

    settings = EncoderSettings(device="cpu", precision="bf16")
    texts = [*FLUENT, "ok", "#fyp #viral #cats"]
    stored = PerplexityScorer.from_settings(models_dir, settings).score(texts).log_perplexity
    vectors = TextEncoder.from_settings(settings).encode(texts)
    monkeypatch.setattr(perplexity_module, "bf16_linear_weights", lambda model: 0)
    monkeypatch.setattr(text_embedding, "bf16_linear_weights", lambda model: 0)
    cast = PerplexityScorer.from_settings(models_dir, settings).score(texts).log_perplexity
    np.testing.assert_array_equal(stored, cast)
    np.testing.assert_array_equal(vectors, TextEncoder.from_settings(settings).encode(texts))
