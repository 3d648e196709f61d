"""Encoder stages: posts/s of the platform's code vs a plain baseline on the same inputs.

    .venv/bin/python benchmarks/encoders.py --n 256

Text embedding: TextEncoder vs raw ``SentenceTransformer.encode``. Perplexity: PerplexityScorer
(bucketed, bounded, head on real tokens) vs a plain padded batch loop over the same model without
bucketing or bounds; values are compared on texts within the token bound, where they must match.
Image: a random *tiny* open_clip model on generated images (a fixture-model measurement: it shows
the pipeline's overhead and decode overlap, not real CLIP throughput) vs one-by-one raw calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from smp_platform.config import use_offline_environment  # noqa: E402

use_offline_environment()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from smp_platform.config import EncoderSettings, Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = [ROOT / "data/smp-video/train", ROOT.parent / "shared/data/smp-video/train"]
console = Console()


def load_texts(n: int) -> list[str]:
    for directory in DATA_DIRS:
        files = sorted(directory.glob("*posts*.jsonl"))
        if files:
            texts: list[str] = []
            with files[0].open(encoding="utf-8") as handle:
                for line in handle:
                    texts.append(json.loads(line).get("post_content") or "")
                    if len(texts) == n:
                        break
            console.print(f"[dim]{len(texts)} post texts from {files[0]}[/dim]")
            return texts
    raise SystemExit(f"no *posts*.jsonl under {', '.join(map(str, DATA_DIRS))}")


def timed(label: str, run: Callable[[], Any]) -> tuple[Any, float]:
    with console.status(f"{label} ..."):
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
    console.print(f"  {label}: {seconds:.2f}s")
    return result, seconds


def bench_text(texts: list[str], settings: EncoderSettings) -> dict[str, Any]:
    from smp_platform.features.text_embedding import TextEncoder

    encoder = TextEncoder.from_settings(settings)
    from sentence_transformers import SentenceTransformer

    from smp_platform.features.encoders import resolve_weights

    raw = SentenceTransformer(str(resolve_weights(settings.text_model, setting="x").path))
    raw.encode(texts[:8])  # warm both
    encoder.encode(texts[:8])
    base, base_s = timed(
        "text: raw SentenceTransformer.encode",
        lambda: raw.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True),
    )
    ours, ours_s = timed("text: TextEncoder.encode", lambda: encoder.encode(texts))
    return {
        "stage": "text embedding (MiniLM)",
        "base_s": base_s,
        "ours_s": ours_s,
        "diff": float(np.abs(np.asarray(base) - ours).max()),
    }


def plain_perplexity_loop(
    model: Any, tokenizer: Any, start_id: int, texts: list[str], batch_size: int
) -> np.ndarray:
    """The naive reference: input order, padded to the batch's longest text, no bound."""
    import torch

    out = np.full(len(texts), np.nan)
    with torch.inference_mode():
        for begin in range(0, len(texts), batch_size):
            chunk = texts[begin : begin + batch_size]
            ids = [[start_id, *tokenizer(t, add_special_tokens=False)["input_ids"]] for t in chunk]
            width = max(len(x) for x in ids)
            inputs = torch.full((len(ids), width), start_id)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for row, x in enumerate(ids):
                inputs[row, : len(x)] = torch.tensor(x)
                mask[row, : len(x)] = 1
            logits = model(input_ids=inputs, attention_mask=mask).logits[:, :-1]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            target = inputs[:, 1:]
            token_lp = logprobs.gather(-1, target[..., None])[..., 0]
            valid = mask[:, 1:].bool()
            sums = (token_lp * valid).sum(1)
            counts = valid.sum(1)
            for row, count in enumerate(counts.tolist()):
                if count:
                    out[begin + row] = -sums[row].item() / count
    return out


