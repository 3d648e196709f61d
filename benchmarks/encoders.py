"""Encoder stages: items/s of the platform's stage code vs a plain loop on the same device.

    .venv/bin/python benchmarks/encoders.py                      # CPU, small sizes (make bench)
    .venv/bin/python benchmarks/encoders.py --device cuda        # issue 9's GPU table
    .venv/bin/python benchmarks/encoders.py --device cuda --random-weights ViT-B-32,ViT-L-14 \
        --texts 4000 --images 2000

A GPU host without the text and LM weights: ``benchmarks/random_encoders.py`` builds both
architectures with random weights from a 4 MB skeleton (see its docstring).

Stage ``limit`` (issue 19): the text and LM towers, today's path (SentenceTransformer.encode in
float32; the LM in float32) and the platform's (``encoders.precision``: bf16 on a CPU with native
bf16), each as FLOPs per text (counted from the architecture and the real token lengths of the
bundled posts), items/s and the share of the machine's limit at its precision (a 2048^2 GEMM
measured in the same run).

Stages (issue 9's table), each beside a plain baseline on the same device, in the same run:

- perplexity, 32- and 128-token bound: ``PerplexityScorer`` (length buckets, device-aware token
  budget, head on real tokens, TF32 on CUDA) vs a plain padded float32 loop of 32 texts per batch
  over full texts. Agreement: max |log ppl| difference on texts within the bound.
- text, MiniLM: ``TextEncoder`` (device-aware batch, bf16 weights on CUDA) vs
  ``SentenceTransformer.encode(batch_size=32)`` in float32. Agreement: min cosine.
- image, CLIP ``ARCH`` with random weights (``--random-weights``: the real architecture from
  ``open_clip.create_model(ARCH, pretrained=None)``; throughput does not depend on weight values,
  and no CLIP weights can be downloaded here): ``ImageEncoder.encode_images`` on 640x480 JPEGs
  (tensor decode + preprocess, nvJPEG on CUDA, bf16) vs a plain loop (PIL open + open_clip's
  preprocess, float32 forward, 32 per batch). Also printed: the bare forward on pre-decoded
  tensors (the ceiling). Agreement: min cosine of the project's embeddings vs the plain fp32 ones
  (covers tensor-vs-PIL preprocessing and bf16-vs-fp32).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from smp_platform.core.config import use_offline_environment  # noqa: E402

use_offline_environment()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from smp_platform.core.config import EncoderSettings, Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = [ROOT / "data/smp-video/train", ROOT.parent / "shared/data/smp-video/train"]
PLAIN_BATCH = 32  # the plain loops' batch: the old default for every encoder
console = Console(width=180)


def load_texts(n: int) -> list[str]:
    """``n`` real post texts from the bundled SMP-Video sample (cycled when n is larger)."""
    for directory in DATA_DIRS:
        files = sorted(directory.glob("*posts*.jsonl"))
        if files:
            texts: list[str] = []
            with files[0].open(encoding="utf-8") as handle:
                for line in handle:
                    texts.append(json.loads(line).get("post_content") or "")
            console.print(f"[dim]{min(n, len(texts))} distinct post texts from {files[0]}[/dim]")
            return [texts[i % len(texts)] for i in range(n)]
    raise SystemExit(f"no *posts*.jsonl under {', '.join(map(str, DATA_DIRS))}")


def write_jpegs(directory: Path, n: int) -> list[Path]:
    """``n`` 640x480 JPEGs cut from the photographs installed packages ship (real image content)."""
    import matplotlib
    import sklearn.datasets
    from PIL import Image

    sources = [
        Path(sklearn.datasets.__file__).parent / "images" / "china.jpg",
        Path(sklearn.datasets.__file__).parent / "images" / "flower.jpg",
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    ]
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sources if p.is_file()]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        top, left = rng.integers(0, h // 4), rng.integers(0, w // 4)
        crop = photo[top : top + 3 * h // 4, left : left + 3 * w // 4]
        if i % 2:
            crop = crop[:, ::-1]
        path = directory / f"{i:05d}.jpg"
        Image.fromarray(np.ascontiguousarray(crop)).resize((640, 480)).save(path, quality=90)
        paths.append(path)
    return paths


class Clock:
    """Wall time of a call, synchronising the GPU so queued kernels are counted."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def __call__(self, label: str, run: Callable[[], Any]) -> tuple[Any, float]:
        import torch

        with console.status(f"{label} ..."):
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            result = run()
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
        console.print(f"  {label}: {seconds:.2f}s")
        return result, seconds


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """The plain baselines run in true float32 even after a project stage turned TF32 on."""
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def row(stage: str, n: int, ours_s: float, base_s: float, base: str, agree: str, note: str = ""):
    return {
        "stage": stage,
        "n": n,
        "ours": n / ours_s,
        "base": n / base_s,
        "baseline": base,
        "agreement": agree,
        "note": note,
    }


