"""Perplexity of post text under a causal language model (the paper's fluency signal).

Definition: the text is tokenised without special tokens, truncated to
``perplexity_max_tokens`` tokens, and a document-start token is prepended (``<|endoftext|>`` when
the vocabulary has it, which is what SmolLM2 and GPT-2 saw between documents, else BOS, else EOS)
so that even a one-token text has a prediction. ``log_perplexity`` is the mean negative
log-likelihood (nats) of the text tokens given their prefix, ``perplexity = exp(log_perplexity)``
and ``text_token_count`` the number of tokens scored. An empty (or whitespace-only) text has no
tokens: perplexity and log_perplexity are NaN and the count is 0.

Speed on CPU without changing results:
- identical texts are scored once;
- texts are grouped by a padded width of their own (powers of two up to the bound: the
  same text scores the same bits in any batch, bf16 included) and batched by a token budget,
  so padding is small, and results are put back in input order;
- right padding: under a causal mask no real token attends to a pad, so the pads cannot change
  any real token's prediction;
- the LM head runs only on real positions (not on pads), and the loss is gathered with
  ``cross_entropy(reduction="none")``: no full-vocabulary log-softmax tensor for the batch;
- ``torch.inference_mode`` and a deliberate intra-op thread count.
On CUDA the token budget is 32k (``EncoderSettings.token_budget_for``) and matmuls use TF32; the
LM runs under bf16 autocast on a CPU with native bf16 (``encoders.precision = "auto"``) or when
``precision = "bf16"``, float32 otherwise (the identity says which).
The default model is the packaged SmolLM2-135M-Instruct GGUF, converted once to a float32
directory under ``models_dir`` (guarded by a file lock and an atomic rename).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from smp_platform.features.encoders import (
    EncoderUnavailable,
    Precision,
    ResolvedWeights,
    autocast,
    bf16_linear_weights,
    configure_accelerator,
    configure_threads,
    encoder_id,
    precision_tag,
    resolve_weights,
    select_device,
    setting_hint,
    uses_bf16,
    weights_fingerprint,
    width_batches,
)

if TYPE_CHECKING:
    import torch

    from smp_platform.core.config import EncoderSettings

logger = logging.getLogger(__name__)

SETTING = "encoders.perplexity_model"
# Tokens per forward pass (batch rows x padded length) when none is given: the CPU default of
# EncoderSettings.token_budget_for (2,048 keeps activations cache-sized on a small CPU; CUDA
# takes 32k there).
DEFAULT_TOKEN_BUDGET = 2048
# Real positions per LM-head call: SmolLM2's 49,152-word head on a 32k-token GPU batch would be a
# 6.4 GB float32 logits tensor; chunks of 8,192 bound it to 1.6 GB and change no value.
HEAD_CHUNK_TOKENS = 8192
_MARKER = "smp-converted.txt"


# --- GGUF -> float32 directory ----------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float = 900.0) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (fcntl), so only one converts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: the atomic rename alone keeps the cache consistent
            yield
            return
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"waited {timeout_s:.0f}s for the lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    """Dequantise a GGUF checkpoint into a float32 transformers model + tokenizer.

    ``from_pretrained(gguf_file=...)`` needs ``accelerate``; building the model from the GGUF's
    config and loading the dequantised tensors does the same without it.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)["tensors"]
    result = model.load_state_dict(tensors, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise EncoderUnavailable(
            f"GGUF {gguf} does not match its architecture (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(result.unexpected_keys)[:3]})"
        )
    model.tie_weights()
    return model, tokenizer


def converted_dir(gguf: Path, models_dir: Path) -> Path:
    """Where the float32 conversion of ``gguf`` is cached (named by the GGUF's fingerprint)."""
    return Path(models_dir) / f"{gguf.stem}-{weights_fingerprint(gguf)}-f32"


def ensure_converted(gguf: Path, models_dir: Path) -> Path:
    """Convert ``gguf`` to a float32 directory once; concurrent callers wait and reuse it."""
    target = converted_dir(gguf, models_dir)
    if (target / _MARKER).is_file():
        return target
    with _file_lock(target.with_name(target.name + ".lock")):
        if (target / _MARKER).is_file():  # another process finished while we waited
            return target
        logger.info("converting %s to float32 under %s (once)", gguf.name, target)
        started = time.monotonic()
        model, tokenizer = _load_gguf(gguf)
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / _MARKER).write_text(f"converted from {gguf}\n")
            if target.exists():  # a stale, unmarked leftover of a killed run
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("converted in %.1fs", time.monotonic() - started)
    return target


