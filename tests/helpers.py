"""Helpers shared by tests: small real datasets cut from the bundled sample, fast settings."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "smp-video"


def write_subset(split: str, out_dir: Path, n: int, *, with_labels: bool = True) -> Path:
    """The earliest ``n`` posts of a bundled split, in the same format (see slice_smp_video)."""
    from smp_platform.ingest import slice_smp_video

    return slice_smp_video(BUNDLED / split, out_dir, n, with_labels=with_labels)


def fast_train_settings(**overrides):  # type: ignore[no-untyped-def]
    from smp_platform.config import TrainSettings

    # one seed: the recipe's three seeds and the refit would triple the fixtures' training
    values = dict(
        iterations=150, adapter_epochs=5, adapter_folds=3, embedding_components=4, seeds=1
    )
    values.update(overrides)
    return TrainSettings(**values)
