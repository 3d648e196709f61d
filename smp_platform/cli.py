"""The ``smp`` command line: a contract others script against.

Every heavy import (torch, Feast, MLflow, Prefect) happens inside a command, so ``smp --help``
answers at once. Exit codes: 0 done; 1 the work ran and failed (a refresh with failed batches:
what was good is stored, the rest is retried next run); 2 a usage error, or the data dir held
by another writer for longer than ``lock_timeout_s``. Tracebacks are bugs.

Every writing command holds the data dir's writer lock (:mod:`smp_platform.core.locking`) for its
whole run; ``serve`` never takes it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from smp_platform.core.formats import DEFAULT_FORMAT, FORMATS, SourceFormat

DEFAULT_SOURCE_FORMAT = SourceFormat(DEFAULT_FORMAT)
FORMAT_OPTION = typer.Option(
    "--format", help=f"Input format: {', '.join(FORMATS)} (smp_platform/core/formats.py)."
)

app = typer.Typer(
    name="smp",
    help="Predict the popularity of social media posts: ingest, refresh features, train, "
    "promote, predict and serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class State:
    data_dir: Path | None = None


def _settings():  # type: ignore[no-untyped-def]
    from smp_platform.core.config import Settings
    from smp_platform.core.logs import use_log_format

    _quiet_environment()
    overrides = {"data_dir": State.data_dir} if State.data_dir else {}
    settings = Settings(**overrides)
    # Before the command imports Prefect: its logging setup then keeps this root handler.
    use_log_format(settings.log_format)
    settings.ensure_dirs()
    return settings


def _writing(settings, command: str):  # type: ignore[no-untyped-def]
    """The data dir's writer lock for a writing command (waits, then exit 2 naming the holder)."""
    from smp_platform.core.locking import writer_lock

    return writer_lock(settings.root, command, settings.lock_timeout_s)


class _LibraryNoticeFilter:
    """Drops Deprecation/Future warnings that reach logging (Prefect captures warnings)."""

    def filter(self, record: object) -> bool:
        message = str(getattr(record, "getMessage", lambda: "")())
        return "DeprecationWarning" not in message and "FutureWarning" not in message


def _quiet_environment() -> None:
    import logging
    import os
    import warnings

    # Library deprecation notices (DuckDB 2 via ibis, SQLAlchemy via MLflow, GE, Prefect) say
    # nothing a user of the CLI can act on; our own warnings and errors still show. Child
    # processes (Prefect's temporary API server, Dask workers) inherit it through the env.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    warnings.filterwarnings("ignore", message=".*input example was not provided.*")
    for name in ("mlflow.pyfunc", "mlflow.models.utils"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Prefect routes warnings through the "py.warnings" logger, past the filters above.
    logging.getLogger("py.warnings").addFilter(_LibraryNoticeFilter())
    from smp_platform.core.config import use_offline_environment

    use_offline_environment()


@app.callback()
def main_options(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory (warehouse, offline/online store, "
            "MLflow). Default: SMP_DATA_DIR or ./.smp",
        ),
    ] = None,
) -> None:
    State.data_dir = data_dir


@app.command()
def ingest(
    path: Annotated[
        Path,
        typer.Argument(
            help="Dataset directory of the --format; with --push, a JSON file of one post or "
            "a list of them."
        ),
    ],
    fmt: Annotated[SourceFormat, FORMAT_OPTION] = DEFAULT_SOURCE_FORMAT,
    no_labels: Annotated[bool, typer.Option("--no-labels", help="Ignore label files.")] = False,
    push: Annotated[
        bool,
        typer.Option(
            "--push",
            help='Fresh posts, each as POST /v1/posts takes it ({"format": "smp-video", '
            '"post": {"pid": ..., ...}, "video": {...}}): stored and their request-time '
            "features pushed online, so the lookup answers before the nightly refresh.",
        ),
    ] = False,
) -> None:
    """Load posts, authors and labels into the warehouse (an idempotent upsert by post_id)."""
    settings = _settings()
    if push:
        import json

        from smp_platform.online.files import push_file

        with _writing(settings, "ingest --push"):
            results = push_file(settings, path)
        for result in results:
            typer.echo(json.dumps(result.body()))
        online = sum(r.online for r in results)
        typer.echo(f"ingest --push {path}: {len(results)} post(s) stored, {online} online")
        return
    from smp_platform.pipeline.ingest import ingest as ingest_dataset

    with _writing(settings, "ingest"):
        summary = ingest_dataset(settings, str(fmt), path, with_labels=not no_labels)
    typer.echo(f"ingest {path}: {summary}")


