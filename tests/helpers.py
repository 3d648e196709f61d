"""Helpers shared by tests: small real datasets cut from the bundled sample, fast settings."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "smp-video"


def write_subset(split: str, out_dir: Path, n: int, *, with_labels: bool = True) -> Path:
    """The earliest ``n`` posts of a bundled split, in the same format (see slice_smp_video)."""
    from smp_platform.pipeline.ingest import slice_smp_video

    return slice_smp_video(BUNDLED / split, out_dir, n, with_labels=with_labels)


def fast_train_settings(**overrides):  # type: ignore[no-untyped-def]
    from smp_platform.core.config import TrainSettings

    # one seed: the recipe's three seeds and the refit would triple the fixtures' training
    values = dict(
        iterations=150, adapter_epochs=5, adapter_folds=3, embedding_components=4, seeds=1
    )
    values.update(overrides)
    return TrainSettings(**values)


POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def postgres_admin():  # type: ignore[no-untyped-def]
    """An autocommit connection to the machine's PostgreSQL; an unreachable server fails the
    test with its address (never a skip)."""
    import psycopg
    import pytest

    try:
        return psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN} is not reachable: {exc}")


@contextmanager
def compose_profile(data_dir: Path, *, password: str | None = None):  # type: ignore[no-untyped-def]
    """Settings of the compose profile on a database of their own (owned by a role with
    ``password`` when given) and a Feast project of their own in Redis; all torn down after.

    Yields (settings, dsn). Model-computed groups are off: these tests are about the stores.
    """
    import uuid

    from smp_platform.core.config import ComposeSettings, EncoderSettings, Settings

    name = f"smp_{uuid.uuid4().hex[:10]}"
    admin = postgres_admin()
    if password is None:
        admin.execute(f'CREATE DATABASE "{name}"')
        dsn = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        admin.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
        dsn = f"postgresql+psycopg://{name}:{password}@127.0.0.1:5432/{name}"
    settings = Settings(
        profile="compose",
        data_dir=data_dir,
        feast_project=name,
        feature_service="popularity_tabular_v1",
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
        train=fast_train_settings(),
        compose=ComposeSettings(redis_url=REDIS_URL, postgres_dsn=dsn, mlflow_tracking_uri=dsn),
    )
    settings.ensure_dirs()
    try:
        yield settings, dsn
    finally:
        from smp_platform.infra.feast_store import FeatureStoreGateway

        try:
            FeatureStoreGateway(settings).store.teardown()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if password is not None:
                admin.execute(f'DROP ROLE IF EXISTS "{name}"')
            admin.close()


# The start of a script run with ``python -c`` that behaves like the lean API image: importing
# torch fails; then FastAPI's TestClient, Settings and create_app are imported.
WITHOUT_TORCH = """
import importlib.abc, json, sys


class NoTorch(importlib.abc.MetaPathFinder):  # the API image: torch is not installed
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
from fastapi.testclient import TestClient
from smp_platform.core.config import Settings
from smp_platform.service.app import create_app
"""


# A plugin group whose one field has a range rule: the posts named in
# settings.feature_options["share"]["poison"] get a share of 5 (out of range), so their batch
# fails Great Expectations; the options are not the group's identity, so un-poisoning
# recomputes nothing. Written to a file and registered by the feature_groups setting.
SHARE_GROUP = """
import pandas as pd

from smp_platform.features import Dtype, FeatureGroup, Field, Rule, View


def compute(inputs, model):
    poison = set(model)
    ids = inputs.posts["post_id"]
    return pd.DataFrame({"post_id": ids, "share": [5.0 if p in poison else 0.5 for p in ids]})


group = FeatureGroup(
    name="share",
    views=(View("post_share", "a share", (
        Field("share", Dtype.FLOAT64, "0..1", rule=Rule(min_value=0, max_value=1)),
    )),),
    compute=compute,
    load=lambda settings: tuple(settings.feature_options.get("share", {}).get("poison", [])),
    version="share-v1",
    batch_size={batch_size},
)
"""


def share_group_source(batch_size: int) -> str:
    """The source of :data:`SHARE_GROUP` with its refresh batch size."""
    return SHARE_GROUP.replace("{batch_size}", str(batch_size))