# --- perplexity -------------------------------------------------------------------------------


def plain_perplexity_loop(
    model: Any, tokenizer: Any, start_id: int, texts: list[str], batch_size: int, device: Any
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
            for r, x in enumerate(ids):
                inputs[r, : len(x)] = torch.tensor(x)
                mask[r, : len(x)] = 1
            inputs, mask = inputs.to(device), mask.to(device)
            logits = model(input_ids=inputs, attention_mask=mask).logits[:, :-1]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            token_lp = logprobs.gather(-1, inputs[:, 1:, None])[..., 0]
            valid = mask[:, 1:].bool()
            sums = (token_lp * valid).sum(1).cpu()
            counts = valid.sum(1).cpu()
            for r, count in enumerate(counts.tolist()):
                if count:
                    out[begin + r] = -sums[r].item() / count
    return out


def bench_perplexity(
    texts: list[str], enc: EncoderSettings, models_dir: Path, bounds: list[int], clock: Clock
) -> list[dict]:
    from smp_platform.features.perplexity import PerplexityScorer

    rows, base, base_s = [], None, 0.0
    for bound in bounds:
        settings = enc.model_copy(update={"perplexity_max_tokens": bound})
        scorer, _ = clock(
            f"perplexity: load, bound {bound} (converts the GGUF once)",
            lambda s=settings: PerplexityScorer.from_settings(models_dir, s),
        )
        scorer.score(texts[:8])
        clean = [t if t.strip() else "" for t in texts]
        if base is None:  # the plain loop has no bound: one run serves every bound
            with strict_fp32():
                plain_perplexity_loop(
                    scorer.model, scorer.tokenizer, scorer.start_id, clean[:8], 8, scorer.device
                )
                base, base_s = clock(
                    f"perplexity: plain padded fp32 loop, batch {PLAIN_BATCH}, full texts",
                    lambda s=scorer, c=clean: plain_perplexity_loop(
                        s.model, s.tokenizer, s.start_id, c, PLAIN_BATCH, s.device
                    ),
                )
        ours, ours_s = clock(
            f"perplexity: PerplexityScorer.score (budget {scorer.token_budget} tokens)",
            lambda s=scorer: s.score(texts),
        )
        full = np.array(
            [len(scorer.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in clean]
        )
        within = (full <= bound) & (full > 0)
        diff = (
            float(np.abs(ours.log_perplexity[within] - base[within]).max())
            if within.any()
            else np.nan
        )
        rows.append(
            row(
                f"perplexity, {bound}-token bound",
                len(texts),
                ours_s,
                base_s,
                f"padded loop, batch {PLAIN_BATCH}",
                f"max |dlog ppl| {diff:.1e} ({int(within.sum())} texts within bound)",
                f"budget {scorer.token_budget}; mean {full.mean():.0f} tokens, max {full.max()}",
            )
        )
    return rows


# --- text -------------------------------------------------------------------------------------


def bench_text(texts: list[str], enc: EncoderSettings, device: Any, clock: Clock) -> dict:
    from sentence_transformers import SentenceTransformer

    from smp_platform.features.encoders import resolve_weights
    from smp_platform.features.text_embedding import TextEncoder

    raw = SentenceTransformer(
        str(resolve_weights(enc.text_model, setting="encoders.text_model").path), device=str(device)
    )
    # Warm-up on every text, both sides: each new padded length is a new kernel shape, and on an
    # H100 the first full pass of TextEncoder ran at 2,048 texts/s against 4,494-4,986 after it.
    # A nightly run encodes hundreds of batches, so the steady state is the figure that counts.
    with strict_fp32():
        raw.encode(texts, batch_size=PLAIN_BATCH)
        base, base_s = clock(
            f"text: SentenceTransformer.encode fp32, batch {PLAIN_BATCH}",
            lambda: raw.encode(texts, batch_size=PLAIN_BATCH, normalize_embeddings=True),
        )
    encoder = TextEncoder.from_settings(enc)
    encoder.encode(texts)
    ours, ours_s = clock("text: TextEncoder.encode", lambda: encoder.encode(texts))
    cosine = (np.asarray(base, dtype=np.float64) * ours).sum(axis=1)
    return row(
        "text, MiniLM",
        len(texts),
        ours_s,
        base_s,
        f"encode fp32, batch {PLAIN_BATCH}",
        f"min cosine {cosine.min():.6f}",
        f"batch {enc.text_batch_for(device.type)}, precision {enc.precision}",
    )


# --- the machine's limit ------------------------------------------------------------------


def gemm_peak(device: Any, dtype: Any, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of an n x n matrix product at ``dtype``, measured here: the limit a transformer
    forward (all matrix products, at these thread settings) can approach."""
    import torch

    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def transformer_flops(config: Any, tokens: np.ndarray, head_vocab: int = 0) -> float:
    """Mean FLOPs per text of a transformer forward over ``tokens`` real tokens each: 2 x the
    block's weights per token (attention projections, MLP), the attention products (4 x layers
    x tokens^2 x width) and, for an LM, the head on every real position (2 x vocab x width)."""
    width = int(config.hidden_size)
    layers = int(config.num_hidden_layers)
    mlp = int(config.intermediate_size)
    heads = int(config.num_attention_heads)
    kv = int(getattr(config, "num_key_value_heads", heads) or heads)
    kv_width = width * kv // heads
    gated = 3 if getattr(config, "hidden_act", "") in ("silu", "swiglu") else 2
    per_token = layers * (2 * width * width + 2 * width * kv_width + gated * width * mlp)
    t = tokens.astype(np.float64)
    flops = 2 * per_token * t + 4 * layers * width * t * t + 2 * head_vocab * width * t
    return float(flops.mean())


def bench_limits(texts: list[str], settings: Settings, device: Any, clock: Clock) -> list[dict]:
    """Each CPU-bound tower, today's path and the platform's, as a share of the machine's
    limit at its precision (GEMM peak measured in this run)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from smp_platform.features.encoders import resolve_weights, uses_bf16
    from smp_platform.features.perplexity import PerplexityScorer
    from smp_platform.features.text_embedding import TextEncoder

    enc = settings.encoders
    peaks = {"fp32": gemm_peak(device, torch.float32), "bf16": gemm_peak(device, torch.bfloat16)}
    console.print(
        f"  GEMM peak here: fp32 {peaks['fp32']:,.0f} GFLOP/s, bf16 {peaks['bf16']:,.0f} GFLOP/s"
    )
    ours_precision = "bf16" if uses_bf16(enc.precision) else "fp32"
    rows = []
    path = resolve_weights(enc.text_model, setting="encoders.text_model").path
    raw = SentenceTransformer(str(path), device=str(device))
    lengths = np.array([len(ids) for ids in raw.tokenizer(texts, truncation=True)["input_ids"]])
    flops = transformer_flops(raw[0].auto_model.config, lengths)
    raw.encode(texts[:64], batch_size=PLAIN_BATCH)
    _, today_s = clock(
        "limit: text, today's path (SentenceTransformer.encode fp32, batch 32)",
        lambda: raw.encode(texts, batch_size=PLAIN_BATCH, normalize_embeddings=True),
    )
    encoder = TextEncoder.from_settings(enc)
    encoder.encode(texts[:64])
    _, ours_s = clock(f"limit: text, TextEncoder ({ours_precision})", lambda: encoder.encode(texts))
    rows.append(_limit_row("text, MiniLM", texts, flops, today_s, ours_s, peaks, ours_precision))
    today = PerplexityScorer.from_settings(
        settings.models_dir, enc.model_copy(update={"precision": "fp32"})
    )
    tokens = np.array([len(t) for t in today.tokenize(texts)])
    lm_flops = transformer_flops(
        today.model.config, tokens[tokens > 0] + 1, head_vocab=today.model.config.vocab_size
    )
    today.score(texts[:32])
    _, today_s = clock("limit: perplexity, fp32 (today's numbers)", lambda: today.score(texts))
    ours = PerplexityScorer.from_settings(settings.models_dir, enc)
    ours.score(texts[:32])
    _, ours_s = clock(f"limit: perplexity ({ours_precision})", lambda: ours.score(texts))
    rows.append(
        _limit_row("perplexity, SmolLM2", texts, lm_flops, today_s, ours_s, peaks, ours_precision)
    )
    return rows


def _limit_row(
    name: str,
    texts: list[str],
    flops: float,
    today_s: float,
    ours_s: float,
    peaks: dict[str, float],
    precision: str,
) -> dict:
    today, ours = len(texts) / today_s, len(texts) / ours_s
    return {
        "encoder": name,
        "gflop_per_item": flops / 1e9,
        "today": today,
        "today_share": today * flops / 1e9 / peaks["fp32"],
        "ours": ours,
        "precision": precision,
        "ours_share": ours * flops / 1e9 / peaks[precision],
        "peak": peaks[precision],
        "ratio": ours / today,
    }


def print_limits(rows: list[dict], name: str) -> None:
    print(f"\nthe machine's limit ({name}; peak = a 2048^2 GEMM measured in this run)")
    print(
        "| encoder | GFLOP/item | today items/s | today share (fp32 peak) | platform items/s | "
        "precision | platform share (its peak) | ratio |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['encoder']} | {r['gflop_per_item']:.2f} | {r['today']:,.1f} | "
            f"{r['today_share']:.0%} | {r['ours']:,.1f} | {r['precision']} "
            f"({r['peak']:,.0f} GFLOP/s) | {r['ours_share']:.0%} | {r['ratio']:.2f}x |"
        )


# --- image ------------------------------------------------------------------------------------


def bench_image(
    arch: str, paths: list[Path], enc: EncoderSettings, device: Any, clock: Clock, first: bool
) -> list[dict]:
    import open_clip
    import torch
    from PIL import Image

    from smp_platform.features.encoders import autocast, autocast_dtype
    from smp_platform.features.image_embedding import ImageEncoder

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
    model = model.to(device).eval()
    tokenizer = open_clip.get_tokenizer(arch)

    def plain() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for begin in range(0, len(paths), PLAIN_BATCH):
                chunk = paths[begin : begin + PLAIN_BATCH]
                batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in chunk])
                out.append(model.encode_image(batch.to(device), normalize=True).float().cpu())
        return torch.cat(out).numpy()

    with strict_fp32():
        model.encode_image(torch.zeros(2, 3, *_input_size(model), device=device))
        base, base_s = clock(f"image {arch}: plain PIL + fp32 loop, batch {PLAIN_BATCH}", plain)

    encoder = ImageEncoder(
        model,
        preprocess,
        tokenizer,
        encoder_id=f"clip:{arch}-random@bench",
        device=device,
        batch_size=enc.image_batch_for(device.type),
        precision=enc.precision,
        image_decode=enc.image_decode,
    )
    encoder.encode_images(paths[: min(len(paths), 2 * encoder.batch_size)])  # warm-up
    (ours, reasons), ours_s = clock(
        f"image {arch}: ImageEncoder.encode_images (batch {encoder.batch_size})",
        lambda: encoder.encode_images(paths),
    )
    assert all(r is None for r in reasons), reasons[:3]
    cosine = (np.stack(ours).astype(np.float64) * base).sum(axis=1)

    # decode + preprocess alone (no model): the project's path vs PIL in as many threads
    def pil_in_threads() -> None:
        with ThreadPoolExecutor(encoder.decode_workers) as pool:
            list(pool.map(lambda p: preprocess(Image.open(p).convert("RGB")), paths))

    def project_decode() -> None:
        with ThreadPoolExecutor(encoder.decode_workers) as pool:
            for start, futures in encoder._prefetched_batches(pool, paths):
                prepared = [future.result() for future in futures]
                encoder._finish_batch(paths[start : start + len(prepared)], prepared)

    decode_rows = []
    if first:
        _, pil_s = clock(
            f"decode: PIL + open_clip preprocess, {encoder.decode_workers} threads", pil_in_threads
        )
        _, decode_s = clock("decode: ImageEncoder decode + preprocess", project_decode)
        decode_rows.append(
            row(
                "image decode + preprocess (no model)",
                len(paths),
                decode_s,
                pil_s,
                f"PIL in {encoder.decode_workers} threads",
                "see the image rows",
                f"{'nvJPEG, batched' if encoder.decode_on_device else 'libjpeg-turbo tensors'}, "
                f"{encoder.decode_workers} threads",
            )
        )

    # the ceiling: the bare forward on tensors already decoded and on the device
    dtype = autocast_dtype(device, enc.precision)
    sample = torch.stack(
        [preprocess(Image.open(p).convert("RGB")) for p in paths[: encoder.batch_size]]
    )
    sample = sample.to(device)
    repeats = max(1, len(paths) // len(sample))

    def forward_only() -> None:
        with torch.inference_mode(), autocast(device, dtype):
            for _ in range(repeats):
                model.encode_image(sample, normalize=True)

    _, forward_s = clock(f"image {arch}: bare forward on pre-decoded tensors", forward_only)
    forward_rate = repeats * len(sample) / forward_s
    return decode_rows + [
        row(
            f"image, {arch} (random weights)",
            len(paths),
            ours_s,
            base_s,
            f"PIL + fp32, batch {PLAIN_BATCH}",
            f"min cosine {cosine.min():.6f}",
            f"batch {encoder.batch_size}, {'bf16' if dtype else 'fp32'}, "
            f"{'nvJPEG' if encoder.decode_on_device else 'threads'} decode; "
            f"bare forward {forward_rate:,.0f}/s",
        )
    ]


def _input_size(model: Any) -> tuple[int, int]:
    size = model.visual.image_size
    return (size, size) if isinstance(size, int) else tuple(size)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--random-weights",
        default=None,
        help="comma-separated open_clip architectures for the image stages, random init "
        "(default: ViT-B-32 on CPU, ViT-B-32,ViT-L-14 on CUDA; 'none' skips images)",
    )
    # CPU defaults are small so that `make bench` stays short: the plain perplexity loop scores
    # full texts (up to 670 tokens) at ~1 text/s on 2 cores.
    parser.add_argument("--texts", type=int, help="post texts (default 16 on CPU, 4000 on CUDA)")
    parser.add_argument("--images", type=int, help="JPEGs (default 16 on CPU, 2000 on CUDA)")
    parser.add_argument(
        "--bounds", default=None, help="perplexity token bounds (default 32 on CPU, 32,128 on CUDA)"
    )
    parser.add_argument("--stages", default="limit,perplexity,text,image")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="platform data dir (the converted LM is cached under its models/)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--limit-texts", type=int, default=400, help="post texts of the limit stage"
    )
    args = parser.parse_args()
    gpu = args.device == "cuda"
    settings = Settings() if args.data_dir is None else Settings(data_dir=args.data_dir)
    enc = settings.encoders.model_copy(update={"device": args.device})
    import torch

    from smp_platform.features.encoders import configure_threads, select_device

    device = select_device(enc)
    threads = configure_threads(enc)
    name = torch.cuda.get_device_name(device) if gpu else f"cpu, {threads} threads"
    console.print(f"device: {name}; torch {torch.__version__}")
    clock = Clock(device)
    stages = set(args.stages.split(","))
    n_texts = args.texts or (4000 if gpu else 16)
    n_images = args.images or (2000 if gpu else 16)
    bounds = [int(b) for b in (args.bounds or ("32,128" if gpu else "32")).split(",")]
    archs = args.random_weights or ("ViT-B-32,ViT-L-14" if gpu else "ViT-B-32")
    rows: list[dict] = []
    texts = load_texts(n_texts) if stages & {"perplexity", "text", "limit"} else []
    limits = (
        bench_limits(load_texts(args.limit_texts), settings, device, clock)
        if "limit" in stages
        else []
    )
    if "perplexity" in stages:
        rows += bench_perplexity(texts, enc, settings.models_dir, bounds, clock)
    if "text" in stages:
        rows.append(bench_text(texts, enc, device, clock))
    if "image" in stages and archs.lower() != "none":
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_jpegs(Path(tmp), n_images)
            for index, arch in enumerate(archs.split(",")):
                rows += bench_image(arch.strip(), paths, enc, device, clock, first=index == 0)

    table = Table(title=f"encoder stages on {name}")
    for column in (
        "stage",
        "n",
        "project items/s",
        "plain items/s",
        "ratio",
        "plain",
        "agreement",
        "note",
    ):
        table.add_column(
            column, justify="right" if "/s" in column or column in ("n", "ratio") else "left"
        )
    for r in rows:
        table.add_row(
            r["stage"],
            str(r["n"]),
            f"{r['ours']:,.1f}",
            f"{r['base']:,.1f}",
            f"{r['ours'] / r['base']:.2f}x",
            r["baseline"],
            r["agreement"],
            r["note"],
        )
    console.print(table)
    print("\n| stage | n | project items/s | plain items/s | ratio | agreement | note |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['stage']} | {r['n']} | {r['ours']:,.1f} | {r['base']:,.1f} | "
            f"{r['ours'] / r['base']:.2f}x | {r['agreement']} | {r['note']} |"
        )
    if limits:
        print_limits(limits, name)
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows, "limits": limits}, indent=2))


if __name__ == "__main__":
    main()