@app.command()
def refresh(
    dask: Annotated[
        bool,
        typer.Option(
            "--dask",
            help="Run feature batches on Dask (settings.dask_address, else a LocalCluster).",
        ),
    ] = False,
) -> None:
    """Compute, validate and store features of posts that have none (or stale ones), and put
    every stored row online. Exit 1 when a batch failed (the good ones are stored and online;
    the failed posts are retried by the next refresh)."""
    from smp_platform.pipeline.refresh import check_for_work, ready_groups, record_refresh

    settings = _settings()
    with _writing(settings, "refresh"):
        # Up to date: answer without starting Prefect or loading a model.
        check = check_for_work(settings)
        if not check.has_work:
            record_refresh(settings, None)
            typer.echo(f"refresh: {check}")
            return
        if check.online_gaps and not any(check.stale.values()):
            # Only the online store lacks rows (flushed, evicted, lost): put them back from
            # the offline store, no model and no Prefect needed.
            typer.echo(f"refresh: {_restore_online(settings)}")
            return
        # The groups with work loaded and checked before Prefect starts: a misdeclared group
        # says so here (exit 2), the flow then reuses the loaded models.
        ready_groups(settings, check.stale)
        from flows.refresh import run_refresh

        summary = run_refresh(settings, use_dask=dask, show_progress=sys.stderr.isatty())
    typer.echo(f"refresh: {summary}")


def _restore_online(settings) -> str:  # type: ignore[no-untyped-def]
    from smp_platform.pipeline.online_check import check_and_restore
    from smp_platform.pipeline.refresh import record_refresh

    before = time.perf_counter()
    coverage, restored = check_and_restore(settings)
    record_refresh(settings, None)
    rows = ", ".join(f"{v} {n:,}" for v, n in sorted(restored.items())) or "none"
    seconds = time.perf_counter() - before
    return f"online store restored from the offline store ({rows}) in {seconds:.1f} s; {coverage}"


@app.command()
def materialize(
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Write every post's latest offline row online again (a new or replaced "
            "online store), not only the parts and rows the online store lacks.",
        ),
    ] = False,
) -> None:
    """Put the offline store's rows online: parts not materialized yet, then every row the
    online store lacks (checked post by post); with --full, every row again. Then check."""
    from smp_platform.pipeline.materialize import materialize_pending

    settings = _settings()
    with _writing(settings, "materialize"):
        windows = materialize_pending(settings)
        typer.echo(f"materialize: {windows} window(s) of new parts")
        if full:
            from smp_platform.pipeline.online_check import rebuild_online

            before = time.perf_counter()
            written = rebuild_online(settings, on_chunk=_chunk_progress)
            rows = ", ".join(f"{v} {n:,}" for v, n in sorted(written.items())) or "none"
            took = time.perf_counter() - before
            typer.echo(f"materialize --full: rows written online ({rows}) in {took:.1f} s")
        typer.echo(f"materialize: {_restore_online(settings)}")


def _chunk_progress(view: str, done: int, total: int) -> None:
    typer.echo(f"  {view}: {done:,}/{total:,} posts", err=True)


@app.command()
def train() -> None:
    """Train a candidate from the offline store and register it in MLflow."""
    from flows.train import run_train

    settings = _settings()
    with _writing(settings, "train"):
        result = run_train(settings)
    typer.echo(f"train: {result}")


@app.command()
def tune(
    trials: Annotated[int, typer.Option(help="Recipes to try (the first is the one in use).")] = 6,
    folds: Annotated[int, typer.Option(help="Time-ordered folds inside the training posts.")] = 2,
) -> None:
    """Search the training recipe (loss, depth, learning rate, L2, rounds, feature views) on
    time-ordered folds of the training posts; each trial is a child MLflow run, and the best
    recipe is saved to <data dir>/recipe.json, which `smp train` then uses."""
    from smp_platform.pipeline.tune import tune as run_tune

    outcome = run_tune(_settings(), n_trials=trials, n_folds=folds)
    typer.echo(f"tune: {outcome}")


