"""A feature group of the user's own, living outside the repository and registered by the
``feature_groups`` setting alone: ingest -> refresh -> train -> promote -> the lookup equal to
batch prediction -> a draft's explanation listing the group's view. A misdeclared group stops
``smp refresh`` before any batch is computed, naming the group and the field."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from smp_platform.core.config import EncoderSettings, Settings
from tests.helpers import REPO, fast_train_settings, write_subset

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "docs" / "examples" / "feature_group.py"
PLUGIN_FIELDS = {
    "title_exclamations",
    "title_is_question",
    "title_emoji_count",
    "title_calls_to_action",
}


def _outside(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "team_features"
    folder.mkdir(exist_ok=True)
    shutil.copy(EXAMPLE, folder / f"{name}.py")
    assert not folder.resolve().is_relative_to(REPO)
    return folder


def test_the_example_group_from_outside_the_repository(
    tmp_path: Path, prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.promote import run_promote
    from flows.refresh import run_refresh
    from flows.train import run_train
    from smp_platform.infra.mlflow_registry import ModelRegistry
    from smp_platform.pipeline.ingest import ingest
    from smp_platform.pipeline.predict import predict_posts
    from smp_platform.service.runner import running_service

    monkeypatch.syspath_prepend(str(_outside(tmp_path, "title_style")))
    settings = Settings(
        data_dir=tmp_path / "data",
        feature_groups=["title_style:group"],
        # the models' groups off: this test is about the plugin and every layer it reaches
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
        train=fast_train_settings(),
    )
    settings.ensure_dirs()
    train_dir = write_subset("train", tmp_path / "in", n=200)
    ingest(settings, "smp-video", train_dir)
    summary = run_refresh(settings)
    assert summary.written["post_title_style"] == 200
    assert summary.stale["title_style"] == 200
    outcome = run_train(settings)
    assert run_promote(settings, outcome.version).promoted

    registry = ModelRegistry(settings)
    version, service = registry.require_champion()
    _, columns = registry.load_with_columns(version)
    assert service == "popularity_v1" and set(columns) >= PLUGIN_FIELDS
    post_ids = [line.split('"pid": "')[1].split('"')[0] for line in _posts(train_dir)[:25]]
    batch = predict_posts(settings, post_ids).set_index("post_id")["popularity"]

    draft = {
        "format": "smp-video",
        "post": {
            "uid": _posts(train_dir)[0].split('"uid": "')[1].split('"')[0],
            "post_content": "Follow for more! Is this the best view? \U0001f60d",
            "post_suggested_words": ["view"],
            "post_time": "2024-06-01 18:30",
        },
    }
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=60) as client:
        for post_id in post_ids:
            answer = client.get(f"/v1/posts/{post_id}/popularity")
            assert answer.status_code == 200, answer.text
            assert answer.json()["popularity"] == pytest.approx(batch[post_id], abs=1e-9)
        scored = client.post("/v1/popularity:score", params={"explain": "true"}, json=draft)
    assert scored.status_code == 200, scored.text
    style = next(c for c in scored.json()["contributions"] if c["view"] == "post_title_style")
    shown = {f["feature"]: f["value"] for f in style["features"]}
    assert set(shown) <= PLUGIN_FIELDS and shown
    for feature, expected in (("title_exclamations", 1.0), ("title_calls_to_action", 1.0)):
        if feature in shown:  # the three largest contributions of the view are listed
            assert shown[feature] == expected


def _posts(folder: Path) -> list[str]:
    path = next(folder.glob("*posts*.jsonl"))
    return [line for line in path.read_text().splitlines() if line.strip()]


BROKEN = """
import pandas as pd

from smp_platform.features import Dtype, FeatureGroup, Field, View


def compute(inputs, model):
    return pd.DataFrame(
        {"post_id": inputs.posts["post_id"], "shout": 1.0, "whisper": 0.0}
    )


group = FeatureGroup(
    name="shouting",
    views=(View("post_shouting", "capitals", (Field("shout", Dtype.FLOAT64),)),),
    compute=compute,
)
"""


def test_a_misdeclared_group_stops_the_refresh_before_any_batch(tmp_path: Path) -> None:
    folder = tmp_path / "team_features"
    folder.mkdir()
    (folder / "shouting.py").write_text(BROKEN)
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
        "SMP_FEATURE_GROUPS": '["shouting:group"]',
        "SMP_ENCODERS__TEXT_MODEL": "",
        "SMP_ENCODERS__PERPLEXITY_MODEL": "",
    }

    def smp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smp_platform.cli", "--data-dir", str(data_dir), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    loaded = smp("ingest", str(write_subset("train", tmp_path / "in", n=20)))
    assert loaded.returncode == 0, loaded.stderr
    refreshed = smp("refresh")
    assert refreshed.returncode == 2, refreshed.stdout + refreshed.stderr
    assert "feature group 'shouting'" in refreshed.stderr
    assert "column 'whisper', which the view does not declare" in refreshed.stderr
    assert "Traceback" not in refreshed.stderr
    written = [p for p in (data_dir / "offline").rglob("part-*.parquet")]
    assert written == []  # not one batch of any group was computed
