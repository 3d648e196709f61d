"""Scale: wall time and peak memory of each pipeline stage as the data grows 10x.

For each size a synthetic SMPD dataset (``smp_platform.testing.smpd_files``) is taken through
the tabular pipeline: ingest -> refresh (plan, compute+validate+write, materialize) -> train
(feature service ``popularity_tabular_v1``, text/perplexity switched off, image off anyway).
``--groups models`` adds the model groups (packaged MiniLM text embedding and SmolLM2
perplexity on the CPU, feature service ``popularity_v1``) and prints posts/s per feature group.
Every stage runs in its OWN fresh process (multiprocessing, spawn), so its peak RSS is that
process's ``ru_maxrss`` and nothing a previous stage allocated is counted. The modules a stage
needs are imported before its clock starts; the import time and the RSS after imports are
reported apart, so ``data MB`` (peak minus that baseline) is what the data itself costs.
The refresh calls the refresh verb stage by stage (``plan_refresh``, ``compute_batches``,
``finish_refresh``: what the Prefect flow runs), so no temporary Prefect API server is started
or timed.

    .venv/bin/python benchmarks/scale.py                                  # 10k, 100k
    .venv/bin/python benchmarks/scale.py --sizes 10000,100000,300000      # SMPD train: 305,613
    .venv/bin/python benchmarks/scale.py --work-dir /tmp/scale --keep     # keep the data dirs
    .venv/bin/python benchmarks/scale.py --groups models --sizes 10000    # + text, perplexity
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from smp_platform.core.config import use_offline_environment  # noqa: E402

use_offline_environment()

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "ingest", "plan", "compute", "materialize", "train")
# What each stage imports before its clock starts (constant cost, reported apart).
WARM_IMPORTS = {
    "generate": ("smp_platform.testing.smpd_files",),
    "ingest": (
        "smp_platform.pipeline.ingest",
        "smp_platform.sources",
        "smp_platform.infra.warehouse",
    ),
    "plan": (
        "smp_platform.pipeline.refresh",
        "smp_platform.infra.feast_store",
        "smp_platform.infra.warehouse",
        "smp_platform.features.encoders",
        "feast",
        "feature_repo",
    ),
    "compute": (
        "smp_platform.pipeline.refresh",
        "smp_platform.infra.feast_store",
        "smp_platform.infra.warehouse",
        "smp_platform.validation",
        "smp_platform.features.tabular",
        "feast",
        "feature_repo",
    ),
    "materialize": (
        "smp_platform.pipeline.refresh",
        "smp_platform.infra.feast_store",
        "feast",
        "feature_repo",
    ),
    "train": (
        "smp_platform.pipeline.train",
        "smp_platform.modeling.fit",
        "smp_platform.infra.mlflow_registry",
        "smp_platform.infra.feast_store",
        "catboost",
        "mlflow",
        "feast",
        "feature_repo",
    ),
}


def _rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _settings(job: dict[str, Any]) -> Any:
    from smp_platform.core.config import EncoderSettings, Settings, TrainSettings

    sized = {"refresh_batch_size": job["batch_size"]} if job["batch_size"] else {}
    if job["groups"] == "models":
        # the packaged text encoder and LM; image stays off (no CLIP weights exist here). The
        # converted LM is cached once for every size (model_cache_dir), not timed per size.
        service = "popularity_v1"
        encoders = EncoderSettings(device="cpu")
        sized["model_cache_dir"] = job["models_dir"]
    else:
        service = "popularity_tabular_v1"
        encoders = EncoderSettings(text_model=None, perplexity_model=None)
    return Settings(
        data_dir=Path(job["data_dir"]),
        **sized,
        feature_service=service,
        encoders=encoders,
        train=TrainSettings(iterations=job["iterations"]),
    )


def _run_stage(stage: str, job: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Do one stage; returns (rows it handled, what later stages need)."""
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # library noise per window
    settings = _settings(job)
    if stage == "generate":
        from smp_platform.testing.smpd_files import write_smpd_dataset

        write_smpd_dataset(Path(job["input_dir"]), job["n_posts"], seed=job["seed"])
        return job["n_posts"], {}
    if stage == "ingest":
        from smp_platform.pipeline.ingest import ingest

        settings.ensure_dirs()
        summary = ingest(settings, "smpd", Path(job["input_dir"]))
        print(f"    ingest: {summary}", flush=True)
        return summary.loaded, {}
    if stage == "plan":
        from smp_platform.pipeline.refresh import plan_refresh

        plan = plan_refresh(settings)
        print(
            f"    plan: stale {plan.stale}, {len(plan.batches)} batch(es); "
            f"off: {', '.join(plan.disabled)}",
            flush=True,
        )
        return sum(len(ids) for _, ids in plan.batches), {"plan": plan}
    if stage == "compute":
        from smp_platform.pipeline.refresh import compute_batches, now_utc

        plan = job["plan"]
        batches = plan.batches
        started = time.perf_counter()
        done = [0]
        # per feature group: posts and seconds (a batch's time is the gap since the last one;
        # the first batch of a model group includes loading the model)
        groups: dict[str, list[float]] = {}
        last = [started]

        def on_batch(group: str, n: int, result: Any) -> None:
            now = time.perf_counter()
            posts_s = groups.setdefault(group, [0, 0.0])
            posts_s[0] += n
            posts_s[1] += now - last[0]
            last[0] = now
            done[0] += 1
            if result.failures:
                raise RuntimeError(f"validation failures: {result.failures[:3]}")
            every = 1 if job["groups"] == "models" else max(1, len(batches) // 10)
            if done[0] == len(batches) or done[0] % every == 0:
                print(
                    f"    compute: batch {done[0]}/{len(batches)} ({group}, {n} posts) "
                    f"({time.perf_counter() - started:,.1f} s, RSS {_rss_mb():,.0f} MB)",
                    flush=True,
                )

        results = compute_batches(settings, plan, now_utc(), on_batch)
        for group, (posts, seconds) in groups.items():
            print(f"    compute {group}: {posts:,.0f} posts in {seconds:,.1f} s", flush=True)
        return sum(len(ids) for _, ids in batches), {"results": results, "groups": groups}
    if stage == "materialize":
        from smp_platform.pipeline.refresh import finish_refresh

        summary = finish_refresh(settings, job["plan"], job["results"])
        print(f"    materialize: {summary.materialized_windows} window(s)", flush=True)
        return job["n_posts"], {}
    if stage == "train":
        from smp_platform.pipeline.train import train_candidate

        outcome = train_candidate(settings)
        print(f"    train: {outcome}", flush=True)
        return outcome.n_train + outcome.n_valid, {"src": outcome.metrics["src"]}
    raise ValueError(stage)


def _child(stage: str, job: dict[str, Any], conn: Any) -> None:
    """Entry point of a stage's process: warm imports, run, report wall time and peak RSS."""
    import importlib

    sys.path.insert(0, str(REPO))
    try:
        t0 = time.perf_counter()
        for module in WARM_IMPORTS[stage]:
            importlib.import_module(module)
        import_s = time.perf_counter() - t0
        base_mb = _rss_mb()
        t1 = time.perf_counter()
        rows, extra = _run_stage(stage, job)
        wall = time.perf_counter() - t1
        conn.send(
            {
                "ok": True,
                "rows": rows,
                "wall_s": wall,
                "import_s": import_s,
                "base_mb": base_mb,
                "peak_mb": _peak_mb(),
                "extra": extra,
            }
        )
    except BaseException as exc:  # report, do not hang the parent
        import traceback

        conn.send(
            {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        )
    finally:
        conn.close()


def run_stage(stage: str, job: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(stage, job, child), name=f"scale-{stage}")
    proc.start()
    child.close()
    try:
        report = parent.recv()
    except EOFError:
        report = {
            "ok": False,
            "error": f"the {stage} process died (exit {proc.exitcode})",
            "trace": "",
        }
    proc.join()
    if not report["ok"]:
        raise SystemExit(f"{stage} failed: {report['error']}\n{report['trace']}")
    return report


def _fmt_rate(rows: int, wall: float) -> str:
    return f"{rows / wall:,.0f}" if wall > 0 else "-"


def growth_lines(rows: list[dict[str, Any]], sizes: list[int]) -> list[str]:
    """Per stage and pair of consecutive sizes: the factor per 10x data (n^b -> 10^b)."""
    out = []
    by_key = {(r["size"], r["stage"]): r for r in rows}
    for stage in STAGES:
        for small, large in zip(sizes, sizes[1:], strict=False):
            a, b = by_key.get((small, stage)), by_key.get((large, stage))
            if not a or not b:
                continue
            span = math.log10(large / small)

            def per10(x: float, y: float, span: float = span) -> str:
                if x <= 0 or y <= 0:
                    return "-"
                return f"x{(y / x) ** (1 / span):.2f}"

            out.append(
                f"{stage:<12} {small:>7,} -> {large:>7,}: time {per10(a['wall_s'], b['wall_s'])}, "
                f"peak RSS {per10(a['peak_mb'], b['peak_mb'])}, "
                f"data MB {per10(max(a['data_mb'], 1), max(b['data_mb'], 1))} per 10x data"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000", help="comma-separated post counts (default 10000,100000)"
    )
    parser.add_argument("--work-dir", type=Path, help="where data dirs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    parser.add_argument("--iterations", type=int, default=300, help="CatBoost iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--groups",
        choices=("tabular", "models"),
        default="tabular",
        help="tabular only, or with the model groups (text embedding + perplexity on the CPU; "
        "image is off without CLIP weights)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="posts per refresh batch (default: the settings' refresh_batch_size)",
    )
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]

    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, shutil.get_terminal_size().columns))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="smp-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    console.print(
        f"work dir {work}; refresh batch size {args.batch_size or 'default'}; "
        f"{os.cpu_count()} cores; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rows: list[dict[str, Any]] = []
    try:
        for n in sizes:
            base = work / f"n{n}"
            if base.exists():
                shutil.rmtree(base)
            job: dict[str, Any] = {
                "n_posts": n,
                "seed": args.seed,
                "iterations": args.iterations,
                "batch_size": args.batch_size,
                "groups": args.groups,
                "models_dir": str(work / "models"),
                "input_dir": str(base / "input"),
                "data_dir": str(base / "data"),
            }
            console.rule(f"{n:,} posts")
            for stage in STAGES:
                console.print(f"[bold]{stage}[/] ...")
                load = os.getloadavg()[0]
                report = run_stage(stage, job)
                job.update(report["extra"])
                row = {
                    "size": n,
                    "stage": stage,
                    "rows": report["rows"],
                    "wall_s": report["wall_s"],
                    "import_s": report["import_s"],
                    "base_mb": report["base_mb"],
                    "peak_mb": report["peak_mb"],
                    "data_mb": report["peak_mb"] - report["base_mb"],
                    "load": load,
                    "groups": report["extra"].get("groups", {}),
                }
                rows.append(row)
                console.print(
                    f"  {stage}: {row['wall_s']:,.1f} s, {_fmt_rate(row['rows'], row['wall_s'])}"
                    f" rows/s, peak RSS {row['peak_mb']:,.0f} MB (after imports "
                    f"{row['base_mb']:,.0f} MB; imports {row['import_s']:.1f} s)"
                )
            if not args.keep:
                shutil.rmtree(base, ignore_errors=True)
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    group_rows = [(r["size"], g, v) for r in rows for g, v in r.get("groups", {}).items()]
    if group_rows:
        print("\n| size | feature group | posts | s (incl. model load) | posts/s |")
        print("|---:|---|---:|---:|---:|")
        for size, group, (posts, seconds) in group_rows:
            print(
                f"| {size:,} | {group} | {posts:,.0f} | {seconds:,.1f} | {posts / seconds:,.1f} |"
            )
    table = Table(title=f"scale: {args.groups} pipeline, one process per stage")
    for name in (
        "size",
        "stage",
        "rows",
        "wall s",
        "rows/s",
        "peak RSS MB",
        "data MB",
        "imports s",
        "load 1m",
    ):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for r in rows:
        table.add_row(
            f"{r['size']:,}",
            r["stage"],
            f"{r['rows']:,}",
            f"{r['wall_s']:,.1f}",
            _fmt_rate(r["rows"], r["wall_s"]),
            f"{r['peak_mb']:,.0f}",
            f"{r['data_mb']:,.0f}",
            f"{r['import_s']:.1f}",
            f"{r['load']:.2f}",
        )
    console.print(table)
    console.print("[bold]growth[/] (factor per 10x data; x10 = linear, x1 = flat):")
    for line in growth_lines(rows, sizes):
        console.print("  " + line)
    # Markdown, for benchmarks/README.md
    print("\n| size | stage | wall s | rows/s | peak RSS MB | data MB |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['size']:,} | {r['stage']} | {r['wall_s']:,.1f} | "
            f"{_fmt_rate(r['rows'], r['wall_s'])} | {r['peak_mb']:,.0f} | {r['data_mb']:,.0f} |"
        )
    console.print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
