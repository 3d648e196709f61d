"""Shared fixtures: a small real SMP-Video dataset cut from the bundled sample, a Prefect test
server, and a platform that has been through ingest -> refresh -> train -> promote once."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smp_platform.core.config import use_offline_environment
from tests.helpers import fast_train_settings, write_subset

use_offline_environment()
# One converted copy of the packaged LM for the whole session, not one per data dir.
os.environ.setdefault("SMP_MODEL_CACHE_DIR", tempfile.mkdtemp(prefix="smp-test-models-"))


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@dataclass
class Platform:
    settings: object
    train_dir: Path
    unseen_dir: Path
    train_outcome: object


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Platform:
    """400 real labelled posts through the real pipeline (real encoders, Feast, MLflow)."""
    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.core.config import Settings
    from smp_platform.pipeline.ingest import ingest

    root = tmp_path_factory.mktemp("platform")
    train_dir = write_subset("train", root / "train", n=400)
    unseen_dir = write_subset("unlabeled", root / "unseen", n=40, with_labels=False)
    settings = Settings(data_dir=root / "data", train=fast_train_settings())
    settings.ensure_dirs()
    ingest(settings, "smp-video", train_dir)
    run_refresh(settings)
    outcome = run_train(settings)
    run_promote(settings, outcome.version)
    return Platform(settings, train_dir, unseen_dir, outcome)


@pytest.fixture
def platform_copy(platform: Platform, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings for a private copy of the platform's data dir (same champion, same features):
    a test that changes the platform (ingests, trains, moves the alias, breaks a store) works
    on it, so the session's shared platform stays as every other test expects it."""
    root = tmp_path / "data"
    # model artifacts stay where the registry says they are (the original data dir)
    shutil.copytree(platform.settings.root, root, ignore=shutil.ignore_patterns("mlartifacts"))
    return platform.settings.model_copy(update={"data_dir": root})