# --- scorer -----------------------------------------------------------------------------------


def _document_start_id(tokenizer: Any) -> int:
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return int(vocab["<|endoftext|>"])
    for candidate in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    raise EncoderUnavailable("the perplexity tokenizer has no BOS/EOS token to start a text with")


def _split_head(model: Any, probe: torch.Tensor) -> tuple[Any, Any] | None:
    """(body, head) when ``head(body(x))`` reproduces the model's logits, else None.

    Running the head only on real positions needs the split; models that post-process logits
    (soft-capping, scaling) fail the check and are scored through their full forward.
    """
    import torch

    body, head = getattr(model, "base_model", None), model.get_output_embeddings()
    if body is None or body is model or head is None:
        return None
    with torch.inference_mode():
        full = model(input_ids=probe, use_cache=False).logits
        split = head(body(input_ids=probe, use_cache=False).last_hidden_state)
    return (body, head) if torch.allclose(full, split, rtol=1e-5, atol=1e-5) else None


@dataclass
class PerplexityScores:
    perplexity: np.ndarray  # float64, NaN for empty text
    log_perplexity: np.ndarray  # float64, NaN for empty text
    text_token_count: np.ndarray  # int64

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "perplexity": self.perplexity,
                "log_perplexity": self.log_perplexity,
                "text_token_count": self.text_token_count,
            }
        )


