"""Real encoder architectures with random weights, for throughput runs on a machine without them.

A GPU machine that cannot reach a model hub or carry ~200 MB of weights can still measure the
platform's text and perplexity stages: throughput does not depend on weight values. Two steps:

    # here, where the packaged weights are installed: configs + tokenizers only (~3 MB, no weights)
    .venv/bin/python benchmarks/random_encoders.py skeleton .gpu/skeleton
    # there: the same architectures, seeded random init, saved as loadable model directories
    python3 benchmarks/random_encoders.py build .gpu/skeleton /tmp/random-encoders
    SMP_ENCODERS__TEXT_MODEL=local-dir:/tmp/random-encoders/text \\
    SMP_ENCODERS__PERPLEXITY_MODEL=local-dir:/tmp/random-encoders/lm \\
        python3 benchmarks/encoders.py --device cuda

The image stages need nothing of this: ``encoders.py --random-weights ARCH`` builds open_clip's
architectures directly. Never point a platform data dir at these models: their features are noise
(DESIGN.md: random weights are for fixtures and throughput only).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the sentence-transformers layout of all-MiniLM-L6-v2, weights excluded
TEXT_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "1_Pooling/config.json",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def skeleton(out: Path) -> None:
    """Write the configured text model's and LM's configs and tokenizers (no weights) to ``out``."""
    from smp_platform.core.config import Settings, use_offline_environment
    from smp_platform.features.encoders import resolve_weights
    from smp_platform.features.perplexity import ensure_converted

    use_offline_environment()
    settings = Settings()
    text = resolve_weights(settings.encoders.text_model, setting="encoders.text_model").path
    lm = resolve_weights(settings.encoders.perplexity_model, setting="encoders.perplexity_model")
    assert text is not None and lm.path is not None, "packaged weights are not installed"
    lm_dir = lm.path
    if lm.path.suffix == ".gguf":
        lm_dir = ensure_converted(lm.path, settings.models_dir)
    for name in TEXT_FILES:
        target = out / "text" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(text / name, target)
    (out / "lm").mkdir(parents=True, exist_ok=True)
    for path in sorted(lm_dir.iterdir()):
        if path.is_file() and path.suffix not in WEIGHT_SUFFIXES and path.name != "README.md":
            shutil.copyfile(path, out / "lm" / path.name)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"skeleton of {text.name} and {lm_dir.name} in {out} ({total / 1e6:.1f} MB)")


def build(skeleton_dir: Path, out: Path, seed: int = 0) -> None:
    """Random-init the skeleton's architectures and save them as loadable directories."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    torch.manual_seed(seed)
    lm_config = AutoConfig.from_pretrained(skeleton_dir / "lm")
    lm = AutoModelForCausalLM.from_config(lm_config, dtype=torch.float32)
    shutil.copytree(skeleton_dir / "lm", out / "lm", dirs_exist_ok=True)
    lm.save_pretrained(out / "lm")
    text_config = AutoConfig.from_pretrained(skeleton_dir / "text")
    text = AutoModel.from_config(text_config)
    shutil.copytree(skeleton_dir / "text", out / "text", dirs_exist_ok=True)
    text.save_pretrained(out / "text")
    sizes = {n: sum(p.numel() for p in m.parameters()) for n, m in (("lm", lm), ("text", text))}
    print(json.dumps({"out": str(out), "parameters": sizes, "seed": seed}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("skeleton", help="configs + tokenizers of the configured encoders")
    make.add_argument("out", type=Path)
    grow = commands.add_parser("build", help="random-init models from a skeleton")
    grow.add_argument("skeleton", type=Path)
    grow.add_argument("out", type=Path)
    grow.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.command == "skeleton":
        skeleton(args.out)
    else:
        build(args.skeleton, args.out, args.seed)


if __name__ == "__main__":
    main()
