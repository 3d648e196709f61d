"""feature_repo as a pure schema: Feast objects only from definitions(settings), a rendered repo
the feast CLI can read, and a data dir whose path SQL could trip over."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from smp_platform.core.config import EncoderSettings, Settings

pytestmark = pytest.mark.integration


def test_importing_the_schema_imports_no_feast() -> None:
    code = (
        "import sys\n"
        "import feature_repo, feature_repo.feature_views, feature_repo.feature_services\n"
        "print('feast' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_groups_embeddings_and_served_columns_come_from_the_schema() -> None:
    from smp_platform.features.registry import groups_for

    groups = groups_for(Settings())
    assert [g.name for g in groups] == ["tabular", "text", "image", "perplexity"]
    assert groups.embedding_columns() == ["text_embedding", "image_embedding"]
    columns = groups.service("popularity_v1").columns
    assert "input_hash" not in columns and "text_embedding" in columns


def test_a_quote_in_the_data_dir_and_the_rendered_repo_for_the_feast_cli(tmp_path: Path) -> None:
    from smp_platform.features.tabular import compute_temporal_features
    from smp_platform.infra.feast_store import FeatureStoreGateway

    settings = Settings(data_dir=tmp_path / "o'brien's data")
    gateway = FeatureStoreGateway(settings)
    gateway.apply()
    posts = pd.DataFrame({"post_id": ["p1"], "posted_at": [pd.Timestamp("2023-03-01 10:00")]})
    rows = compute_temporal_features(posts).assign(input_hash="h", encoder_id="t")
    gateway.write_view("post_temporal", rows, datetime(2023, 3, 1, 11, tzinfo=UTC))
    assert gateway.row_count("post_temporal") == 1
    assert gateway.current_rows("post_temporal")["input_hash"].tolist() == ["h"]

    feast = Path(sys.executable).with_name("feast")
    listed = subprocess.run(
        [str(feast), "-c", str(settings.feast_dir), "feature-services", "list"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    assert "popularity_v1" in listed.stdout and "popularity_tabular_v1" in listed.stdout


MEDIA_GROUP = """
import os

import pandas as pd

from smp_platform.features import Dtype, Field, FeatureGroup, Input, OPTIONAL, View


def compute(inputs, model):
    paths = inputs.posts["media_path"]
    sizes = [os.path.getsize(p) if isinstance(p, str) and os.path.isfile(p) else None
             for p in paths]
    return pd.DataFrame({"post_id": inputs.posts["post_id"], "media_bytes": sizes})


group = FeatureGroup(
    name="media_size",
    views=(View("post_media_size", "The media file's size", (
        Field("media_bytes", Dtype.FLOAT64, "bytes of the media file", rule=OPTIONAL),
    )),),
    compute=compute,
    reads=frozenset({Input.POST, Input.MEDIA}),
)
"""


def test_a_changed_image_at_the_same_path_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group that reads the media file is recomputed when the file at the same path changes;
    a group that does not read it (tabular) is not."""
    from smp_platform.infra.feast_store import FeatureStoreGateway
    from smp_platform.infra.warehouse import Warehouse
    from smp_platform.pipeline.ingest import ingest
    from smp_platform.pipeline.refresh import plan_refresh, refresh
    from tests.helpers import write_subset

    monkeypatch.chdir(tmp_path)  # SMP-Video media paths are relative: keep the files in tmp
    plugin = tmp_path / "media_size.py"
    plugin.write_text(MEDIA_GROUP)
    settings = Settings(
        data_dir=tmp_path / "d",
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
        feature_groups=[f"{plugin}:group"],
    )
    settings.ensure_dirs()
    ingest(settings, "smp-video", write_subset("train", tmp_path / "in", n=12))
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        media = warehouse.posts_frame()["media_path"].tolist()
    assert not any(Path(p).is_absolute() and not Path(p).is_relative_to(tmp_path) for p in media)
    for path in media:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"first frame")
    refresh(settings)
    assert plan_refresh(settings).stale == {"tabular": 0, "media_size": 0}
    Path(media[3]).write_bytes(b"a new frame at the same path")
    plan = plan_refresh(settings)
    assert plan.stale == {"tabular": 0, "media_size": 1}
    assert refresh(settings).written == {"post_media_size": 1}
    rows = FeatureStoreGateway(settings).current_rows("post_media_size")
    assert len(rows) == 12
