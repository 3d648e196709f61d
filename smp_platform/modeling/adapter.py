"""CLIP-Adapter trained towards popularity, and cross-fitting so it never sees a row's own label.

The adapter is the residual bottleneck of CLIP-Adapter (Gao et al.), ``x' = a*A(x) + (1-a)*x``
with ``A = Linear(d, d/4) -> ReLU -> Linear(d/4, d) -> ReLU``, trained with a linear regression
head on ``x'`` predicting the standardised popularity (MSE, Adam). Hsu et al. adapt CLIP
features this way before the regressor.

Trained in-sample the adapter memorises labels and the downstream regressor trusts features
that will not carry that signal for new posts (measured: worse than predicting the median on a
time split). :func:`crossfit_transform` therefore gives each training row the output of an
adapter that was trained without it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from smp_platform.core.config import TrainSettings

if TYPE_CHECKING:
    import torch

BATCH_SIZE = 256
# Large sets get larger batches rather than more steps: an epoch stays <= 256 steps, so
# SMPD-size training (300k posts, k+1 fits per embedding) stays minutes on a CPU.
MAX_STEPS_PER_EPOCH = 256
# The adapter's matrices are small: one intra-op thread is as fast when the machine is idle
# and ~50x faster when it is busy (measured: 2 threads on 2 loaded cores, 50 ms vs 0.8 ms a step).
ADAPTER_THREADS = 1


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4


def _build_module(dim: int, ratio: float) -> torch.nn.Module:
    from torch import nn

    class ResidualAdapter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            hidden = max(1, dim // 4)
            self.bottleneck = nn.Sequential(
                nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.ReLU()
            )
            self.ratio = ratio

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.ratio * self.bottleneck(x) + (1.0 - self.ratio) * x

    return ResidualAdapter()


@dataclass
class Adapter:
    """A fitted adapter; ``state`` holds the weights as numpy arrays so it pickles anywhere."""

    dim: int
    ratio: float
    state: dict[str, np.ndarray] = field(repr=False)
    _module: Any = field(default=None, init=False, repr=False, compare=False)

    def module(self) -> torch.nn.Module:
        if self._module is None:
            import torch

            module = _build_module(self.dim, self.ratio)
            module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.state.items()})
            module.eval()
            self._module = module
        return self._module

    def state_dict(self) -> dict[str, np.ndarray]:
        return dict(self.state)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Adapted features (float32); rows with a NaN stay all-NaN.

        Plain numpy (two matrix products and ReLUs), so a registered model predicts without
        torch: the serving image does not carry it. :meth:`transform_torch` is the same
        computation through the torch module (a test keeps the two equal).
        """
        X = self._check(X)
        out = np.full_like(X, np.nan)
        present = np.isfinite(X).all(axis=1)
        if present.any():
            x = X[present]
            w0, b0 = self.state["bottleneck.0.weight"], self.state["bottleneck.0.bias"]
            w2, b2 = self.state["bottleneck.2.weight"], self.state["bottleneck.2.bias"]
            hidden = np.maximum(x @ w0.T + b0, 0.0)
            adapted = np.maximum(hidden @ w2.T + b2, 0.0)
            out[present] = (self.ratio * adapted + (1.0 - self.ratio) * x).astype(np.float32)
        return out

    def transform_torch(self, X: np.ndarray) -> np.ndarray:
        """:meth:`transform` computed by the torch module (the reference the numpy path matches)."""
        import torch

        X = self._check(X)
        out = np.full_like(X, np.nan)
        present = np.isfinite(X).all(axis=1)
        if present.any():
            with torch.no_grad(), _torch_threads(ADAPTER_THREADS):
                out[present] = self.module()(torch.from_numpy(X[present])).numpy()
        return out

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"expected an (n, {self.dim}) matrix, got shape {X.shape}")
        return X

    def __getstate__(self) -> dict[str, Any]:
        return {"dim": self.dim, "ratio": self.ratio, "state": self.state, "_module": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._module = None


def fit_adapter(
    X: np.ndarray, y: np.ndarray, settings: TrainSettings, *, seed: int | None = None
) -> Adapter:
    """Train an adapter on the rows of ``X`` with finite features and label (CPU, seeded).

    The label is standardised with this call's own rows, so nothing outside them leaks in.
    """
    import torch
    from torch import nn

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D embedding matrix, got shape {X.shape}")
    usable = np.isfinite(X).all(axis=1) & np.isfinite(y)
    Xu, yu = X[usable], y[usable]
    dim = X.shape[1]
    seed = settings.seed if seed is None else seed
    with torch.random.fork_rng(devices=[]), _torch_threads(ADAPTER_THREADS):
        torch.manual_seed(seed)
        module = _build_module(dim, settings.adapter_ratio)
        if len(yu) < 2 or settings.adapter_ratio == 0.0 or settings.adapter_epochs <= 0:
            return Adapter(dim, settings.adapter_ratio, _numpy_state(module))
        scale = yu.std() or 1.0
        target = torch.from_numpy(((yu - yu.mean()) / scale).astype(np.float32))
        features = torch.from_numpy(Xu)
        head = nn.Linear(dim, 1)
        params = list(module.parameters()) + list(head.parameters())
        optimiser = torch.optim.Adam(params, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        generator = torch.Generator().manual_seed(seed)
        batch_size = max(BATCH_SIZE, math.ceil(len(target) / MAX_STEPS_PER_EPOCH))
        module.train()
        for _ in range(settings.adapter_epochs):
            order = torch.randperm(len(target), generator=generator)
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                optimiser.zero_grad()
                prediction = head(module(features[batch])).squeeze(1)
                loss = nn.functional.mse_loss(prediction, target[batch])
                loss.backward()
                optimiser.step()
        module.eval()
    return Adapter(dim, settings.adapter_ratio, _numpy_state(module))


def _numpy_state(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def assign_folds(groups_or_order: Sequence[Any] | np.ndarray, k: int) -> np.ndarray:
    """Fold id (0..k-1) per row: rows sharing a value share a fold.

    Folds are contiguous blocks of the sorted distinct values with about equal row counts, so
    timestamps give time blocks and author ids keep an author's posts together.
    """
    values = np.asarray(groups_or_order)
    n = len(values)
    if k < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {k}")
    distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    k = min(k, len(distinct))
    if k < 2:
        raise ValueError("cross-fitting needs at least 2 distinct groups")
    # a group goes to the fold where its middle row falls when the sorted rows are cut into k
    # equal spans: with >= 2 groups the first and last groups never share a fold
    middles = np.cumsum(counts) - counts / 2.0
    group_fold = np.minimum((middles * k / n).astype(np.int64), k - 1)
    return group_fold[inverse.reshape(-1)].astype(np.int64)


def crossfit_transform(
    X: np.ndarray,
    y: np.ndarray,
    groups_or_order: Sequence[Any] | np.ndarray,
    k: int,
    settings: TrainSettings | None = None,
) -> tuple[np.ndarray, Adapter]:
    """Out-of-fold adapted training features, and the adapter fitted on all rows for new posts.

    Row i's adapted vector comes from an adapter trained on the other folds only, so its own
    label never reaches its features. Rows with a missing embedding stay NaN and train nothing.
    """
    if settings is None:
        settings = TrainSettings()
    X = np.asarray(X, dtype=np.float32)
    folds = assign_folds(groups_or_order, k)
    out = np.full_like(X, np.nan)
    for fold in np.unique(folds):
        held_out = folds == fold
        adapter = fit_adapter(
            X[~held_out], np.asarray(y)[~held_out], settings, seed=settings.seed + 1 + int(fold)
        )
        out[held_out] = adapter.transform(X[held_out])
    final = fit_adapter(X, y, settings)
    return out, final
