"""The only door to MLflow: one :class:`ModelRegistry` per settings.

It owns the client (tracking AND registry URI), the one artifact location, the experiment,
logging a trained model as a run + registered version (its description a model card), the
``@champion`` alias and the record of its every move, loading a version, and tags. The
promotion *rule* is :mod:`smp_platform.modeling.promotion`; the promotion *verb* is
:mod:`smp_platform.pipeline.promote`; moves by hand are :mod:`smp_platform.pipeline.champion`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from smp_platform.core.config import Settings
from smp_platform.core.errors import UserError
from smp_platform.modeling.figures import plot_feature_importance
from smp_platform.modeling.matrix import LABEL, TIMESTAMP
from smp_platform.modeling.metrics import metrics, with_baseline
from smp_platform.modeling.promotion import PROMOTION_CRITERION
from smp_platform.modeling.psi import write_artifacts
from smp_platform.modeling.recipe import RECIPE_PARAM, recipe_from_params

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from mlflow import MlflowClient
    from smp_platform.core.config import TrainSettings
    from smp_platform.modeling.fit import Backtest, TrainedModel
    from smp_platform.modeling.promotion import PromotionDecision
    from smp_platform.modeling.psi import DriftReport

log = logging.getLogger(__name__)

CHAMPION = "champion"
# ISO-8601 UTC moment the alias last moved to a version (a version tag; "since when", and the
# service's seconds-since-promotion metric, read it)
CHAMPION_SINCE_TAG = "champion_since"
MOVE_KIND = "champion_move"  # tags.kind of the run that records `smp champion set/rollback`
MOVED_AT_TAG = "moved_at"  # on a record run: the version's champion_since of that move
FEATURE_SERVICE_TAG = "feature_service"
MODEL_NAME_IN_RUN = "model"
DRIFT_DIR = "drift"  # artifact folder: reference profile (training runs), drift table + plot
REFERENCE_PROFILE = "reference_profile.json"
REQUIREMENTS = ("mlflow", "catboost", "torch", "scikit-learn", "pandas", "numpy", "cloudpickle")
_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@dataclass(frozen=True)
class RegisteredCandidate:
    version: str
    run_id: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class ChampionMove:
    """One logged move of ``@champion``: a promotion that moved it, or a move by hand.

    ``to_metrics``/``from_metrics`` are ``src``/``mae`` where the record has them: for a
    promotion both scored on the same posts (the candidate's backtest split); for ``set`` and
    ``rollback`` each version's own recorded backtest.
    """

    at: datetime  # UTC
    kind: str  # "promotion", "set" or "rollback"
    from_version: str | None  # None: no version held the alias before
    to_version: str
    reason: str
    to_metrics: dict[str, float] = field(default_factory=dict)
    from_metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""


@dataclass(frozen=True)
class VersionRecipe:
    """How a registered version was made: re-running it on other posts reproduces it."""

    version: str
    settings: TrainSettings
    feature_columns: list[str]
    feature_service: str


@contextlib.contextmanager
def tracking(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (tracking and registry) at ``tracking_uri`` for a block.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``; afterwards both the
    globals and the environment are put back as they were, so nothing leaks to later code.
    """
    import mlflow

    saved = {key: os.environ.get(key) for key in _URI_ENV}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        # an explicit URI always mirrors into the environment, so "unset + old env" restores it
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets (MLflow 3)
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def model_signature(trained: TrainedModel) -> ModelSignature:
    """Input schema built by hand from the feature kinds; every column optional.

    Numeric columns are ``Any``: MLflow refuses to "safely" convert int64 -> float64 and online
    reads give ints, floats or None for the same field. Embeddings are arrays of double (lists
    of Python floats and float32 arrays both pass). No input example is logged: MLflow would
    have to serialise the array columns and run the model at logging time for no gain.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, Array, ColSpec, Schema, TensorSpec

    spec = trained.model.matrix.spec
    inputs: list[ColSpec | TensorSpec] = [
        *(ColSpec(AnyType(), c, required=False) for c in spec.numeric),
        *(ColSpec("string", c, required=False) for c in spec.categorical),
        *(ColSpec(Array("double"), c, required=False) for c in spec.embedding),
        *(ColSpec("string", c, required=False) for c in spec.terms),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double", "popularity")]))


def _requirements() -> list[str]:
    pinned = []
    for package in REQUIREMENTS:
        try:
            pinned.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(package)
    return pinned


def _window(frame: pd.DataFrame) -> tuple[str, str]:
    timestamps = pd.to_datetime(frame[TIMESTAMP], utc=True)
    return timestamps.min().isoformat(), timestamps.max().isoformat()


def _run_params(
    trained: TrainedModel,
    valid: pd.DataFrame,
    backtest: Backtest | None,
    feature_service: str,
    recipe_source: str,
) -> dict[str, Any]:
    """What a version's run records of how it was made (promotion re-runs the recipe)."""
    valid_start, valid_end = _window(valid)
    params: dict[str, Any] = {
        RECIPE_PARAM: trained.settings.model_dump_json(),
        "recipe_source": recipe_source,
        "evaluation": "backtest" if backtest is not None else "holdout",
        "n_train": trained.n_train,
        "n_valid": len(valid),
        "feature_service": feature_service,
        "feature_columns": ",".join(trained.feature_columns),
        "dropped_columns": ",".join(trained.model.matrix.dropped) or "-",
        "best_iteration": trained.best_iteration,
        "rounds": trained.rounds,
        "train_start": trained.train_start.isoformat(),
        "train_end": trained.train_end.isoformat(),
        "valid_start": valid_start,
        "valid_end": valid_end,
    }
    if backtest is not None:
        params.update(
            backtest_n_train=backtest.trained.n_train,
            backtest_train_end=backtest.trained.train_end.isoformat(),
            backtest_best_iteration=backtest.trained.best_iteration,
            backtest_rounds=backtest.trained.rounds,
        )
    return params


def model_card(
    trained: TrainedModel,
    valid: pd.DataFrame,
    scores: dict[str, float],
    *,
    backtest: Backtest | None,
    feature_service: str,
    recipe_source: str,
    run_id: str,
    profile: dict[str, Any] | None,
    title: str = "Model card",
) -> str:
    """A version's description (markdown): what a reviewer needs to judge it in MLflow's UI
    without opening the run: its posts, features, recipe, honest quality, drift reference."""
    fitted = backtest.trained if backtest is not None else trained
    evaluation = "backtest" if backtest is not None else "holdout"
    recipe = ", ".join(f"{k}={v}" for k, v in trained.settings.model_dump().items())
    lines = [
        f"## {title} (run `{run_id}`)",
        "",
        "| posts | count | first post | last post |",
        "|---|---:|---|---|",
        f"| registered model (all labelled) | {trained.n_train:,} "
        f"| {trained.train_start.isoformat()} | {trained.train_end.isoformat()} |",
        f"| {evaluation} training | {fitted.n_train:,} "
        f"| {fitted.train_start.isoformat()} | {fitted.train_end.isoformat()} |",
        f"| {evaluation} validation | {len(valid):,} | {' | '.join(_window(valid))} |",
        "",
        f"**Feature service:** `{feature_service}` ({len(trained.feature_columns)} columns; "
        f"dropped as empty: {', '.join(trained.model.matrix.dropped) or 'none'})",
        "",
        f"**Training recipe** (from {recipe_source}): `{recipe}`",
        "",
        f"**{evaluation.capitalize()} metrics** on the {len(valid):,} validation posts "
        f"({' .. '.join(_window(valid))}), by a model fitted only on the posts before them:",
        "",
        "| metric | model | median baseline |",
        "|---|---:|---:|",
        *(
            f"| {label} | {scores[key]:.4f} | {scores.get(f'baseline_{key}', float('nan')):.4f} |"
            for key, label in (("src", "SRC"), ("mae", "MAE"))
        ),
        "",
    ]
    if profile is None:
        lines.append("**Drift reference:** none logged (drift is not measured against it).")
    else:
        lines.append(
            f"**Drift reference:** `{DRIFT_DIR}/{REFERENCE_PROFILE}` in run `{run_id}`: "
            f"{len(profile.get('features', {}))} features profiled on "
            f"{int(profile.get('n_rows', 0)):,} posts, {profile.get('bins')} bins; refreshes "
            "and promotions measure new posts against it while this version is champion."
        )
    return "\n".join(lines)


def _move_of(run: Any) -> ChampionMove:
    """A record run (a promotion that moved the alias, or a move by hand) as a move.

    Promotions logged before ``moved_at`` existed get their run's start (milliseconds after
    the alias moved)."""
    tags, params, logged = run.data.tags, run.data.params, run.data.metrics
    if tags.get("kind") == MOVE_KIND:
        kind, reason = tags.get("move_kind", "set"), tags.get("move_reason", "")
        to, before, prefixes = params["to_version"], params.get("from_version"), ("to", "from")
    else:
        kind, reason = "promotion", tags.get("promotion_reason", "")
        to, before = params["candidate_version"], params.get("champion_version")
        prefixes = ("candidate", "champion")
    stamp = tags.get(MOVED_AT_TAG)
    at = pd.Timestamp(stamp) if stamp else pd.Timestamp(run.info.start_time, unit="ms", tz="UTC")
    at = at.tz_localize("UTC") if at.tzinfo is None else at

    def scores(prefix: str) -> dict[str, float]:
        return {k: logged[f"{prefix}_{k}"] for k in ("src", "mae") if f"{prefix}_{k}" in logged}

    return ChampionMove(
        at=at.tz_convert("UTC").to_pydatetime(),
        kind=kind,
        from_version=None if before in (None, "-") else str(before),
        to_version=str(to),
        reason=reason,
        to_metrics=scores(prefixes[0]),
        from_metrics=scores(prefixes[1]) if before not in (None, "-") else {},
        run_id=str(run.info.run_id),
    )


_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


class ModelRegistry:
    """The configured model (``settings.train.model_name``) in the configured MLflow."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.name = settings.train.model_name
        self.tracking_uri = settings.mlflow_tracking_uri

    # -- wiring ----------------------------------------------------------------------------
    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @property
    def artifact_location(self) -> str | None:
        """Where new experiments keep artifacts: an MLflow server (compose) decides itself;
        a database backend gets ``<data dir>/mlartifacts``."""
        if self.tracking_uri.startswith(("http://", "https://")):
            return None
        return self.settings.mlflow_artifact_root

    def experiment_id(self) -> str:
        """The configured experiment's id, creating it (with the artifact location) if needed."""
        name = self.settings.train.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(self.client.create_experiment(name, artifact_location=self.artifact_location))

    @contextlib.contextmanager
    def child_run(self, parent: Any, run_name: str) -> Iterator[Any]:
        """A run nested in ``parent`` (opened with :meth:`run`, still active)."""
        import mlflow

        with mlflow.start_run(
            experiment_id=parent.info.experiment_id, run_name=run_name, nested=True
        ) as run:
            yield run

    @contextlib.contextmanager
    def run(self, run_name: str, *, nested: bool = False) -> Iterator[Any]:
        """An MLflow run in the experiment, with the fluent API pointed at this registry."""
        import mlflow

        experiment_id = self.experiment_id()
        with (
            tracking(self.tracking_uri),
            mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested) as run,
        ):
            yield run

    # -- versions --------------------------------------------------------------------------
    def log_and_register(
        self,
        trained: TrainedModel,
        valid_frame: pd.DataFrame,
        *,
        feature_service: str,
        run_name: str,
        backtest: Backtest | None = None,
        recipe_source: str = "settings",
        log_profile: Callable[[str], dict[str, Any]] | None = None,
    ) -> RegisteredCandidate:
        """Log an MLflow run and register the pyfunc model, with its quality.

        With ``backtest`` (the same recipe fitted on the older posts only), ``trained`` is the
        refit on all labelled posts and the version's metrics are the backtest's on its
        newest posts; without it ``trained`` is scored on ``valid_frame``. The version is
        tagged with its feature service (serving reads it), its metrics, the scored post
        window and its training cutoff; the run logs the whole recipe. ``log_profile(run_id)``
        logs the drift reference profile in the run and returns it. The version's
        description is its model card (:func:`model_card`).
        """
        import mlflow

        if backtest is not None:
            valid, scores = backtest.valid, backtest.scores
        else:
            valid = valid_frame[valid_frame[LABEL].notna()]
            if valid.empty:
                raise ValueError("the validation frame has no labelled posts")
            scores = with_baseline(valid[LABEL], trained.predict(valid), trained.train_median)
        valid_start, valid_end = _window(valid)
        evaluation = "backtest" if backtest is not None else "holdout"
        with self.run(run_name) as run:
            mlflow.log_params(trained.settings.model_dump())
            mlflow.log_params(_run_params(trained, valid, backtest, feature_service, recipe_source))
            mlflow.log_metrics({f"valid_{k}": v for k, v in scores.items()})
            mlflow.set_tags(
                {
                    FEATURE_SERVICE_TAG: feature_service,
                    "model_name": self.name,
                    "evaluation": evaluation,
                }
            )
            version = self._log_model(trained)
        self.tag(
            version,
            {
                FEATURE_SERVICE_TAG: feature_service,
                "evaluation": evaluation,
                "validation_src": f"{scores['src']:.6f}",
                "validation_mae": f"{scores['mae']:.6f}",
                "validation_start": valid_start,
                "validation_end": valid_end,
                "validation_n": str(len(valid)),
                "training_cutoff": trained.train_end.isoformat(),
                "n_train": str(trained.n_train),
            },
        )
        profile = log_profile(run.info.run_id) if log_profile is not None else None
        card = model_card(
            trained,
            valid,
            scores,
            backtest=backtest,
            feature_service=feature_service,
            recipe_source=recipe_source,
            run_id=run.info.run_id,
            profile=profile,
            title=f"{self.name} v{version}: model card",
        )
        self.client.update_model_version(self.name, version, description=card)
        log.info(
            "registered %s version %s (run %s), fitted on %d posts up to %s: %s SRC %.4f, "
            "MAE %.4f (median baseline MAE %.4f)",
            self.name,
            version,
            run.info.run_id,
            trained.n_train,
            trained.train_end.isoformat(),
            evaluation,
            scores["src"],
            scores["mae"],
            scores["baseline_mae"],
        )
        return RegisteredCandidate(version=version, run_id=run.info.run_id, metrics=scores)

    def _log_model(self, trained: TrainedModel) -> str:
        """Inside the active run: the pyfunc (boosters as native files), its feature columns
        and the importance plot; registers it and returns the new version."""
        import mlflow

        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch)
            importance = plot_feature_importance(
                trained.feature_importance, directory / "feature_importance.png"
            )
            mlflow.log_artifact(str(importance), artifact_path="plots")
            columns_file = directory / "feature_columns.json"
            columns_file.write_text(json.dumps(trained.feature_columns))
            mlflow.log_artifact(str(columns_file))
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME_IN_RUN,
                python_model=trained.model,
                artifacts=trained.model.save_boosters(directory),
                signature=model_signature(trained),
                pip_requirements=_requirements(),
                registered_model_name=self.name,
            )
        return str(info.registered_model_version)

    def recorded_metrics(self, version: str) -> dict[str, float]:
        """The metrics a version's training run logged (``valid_*``, prefix dropped)."""
        run_id = self.client.get_model_version(self.name, str(version)).run_id
        logged = self.client.get_run(run_id).data.metrics if run_id else {}
        return {k.removeprefix("valid_"): v for k, v in logged.items() if k.startswith("valid_")}

    def recipe(self, version: str) -> VersionRecipe:
        """A version's recipe, columns and feature service, from its run's logged params."""

        run_id = self.client.get_model_version(self.name, str(version)).run_id
        params = dict(self.client.get_run(run_id).data.params) if run_id else {}
        if "feature_columns" not in params:
            raise UserError(f"version {version} of {self.name} has no logged recipe to re-run")
        return VersionRecipe(
            version=str(version),
            settings=recipe_from_params(params),
            feature_columns=params["feature_columns"].split(","),
            feature_service=params.get("feature_service") or self.feature_service(version),
        )

    def tag(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), key, value)

    def tags(self, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(self.name, str(version)).tags)

    def feature_service(self, version: str) -> str:
        """The feature service a version was trained on (the configured one if untagged)."""
        return self.tags(version).get(FEATURE_SERVICE_TAG) or self.settings.feature_service

    def latest_version(self) -> str:
        versions = self.client.search_model_versions(f"name = '{self.name}'")
        if not versions:
            raise UserError(f"no registered versions of {self.name}: run `smp train`")
        return str(max(int(v.version) for v in versions))

    def champion(self) -> tuple[str, str] | None:
        """(version, feature service) of ``@champion``, or None when there is none yet."""
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_model_version_by_alias(self.name, CHAMPION)
        except MlflowException as exc:
            # "No such model / alias" means no champion; anything else (registry unreachable,
            # database locked) is raised, so the service keeps its loaded model and says why.
            if exc.error_code in _NOT_FOUND:
                return None
            raise
        service = version.tags.get(FEATURE_SERVICE_TAG) or self.settings.feature_service
        return str(version.version), str(service)

    def champion_since(self, version: str) -> datetime | None:
        """When ``@champion`` last moved to ``version`` (its ``champion_since`` tag); None for a
        version moved outside smp, or an answer the registry could not give."""
        try:
            tag = self.client.get_model_version(self.name, str(version)).tags.get(
                CHAMPION_SINCE_TAG
            )
            return datetime.fromisoformat(tag) if tag else None
        except Exception as exc:  # noqa: BLE001 - an age to report, never a reason to fail
            log.warning("champion_since of v%s not read: %r", version, exc)
            return None

    def require_champion(self) -> tuple[str, str]:
        found = self.champion()
        if found is None:
            raise UserError(f"no @champion of {self.name}: run `smp train` and `smp promote` first")
        return found

    def set_champion(self, version: str) -> str:
        """Move ``@champion`` to ``version`` and tag the version with the moment (ISO-8601 UTC,
        returned): MLflow keeps no time of an alias move, and "since when" needs one."""
        self.client.set_registered_model_alias(self.name, CHAMPION, str(version))
        since = datetime.now(UTC).isoformat()
        self.tag(str(version), {CHAMPION_SINCE_TAG: since})
        return since

    def require_version(self, version: str) -> Any:
        """The registered ``version`` (an ``mlflow`` ``ModelVersion``), or a UserError that
        names the versions there are."""
        from mlflow.exceptions import MlflowException

        version = str(version).strip()
        if version.isdigit():
            try:
                return self.client.get_model_version(self.name, version)
            except MlflowException as exc:
                if exc.error_code not in _NOT_FOUND:
                    raise
        versions = self.client.search_model_versions(f"name = '{self.name}'")
        found = sorted(int(v.version) for v in versions)
        if not found:
            there = "none is registered: run `smp train`"
        elif len(found) <= 10:
            there = f"registered: {', '.join(map(str, found))}"
        else:
            there = f"{len(found)} registered, {found[0]} .. {found[-1]}"
        raise UserError(f"no version {version!r} of {self.name} ({there})")

    def load(self, version: str) -> Any:
        """The pyfunc of one registered version (``models:/name/version``)."""
        import mlflow

        with tracking(self.tracking_uri):
            return mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")

    def load_with_columns(self, version: str) -> tuple[Any, list[str]]:
        """A version's pyfunc and the feature columns its signature declares."""
        model = self.load(version)
        schema = model.metadata.get_input_schema()
        return model, list(schema.input_names()) if schema else []

    def evaluate_version(self, version: str, frame: pd.DataFrame) -> dict[str, float]:
        """Metrics of a registered version on the labelled posts of ``frame``."""
        labelled = frame[frame[LABEL].notna()]
        model, columns = self.load_with_columns(version)
        served = [c for c in columns if c in labelled.columns]
        return metrics(labelled[LABEL], model.predict(labelled[served] if served else labelled))

    def record_promotion(self, decision: PromotionDecision, mae_tolerance: float) -> None:
        """A decision as tags on the candidate version and as a run in its experiment."""

        client = self.client
        version = client.get_model_version(self.name, decision.candidate_version)
        tags = {
            "promotion_decision": "promoted" if decision.promoted else "refused",
            "promotion_reason": decision.reason,
            "promotion_compared_to": decision.champion_version or "-",
        }
        if decision.comparison:
            tags["promotion_comparison"] = decision.comparison
        if decision.drift:
            tags["promotion_drift"] = decision.drift
        self.tag(decision.candidate_version, tags)
        run_tags = {"kind": "promotion", **tags}
        if decision.promoted and CHAMPION_SINCE_TAG in version.tags:
            run_tags[MOVED_AT_TAG] = version.tags[CHAMPION_SINCE_TAG]  # set by set_champion
        params: dict[str, str | float] = {
            "model_name": self.name,
            "candidate_version": decision.candidate_version,
            "champion_version": decision.champion_version or "-",
            "criterion": PROMOTION_CRITERION,
            "mae_tolerance": mae_tolerance,
        }
        run_metrics = {
            f"{prefix}_{key}": float(metric)
            for prefix, values in (
                ("candidate", decision.candidate_metrics),
                ("champion", decision.champion_metrics or {}),
            )
            for key, metric in values.items()
        }
        run_id = self._record_run(
            version,
            f"promote-{self.name}-v{decision.candidate_version}",
            tags=run_tags,
            params=params,
            metrics=run_metrics,
        )
        if decision.drift_report is not None:
            self._log_drift_artifacts(run_id, decision.drift_report)
        client.set_terminated(run_id)

    def _record_run(
        self,
        version: Any,
        run_name: str,
        *,
        tags: dict[str, str],
        params: dict[str, str | float],
        metrics: dict[str, float],
    ) -> str:
        """A record run (promotion, alias move) in the experiment of ``version``'s training
        run, left open for the caller's artifacts; its id."""
        client = self.client
        experiment_id = client.get_run(version.run_id).info.experiment_id if version.run_id else "0"
        run_id = str(client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id)
        for key, param in params.items():
            client.log_param(run_id, key, param)
        for key, metric in metrics.items():
            client.log_metric(run_id, key, metric)
        return run_id

    # -- moves of @champion ----------------------------------------------------------------
    def record_champion_move(
        self, kind: str, to_version: str, from_version: str | None, reason: str, at: str
    ) -> ChampionMove:
        """A move by hand (``kind``: set, rollback) as a run like a promotion's, with each
        version's recorded backtest metrics; the move as :meth:`champion_moves` reads it."""
        version = self.require_version(to_version)
        scores: dict[str, dict[str, float]] = {}
        for prefix, holder in (("to", to_version), ("from", from_version)):
            if holder is not None:
                recorded = self.recorded_metrics(holder)
                scores[prefix] = {k: recorded[k] for k in ("src", "mae") if k in recorded}
        run_id = self._record_run(
            version,
            f"{kind}-{self.name}-v{to_version}",
            tags={
                "kind": MOVE_KIND,
                "move_kind": kind,
                "move_reason": reason,
                MOVED_AT_TAG: at,
            },
            params={
                "model_name": self.name,
                "to_version": str(to_version),
                "from_version": from_version or "-",
            },
            metrics={f"{p}_{k}": v for p, values in scores.items() for k, v in values.items()},
        )
        self.client.set_terminated(run_id)
        return ChampionMove(
            at=pd.Timestamp(at).to_pydatetime(),
            kind=kind,
            from_version=from_version,
            to_version=str(to_version),
            reason=reason,
            to_metrics=scores.get("to", {}),
            from_metrics=scores.get("from", {}),
            run_id=run_id,
        )

    def champion_moves(self) -> list[ChampionMove]:
        """Every logged move of ``@champion`` (promotions that moved it, sets, rollbacks) in
        any experiment, newest first. Moves made outside ``smp`` (MLflow's UI) are not here."""
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        model = f"params.model_name = '{self.name}'"
        runs = [
            *self._search_runs(
                experiments,
                f"{model} and tags.kind = 'promotion' and tags.promotion_decision = 'promoted'",
            ),
            *self._search_runs(experiments, f"{model} and tags.kind = '{MOVE_KIND}'"),
        ]
        moves = [_move_of(run) for run in runs]
        return sorted(moves, key=lambda move: move.at, reverse=True)

    def _search_runs(self, experiment_ids: list[str], filter_string: str) -> list[Any]:
        if not experiment_ids:
            return []
        found: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs(
                experiment_ids, filter_string, max_results=1000, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                return found

    # -- drift -----------------------------------------------------------------------------
    def log_reference_profile(self, run_id: str, profile: dict[str, Any]) -> None:
        """The training frame's reference profile, beside the model in its run."""
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / REFERENCE_PROFILE
            path.write_text(json.dumps(profile))
            self.client.log_artifact(run_id, str(path), artifact_path=DRIFT_DIR)

    def reference_profile(self, version: str) -> dict[str, Any] | None:
        """A version's reference profile; None for versions trained before profiles existed."""
        run_id = self.client.get_model_version(self.name, str(version)).run_id
        if not run_id:
            return None
        logged = {Path(a.path).name for a in self.client.list_artifacts(run_id, DRIFT_DIR)}
        if REFERENCE_PROFILE not in logged:
            return None
        with tempfile.TemporaryDirectory() as scratch:
            local = self.client.download_artifacts(
                run_id, f"{DRIFT_DIR}/{REFERENCE_PROFILE}", scratch
            )
            profile: dict[str, Any] = json.loads(Path(local).read_text())
        return profile

    def _log_drift_artifacts(self, run_id: str, report: DriftReport) -> None:

        with tempfile.TemporaryDirectory() as scratch:
            for path in write_artifacts(report, Path(scratch)):
                self.client.log_artifact(run_id, str(path), artifact_path=DRIFT_DIR)
        for key, value in report.metrics().items():
            self.client.log_metric(run_id, key, value)

    def record_drift(self, report: DriftReport, *, tags: dict[str, str]) -> str:
        """A run of its own (tag ``kind=drift``) with the table, verdict and plot; its id."""
        experiment_id = self.experiment_id()
        run = self.client.create_run(
            experiment_id,
            run_name=f"drift-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}",
            tags={
                "kind": "drift",
                "drift_beyond_bound": str(report.beyond_bound).lower(),
                "drift_summary": report.summary()[:5000],
                **tags,
            },
        )
        run_id = str(run.info.run_id)
        params = {
            "psi_bound": report.psi_bound,
            "max_drifted_share": report.max_drifted_share,
            "min_posts": report.min_posts,
            "ignored": ",".join(report.ignored) or "-",
        }
        for key, param in params.items():
            self.client.log_param(run_id, key, param)
        self._log_drift_artifacts(run_id, report)
        self.client.set_terminated(run_id)
        return run_id

    def latest_drift(self, out_dir: Path) -> tuple[Any, Path] | None:
        """The newest drift run and its artifacts downloaded to ``out_dir``; None if none."""
        experiment = self.client.get_experiment_by_name(self.settings.train.experiment)
        if experiment is None:
            return None
        runs = self.client.search_runs(
            [experiment.experiment_id],
            "tags.kind = 'drift'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            return None
        run = runs[0]
        out_dir.mkdir(parents=True, exist_ok=True)
        local = self.client.download_artifacts(run.info.run_id, DRIFT_DIR, str(out_dir))
        return run, Path(local)
