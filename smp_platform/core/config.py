"""Typed settings: defaults < ``smp.toml`` < ``SMP_*`` environment variables.

Nothing here runs at import time: entry points create one :class:`Settings` and pass it down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Defaults every entry point (CLI, tests, benchmarks) sets before heavy imports.
OFFLINE_ENVIRONMENT = {
    # No model hub, no telemetry: this platform runs offline.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The temporary local Prefect API starts in ~5 s, slower on a busy 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "GIT_PYTHON_REFRESH": "quiet",
    # MLflow's per-download tqdm bar (a line of \r frames in `smp report`'s output and in logs)
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


# The feature service a model is trained on and served from unless configured otherwise: the
# feature groups join it unless they say otherwise (FeatureGroup.services).
DEFAULT_FEATURE_SERVICE = "popularity_v1"


def use_offline_environment() -> None:
    """Set :data:`OFFLINE_ENVIRONMENT` where the caller's environment does not say otherwise."""
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


class EncoderSettings(BaseModel):
    """Which model computes each feature group, and with which weights.

    A weights value is a packaged model (``packaged:<name>``), a local file or directory, or a
    pretrained tag. ``None`` switches the group off; the run says so once and goes on.
    """

    # Device-aware defaults (the *_for methods). CPU: a 2,048-token LM batch keeps activations
    # cache-sized on a small CPU. CUDA (one H100, issue 9): perplexity went from 1,056 to 2,490
    # texts/s with a 32k budget, MiniLM from 2,223 to 4,015 texts/s at batch 256.
    CPU_TOKEN_BUDGET: ClassVar[int] = 2048
    CUDA_TOKEN_BUDGET: ClassVar[int] = 32768
    CUDA_BATCH_SIZE: ClassVar[int] = 256

    text_model: str | None = "packaged:all-MiniLM-L6-v2"
    clip_model: str = "ViT-B-32"
    clip_weights: str | None = None  # no CLIP weights are obtainable offline
    captioner: str | None = None  # a transformers image-to-text model directory
    perplexity_model: str | None = "packaged:smollm2-135m"
    # Perplexity of the first 32 tokens: the fluency signal is there, and the LM pass (the
    # slowest stage on a CPU) costs in proportion to the tokens scored.
    perplexity_max_tokens: int = 32
    batch_size: int = 32  # images / captions / texts per forward pass on a CPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None  # torch intra-op threads; None = number of cores
    # Sizes that depend on the device; None = chosen from it (see the *_for methods). Issue 9,
    # one H100: a 2,048-token perplexity budget and text batches of 32 left the GPU 65-80% idle.
    image_batch_size: int | None = None
    text_batch_size: int | None = None
    perplexity_token_budget: int | None = None  # tokens per LM forward (rows x padded length)
    # auto: bf16 autocast for the CLIP and text towers and TF32 matmuls on CUDA, float32 on CPU.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # auto: JPEGs decoded and preprocessed as tensor ops (libjpeg-turbo in threads off the GIL on
    # CPU, nvJPEG on CUDA); PIL for anything else. "pil": open_clip's PIL preprocess only.
    image_decode: Literal["auto", "pil"] = "auto"

    def image_batch_for(self, device_type: str) -> int:
        """Images per forward pass: ``image_batch_size``, else 256 on CUDA and ``batch_size``."""
        if self.image_batch_size is not None:
            return self.image_batch_size
        return self.CUDA_BATCH_SIZE if device_type == "cuda" else self.batch_size

    def text_batch_for(self, device_type: str) -> int:
        """Texts per forward pass: ``text_batch_size``, else 256 on CUDA and ``batch_size``."""
        if self.text_batch_size is not None:
            return self.text_batch_size
        return self.CUDA_BATCH_SIZE if device_type == "cuda" else self.batch_size

    def token_budget_for(self, device_type: str) -> int:
        """Perplexity tokens per forward pass: the setting, else 32,768 on CUDA, 2,048 on CPU."""
        if self.perplexity_token_budget is not None:
            return self.perplexity_token_budget
        return self.CUDA_TOKEN_BUDGET if device_type == "cuda" else self.CPU_TOKEN_BUDGET


