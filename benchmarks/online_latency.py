"""Online lookup latency: the HTTP endpoint vs a bare Feast ``get_online_features`` call.

Both read the same posts through the champion's feature service, in the same process, so the
ratio is the cost of the service (HTTP, model, JSON) over the feature read alone.

    .venv/bin/python benchmarks/online_latency.py                      # builds a small platform
    .venv/bin/python benchmarks/online_latency.py --data-dir .smp-demo # after `make demo`
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from smp_platform.config import use_offline_environment  # noqa: E402

use_offline_environment()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50_ms": pick(0.50) * 1e3,
        "p99_ms": pick(0.99) * 1e3,
        "mean_ms": statistics.fmean(ordered) * 1e3,
        "rps": len(ordered) / sum(ordered),
    }


def build_platform(root: Path):  # type: ignore[no-untyped-def]
    """A tabular-only platform on 800 bundled posts (model groups off: this measures serving)."""
    from smp_platform.config import EncoderSettings, Settings, TrainSettings
    from smp_platform.demo import BUNDLED_TRAIN
    from smp_platform.ingest import ingest, slice_smp_video
    from smp_platform.promote import promote_candidate
    from smp_platform.refresh import refresh
    from smp_platform.train import train_candidate

    settings = Settings(
        data_dir=root,
        feature_service="popularity_tabular_v1",
        encoders=EncoderSettings(text_model=None, perplexity_model=None),
        train=TrainSettings(iterations=300),
    )
    settings.ensure_dirs()
    subset = slice_smp_video(BUNDLED_TRAIN, root / "input", 800)
    ingest(settings, "smp-video", subset)
    refresh(settings)
    outcome = train_candidate(settings)
    promote_candidate(settings, outcome.version)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir with a @champion")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()

    import httpx

    from smp_platform.config import Settings
    from smp_platform.registry import ModelRegistry
    from smp_platform.service.runner import running_service
    from smp_platform.store import FeatureStoreGateway
    from smp_platform.warehouse import Warehouse

    if args.data_dir:
        settings = Settings(data_dir=args.data_dir)
    else:
        print("building a small tabular-only platform (800 posts) ...", flush=True)
        settings = build_platform(Path(tempfile.mkdtemp(prefix="smp-bench-")))
    found = ModelRegistry(settings).champion()
    if found is None:
        raise SystemExit(f"no @champion in {settings.root}: run `make demo` or omit --data-dir")
    version, service = found
    with Warehouse(settings.warehouse_path, read_only=True) as warehouse:
        post_ids = warehouse.posts_frame()["post_id"].tolist()
    sequence = [post_ids[i % len(post_ids)] for i in range(args.requests)]

    gateway = FeatureStoreGateway(settings)
    feature_service = gateway.feature_service(service)
    store = gateway.store
    for pid in sequence[: args.warmup]:
        store.get_online_features(
            features=feature_service, entity_rows=[{"post_id": pid}]
        ).to_dict()
    bare = []
    for pid in sequence:
        start = time.perf_counter()
        store.get_online_features(
            features=feature_service, entity_rows=[{"post_id": pid}]
        ).to_dict()
        bare.append(time.perf_counter() - start)

    http = []
    with running_service(settings, poll_seconds=5.0) as url, httpx.Client() as client:
        for pid in sequence[: args.warmup]:
            client.get(f"{url}/v1/posts/{pid}/popularity").raise_for_status()
        for pid in sequence:
            start = time.perf_counter()
            client.get(f"{url}/v1/posts/{pid}/popularity").raise_for_status()
            http.append(time.perf_counter() - start)

    b, h = _percentiles(bare), _percentiles(http)
    print(
        f"\nonline lookup, {args.requests:,} requests over {len(post_ids):,} posts, "
        f"model version {version}, feature service {service}"
    )
    print(f"{'':34}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}")
    for label, row in (("bare Feast get_online_features", b), ("GET /v1/posts/{id}/popularity", h)):
        print(f"{label:34}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['rps']:>10.0f}")
    print(
        f"ratio endpoint / bare Feast: p50 {h['p50_ms'] / b['p50_ms']:.2f}x, "
        f"p99 {h['p99_ms'] / b['p99_ms']:.2f}x, throughput {h['rps'] / b['rps']:.2f}x"
    )


if __name__ == "__main__":
    main()