@app.command()
def promote(
    version: Annotated[
        str | None, typer.Option(help="Candidate version (default: latest).")
    ] = None,
) -> None:
    """Make the candidate @champion if it beats the current champion on the same posts."""
    from flows.promote import run_promote

    settings = _settings()
    with _writing(settings, "promote"):
        decision = run_promote(settings, version)
    typer.echo(f"promote: {decision}")


@app.command()
def predict(
    input_path: Annotated[Path, typer.Option("--input", help="Dataset directory to predict.")],
    output: Annotated[Path, typer.Option("--output", help="CSV file: post_id,popularity.")],
    fmt: Annotated[SourceFormat, FORMAT_OPTION] = DEFAULT_SOURCE_FORMAT,
) -> None:
    """Batch prediction: load the posts (no labels), compute their features, predict."""
    from smp_platform.pipeline.predict import predict_batch

    settings = _settings()
    with _writing(settings, "predict"):
        n = predict_batch(settings, str(fmt), input_path, output)
    typer.echo(f"predict: {n:,} posts -> {output}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    poll_seconds: Annotated[float, typer.Option(help="How often to re-check @champion.")] = 5.0,
    workers: Annotated[
        int, typer.Option(help="Worker processes (one per core serves the most requests/s).")
    ] = 1,
    shutdown_seconds: Annotated[
        float, typer.Option(help="On SIGTERM, how long in-flight requests may finish.")
    ] = 5.0,
) -> None:
    """Serve the popularity lookups, /healthz, /readyz and /metrics."""
    from smp_platform.service.app import serve as run_service

    run_service(
        _settings(),
        host=host,
        port=port,
        poll_seconds=poll_seconds,
        workers=workers,
        shutdown_seconds=shutdown_seconds,
    )


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port.")] = 8888,
    host: Annotated[
        str,
        typer.Option(
            help="Bind address. The UI has no authentication: another address than 127.0.0.1 "
            "only inside a private network (a container behind its own port mapping)."
        ),
    ] = "127.0.0.1",
) -> None:
    """Feast's web UI over this data dir's feature store (views, feature services, their
    descriptions and tags), on 127.0.0.1 by default: it has no authentication. Ctrl-C stops
    it."""
    from smp_platform.pipeline.ui import exec_feast_ui, ui_url

    settings = _settings()
    typer.echo(f"Feast UI of {settings.feast_dir}: {ui_url(port, host)} (Ctrl-C stops it)")
    exec_feast_ui(settings, port, host)


@app.command()
def evaluate(
    folds: Annotated[
        int, typer.Option(help="Time folds: 1 the newest posts, 2 also the ones before them.")
    ] = 1,
    feature_service: Annotated[
        str | None,
        typer.Option(help="Feature service to read (default: the configured one)."),
    ] = None,
) -> None:
    """The paper's ablation (one model per feature set, one row per feature group's stage) on
    the time-split validation posts: prints SRC/MAE per row and logs them to MLflow."""
    from smp_platform.pipeline.evaluate import evaluate as run_evaluation

    settings = _settings()
    with _writing(settings, "evaluate"):  # logs runs to the data dir's MLflow store
        result = run_evaluation(settings, folds=folds, feature_service=feature_service)
    typer.echo(result)


@app.command()
def score(
    input_path: Annotated[
        Path,
        typer.Option(
            "--input",
            help='Draft JSON: {"format": "smp-video", "post": {...}, "video": {...}} '
            'or {"format": "smpd", "text": {...}, "temporalspatial_information": {...}}.',
        ),
    ],
    explain: Annotated[
        bool, typer.Option("--explain", help="Add the SHAP contributions by feature view.")
    ] = False,
    best_time: Annotated[
        bool, typer.Option("--best-time", help="Add the predictions at each of the next 48 hours.")
    ] = False,
) -> None:
    """Score a post that is not published yet (as POST /v1/popularity:score); prints JSON."""
    import json

    from smp_platform.online.files import score_file

    body = score_file(_settings(), input_path, explain=explain, best_time=best_time)
    typer.echo(json.dumps(body, indent=2))


