"""Fixtures for fault tests: a private copy of the trained platform, so a test can break its
registry or online store without touching the session's shared one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def platform_copy(platform, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings for a copy of the platform's data dir (same champion, same features)."""
    root = tmp_path / "data"
    # model artifacts stay where the registry says they are (the original data dir)
    shutil.copytree(platform.settings.root, root, ignore=shutil.ignore_patterns("mlartifacts"))
    return platform.settings.model_copy(update={"data_dir": root})