class TrainSettings(BaseModel):
    """The recipe of a model (docs/ACCURACY.md): every field is logged with each version, and
    ``smp tune`` may replace the recipe fields (``<data dir>/recipe.json``)."""

    model_name: str = "smp-popularity"
    experiment: str = "smp-popularity"
    validation_fraction: float = 0.2  # the latest posts, as the SMP Challenge splits by time
    adapter_folds: int = 5
    adapter_ratio: float = 0.2  # a in x' = a*A(x) + (1-a)*x
    adapter_epochs: int = 30
    embedding_components: int = 16  # PCA components per embedding before CatBoost
    term_components: int = 8  # TF-IDF/SVD components per terms field (8 beat 16 on both folds)
    term_min_df: int = 3  # a term of fewer training posts is ignored
    # MAE loss: -0.029 / -0.019 MAE on the two folds of docs/ACCURACY.md, SRC unchanged.
    loss_function: str = "MAE"
    # The cap: rounds come from early stopping on the newest posts, scaled to the refit size.
    iterations: int = 1500
    learning_rate: float = 0.03
    depth: int = 6
    l2_leaf_reg: float = 10.0  # a small, consistent MAE gain over CatBoost's 3
    seed: int = 42
    seeds: int = 3  # CatBoost models averaged (seed, seed + 1, ...): -0.014 MAE on the newest
    exclude_views: list[str] = Field(default_factory=list)  # served views the model leaves out


class DriftSettings(BaseModel):
    """How drift is measured against the champion's training frame, and when it blocks a
    promotion (README, "Drift")."""

    # PSI above this marks a feature as drifted (the usual reading: > 0.25 is a major shift).
    psi_bound: float = 0.25
    # A promotion is refused when MORE than this share of the measured features drifted. With
    # ~80 validation posts a stable feature's PSI over 10 bins is ~0.1 by sampling noise alone,
    # so one or two features above the bound mean little.
    max_drifted_share: float = 0.2
    bins: int = 10  # reference deciles per numeric feature
    min_posts: int = 30  # a smaller batch is measured and reported but never blocks
    # When a post was published: a new batch lies after every training post by construction.
    ignore_columns: list[str] = Field(
        default_factory=lambda: ["post_epoch_days", "post_day_of_year", "post_month"]
    )
    block_promotion: bool = True  # False: the drift is logged with the decision, never blocks