@app.command()
def report(
    draft: Annotated[
        Path | None,
        typer.Option(
            "--draft", help="Instead: draw a draft's best-time curve (JSON as for `smp score`)."
        ),
    ] = None,
    drift_only: Annotated[
        bool,
        typer.Option(
            "--drift", help="Only show the latest refresh's feature drift (no figures, no model)."
        ),
    ] = False,
) -> None:
    """Write the paper's figures (PNG) to <data dir>/reports and log them to MLflow; then show
    the latest feature drift (a table, and the path of its plot)."""
    if draft is not None:
        from smp_platform.pipeline.report import write_draft_curve

        typer.echo(str(write_draft_curve(_settings(), draft)))
        return
    settings = _settings()
    if not drift_only:
        from smp_platform.pipeline.report import write_reports

        with _writing(settings, "report"):  # writes <data dir>/reports and logs to MLflow
            paths = write_reports(settings)
        for path in paths:
            typer.echo(str(path))
    _show_drift(settings)


def _show_drift(settings) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from smp_platform.pipeline.report import drift_lines

    shown, plot = drift_lines(settings)
    Console(width=max(120, Console().width)).print(shown)
    if plot is not None:
        typer.echo(f"drift plot: {plot}")


@app.command()
def deploy(
    cron: Annotated[str | None, typer.Option(help="Cron for the nightly refresh (UTC).")] = None,
    work_pool: Annotated[str, typer.Option(help="Prefect work pool.")] = "smp-pool",
) -> None:
    """Create the Prefect deployments: nightly refresh, then train + promote."""
    from flows.deployments import deploy_all

    for line in deploy_all(_settings(), cron=cron, work_pool=work_pool):
        typer.echo(line)


@app.command()
def demo(
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled SMP-Video directory (default: the bundled sample)."),
    ] = None,
    ablation: Annotated[bool, typer.Option(help="Also print the ablation table.")] = True,
) -> None:
    """The whole pipeline on the bundled data: ingest, refresh, train, promote, metrics, and
    an online prediction."""
    from smp_platform.demo import demo as run_demo

    settings = _settings()
    with _writing(settings, "demo"):
        run_demo(settings, data, with_ablation=ablation)


champion_app = typer.Typer(
    name="champion",
    help="Who holds @champion and since when, every move of it, and moving it by hand. "
    "The service follows any move within its poll interval.",
    no_args_is_help=True,
)
app.add_typer(champion_app, name="champion")
REASON_OPTION = typer.Option(
    "--reason", help="Why the alias moves: logged with the move (`smp champion history`)."
)


@champion_app.command("show")
def champion_show() -> None:
    """The @champion version: since when, why, its metrics and feature service."""
    from smp_platform.pipeline.champion import champion_status

    typer.echo(str(champion_status(_settings())))


@champion_app.command("history")
def champion_history() -> None:
    """Every move of @champion (promotion, set, rollback), newest first, with reason, scores."""
    from smp_platform.pipeline.champion import champion_history, history_text

    settings = _settings()
    typer.echo(history_text(champion_history(settings), settings.train.model_name))


@champion_app.command("set")
def champion_set(
    version: Annotated[str, typer.Argument(help="The registered version to make champion.")],
    reason: Annotated[str, REASON_OPTION],
) -> None:
    """Make VERSION @champion whatever the metrics say (e.g. the champion misbehaves)."""
    from smp_platform.pipeline.champion import move_summary, set_champion

    settings = _settings()
    with _writing(settings, "champion set"):
        move = set_champion(settings, version, reason)
    typer.echo(f"champion set: {move_summary(move)}")


@champion_app.command("rollback")
def champion_rollback(reason: Annotated[str, REASON_OPTION]) -> None:
    """Move @champion back to the version that held it before the current one."""
    from smp_platform.pipeline.champion import move_summary, rollback_champion

    settings = _settings()
    with _writing(settings, "champion rollback"):
        move = rollback_champion(settings, reason)
    typer.echo(f"champion rollback: {move_summary(move)}")


def main() -> None:
    from smp_platform.core.errors import SourceError, UserError

    try:
        app()
    except (UserError, SourceError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