class PerplexityScorer:
    """Scores texts with a causal LM; see the module docstring for the exact definition."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        encoder_id: str,
        max_tokens: int = 128,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        device: torch.device | str = "cpu",
        precision: Precision = "auto",
    ) -> None:
        import torch

        self.device = torch.device(device)
        configure_accelerator(self.device, precision)  # TF32 on CUDA unless fp32
        # bf16 when asked for, or (auto) on a CPU with native bf16: 2.5x float32's texts/s
        # there, log-perplexity off by 0.012 on average (correlation 0.9999; bf16 weights were
        # faster by 8% but off by 0.05). On CUDA auto stays float32: the token budget, not the
        # dtype, was what left the GPU idle (issue 9).
        self.autocast_dtype = torch.bfloat16 if uses_bf16(precision) else None
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.encoder_id = encoder_id
        self.max_tokens = int(max_tokens)
        self.token_budget = int(token_budget)
        self.start_id = _document_start_id(tokenizer)
        self.pad_id = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.start_id
        )
        probe = torch.tensor([[self.start_id, self.start_id]], device=self.device)
        self._split = _split_head(self.model, probe)
        if self.autocast_dtype is not None and self.device.type == "cpu":
            bf16_linear_weights(self.model)  # the same numbers, cast once (not per call)

    @classmethod
    def identity(cls, settings: EncoderSettings) -> str:
        """The encoder_id the configured weights give, without loading them."""
        weights = resolve_weights(settings.perplexity_model, setting=SETTING)
        # the token bound changes the scores, so it is part of the encoder's identity
        name = f"causal-lm:{weights.name}:max{settings.perplexity_max_tokens}"
        return encoder_id(name, weights) + precision_tag(settings.precision)

    @classmethod
    def from_settings(cls, models_dir: Path, settings: EncoderSettings) -> PerplexityScorer:
        """Load ``settings.perplexity_model`` (packaged SmolLM2 by default) on the chosen device."""
        configure_threads(settings)
        weights = resolve_weights(settings.perplexity_model, setting=SETTING)
        model, tokenizer = _load_causal_lm(weights, Path(models_dir))
        device = select_device(settings)
        return cls(
            model,
            tokenizer,
            encoder_id=cls.identity(settings),
            max_tokens=settings.perplexity_max_tokens,
            token_budget=settings.token_budget_for(device.type),
            device=device,
            precision=settings.precision,
        )

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens, truncated to ``max_tokens``."""
        clean = [text if isinstance(text, str) else "" for text in texts]
        encoded = self.tokenizer(clean, add_special_tokens=False)["input_ids"]
        return [
            ids[: self.max_tokens] if text.strip() else []
            for ids, text in zip(encoded, clean, strict=True)
        ]

    def score(self, texts: Sequence[str]) -> PerplexityScores:
        """Perplexity, log-perplexity and scored token count per text, in input order."""
        unique: dict[str, int] = {}
        for text in texts:
            unique.setdefault(text if isinstance(text, str) else "", len(unique))
        token_ids = self.tokenize(list(unique))
        nll = self._mean_nll(token_ids)
        index = np.array([unique[t if isinstance(t, str) else ""] for t in texts], dtype=np.int64)
        counts = np.array([len(ids) for ids in token_ids], dtype=np.int64)[index]
        log_ppl = nll[index]
        return PerplexityScores(np.exp(log_ppl), log_ppl, counts)

    def _batches(self, lengths: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
        """(indices, padded width) of non-empty texts: each at a width of its own length
        (+1 for the start token; ``encoders.padded_widths``), grouped under the budget."""
        return width_batches(lengths, self.max_tokens + 1, self.token_budget, extra=1)

    def _mean_nll(self, token_ids: list[list[int]]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
        nll = np.full(len(token_ids), math.nan, dtype=np.float64)
        batches = list(self._batches(lengths))
        with torch.inference_mode(), autocast(self.device, self.autocast_dtype):
            for rows, width in batches:
                inputs = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
                for r, i in enumerate(rows):
                    inputs[r, 0] = self.start_id
                    inputs[r, 1 : lengths[i] + 1] = torch.tensor(token_ids[i])
                real = torch.arange(width).unsqueeze(0) <= torch.as_tensor(lengths[rows])[:, None]
                inputs = inputs.to(self.device, non_blocking=True)
                # predict position t+1 from position t, real positions only
                predict = real[:, 1:].to(self.device, non_blocking=True)
                targets = inputs[:, 1:][predict]
                # Right padding + causal attention: no real position sees a pad, so no attention
                # mask is needed (and SDPA keeps its fast causal path). Pads are dropped below.
                if self._split is not None:
                    body, head = self._split
                    hidden = body(input_ids=inputs, use_cache=False).last_hidden_state
                    states = hidden[:, :-1][predict]
                    token_nll = torch.cat(
                        [
                            F.cross_entropy(
                                head(states[at : at + HEAD_CHUNK_TOKENS]).float(),
                                targets[at : at + HEAD_CHUNK_TOKENS],
                                reduction="none",
                            )
                            for at in range(0, len(states), HEAD_CHUNK_TOKENS)
                        ]
                    ).double()
                else:  # models without a separable decoder: full logits, same maths
                    logits_all = self.model(input_ids=inputs, use_cache=False).logits
                    logits = logits_all[:, :-1][predict]
                    token_nll = F.cross_entropy(logits.float(), targets, reduction="none").double()
                per_row = torch.zeros(len(rows), dtype=torch.float64, device=token_nll.device)
                row_of_token = torch.arange(len(rows), device=self.device)[:, None].expand_as(
                    predict
                )[predict]
                per_row.index_add_(0, row_of_token, token_nll)
                nll[rows] = (per_row.cpu().numpy() / lengths[rows]).astype(np.float64)
        return nll


def _load_causal_lm(weights: ResolvedWeights, models_dir: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if weights.path is not None and weights.path.suffix == ".gguf":
        source: str = str(ensure_converted(weights.path, models_dir))
    elif weights.path is not None:
        source = str(weights.path)
    else:
        source = weights.spec
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        if weights.kind == "tag":
            raise EncoderUnavailable(
                f"pretrained causal LM {weights.spec!r} is not in the local cache and no model hub "
                f"is reachable; point {setting_hint(SETTING)} at a local model directory or use "
                f"packaged:smollm2-135m ({type(exc).__name__})"
            ) from exc
        raise EncoderUnavailable(
            f"cannot load the causal LM from {source}: {exc}; fix {setting_hint(SETTING)}"
        ) from exc
    return model, tokenizer