class ComposeSettings(BaseModel):
    """Addresses of the compose stack's services (profile ``compose``), all from env vars.

    Anything that may carry a password is a ``SecretStr``: it prints as ``**********``, and
    its value is taken (``get_secret_value()``) only where a client connects.
    """

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    postgres_dsn: SecretStr = SecretStr("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    mlflow_tracking_uri: SecretStr = SecretStr("http://127.0.0.1:5000")
    prefect_api_url: str | None = None


class ServiceSettings(BaseModel):
    """The prediction service's own settings (``SMP_SERVICE__*``)."""

    # Bearer token of ``POST /v1/posts`` (push a fresh post online). None: the endpoint is off
    # (404 saying how to turn it on). A SecretStr: never printed, compared in constant time.
    push_token: SecretStr | None = None
    # How long a push waits for the data dir's writer lock (a nightly refresh holds it for
    # minutes) before answering 503 with Retry-After; lookups never wait for it.
    push_lock_wait_s: float = 2.0
    push_retry_after_s: int = 30


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SMP_",
        env_nested_delimiter="__",
        toml_file="smp.toml",
        extra="ignore",
    )

    profile: Literal["embedded", "compose"] = "embedded"
    data_dir: Path = Path(".smp")
    feature_service: str = DEFAULT_FEATURE_SERVICE
    # Feature groups of your own, beside the built-in ones: "module:attribute" or
    # "/path/to/file.py:attribute" naming a smp_platform.features.FeatureGroup
    # (SMP_FEATURE_GROUPS='["my_team.features.language:group"]'); docs/EXTENDING.md.
    feature_groups: list[str] = Field(default_factory=list)
    # Options a group of your own reads (settings.feature_options["<group>"]), e.g. its batch
    # size or model directory; the platform passes them along and never reads them.
    feature_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # The online store, independently of the profile: None takes the profile's (embedded:
    # "sqlite", one row per post and view under the data dir; compose: "redis" at
    # compose.redis_url). A Feast online store class of your own by its dotted path, configured
    # with online_store_options.
    online_store: str | None = None
    online_store_options: dict[str, Any] = Field(default_factory=dict)
    feast_project: str = "smp"  # also namespaces the Redis keys of the compose profile
    # Posts per partition (the unit of progress, retry and Dask work). Tabular batches are
    # cheap and carry a fixed validation cost, so they are larger than model batches.
    refresh_batch_size: int = 2000
    model_batch_size: int = 500
    materialize_overlap_hours: float = 1.0
    materialize_window_days: float = 92.0  # bounded windows: memory independent of history
    refresh_cron: str = "0 2 * * *"
    timezone: str = "UTC"
    dask_address: str | None = None  # None: a LocalCluster when the Dask runner is asked for
    dask_workers: int = 2
    lock_timeout_s: float = 600  # how long a writing command waits for another one to finish
    # "json": every log record one JSON object per line on stderr (time, level, logger, message
    # and the record's fields, e.g. request_id), for a log search; "text": for a person
    # (smp_platform/core/logs.py).
    log_format: Literal["text", "json"] = "text"
    model_cache_dir: Path | None = None  # converted weights; default <data dir>/models
    encoders: EncoderSettings = Field(default_factory=EncoderSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    compose: ComposeSettings = Field(default_factory=ComposeSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    # Every location derives from data_dir, made absolute once: Feast's DuckDB offline store
    # resolves relative FileSource paths from the current directory.
    @property
    def root(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def offline_dir(self) -> Path:
        return self.root / "offline"

    @property
    def feast_dir(self) -> Path:
        return self.root / "feast"

    @property
    def models_dir(self) -> Path:
        """Converted / cached model weights (e.g. SmolLM2 GGUF -> float32)."""
        if self.model_cache_dir is not None:
            return self.model_cache_dir.expanduser().resolve()
        return self.root / "models"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def mlflow_db_path(self) -> Path:
        """The embedded profile's MLflow backend (SQLite)."""
        return self.root / "mlflow.db"

    @property
    def mlflow_tracking_uri(self) -> str:
        if self.profile == "compose":
            return self.compose.mlflow_tracking_uri.get_secret_value()
        return f"sqlite:///{self.mlflow_db_path}"

    @property
    def mlflow_artifact_root(self) -> str:
        return (self.root / "mlartifacts").as_uri()

    def ensure_dirs(self) -> None:
        for path in (self.root, self.offline_dir, self.feast_dir, self.models_dir):
            path.mkdir(parents=True, exist_ok=True)


# -- settings of a flow run ----------------------------------------------------------------------
# Flows never take Settings as a parameter (Prefect stores parameters, and shows them in its UI):
# a caller in this process binds its Settings here, and a deployment run builds them from the
# worker's SMP_* environment and smp.toml.
_bound: ContextVar[Settings | None] = ContextVar("smp_bound_settings", default=None)


@contextmanager
def bound_settings(settings: Settings) -> Iterator[Settings]:
    """Flows called inside this block (in this process) use ``settings``."""
    token = _bound.set(settings)
    try:
        yield settings
    finally:
        _bound.reset(token)


def run_settings(data_dir: str | Path | None = None) -> Settings:
    """The settings of a flow run: those bound by the caller (for the same data dir), else
    from the environment / profile, with ``data_dir`` when given."""
    bound = _bound.get()
    wanted = Path(data_dir).expanduser().resolve() if data_dir else None
    if bound is not None and wanted in (None, bound.root):
        return bound
    return Settings(data_dir=wanted) if wanted else Settings()