def bench_perplexity(texts: list[str], settings: EncoderSettings, models_dir: Path) -> dict:
    from smp_platform.features.perplexity import PerplexityScorer

    scorer, load_s = timed(
        "perplexity: load (converts the GGUF once)",
        lambda: PerplexityScorer.from_settings(models_dir, settings),
    )
    scorer.score(texts[:4])
    clean = [t if t.strip() else "" for t in texts]
    base, base_s = timed(
        "perplexity: plain padded batch loop (no bucketing, no bound)",
        lambda: plain_perplexity_loop(
            scorer.model, scorer.tokenizer, scorer.start_id, clean, settings.batch_size
        ),
    )
    ours, ours_s = timed("perplexity: PerplexityScorer.score", lambda: scorer.score(texts))
    full_lengths = np.array(
        [len(scorer.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in clean]
    )
    within = (full_lengths <= scorer.max_tokens) & (full_lengths > 0)
    diff = float(np.abs(ours.log_perplexity[within] - base[within]).max())
    console.print(
        f"  [dim]{within.sum()}/{len(texts)} texts within {scorer.max_tokens} tokens; "
        f"mean tokens {full_lengths.mean():.0f}, max {full_lengths.max()}[/dim]"
    )
    return {
        "stage": "perplexity (SmolLM2-135M f32)",
        "base_s": base_s,
        "ours_s": ours_s,
        "diff": diff,
        "note": "max |log ppl| diff on texts within the bound",
    }


def bench_images(n: int) -> dict:
    import open_clip
    import torch
    from PIL import Image

    from smp_platform.features.image_embedding import ImageEncoder

    torch.manual_seed(0)
    cfg = {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 64,
            "layers": 2,
            "width": 64,
            "head_width": 32,
            "patch_size": 16,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
        },
    }
    model = open_clip.CLIP(**cfg).eval()
    preprocess = open_clip.image_transform(64, is_train=False)
    tokenizer = open_clip.SimpleTokenizer(context_length=32)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(n):
            path = Path(tmp) / f"{i}.jpg"
            pixels = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
            paths.append(path)
        encoder = ImageEncoder(model, preprocess, tokenizer, encoder_id="clip:tiny-random@bench")

        def one_by_one() -> np.ndarray:
            rows = []
            with torch.inference_mode():
                for path in paths:
                    image = preprocess(Image.open(path).convert("RGB"))[None]
                    rows.append(model.encode_image(image, normalize=True)[0].numpy())
            return np.stack(rows)

        base, base_s = timed("image: one-by-one raw open_clip calls", one_by_one)
        ours, ours_s = timed(
            "image: ImageEncoder.encode_images", lambda: encoder.encode_images(paths)
        )
    return {
        "stage": "image embedding (tiny random CLIP fixture)",
        "base_s": base_s,
        "ours_s": ours_s,
        "diff": float(np.abs(np.stack(ours[0]) - base).max()),
        "note": "fixture-model measurement",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="post texts / images per stage")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="platform data dir (the converted LM is cached under its models/)",
    )
    parser.add_argument("--stages", default="text,perplexity,image")
    args = parser.parse_args()
    settings = Settings() if args.data_dir is None else Settings(data_dir=args.data_dir)
    enc = settings.encoders.model_copy(update={"device": "cpu"})
    import torch

    from smp_platform.features.encoders import configure_threads

    console.print(f"torch threads: {configure_threads(enc)}; device: cpu")
    texts = load_texts(args.n)
    rows = []
    stages = set(args.stages.split(","))
    if "text" in stages:
        rows.append(bench_text(texts, enc))
    if "perplexity" in stages:
        rows.append(bench_perplexity(texts, enc, settings.models_dir))
    if "image" in stages:
        rows.append(bench_images(min(args.n, 256)))
    table = Table(title=f"encoder stages, n={len(texts)}, {torch.get_num_threads()} threads")
    for column in ("stage", "baseline posts/s", "ours posts/s", "ratio", "max abs diff", "note"):
        table.add_column(column)
    for row in rows:
        n = len(texts) if "image" not in row["stage"] else min(args.n, 256)
        table.add_row(
            row["stage"],
            f"{n / row['base_s']:.1f}",
            f"{n / row['ours_s']:.1f}",
            f"{row['base_s'] / row['ours_s']:.2f}x",
            f"{row['diff']:.2e}",
            row.get("note", ""),
        )
    console.print(table)
    summary = ", ".join(
        f"{r['stage'].split(' (')[0]} {r['base_s'] / r['ours_s']:.2f}x" for r in rows
    )
    console.print(f"speed-up vs baseline: {summary}")


if __name__ == "__main__":
    main()
